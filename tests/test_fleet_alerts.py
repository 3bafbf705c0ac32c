"""Alerts across machines: one Slack message per condition and one resolve (real Redis, real
HTTP receiver), two AlertService instances standing for two machines."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import free_port, hello_app
from ratelimit_helpers import RedisServer, redis_server
from test_alert_support import Receiver, serve
from voyagr_wsgi import Settings, compose
from voyagr_wsgi.alerts.channels.slack import SlackChannel
from voyagr_wsgi.alerts.config import AlertSettings
from voyagr_wsgi.alerts.evaluator import AlertService
from voyagr_wsgi.alerts.fleet import FleetDedup
from voyagr_wsgi.alerts.model import Alert
from voyagr_wsgi.alerts.rules import Inputs, Rule
from voyagr_wsgi.lease import redis_client
from voyagr_wsgi.secret import Secret

pytestmark = pytest.mark.system


@pytest.fixture
def server() -> Iterator[RedisServer]:
    with redis_server(free_port()) as srv:
        yield srv


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    yield from serve()


class Machine:
    """One machine's alert service: its own state dir, its own view of the condition."""

    def __init__(
        self, tmp_path: Path, name: str, receiver: Receiver, url: str | None, interval_s: float
    ) -> None:
        self.breached = False
        self.client = redis_client(url) if url else None
        fleet = None
        if self.client is not None:
            fleet = FleetDedup(
                self.client,
                service="voyagr",
                dedup_s=300,
                evaluation_interval_s=interval_s,
                machine=name,
            )
        self.service = AlertService(
            AlertSettings(evaluation_interval_s=3600, instance=name, keep_firing_s=0.0),
            channels=[SlackChannel(Secret(receiver.url("/slack")))],
            rules=[Rule("queue", self.check)],
            state_dir=str(tmp_path / name),
            fleet=fleet,
        )
        self.service.start()

    def check(self, inputs: Inputs) -> list[Alert]:
        return [Alert("queue_stuck", "Queue stuck", severity="critical")] if self.breached else []

    def evaluate(self, breached: bool) -> int:
        self.breached = breached
        return len(self.service.evaluate_once())

    def close(self) -> None:
        self.service.stop(10)
        if self.client is not None:
            self.client.close()


def slack_texts(receiver: Receiver) -> list[str]:
    return [r.body.decode() for r in receiver.requests]


@pytest.mark.parametrize(
    ("fleet", "firing", "resolved"),
    [
        pytest.param(True, 1, 1, id="fleet dedup: one message and one resolve"),
        pytest.param(False, 2, 2, id="no dedup: each machine sends its own"),
    ],
)
def test_two_machines_seeing_one_condition(
    tmp_path: Path,
    server: RedisServer,
    receiver: Receiver,
    fleet: bool,
    firing: int,
    resolved: int,
) -> None:
    url = server.url if fleet else None
    a = Machine(tmp_path, "a", receiver, url, 1.0)
    b = Machine(tmp_path, "b", receiver, url, 1.0)
    try:
        a.evaluate(True)
        b.evaluate(True)
        receiver.wait_for(firing)
        assert a.evaluate(False) == (0 if fleet else 1)  # b still fires: no resolve yet
        b.evaluate(False)
        receiver.wait_for(firing + resolved)
    finally:
        a.close()
        b.close()
    texts = slack_texts(receiver)
    assert sum("FIRING" in t for t in texts) == firing
    assert sum("RESOLVED" in t for t in texts) == resolved
    assert len(texts) == firing + resolved


def test_a_new_episode_after_the_fleet_resolved_notifies_again(
    tmp_path: Path, server: RedisServer, receiver: Receiver
) -> None:
    a = Machine(tmp_path, "a", receiver, server.url, 1.0)
    b = Machine(tmp_path, "b", receiver, server.url, 1.0)
    try:
        assert a.evaluate(True) == 1
        assert a.evaluate(False) == 1  # a was the only one firing: resolve
        assert b.evaluate(True) == 1  # a new episode, within the dedup window
        receiver.wait_for(3)
    finally:
        a.close()
        b.close()
    assert len(receiver.requests) == 3


def test_a_dead_machine_drops_out_and_the_last_one_resolves(
    tmp_path: Path, server: RedisServer, receiver: Receiver
) -> None:
    a = Machine(tmp_path, "a", receiver, server.url, 0.3)  # entries live 1 s
    b = Machine(tmp_path, "b", receiver, server.url, 0.3)
    try:
        assert a.evaluate(True) == 1
        assert b.evaluate(True) == 0
        # b dies here (never evaluates again)
        assert a.evaluate(True) == 0  # still firing: a's entry refreshed
        time.sleep(1.2)
        assert a.evaluate(False) == 1  # b's entry expired: a is the last, it resolves
        receiver.wait_for(2)
    finally:
        a.close()
        b.close()


def test_redis_down_sends_anyway(tmp_path: Path, server: RedisServer, receiver: Receiver) -> None:
    a = Machine(tmp_path, "a", receiver, server.url, 1.0)
    try:
        server.kill()
        assert a.evaluate(True) == 1
        receiver.wait_for(1)
        assert a.service.fleet is not None
        assert "ConnectionError" in (a.service.fleet.last_error or "")
    finally:
        a.close()


@pytest.mark.parametrize(
    ("env", "dedup"),
    [
        pytest.param({}, False, id="default: no fleet dedup"),
        pytest.param({"SERVICES_LEASE_URL": "redis://127.0.0.1:1/0"}, True, id="lease url"),
        pytest.param({"ALERT_DEDUP_URL": "redis://127.0.0.1:1/0"}, True, id="dedup url"),
    ],
)
def test_compose_wires_the_fleet_dedup(tmp_path: Path, env: dict[str, str], dedup: bool) -> None:
    settings = Settings.from_env({**env, "VOYAGR_STATE_DIR": str(tmp_path)})
    stack = compose(hello_app, settings)
    alerts: Any = stack.components["alerts"]
    assert (alerts.fleet is not None) is dedup
    lease_checks = [c for c in stack.health.evaluate().checks if c.name == "services:lease"]
    if "SERVICES_LEASE_URL" in env:
        assert [c.status for c in lease_checks] == ["warn"]  # nothing started yet
    else:
        assert lease_checks == []
