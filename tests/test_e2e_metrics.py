"""Real gunicorn (3 workers): the metrics endpoints show the whole server, not one worker.

Requests are spread over the workers (concurrent, each keeping its worker busy 50 ms); the
JSON and Prometheus endpoints then report every request; a SIGKILLed worker's counts survive
(gunicorn's ``child_exit`` folds its file into the archive); a new run starts from zero
(``on_starting`` removes the previous run's files).
"""

from __future__ import annotations

import json
import os
import re
import signal
from pathlib import Path
from typing import Any

import pytest

from conftest import free_port
from gunicorn_apps.harness import get, gunicorn, spread, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(60)]


def env_for(tmp_path: Path) -> dict[str, str]:
    return {
        "VOYAGR_STATE_DIR": str(tmp_path / "state"),
        "ALLOWED_HOSTS": "127.0.0.1",
        "RATE_LIMIT_ENABLED": "false",
        "METRICS_FLUSH_INTERVAL_SECONDS": "0.2",
    }


def metrics(port: int) -> dict[str, Any]:
    answer = get(port, "/api/production/metrics")
    assert answer.status == 200, answer.body
    return dict(json.loads(answer.body))


def total(port: int) -> int:
    return int(metrics(port)["requests"]["total"])


def prometheus_count(port: int) -> int:
    answer = get(port, "/api/production/prometheus")
    assert answer.status == 200
    text = answer.body.decode()
    counts = re.findall(r"^http_server_request_duration_seconds_count\{[^}]*\} (\S+)$", text, re.M)
    return int(sum(float(c) for c in counts))


def served(port: int, n: int) -> set[int]:
    """``n`` GETs of ``/`` spread over the workers; the pids that served them."""
    answers = spread(port, "/", n)
    assert all(a.status == 200 for a in answers)
    return {int(a.body) for a in answers}


@pytest.mark.parametrize(
    "args",
    [
        pytest.param((), id="app loaded in each worker"),
        pytest.param(("--preload",), id="app preloaded in the master"),
    ],
)
def test_totals_are_merged_across_workers_and_survive_a_sigkilled_worker(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    with gunicorn(
        "stack_app:application",
        port=free_port(),
        env=env_for(tmp_path),
        args=args,
        log_dir=str(tmp_path),
    ) as server:
        port = server.port
        served_by = served(port, 45)
        assert len(served_by) >= 2, "requests reached several workers"
        # every worker flushes its snapshot every 0.2 s; the reader merges all of them
        wait_for(lambda: total(port) == 45, timeout=5, what="45 requests in the merged total")
        assert metrics(port)["workers"] == 3
        assert prometheus_count(port) == 45

        victim = next(iter(served_by))
        os.kill(victim, signal.SIGKILL)
        files = tmp_path / "state" / "metrics"
        wait_for(
            lambda: not (files / f"{victim}.json").exists(),
            timeout=5,
            what="child_exit to fold the dead worker's file",
        )
        assert (files / "archive.json").exists()
        assert total(port) == 45, "a dead worker's requests stay counted"
        wait_for(lambda: len(server.workers()) == 3, what="a replacement worker")

        served(port, 15)
        wait_for(lambda: total(port) == 60, timeout=5, what="60 requests")
        assert prometheus_count(port) == 60


def test_a_new_gunicorn_run_starts_its_totals_at_zero(tmp_path: Path) -> None:
    env = env_for(tmp_path)
    with gunicorn(
        "stack_app:application", port=free_port(), env=env, log_dir=str(tmp_path)
    ) as server:
        served(server.port, 10)
        wait_for(lambda: total(server.port) == 10, timeout=5, what="10 requests")
    assert any((tmp_path / "state" / "metrics").iterdir()), "the first run left files"

    with gunicorn(
        "stack_app:application", port=free_port(), env=env, log_dir=str(tmp_path)
    ) as server:
        assert total(server.port) == 0
        served(server.port, 3)
        wait_for(lambda: total(server.port) == 3, timeout=5, what="3 requests")
