"""The ``prometheus`` extra: voyagr's metric families in a user's prometheus_client registry."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

import voyagr_wsgi
from voyagr_wsgi.metrics.prometheus import render
from voyagr_wsgi.metrics.prometheus_bridge import PrometheusBridge
from voyagr_wsgi.metrics.reader import merged
from voyagr_wsgi.metrics.registry import Registry


def _registry() -> Registry:
    registry = Registry(now=lambda: 1_000_000.0)
    for status in (200, 200, 200, 404):
        registry.observe_request("GET", "/users/{id}", status, 0.003, 0.001, error=False)
    registry.record_exception(ValueError("x"), "/users/{id}")
    registry.cache_event("tiles", hits=3, misses=1)
    return registry


def test_registered_bridge_serves_voyagr_families_through_generate_latest() -> None:
    registry = _registry()
    target = CollectorRegistry()
    target.register(PrometheusBridge(registry))
    text = generate_latest(target).decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert families["http_server_request_duration_seconds"].type == "histogram"
    assert families["voyagr_exceptions"].type == "counter"
    assert families["voyagr_cache_requests"].type == "counter"
    assert "voyagr_build_info" in families
    counts = {
        s.labels["http_response_status_code"]: s.value
        for s in families["http_server_request_duration_seconds"].samples
        if s.name.endswith("_count")
    }
    assert counts == {"200": 3.0, "404": 1.0}
    hits = [
        s.value
        for s in families["voyagr_cache_requests"].samples
        if s.labels == {"cache": "tiles", "result": "hit"}
    ]
    assert hits == [3.0]


def test_bridge_serves_the_same_samples_as_voyagrs_own_exposition() -> None:
    registry = _registry()
    target = CollectorRegistry()
    target.register(PrometheusBridge(registry))

    def samples(text: str) -> set[tuple[str, tuple[tuple[str, str], ...], float]]:
        return {
            (s.name, tuple(sorted(s.labels.items())), s.value)
            for f in text_string_to_metric_families(text)
            for s in f.samples
        }

    ours = samples(render(merged(registry), registry.now()))
    assert ours
    assert samples(generate_latest(target).decode()) == ours


def test_bridge_without_prometheus_client_names_the_extra() -> None:
    src = str(Path(voyagr_wsgi.__file__).resolve().parents[1])
    code = (
        "import sys\n"
        "sys.modules['prometheus_client'] = None  # as if the extra were not installed\n"
        "from voyagr_wsgi.errors import ConfigurationError\n"
        "from voyagr_wsgi.metrics.prometheus_bridge import PrometheusBridge\n"
        "from voyagr_wsgi.metrics.registry import Registry\n"
        "try:\n"
        "    PrometheusBridge(Registry())\n"
        "except ConfigurationError as exc:\n"
        "    print(exc)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "pip install 'voyagr-wsgi[prometheus]'" in result.stdout
