"""Other areas' figures (alert deliveries) appear in the metrics JSON and Prometheus output."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from conftest import call, hello_app, make_environ, require_tool
from voyagr_wsgi import Settings, compose


def stack(tmp_path: Path):  # type: ignore[no-untyped-def]
    return compose(hello_app, Settings(state_dir=str(tmp_path)))


def test_metrics_json_has_the_alert_channel_counters(tmp_path: Path) -> None:
    result = call(stack(tmp_path), make_environ("/api/production/metrics", remote="127.0.0.1"))
    doc = json.loads(result.body)
    assert set(doc["alerts"]["channels"]["log"]) >= {"sent", "failed", "dropped"}


def test_prometheus_output_with_alert_families_passes_promtool(tmp_path: Path) -> None:
    promtool = require_tool("promtool", "apt-get install prometheus")
    app = stack(tmp_path)
    call(app, make_environ("/"))
    result = call(app, make_environ("/api/production/prometheus", remote="127.0.0.1"))
    text = result.body.decode()
    assert 'voyagr_alert_notifications_total{channel="log",outcome="sent"} 0' in text
    assert "http_server_request_duration_seconds_bucket{" in text
    proc = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
