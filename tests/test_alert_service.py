"""AlertService: evaluation over a metrics source, lifecycle over an injected clock, mute
across processes, state published for other workers, admin route and health."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import call, make_environ
from test_alert_support import (
    FakeClock,
    FakeMetrics,
    Receiver,
    serve,
    snapshot,
)
from voyagr_wsgi._env import Env
from voyagr_wsgi.admin import Admin
from voyagr_wsgi.alerts import AlertService, AlertSettings, admin_routes
from voyagr_wsgi.alerts.channels import LogChannel, WebhookChannel
from voyagr_wsgi.alerts.model import Alert
from voyagr_wsgi.alerts.rules import Inputs, Rule
from voyagr_wsgi.secret import Secret

WALL = 1_767_225_600.0


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    yield from serve()


class FakeBackups:
    def __init__(self) -> None:
        self.doc: dict[str, Any] = {
            "last_success_ts": WALL - 3600,
            "last_failure_ts": None,
            "last_error": None,
            "interval_s": 86400.0,
        }

    def status(self) -> dict[str, Any]:
        return dict(self.doc)


class Harness:
    def __init__(self, tmp: Path, receiver: Receiver, **env: str) -> None:
        self.clock = FakeClock()
        self.wall = WALL
        self.metrics = FakeMetrics()
        self.backups = FakeBackups()
        defaults = {"ALERT_INSTANCE": "api-1", "ALERT_KEEP_FIRING_SECONDS": "0"}
        self.settings = AlertSettings.from_env(Env({**defaults, **env}))
        self.service = AlertService(
            self.settings,
            metrics=self.metrics,
            backups=self.backups,
            channels=[LogChannel(), WebhookChannel(Secret(receiver.url()))],
            state_dir=str(tmp),
            now=self.clock,
            wall=lambda: self.wall,
        )
        self.service.dispatcher._sleep = self.clock.sleep

    def step(self, seconds: float = 15.0, **snap: Any) -> list[tuple[str, str, str, int]]:
        self.clock.advance(seconds)
        self.wall += seconds
        if snap:
            self.metrics.snap = snapshot(**snap)
        notes = self.service.evaluate_once()
        return [
            (n.alert.title, n.status, n.reason, n.suppressed)
            for n in notes
            if n.reason != "refresh"
        ]


@pytest.fixture
def harness(tmp_path: Path, receiver: Receiver) -> Harness:
    return Harness(tmp_path, receiver)


CONDITIONS = [
    pytest.param({"p95": 6.0}, "slow_responses", id="slow responses"),
    pytest.param({"errors": 10}, "high_error_rate", id="error rate"),
    pytest.param({"caches": {"tiles": (10, 90)}}, "low_cache_hit_rate (tiles)", id="cache"),
    pytest.param(
        {"upstreams": {"engine": (50, 20, 0)}}, "upstream_failure_rate (engine)", id="upstream"
    ),
    pytest.param({"slow_queries": 25}, "slow_query_burst", id="slow queries"),
]


@pytest.mark.parametrize(("bad", "title"), CONDITIONS)
def test_each_condition_fires_once_then_resolves(
    harness: Harness, receiver: Receiver, bad: dict[str, Any], title: str
) -> None:
    assert harness.step() == []
    assert harness.step(**bad) == [(title, "firing", "new_alert", 0)]
    assert harness.step(**bad) == []
    assert harness.step(total=100) == [(title, "resolved", "resolved", 0)]
    harness.service.dispatcher.flush(10)
    bodies = [r.json() for r in receiver.wait_for(2)]
    assert [b["status"] for b in bodies] == ["firing", "resolved"]
    assert harness.metrics.windows[-1] == 300.0


@pytest.mark.parametrize(
    ("change", "alert_type"),
    [
        pytest.param(
            {"last_failure_ts": WALL, "last_error": "disk full"},
            "backup_failed",
            id="failed backup",
        ),
        pytest.param({"last_success_ts": WALL - 3 * 86400}, "backup_overdue", id="overdue"),
    ],
)
def test_backup_conditions_fire_and_resolve(
    harness: Harness, change: dict[str, Any], alert_type: str
) -> None:
    assert harness.step() == []
    harness.backups.doc.update(change)
    assert harness.step() == [(alert_type, "firing", "new_alert", 0)]
    harness.backups.doc.update(last_success_ts=harness.wall, last_failure_ts=None)
    assert harness.step() == [(alert_type, "resolved", "resolved", 0)]


def test_dedup_window_and_suppressed_count_over_the_injected_clock(harness: Harness) -> None:
    assert harness.step(errors=10) == [("high_error_rate", "firing", "new_alert", 0)]
    for _ in range(19):
        assert harness.step() == []
    assert harness.step() == [("high_error_rate", "firing", "repeat", 19)]


def test_for_duration_from_settings(tmp_path: Path, receiver: Receiver) -> None:
    h = Harness(tmp_path, receiver, ALERT_FOR_SECONDS="60")
    assert h.step(errors=10) == []
    assert h.step() == [] and h.step() == [] and h.step() == []
    assert h.step() == [("high_error_rate", "firing", "new_alert", 0)]  # 60 s after first


def test_mute_written_by_another_process_silences_the_evaluator(
    tmp_path: Path, receiver: Receiver
) -> None:
    runner = Harness(tmp_path, receiver)
    other_worker = Harness(tmp_path, receiver)
    other_worker.wall = runner.wall
    other_worker.service.mute(600, "db migration")
    assert runner.step(errors=10) == []
    assert runner.service.snapshot()["mute_reason"] == "db migration"
    other_worker.service.unmute()
    assert runner.step() == [("high_error_rate", "firing", "new_alert", 1)]


def test_mute_expires_by_itself(harness: Harness) -> None:
    harness.service.mute(20)
    assert harness.step(errors=10) == []
    assert harness.step() == [("high_error_rate", "firing", "new_alert", 1)]


def test_custom_rule_in_code_and_a_broken_rule_is_skipped(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    depth = {"jobs": 500}

    def queue_depth(inputs: Inputs) -> list[Alert]:
        n = depth["jobs"]
        return [Alert("queue_depth", f"{n} jobs waiting", value=n)] if n > 100 else []

    def broken(inputs: Inputs) -> list[Alert]:
        raise KeyError("oops")

    harness.service.add_rule(Rule("broken", broken))
    harness.service.add_rule(Rule("queue_depth", queue_depth))
    with caplog.at_level(logging.ERROR, logger="voyagr_wsgi.alerts"):
        assert harness.step() == [("queue_depth", "firing", "new_alert", 0)]
    assert "alert rule broken raised" in caplog.text
    depth["jobs"] = 3
    assert harness.step() == [("queue_depth", "resolved", "resolved", 0)]


def test_other_workers_read_the_runners_published_state(tmp_path: Path, receiver: Receiver) -> None:
    runner = Harness(tmp_path, receiver)
    runner.step(errors=10)
    runner.service.dispatcher.flush(10)
    runner.step()  # publishes the state after the deliveries above
    worker = Harness(tmp_path, receiver)  # same state dir, never ran anything
    view = worker.service.snapshot()
    assert [a["alert_type"] for a in view["active"]] == ["high_error_rate"]
    assert view["channels"]["webhook"]["sent"] == 1
    assert worker.service.stats() == view["channels"]


def test_admin_route_lists_active_alerts_and_channel_stats(harness: Harness) -> None:
    harness.step(errors=10, upstreams={"engine": (50, 40, 0)})
    harness.service.dispatcher.flush(10)
    admin = Admin(routes=admin_routes(harness.service)).bind(lambda e, s: [])
    result = call(admin, make_environ("/api/production/alerts", remote="127.0.0.1"))
    assert result.code == 200
    doc = json.loads(result.body)
    assert sorted((a["alert_type"], a["scope"]) for a in doc["active"]) == [
        ("high_error_rate", ""),
        ("upstream_failure_rate", "engine"),
    ]
    assert doc["channels"]["webhook"]["sent"] == 2 and doc["channels"]["log"]["sent"] == 2
    assert doc["muted_until"] is None


@pytest.mark.parametrize(
    ("body", "code"),
    [
        pytest.param(b'{"seconds": 3600, "reason": "deploy"}', 200, id="mute an hour"),
        pytest.param(b'{"seconds": -5}', 422, id="negative"),
        pytest.param(b'{"reason": "x"}', 422, id="no seconds"),
        pytest.param(b"not json", 400, id="not json"),
    ],
)
def test_admin_mute_endpoint(harness: Harness, body: bytes, code: int) -> None:
    token = "t" * 32  # state changes need the admin token
    auth = {"Authorization": f"Bearer {token}"}
    admin = Admin(routes=admin_routes(harness.service), token=Secret(token)).bind(lambda e, s: [])
    env = make_environ(
        "/api/production/alerts/mute",
        method="POST",
        body=body,
        headers={"Content-Type": "application/json", **auth},
    )
    result = call(admin, env)
    assert result.code == code
    muted = harness.service.muted()
    assert (muted is not None) is (code == 200)
    if muted:
        delete = make_environ("/api/production/alerts/mute", method="DELETE", headers=auth)
        assert call(admin, delete).code == 200 and harness.service.muted() is None


def test_admin_route_needs_the_admin_token(harness: Harness) -> None:
    admin = Admin(token=Secret("t" * 32), routes=admin_routes(harness.service)).bind(
        lambda e, s: []
    )
    assert call(admin, make_environ("/api/production/alerts", remote="127.0.0.1")).code == 401


def test_failing_channel_warns_in_health_and_never_shows_the_url(
    tmp_path: Path, receiver: Receiver
) -> None:
    from test_alert_support import Reply

    receiver.default = Reply(500, b"")
    h = Harness(tmp_path, receiver, ALERT_DELIVERY_DEADLINE_SECONDS="5")
    h.step(errors=10)
    h.service.dispatcher.flush(10)
    checks = {c.component_id: c for c in h.service.health_checks()}
    assert checks["webhook"].status == "warn" and checks["log"].status == "pass"
    assert checks["webhook"].output == "alert channel webhook: last delivery failed (HTTP 500)"
    assert checks["webhook"].observed_value == 1  # dropped after the deadline
    assert str(receiver.port) not in json.dumps(h.service.snapshot())


def test_a_suspended_channel_warns_in_health(tmp_path: Path, receiver: Receiver) -> None:
    from test_alert_support import Reply, notification

    receiver.default = Reply(status=410)
    settings = AlertSettings(webhook_enabled=True, webhook_url=Secret(receiver.url("/hook")))
    service = AlertService(settings, state_dir=str(tmp_path))
    service.dispatcher.submit(notification())
    service.dispatcher.flush(5)
    (check,) = [c for c in service.health_checks() if c.component_id == "webhook"]
    assert check.status == "warn" and "suspended (HTTP 410" in (check.output or "")


def test_too_little_traffic_keeps_an_alert_and_its_resolve_tells_the_current_figure(
    harness: Harness, receiver: Receiver
) -> None:
    # before: below ALERT_MIN_REQUESTS the rule returned nothing and the alert resolved,
    # though every remaining request failed; the resolve repeated "Error rate 10.0%"
    assert harness.step(errors=10) == [("high_error_rate", "firing", "new_alert", 0)]
    assert harness.step(total=5, errors=5) == []  # 5 requests, all failing: cannot tell
    assert ("high_error_rate", "") in harness.service.lifecycle.active
    assert harness.step(total=1000, errors=4) == [("high_error_rate", "resolved", "resolved", 0)]
    harness.service.dispatcher.flush(10)
    firing, resolved = (r.json() for r in receiver.wait_for(2))
    assert firing["alerts"][0]["annotations"]["summary"].startswith("Error rate 10.0%")
    assert resolved["alerts"][0]["annotations"]["summary"].startswith("Error rate 0.4% (4/1000)")
