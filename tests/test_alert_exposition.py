"""The alerting figures in Prometheus text (checked by prometheus_client's parser and by
promtool) and in the metrics JSON section."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import require_tool
from test_alert_service import Harness, receiver  # noqa: F401  (fixture)
from test_alert_support import Receiver, Reply
from voyagr_wsgi.alerts.exposition import json_section, prometheus_text


@pytest.fixture
def busy(tmp_path: Path, receiver: Receiver) -> Harness:  # noqa: F811
    receiver.script = [Reply(500, b"")]  # first webhook attempt fails, the retry succeeds
    h = Harness(tmp_path, receiver)
    h.step(errors=10, upstreams={"engine": (50, 40, 0)})
    h.step()  # both suppressed by dedup
    h.service.mute(60)
    h.step()  # both suppressed by the mute
    h.service.dispatcher.flush(30)
    return h


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_prometheus_text_counts_deliveries_suppressions_and_active_alerts(busy: Harness) -> None:
    got = samples(prometheus_text(busy.service.snapshot()))
    n = "voyagr_alert_notifications_total"
    assert got[(n, (("channel", "webhook"), ("outcome", "sent")))] == 2
    assert got[(n, (("channel", "webhook"), ("outcome", "retried")))] == 1
    assert got[(n, (("channel", "log"), ("outcome", "sent")))] == 2
    assert got[(n, (("channel", "log"), ("outcome", "dropped")))] == 0
    s = "voyagr_alert_suppressed_total"
    assert got[(s, (("alert_type", "high_error_rate"), ("reason", "dedup")))] == 1
    assert got[(s, (("alert_type", "upstream_failure_rate"), ("reason", "muted")))] == 1
    a = "voyagr_alerts_active"
    assert got[(a, (("alert_type", "high_error_rate"), ("severity", "critical")))] == 1
    assert got[("voyagr_alert_queue_length", ())] == 0
    assert got[("voyagr_alert_channel_up", (("channel", "webhook"),))] == 1


def test_promtool_accepts_the_exposition(busy: Harness, tmp_path: Path) -> None:
    promtool = require_tool("promtool", "apt-get install prometheus")
    text = prometheus_text(busy.service.snapshot())
    result = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_json_section_for_the_metrics_endpoint(busy: Harness) -> None:
    doc = json_section(busy.service.snapshot())
    assert doc["active"] == 2 and doc["queued"] == 0 and doc["muted_until"] is not None
    assert doc["channels"]["webhook"] == {
        "sent": 2,
        "failed": 0,
        "dropped": 0,
        "retried": 1,
        "last_ok": True,
        "queued": 0,
        "suspended": None,
    }
    assert doc["suppressed_total"]["high_error_rate"] == {"dedup": 1, "muted": 1}
