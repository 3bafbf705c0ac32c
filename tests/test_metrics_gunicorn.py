"""Real gunicorn, 3 workers recycled by max_requests: merged totals never go backwards.

Complements ``test_e2e_metrics.py`` (merge, SIGKILL, reset per run): here every worker is
recycled several times while requests flow; each reading of the merged total (whichever
worker answers) is at least the previous one, every request is seen within 2 s with the
default 1 s flush interval, the windowed view agrees, and the metrics directory holds no
more than one file per live worker plus the archive.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import free_port
from gunicorn_apps.harness import get, gunicorn, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]

REQUESTS = 90


def metrics(port: int) -> dict[str, Any]:
    answer = get(port, "/api/production/metrics")
    assert answer.status == 200, answer.body
    return dict(json.loads(answer.body))


def test_recycled_workers_keep_totals_monotonic_visible_within_2s_and_files_bounded(
    tmp_path: Path,
) -> None:
    env = {
        "VOYAGR_STATE_DIR": str(tmp_path / "state"),
        "RATE_LIMIT_ENABLED": "false",  # default METRICS_FLUSH_INTERVAL_SECONDS=1
    }
    files = tmp_path / "state" / "metrics"
    with gunicorn(
        "stack_app:application",
        port=free_port(),
        env=env,
        log_dir=str(tmp_path),
        args=("--max-requests", "8", "--max-requests-jitter", "0"),  # many recycles
    ) as server:
        port = server.port
        readings: list[int] = []
        pids: set[int] = set()
        for i in range(REQUESTS):
            answer = get(port)
            assert answer.status == 200
            pids.add(int(answer.body))
            if i % 5 == 4:
                readings.append(metrics(port)["requests"]["total"])
        assert len(pids) > 6, f"workers were recycled: {len(pids)} pids served"
        assert readings == sorted(readings), f"a merged total went backwards: {readings}"

        started = time.monotonic()
        wait_for(
            lambda: metrics(port)["requests"]["total"] == REQUESTS,
            timeout=2.0,
            what=f"{REQUESTS} requests in the merged total",
        )
        seen_after = time.monotonic() - started
        doc = metrics(port)
        assert doc["requests"]["total"] == REQUESTS
        assert doc["window"]["requests"]["total"] == REQUESTS  # the alerts' windowed view
        assert doc["routes"]["GET __unmatched__"]["count"] == REQUESTS
        names = {p.name for p in files.iterdir()}
        live = {n for n in names if n.removesuffix(".json").isdigit()}
        assert names - live <= {"archive.json", "archive.lock"}
        assert len(live) <= 3, f"files of dead workers piled up: {sorted(live)}"
    assert seen_after < 2.0
