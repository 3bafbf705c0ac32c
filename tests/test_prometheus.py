"""Prometheus exposition: format details, promtool, a real Prometheus scrape, the bridge."""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from conftest import call, free_port, make_environ, require_tool
from gunicorn_apps.harness import stop_process
from metrics_apps import demo_app, serve
from voyagr_wsgi import Settings, Stack, compose
from voyagr_wsgi.metrics.prometheus import CONTENT_TYPE, VoyagrCollector, render
from voyagr_wsgi.metrics.registry import Registry


@pytest.fixture
def stack(tmp_path: Any) -> Iterator[Stack]:
    yield compose(demo_app, Settings(state_dir=str(tmp_path)))


def drive(stack: Stack) -> None:
    for path in ["/users/1", "/users/4", "/users/17", "/report", "/error", "/nope"] * 5:
        call(stack, make_environ(path))
    with pytest.raises(RuntimeError):
        call(stack, make_environ("/boom"))


def scrape(stack: Stack) -> str:
    result = call(stack, make_environ("/api/production/prometheus", remote="127.0.0.1"))
    assert result.code == 200
    assert result.header("Content-Type") == CONTENT_TYPE
    return result.body.decode()


def sample(text: str, name: str, **labels: str) -> float:
    for line in text.splitlines():
        m = re.fullmatch(r"(\w+)(?:\{(.*)\})? (\S+)", line)
        if m and m.group(1) == name:
            got = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
            if all(got.get(k) == v for k, v in labels.items()):
                return float(m.group(3))
    raise KeyError((name, labels))


def test_exposition_has_otel_names_labels_and_consistent_histograms(stack: Stack) -> None:
    drive(stack)
    text = scrape(stack)
    assert "# TYPE http_server_request_duration_seconds histogram" in text
    users = {"http_request_method": "GET", "http_route": "/users/{id}",
             "http_response_status_code": "200"}  # fmt: skip
    assert sample(text, "http_server_request_duration_seconds_count", **users) == 15
    assert sample(text, "http_server_request_duration_seconds_bucket", le="+Inf", **users) == 15
    assert sample(text, "http_server_request_duration_seconds_bucket", le="10.0", **users) == 15
    assert sample(text, "http_server_request_duration_seconds_count", http_route="/boom",
                  http_response_status_code="500") == 1  # fmt: skip
    assert sample(text, "voyagr_exceptions_total", error_type="RuntimeError") == 1
    assert sample(text, "voyagr_cache_requests_total", cache="users", result="hit") == 5
    assert sample(text, "voyagr_upstream_requests_total", upstream="osrm", outcome="error") == 5
    assert sample(text, "http_server_active_requests") == 0
    assert "/api/production" not in text  # the scrape itself is not counted


def test_build_info_names_the_versions_serving() -> None:
    import platform

    from voyagr_wsgi import __version__

    registry = Registry()
    text = render(registry.snapshot(), registry.now())
    labels = {"version": __version__, "python_version": platform.python_version(),
              "python_implementation": platform.python_implementation()}  # fmt: skip
    assert sample(text, "voyagr_build_info", **labels) == 1
    assert "# TYPE voyagr_build_info gauge" in text


def test_label_values_are_escaped() -> None:
    registry = Registry()
    registry.started()
    registry.observe_request("GET", '/a"b\\c\nd', 200, 0.01, 0.0, False)
    text = render(registry.snapshot(), registry.now())
    assert 'http_route="/a\\"b\\\\c\\nd"' in text


def test_promtool_accepts_the_exposition(stack: Stack) -> None:
    promtool = require_tool("promtool", "apt-get install prometheus")
    drive(stack)
    proc = subprocess.run(
        [promtool, "check", "metrics"], input=scrape(stack), capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == "" and proc.stderr.strip() == ""


def test_promtool_accepts_every_family_of_a_stack_with_backups_and_rate_limiting(
    tmp_path: Any,
) -> None:
    from test_backup_support import backup_settings, make_db

    promtool = require_tool("promtool", "apt-get install prometheus")
    make_db(tmp_path / "app.db")
    settings = Settings(
        state_dir=str(tmp_path / "state"),
        allowed_hosts=("example.com",),
        backups=backup_settings(tmp_path),
    )
    stack = compose(demo_app, settings)
    drive(stack)
    assert call(stack, make_environ("/users/1", host="evil.test")).code == 400
    post = make_environ("/users/1", method="POST", headers={"Sec-Fetch-Site": "cross-site"})
    assert call(stack, post).code == 403
    stack.components["backups"].create()
    text = scrape(stack)
    for family in (
        "voyagr_ratelimit_decisions_total", "voyagr_rejections_total",
        "voyagr_process_start_time_seconds", "voyagr_backup_last_success_timestamp_seconds",
        "voyagr_backup_duration_seconds", "voyagr_backup_size_bytes", "voyagr_backup_failing",
        "voyagr_backup_interval_seconds", "voyagr_alert_notifications_total",
    ):  # fmt: skip
        assert f"# TYPE {family} " in text, family
    proc = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                          text=True)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == "" and proc.stderr.strip() == ""


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.load(resp)


@pytest.mark.system
@pytest.mark.slow
def test_a_real_prometheus_scrapes_and_answers_a_query(stack: Stack, tmp_path: Any) -> None:
    prometheus = require_tool("prometheus", "apt-get install prometheus")
    drive(stack)
    app_port, prom_port = free_port(), free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
        "scrape_configs:\n  - job_name: voyagr\n    metrics_path: /api/production/prometheus\n"
        f"    static_configs:\n      - targets: ['127.0.0.1:{app_port}']\n"
    )
    query = 'sum(http_server_request_duration_seconds_count{http_route="/users/{id}"})'
    log = open(tmp_path / "prometheus.log", "wb")
    encodings: list[str | None] = []  # Content-Encoding of each scrape answer

    def recording(environ: dict[str, Any], start_response: Any) -> Any:
        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            if environ.get("PATH_INFO") == "/api/production/prometheus":
                encodings.append(dict(headers).get("Content-Encoding"))
            return start_response(status, headers, exc_info)

        return stack(environ, start)

    with serve(recording, app_port):
        proc = subprocess.Popen(
            [prometheus, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{prom_port}", "--log.level=warn"],
            stdout=subprocess.DEVNULL, stderr=log,
        )  # fmt: skip
        try:
            url = f"http://127.0.0.1:{prom_port}/api/v1/query?" + urllib.parse.urlencode(
                {"query": query}
            )
            value = None
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and value is None:
                assert proc.poll() is None, (tmp_path / "prometheus.log").read_text()
                try:
                    result = _get_json(url)["data"]["result"]
                    value = float(result[0]["value"][1]) if result else None
                except OSError:
                    pass
                if value is None:
                    time.sleep(0.3)  # polling a real process until its first scrape lands
            assert value == 15
            assert "gzip" in encodings  # Prometheus asks for gzip, and gets it
            started = _get_json(
                f"http://127.0.0.1:{prom_port}/api/v1/query?query=voyagr_process_start_time_seconds"
            )["data"]["result"]
            assert abs(float(started[0]["value"][1]) - stack.metrics.started_at) < 0.01
            targets = _get_json(f"http://127.0.0.1:{prom_port}/api/v1/targets")
            (target,) = targets["data"]["activeTargets"]
            assert target["health"] == "up", target
        finally:
            stop_process(proc, grace=10)
            log.close()


def test_prometheus_client_bridge_exposes_the_same_families(stack: Stack) -> None:
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    drive(stack)
    target = CollectorRegistry()
    target.register(VoyagrCollector(stack.components["metrics"]))
    families = {f.name: f for f in text_string_to_metric_families(generate_latest(target).decode())}
    assert families["http_server_request_duration_seconds"].type == "histogram"
    assert families["voyagr_exceptions"].type == "counter"
    counts = [
        s.value
        for s in families["http_server_request_duration_seconds"].samples
        if s.name.endswith("_count") and s.labels["http_route"] == "/users/{id}"
    ]
    assert counts == [15.0]
