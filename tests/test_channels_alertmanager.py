"""The Alertmanager channel against a real prometheus-alertmanager on loopback, which forwards
to a webhook receiver (also on loopback)."""

from __future__ import annotations

import calendar
import json
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import free_port, require_tool
from gunicorn_apps.harness import stop_process
from test_alert_support import Receiver, poll, serve
from voyagr_wsgi.alerts.channels.alertmanager import AlertmanagerChannel
from voyagr_wsgi.alerts.lifecycle import Lifecycle
from voyagr_wsgi.alerts.model import Alert
from voyagr_wsgi.secret import Secret

pytestmark = [pytest.mark.system, pytest.mark.slow]

CONFIG = """
route:
  receiver: hook
  group_by: [alertname]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: hook
    webhook_configs:
      - url: {url}
        send_resolved: true
"""


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    yield from serve()


@pytest.fixture
def alertmanager(tmp_path: Path, receiver: Receiver) -> Iterator[str]:
    binary = require_tool("prometheus-alertmanager", "apt-get install prometheus-alertmanager")
    config = tmp_path / "alertmanager.yml"
    config.write_text(CONFIG.format(url=receiver.url("/am")))
    port = free_port()
    log = (tmp_path / "am.log").open("wb")
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        poll(lambda: _ready(base), timeout=20, what="alertmanager ready")
        yield base
    finally:
        stop_process(proc, grace=10)
        log.close()


def _ready(base: str) -> bool:
    try:
        with urllib.request.urlopen(base + "/-/ready", timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def am_alerts(base: str) -> list[dict[str, Any]]:
    with urllib.request.urlopen(base + "/api/v2/alerts", timeout=5) as response:
        doc: list[dict[str, Any]] = json.load(response)
        return doc


def lifecycle(instance: str) -> Lifecycle:
    return Lifecycle(dedup_s=300, refresh_s=60, service="api", instance=instance)


ALERT = Alert("high_error_rate", "Error rate 7.4% (threshold 5.0%)", severity="critical")


def test_firing_alert_reaches_alertmanager_and_its_webhook(
    alertmanager: str, receiver: Receiver
) -> None:
    channel = AlertmanagerChannel(Secret(alertmanager), resend_s=60)
    (note,) = lifecycle("api-1").update([ALERT], now=0, now_wall=time.time())
    channel.send(note, timeout=5)
    (stored,) = am_alerts(alertmanager)
    assert stored["labels"] == {
        "alertname": "VoyagrHighErrorRate",
        "alert_type": "high_error_rate",
        "severity": "critical",
        "service": "api",
        "instance": "api-1",
    }
    assert stored["annotations"]["summary"] == "Error rate 7.4% (threshold 5.0%)"
    assert stored["status"]["state"] == "active"
    body = receiver.wait_for(1, timeout=15)[0].json()
    assert (body["status"], body["alerts"][0]["labels"]["alertname"]) == (
        "firing",
        "VoyagrHighErrorRate",
    )


def test_resends_are_deduplicated_and_instances_grouped_by_alertmanager(
    alertmanager: str, receiver: Receiver
) -> None:
    channel = AlertmanagerChannel(Secret(alertmanager), resend_s=60)
    now = time.time()
    first = lifecycle("api-1").update([ALERT], now=0, now_wall=now)[0]
    second = lifecycle("api-2").update([ALERT], now=0, now_wall=now)[0]
    for note in (first, first, second, first):  # api-1 re-sends while firing
        channel.send(note, timeout=5)
    assert sorted(a["labels"]["instance"] for a in am_alerts(alertmanager)) == ["api-1", "api-2"]
    body = receiver.wait_for(1, timeout=15)[0].json()
    assert len(body["alerts"]) == 2  # one notification for the group, both instances inside


def test_resolve_posts_ends_at_and_alertmanager_sends_resolved(
    alertmanager: str, receiver: Receiver
) -> None:
    channel = AlertmanagerChannel(Secret(alertmanager), resend_s=60)
    life = lifecycle("api-1")
    start = time.time()
    (firing,) = life.update([ALERT], now=0, now_wall=start)
    channel.send(firing, timeout=5)
    (stored,) = am_alerts(alertmanager)
    ends = calendar.timegm(time.strptime(stored["endsAt"][:19], "%Y-%m-%dT%H:%M:%S"))
    assert 200 < ends - start < 280  # now + 4 x resend
    receiver.wait_for(1, timeout=15)
    (resolved,) = life.update([], now=1, now_wall=time.time())
    channel.send(resolved, timeout=5)
    bodies = [r.json() for r in receiver.wait_for(2, timeout=15)]
    assert bodies[-1]["status"] == "resolved"
    assert bodies[-1]["alerts"][0]["labels"]["instance"] == "api-1"
