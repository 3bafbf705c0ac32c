"""Alerts inside a composed stack: the real metrics registry driven by a wrapped app into each
condition and back, requests that never wait on hanging channels, and a flushing shutdown."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import call, make_environ
from test_alert_support import Receiver, Reply, poll, serve
from voyagr_wsgi import Settings, compose
from voyagr_wsgi.alerts import AlertService
from voyagr_wsgi.metrics import cache_stats, current_registry, track_upstream

pytestmark = pytest.mark.slow


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    yield from serve()


class Boom(Exception):
    pass


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    path = environ["PATH_INFO"]
    status = "200 OK"
    if path == "/fail":
        status = "500 Internal Server Error"
    elif path == "/slow":
        time.sleep(0.03)  # the app is slow; the test does not wait on a clock
    elif path == "/cache-miss":
        cache_stats("tiles").miss()
    elif path == "/engine":
        try:
            with track_upstream("engine"):
                raise Boom("engine down")
        except Boom:
            pass  # the app degrades gracefully: 200 without the engine
    elif path == "/query":
        registry = current_registry()  # the serving stack's, made current by its Metrics layer
        assert registry is not None
        registry.query("SELECT * FROM trips", 2.0)
    start_response(status, [("Content-Type", "text/plain")])
    return [b"ok"]


def base_env(tmp: Path, **extra: str) -> dict[str, str]:
    return {
        "VOYAGR_STATE_DIR": str(tmp),
        "RATE_LIMIT_ENABLED": "false",
        "ALERT_INSTANCE": "api-1",
        "ALERT_RESPONSE_TIME_THRESHOLD_SECONDS": "0.02",
        "ALERT_KEEP_FIRING_SECONDS": "0",  # resolve at the first clear evaluation
        **extra,
    }


def hit(stack: Any, path: str, n: int = 30) -> None:
    for _ in range(n):
        call(stack, make_environ(path)).body


@pytest.mark.parametrize(
    ("path", "title"),
    [
        pytest.param("/fail", "high_error_rate", id="error rate"),
        pytest.param("/slow", "slow_responses", id="response time"),
        pytest.param("/cache-miss", "low_cache_hit_rate (tiles)", id="cache hit rate"),
        pytest.param("/engine", "upstream_failure_rate (engine)", id="upstream failure"),
        pytest.param("/query", "slow_query_burst", id="slow queries"),
    ],
)
def test_wrapped_app_drives_each_condition_and_back(
    tmp_path: Path, receiver: Receiver, path: str, title: str
) -> None:
    env = base_env(tmp_path, ALERT_WEBHOOK_ENABLED="true", ALERT_WEBHOOK_URL=receiver.url())
    stack = compose(app, Settings.from_env(env))
    registry = stack.components["metrics"]
    service: AlertService = stack.components["alerts"]
    wall = [time.time()]
    registry.now = lambda: wall[0]  # the registry's documented test clock

    hit(stack, "/")
    hit(stack, path)
    fired = service.evaluate_once()
    assert [(n.alert.title, n.status) for n in fired] == [(title, "firing")]
    wall[0] += 400  # the bad minute leaves the 300 s window
    hit(stack, "/")
    resolved = service.evaluate_once()
    assert [(n.alert.title, n.status) for n in resolved] == [(title, "resolved")]
    service.stop(timeout=5)
    bodies = [r.json() for r in receiver.wait_for(2)]
    assert [(b["status"], b["groupLabels"]["alert_type"]) for b in bodies] == [
        ("firing", title.split(" ")[0]),
        ("resolved", title.split(" ")[0]),
    ]


def test_stop_flushes_the_queue_to_a_real_receiver(tmp_path: Path, receiver: Receiver) -> None:
    env = base_env(tmp_path, ALERT_WEBHOOK_ENABLED="true", ALERT_WEBHOOK_URL=receiver.url())
    stack = compose(app, Settings.from_env(env))
    service: AlertService = stack.components["alerts"]
    hit(stack, "/fail")
    hit(stack, "/cache-miss")
    assert len(service.evaluate_once()) == 2
    assert (
        receiver.requests == [] and service.dispatcher.pending() == 4
    )  # 2 alerts x (log, webhook)
    service.stop(timeout=5)
    assert len(receiver.requests) == 2  # sent synchronously by stop(), nothing left behind
    assert service.stats()["webhook"]["sent"] == 2


@pytest.fixture
def silent_smtp() -> Iterator[int]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    try:
        yield int(listener.getsockname()[1])
    finally:
        listener.close()


def test_requests_complete_while_every_channel_hangs(tmp_path: Path, silent_smtp: int) -> None:
    hanging = Receiver()
    hanging.default = Reply(hang=True)
    hanging.thread.start()
    env = base_env(
        tmp_path,
        ALERT_EVALUATION_INTERVAL_SECONDS="0.1",
        ALERT_SEND_TIMEOUT_SECONDS="10",
        ALERT_EMAIL_ENABLED="true",
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=str(silent_smtp),
        SMTP_SECURITY="none",
        ALERT_EMAIL_FROM="a@example.com",
        ALERT_EMAIL_TO="b@example.com",
        ALERT_SLACK_ENABLED="true",
        SLACK_WEBHOOK_URL=hanging.url("/slack"),
        ALERT_DISCORD_ENABLED="true",
        DISCORD_WEBHOOK_URL=hanging.url("/discord"),
        ALERT_WEBHOOK_ENABLED="true",
        ALERT_WEBHOOK_URL=hanging.url("/webhook"),
        ALERTMANAGER_URL=hanging.url(""),
        ALERT_LOG_ENABLED="false",
    )
    stack = compose(app, Settings.from_env(env))
    service: AlertService = stack.components["alerts"]
    stack.start()
    try:
        hit(stack, "/fail")
        poll(lambda: service.dispatcher.in_flight == "email", what="the sender stuck on SMTP")
        durations = []
        for _ in range(200):
            started = time.perf_counter()
            assert call(stack, make_environ("/fail")).code == 500
            durations.append(time.perf_counter() - started)
        assert max(durations) < 0.5 and sum(durations) < 5  # a channel hang is 10 s
        assert threading.current_thread().name not in {"voyagr-alert-sender"}
    finally:
        started = time.monotonic()
        stack.stop(timeout=1)
        stopped_in = time.monotonic() - started
        hanging.close()
    assert stopped_in < 5
    assert service.dispatcher.pending() == 0
    assert sum(s["dropped"] for s in service.stats().values()) >= 1
