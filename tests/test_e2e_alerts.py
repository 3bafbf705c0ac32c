"""Real gunicorn (3 workers): an alert is evaluated and sent by one process only, once, and
not again by the worker that takes over after the sender is SIGKILLed.

A loopback HTTP receiver stands in for the webhook channel (Alertmanager webhook-v4 body).
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from conftest import free_port
from gunicorn_apps.harness import gunicorn, spread, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(60)]

EVALUATE_S = 0.2  # ALERT_EVALUATION_INTERVAL_SECONDS
QUIET_S = 3.0  # 15 evaluations: long enough for any duplicate to show up
ALERT = "high_error_rate"


class Receiver:
    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        received = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                received.append(json.loads(self.rfile.read(length)))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def firing(self, alert_type: str) -> list[dict[str, Any]]:
        return [
            b
            for b in list(self.bodies)
            if b["status"] == "firing" and b["groupLabels"].get("alert_type") == alert_type
        ]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    thread = threading.Thread(target=r.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield r
    finally:
        r.server.shutdown()
        r.server.server_close()
        thread.join(5)


def lock_pid(state: Path) -> int | None:
    path = state / "services.lock"
    text = path.read_text().strip() if path.exists() else ""
    return int(text) if text.isdigit() else None


def quiet_for(seconds: float, condition: Any) -> bool:
    """True if ``condition()`` stays false for ``seconds`` (a bounded negative check)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return False
        time.sleep(0.05)
    return True


def alerting_env(tmp_path: Path, receiver: Receiver) -> dict[str, str]:
    return {
        "VOYAGR_STATE_DIR": str(tmp_path / "state"),
        "ALLOWED_HOSTS": "127.0.0.1",
        "RATE_LIMIT_ENABLED": "false",
        "METRICS_FLUSH_INTERVAL_SECONDS": "0.2",
        "ALERT_EVALUATION_INTERVAL_SECONDS": str(EVALUATE_S),
        "ALERT_MIN_REQUESTS": "5",
        "ALERT_WINDOW_SECONDS": "120",
        "ALERT_WEBHOOK_ENABLED": "true",
        "ALERT_WEBHOOK_URL": receiver.url,
    }


def test_error_rate_alert_from_three_workers_is_sent_once(
    tmp_path: Path, receiver: Receiver
) -> None:
    env = alerting_env(tmp_path, receiver)
    with gunicorn(
        "stack_app:application", port=free_port(), env=env, log_dir=str(tmp_path)
    ) as server:
        served_by = {int(r.body) for r in spread(server.port, "/fail", 30)}
        assert len(served_by) >= 2, "the failing requests reached several workers"
        wait_for(lambda: receiver.firing(ALERT), timeout=10, what="the firing alert")
        assert quiet_for(QUIET_S, lambda: len(receiver.firing(ALERT)) > 1), (
            "a second notification for the same alert"
        )
    body = receiver.firing(ALERT)[0]
    assert body["version"] == "4"
    assert "100.0%" in body["alerts"][0]["annotations"]["summary"], "30/30 merged, not one worker's"


def test_worker_taking_over_after_sigkill_does_not_notify_again(
    tmp_path: Path, receiver: Receiver
) -> None:
    state = tmp_path / "state"
    env = alerting_env(tmp_path, receiver)
    with gunicorn(
        "stack_app:application", port=free_port(), env=env, log_dir=str(tmp_path)
    ) as server:
        spread(server.port, "/fail", 30)
        wait_for(lambda: receiver.firing(ALERT), timeout=10, what="the firing alert")
        leader = lock_pid(state)
        assert leader is not None
        os.kill(leader, signal.SIGKILL)
        wait_for(lambda: lock_pid(state) not in (None, leader), timeout=6, what="a new leader")
        # the successor evaluates the same merged metrics; the alert is already notified
        assert quiet_for(QUIET_S, lambda: len(receiver.firing(ALERT)) > 1), (
            "the worker that took over sent the alert again"
        )
