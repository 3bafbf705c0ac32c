"""The metrics health source through compose (Probe serves it), and the metrics settings."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from conftest import call, make_environ
from voyagr_wsgi import ConfigurationError, Secret, Settings, Stack, compose
from voyagr_wsgi.metrics import (
    cache_stats,
    track_query,
    track_upstream,
    use_registry,
)
from voyagr_wsgi.metrics.config import HealthThresholds, MetricsSettings
from voyagr_wsgi.metrics.registry import Registry

TOKEN = "health-token-0123456789abcdef"


def flaky_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    status = "500 Internal Server Error" if environ["PATH_INFO"] == "/fail" else "200 OK"
    start_response(status, [("Content-Type", "text/plain")])
    return [b"x"]


@pytest.fixture
def stack(tmp_path: Any) -> Iterator[Stack]:
    settings = Settings(
        state_dir=str(tmp_path),
        admin_token=Secret(TOKEN),
        metrics=MetricsSettings(health=HealthThresholds(min_requests=20)),
    )
    yield compose(flaky_app, settings)


def load(stack: Stack, ok: int, failed: int) -> None:
    for path in ["/ok"] * ok + ["/fail"] * failed:
        call(stack, make_environ(path))


def upstream_calls(stack: Stack, ok: int, failed: int) -> None:
    for i in range(ok + failed):
        try:
            with use_registry(stack.metrics), track_upstream("osrm"):
                if i < failed:
                    raise ConnectionError("refused")
        except ConnectionError:
            pass


def slow_query(stack: Stack) -> None:
    registry = stack.metrics
    registry.slow_query_threshold_s = 0.0
    with track_query("SELECT 1", registry=registry):
        pass


def slow_responses(stack: Stack) -> None:
    registry: Registry = stack.components["metrics"]
    for _ in range(25):
        registry.started()
        registry.observe_request("GET", "/slow", 200, 2.0, 0.1, False)


SCENARIOS = [
    pytest.param(lambda s: load(s, 30, 0), "pass", {}, id="healthy"),
    pytest.param(lambda s: load(s, 3, 3), "pass", {}, id="too few requests to judge"),
    pytest.param(lambda s: load(s, 27, 3), "warn", {"http:errorRate": "warn"}, id="10% errors"),
    pytest.param(lambda s: load(s, 15, 15), "fail", {"http:errorRate": "fail"}, id="50% errors"),
    pytest.param(slow_responses, "warn", {"http:responseTime": "warn"}, id="p95 over 1 s"),
    pytest.param(lambda s: (cache_stats("routes", registry=s.metrics).hit(3),
                           cache_stats("routes", registry=s.metrics).miss(27)),
                 "fail", {"cache:hitRate": "fail"}, id="cache hit rate 10%"),
    pytest.param(lambda s: (cache_stats("routes", registry=s.metrics).hit(12),
                           cache_stats("routes", registry=s.metrics).miss(13)),
                 "warn", {"cache:hitRate": "warn"}, id="cache hit rate 48%"),
    pytest.param(lambda s: upstream_calls(s, 18, 12), "fail", {"upstream:failureRate": "fail"},
                 id="upstream 40% failing"),
    pytest.param(lambda s: upstream_calls(s, 27, 3), "warn", {"upstream:failureRate": "warn"},
                 id="upstream 10% failing"),
    pytest.param(slow_query, "warn", {"database:slowQueries": "warn"},
                 id="one slow query"),
]  # fmt: skip


@pytest.mark.parametrize(("drive", "status", "failing"), SCENARIOS)
def test_health_source_turns_figures_into_status_and_issues(
    stack: Stack, drive: Callable[[Stack], Any], status: str, failing: dict[str, str]
) -> None:
    drive(stack)
    report = stack.health.evaluate()
    assert report.status == status
    not_passing = {c.name: c.status for c in report.checks if c.status != "pass"}
    assert not_passing == failing
    assert len(report.issues) == len(failing)
    assert {c.name for c in report.checks} >= {
        "http:responseTime", "http:errorRate", "database:slowQueries", "uptime",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("ok", "failed", "code", "status"),
    [
        pytest.param(30, 0, 200, "pass", id="pass answers 200"),
        pytest.param(27, 3, 200, "warn", id="warn still answers 200"),
        pytest.param(10, 20, 503, "fail", id="fail answers 503"),
    ],
)
def test_probe_serves_the_metrics_health_minimal_and_full(
    stack: Stack, ok: int, failed: int, code: int, status: str
) -> None:
    load(stack, ok, failed)
    public = call(stack, make_environ("/api/production/health", remote="203.0.113.5"))
    assert (public.code, json.loads(public.body)) == (code, {"status": status})
    full = call(
        stack,
        make_environ("/api/production/health", headers={"Authorization": f"Bearer {TOKEN}"}),
    )
    assert full.code == code
    assert full.header("Content-Type") == "application/health+json"
    doc = json.loads(full.body)
    assert doc["status"] == status
    (error_rate,) = doc["checks"]["http:errorRate"]
    assert error_rate["observedValue"] == pytest.approx(failed / (ok + failed))


def test_health_requests_are_not_counted_in_the_figures(stack: Stack) -> None:
    for _ in range(5):
        call(stack, make_environ("/api/production/health"))
    assert stack.components["metrics"].total == 0


def test_metrics_settings_from_env_reads_every_variable() -> None:
    s = Settings.from_env(
        {
            "METRICS_ENABLED": "false",
            "METRICS_MAX_ROUTES": "50",
            "METRICS_ROUTE_PATTERNS": "/users/{id}, /trips/{id}",
            "SLOW_QUERY_THRESHOLD_SECONDS": "0.25",
            "ACCESS_LOG_ENABLED": "no",
            "REQUEST_ID_ENABLED": "0",
            "HEALTH_RESPONSE_TIME_WARN_SECONDS": "0.5",
            "HEALTH_ERROR_RATE_FAIL": "0.5",
            "HEALTH_CACHE_HIT_RATE_WARN": "0.8",
        }
    ).metrics
    assert (s.enabled, s.max_routes, s.route_patterns) == (
        False,
        50,
        ("/users/{id}", "/trips/{id}"),
    )
    assert (s.slow_query_threshold_s, s.access_log, s.request_id) == (0.25, False, False)
    assert s.health.response_time_warn_s == 0.5
    assert s.health.error_rate_fail == 0.5
    assert s.health.cache_hit_rate_warn == 0.8


@pytest.mark.parametrize(
    ("env", "message"),
    [
        pytest.param({"METRICS_MAX_ROUTES": "0"}, "METRICS_MAX_ROUTES", id="cap below 1"),
        pytest.param({"SLOW_QUERY_THRESHOLD_SECONDS": "fast"}, "SLOW_QUERY_THRESHOLD_SECONDS",
                     id="not a number"),
        pytest.param({"HEALTH_ERROR_RATE_WARN": "1.5"}, "HEALTH_ERROR_RATE_WARN",
                     id="rate above 1"),
        pytest.param({"HEALTH_RESPONSE_TIME_WARN_SECONDS": "9"},
                     "HEALTH_RESPONSE_TIME_WARN=9.0 must be <= HEALTH_RESPONSE_TIME_FAIL",
                     id="warn above fail"),
        pytest.param({"HEALTH_CACHE_HIT_RATE_FAIL": "0.9"}, "HEALTH_CACHE_HIT_RATE_FAIL",
                     id="hit-rate fail above warn"),
        pytest.param({"METRICS_ENABLED": "maybe"}, "METRICS_ENABLED", id="bad boolean"),
        pytest.param({"METRICS_ROUTE_PATTERNS": "users/{id}"}, "must start with '/'",
                     id="bad route template (at compose)"),
    ],
)  # fmt: skip
def test_bad_metrics_settings_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message.replace("(", r"\(")):
        compose(flaky_app, Settings.from_env(env))


def test_metrics_disabled_builds_no_layer_routes_or_health(tmp_path: Any) -> None:
    stack = compose(flaky_app, Settings(state_dir=str(tmp_path),
                                        metrics=MetricsSettings(enabled=False)))  # fmt: skip
    assert "metrics" not in stack.components
    with pytest.raises(KeyError):
        stack.layer("Metrics")
    assert call(stack, make_environ("/api/production/metrics", remote="127.0.0.1")).body == b"x"


@pytest.mark.parametrize(
    ("env", "codes"),
    [
        pytest.param({}, set(), id="defaults: nothing to say"),
        pytest.param({"METRICS_ENABLED": "false"}, {"voyagr.W401"}, id="metrics off"),
        pytest.param({"VOYAGR_STATE_DIR": "/proc/1/voyagr-state"}, {"voyagr.W402"},
                     id="state dir not writable"),
        pytest.param({"METRICS_MAX_ROUTES": "5000"}, {"voyagr.W403"}, id="huge route cap"),
    ],
)  # fmt: skip
def test_deploy_checks_report_metrics_misconfiguration(
    tmp_path: Any, env: dict[str, str], codes: set[str]
) -> None:
    from voyagr_wsgi.metrics import deploy_checks

    settings = Settings.from_env({"VOYAGR_STATE_DIR": str(tmp_path), **env})
    assert {f.code for f in deploy_checks(settings)} == codes


def test_deploy_checks_report_a_bad_route_template_in_code_built_settings(tmp_path: Any) -> None:
    """METRICS_ROUTE_PATTERNS is refused by Settings.from_env; Settings built in code are
    checked by deploy_checks (and by the layer at compose)."""
    from voyagr_wsgi.metrics import deploy_checks

    with pytest.raises(ConfigurationError, match="METRICS_ROUTE_PATTERNS"):
        Settings.from_env({"METRICS_ROUTE_PATTERNS": "users/{id}"})
    settings = Settings(
        state_dir=str(tmp_path), metrics=MetricsSettings(route_patterns=("users/{id}",))
    )
    assert {f.code for f in deploy_checks(settings)} == {"voyagr.E401"}
