"""Real gunicorn, 3 workers: one process evaluates the merged metrics and sends each alert
once (pain point 12: "each email gets sent 4 times" with 4 workers), and every worker's
admin endpoint shows that process's alert state."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import free_port
from gunicorn_apps.harness import get, gunicorn, wait_for
from test_alert_support import Receiver, serve

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    yield from serve()


def state(path: Path) -> dict[str, Any]:
    try:
        doc: dict[str, Any] = json.loads(path.read_text())
        return doc
    except (FileNotFoundError, ValueError):
        return {}


def test_three_workers_send_one_notification_from_one_process(
    tmp_path: Path, receiver: Receiver
) -> None:
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    log = tmp_path / "app.log"
    env = {
        "VOYAGR_STATE_DIR": str(state_dir),
        "VOYAGR_TEST_LOG": str(log),
        "RATE_LIMIT_ENABLED": "false",
        "ALERT_EVALUATION_INTERVAL_SECONDS": "0.2",
        "ALERT_RESPONSE_TIME_THRESHOLD_SECONDS": "0",  # any request is "slow": it fires
        "ALERT_RESPONSE_TIME_STATISTIC": "max",
        "ALERT_MIN_REQUESTS": "30",
        "ALERT_WEBHOOK_ENABLED": "true",
        "ALERT_WEBHOOK_URL": receiver.url("/gunicorn"),
        "ALERT_INSTANCE": "api-1",
    }
    alerts_state = state_dir / "alerts-state.json"
    with gunicorn("stack_app:application", port=free_port(), env=env, log_dir=str(tmp_path)) as g:
        for _ in range(60):
            get(g.port, "/")
        (first,) = receiver.wait_for(1, timeout=20)
        assert first.json()["groupLabels"] == {"alert_type": "slow_responses"}
        seen = int(state(alerts_state).get("evaluations", 0))
        wait_for(
            lambda: int(state(alerts_state).get("evaluations", 0)) >= seen + 10,
            timeout=20,
            what="ten more evaluations",
        )
        assert len(receiver.requests) == 1, "one notification, not one per worker"
        runner = int(state(alerts_state)["pid"])
        assert runner in g.workers()
        views = [json.loads(get(g.port, "/api/production/alerts").body) for _ in range(12)]
    assert {v["pid"] for v in views} == {runner}
    assert all(v["channels"]["webhook"]["sent"] == 1 for v in views)
    firing_lines = [line for line in log.read_text().splitlines() if "alert FIRING" in line]
    assert firing_lines and {int(line.split()[0]) for line in firing_lines} == {runner}
