from __future__ import annotations

from typing import Any

import pytest

from test_alert_support import snapshot
from voyagr_wsgi import ConfigurationError
from voyagr_wsgi._env import Env
from voyagr_wsgi.alerts.config import AlertSettings
from voyagr_wsgi.alerts.model import Alert
from voyagr_wsgi.alerts.rules import (
    ForTracker,
    Inputs,
    backup_rule,
    default_rules,
    error_rate_rule,
)

NOW = 1_767_225_600.0


def fired(
    snap: dict[str, Any], backups: dict[str, Any] | None = None, **env: str
) -> set[tuple[str, str]]:
    settings = AlertSettings.from_env(Env(env))
    inputs = Inputs(snap, backups, NOW)
    return {
        a.key for rule in default_rules(settings) for a in rule.check(inputs) if a.state == "firing"
    }


@pytest.mark.parametrize(
    ("snap", "env", "expected"),
    [
        pytest.param(snapshot(), {}, set(), id="healthy traffic fires nothing"),
        pytest.param(snapshot(p95=5.5), {}, {("slow_responses", "")}, id="p95 over 5s"),
        pytest.param(snapshot(p95=5.0), {}, set(), id="p95 equal to threshold is fine"),
        pytest.param(
            snapshot(p95=2.0),
            {"ALERT_RESPONSE_TIME_THRESHOLD_SECONDS": "1.5"},
            {("slow_responses", "")},
            id="custom latency threshold",
        ),
        pytest.param(snapshot(p95=6.0, total=5), {}, set(), id="latency needs min requests"),
        pytest.param(snapshot(errors=6), {}, {("high_error_rate", "")}, id="6% errors"),
        pytest.param(snapshot(errors=5), {}, set(), id="5% errors is the threshold, not over"),
        pytest.param(snapshot(total=19, errors=19), {}, set(), id="19 requests below min"),
        pytest.param(
            snapshot(total=5, errors=5),
            {"ALERT_MIN_REQUESTS": "5"},
            {("high_error_rate", "")},
            id="min requests configurable",
        ),
        pytest.param(
            snapshot(caches={"tiles": (40, 60), "geo": (90, 10)}),
            {},
            {("low_cache_hit_rate", "tiles")},
            id="per-cache hit rate under 50%",
        ),
        pytest.param(
            snapshot(caches={"tiles": (1, 9)}),
            {},
            set(),
            id="cache with few lookups ignored",
        ),
        pytest.param(
            snapshot(upstreams={"engine": (100, 20, 11), "maps": (100, 30, 0)}),
            {},
            {("upstream_failure_rate", "engine")},
            id="errors plus timeouts over 30%",
        ),
        pytest.param(
            snapshot(upstreams={"engine": (100, 20, 11)}),
            {"ALERT_ENGINE_FAILURE_RATE_THRESHOLD": "0.5"},
            set(),
            id="custom upstream threshold",
        ),
        pytest.param(
            snapshot(slow_queries=10), {}, {("slow_query_burst", "")}, id="slow query burst"
        ),
        pytest.param(snapshot(slow_queries=9), {}, set(), id="slow queries under burst"),
        pytest.param(
            snapshot(slow_queries=50),
            {"ALERT_SLOW_QUERY_THRESHOLD": "0"},
            set(),
            id="slow query rule disabled",
        ),
    ],
)
def test_builtin_rules_fire_only_over_their_thresholds(
    snap: dict[str, Any], env: dict[str, str], expected: set[tuple[str, str]]
) -> None:
    assert fired(snap, **env) == expected


@pytest.mark.parametrize(
    ("statistic", "expected"),
    [
        pytest.param("p95", set(), id="p95 under"),
        pytest.param("p99", {("slow_responses", "")}, id="p99 over"),
        pytest.param("max", {("slow_responses", "")}, id="max over"),
    ],
)
def test_response_time_statistic_is_configurable(statistic: str, expected: set[Any]) -> None:
    snap = snapshot()
    snap["latency_s"] = {"p50": 0.1, "p95": 1.0, "p99": 7.0, "avg": 0.5, "max": 9.0}
    assert fired(snap, ALERT_RESPONSE_TIME_STATISTIC=statistic) == expected


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        pytest.param(None, set(), id="no backup component"),
        pytest.param(
            {"last_success_ts": NOW - 3600, "last_failure_ts": None, "interval_s": 86400},
            set(),
            id="recent success",
        ),
        pytest.param(
            {
                "last_success_ts": NOW - 3600,
                "last_failure_ts": NOW - 60,
                "last_error": "disk full",
                "interval_s": 86400,
            },
            {("backup_failed", "")},
            id="failure newer than success",
        ),
        pytest.param(
            {"last_success_ts": NOW - 60, "last_failure_ts": NOW - 3600, "interval_s": 86400},
            set(),
            id="success after a failure clears it",
        ),
        pytest.param(
            {"last_success_ts": NOW - 3 * 86400, "last_failure_ts": None, "interval_s": 86400},
            {("backup_overdue", "")},
            id="no success for twice the interval",
        ),
        pytest.param(
            {"last_success_ts": None, "last_failure_ts": None, "interval_s": 86400},
            set(),
            id="never ran yet",
        ),
    ],
)
def test_backup_rule_fires_on_failed_or_overdue_backup(
    status: dict[str, Any] | None, expected: set[Any]
) -> None:
    assert fired(snapshot(), status) == expected


def test_backup_max_age_overrides_interval() -> None:
    status = {"last_success_ts": NOW - 7200, "last_failure_ts": None, "interval_s": 86400}
    alerts = list(backup_rule(3600).check(Inputs(snapshot(), status, NOW)))
    assert [(a.alert_type, a.value, a.threshold) for a in alerts] == [
        ("backup_overdue", 7200, 3600)
    ]


def test_error_rate_alert_carries_value_threshold_and_readable_summary() -> None:
    (alert,) = error_rate_rule(0.05).check(Inputs(snapshot(total=1000, errors=74), None, NOW))
    assert (alert.value, alert.threshold, alert.severity) == (0.074, 0.05, "critical")
    assert alert.summary == "Error rate 7.4% (74/1000) over 300s (threshold 5.0%)"


def test_for_duration_holds_a_condition_until_it_lasted() -> None:
    tracker = ForTracker()
    a = Alert("high_error_rate", "x")
    assert tracker.update([(a, 60.0)], now=0.0) == []
    assert tracker.update([(a, 60.0)], now=59.0) == []
    assert tracker.update([(a, 60.0)], now=60.0) == [a]
    assert tracker.update([], now=75.0) == []  # cleared: starts over
    assert tracker.update([(a, 60.0)], now=90.0) == []
    assert tracker.update([(a, 0.0)], now=90.0) == [a]


def test_settings_defaults_match_the_issue() -> None:
    s = AlertSettings.from_env(Env({}))
    assert (s.evaluation_interval_s, s.window_s, s.response_time_threshold_s) == (15, 300, 5)
    assert (s.response_time_statistic, s.error_rate_threshold, s.cache_hit_rate_threshold) == (
        "p95",
        0.05,
        0.5,
    )
    assert (s.engine_failure_rate_threshold, s.min_requests, s.dedup_s) == (0.3, 20, 300)
    assert s.enabled and s.log_enabled and not s.email_enabled


@pytest.mark.parametrize(
    ("env", "names"),
    [
        pytest.param({"ALERT_SLACK_ENABLED": "true"}, "SLACK_WEBHOOK_URL", id="slack without url"),
        pytest.param(
            {"ALERT_DISCORD_ENABLED": "1", "DISCORD_WEBHOOK_URL": "ftp://x/secret-token"},
            "DISCORD_WEBHOOK_URL",
            id="discord url not http",
        ),
        pytest.param({"ALERT_EMAIL_ENABLED": "yes"}, "SMTP_HOST", id="email without host"),
        pytest.param(
            {"ALERT_EMAIL_ENABLED": "yes", "SMTP_HOST": "mx"},
            "ALERT_EMAIL_TO",
            id="email without recipients",
        ),
        pytest.param({"SMTP_SECURITY": "tls13"}, "SMTP_SECURITY", id="bad smtp security"),
        pytest.param(
            {"ALERT_ERROR_RATE_THRESHOLD": "5"}, "ALERT_ERROR_RATE_THRESHOLD", id="rate > 1"
        ),
        pytest.param(
            {"ALERT_RESPONSE_TIME_STATISTIC": "p90"},
            "ALERT_RESPONSE_TIME_STATISTIC",
            id="unknown statistic",
        ),
    ],
)
def test_bad_settings_raise_naming_the_variable(env: dict[str, str], names: str) -> None:
    with pytest.raises(ConfigurationError, match=names) as info:
        AlertSettings.from_env(Env(env))
    assert "secret-token" not in str(info.value)


@pytest.mark.parametrize(
    ("security", "port"),
    [
        pytest.param("starttls", 587, id="starttls"),
        pytest.param("ssl", 465, id="ssl"),
        pytest.param("none", 25, id="none"),
    ],
)
def test_smtp_port_defaults_follow_security(security: str, port: int) -> None:
    assert AlertSettings.from_env(Env({"SMTP_SECURITY": security})).smtp_port == port


def test_webhook_urls_are_secrets_that_never_print() -> None:
    s = AlertSettings.from_env(
        Env({"ALERT_SLACK_ENABLED": "1", "SLACK_WEBHOOK_URL": "https://hooks.slack.com/T/B/tok3n"})
    )
    assert "tok3n" not in repr(s)
    assert s.slack_webhook_url is not None and s.slack_webhook_url.reveal().endswith("tok3n")


def test_env_fragment_documents_every_alert_variable() -> None:
    import itertools
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    source = (root / "src/voyagr_wsgi/alerts/config.py").read_text()
    used = set(re.findall(r'"((?:ALERT|SMTP_|SLACK_|DISCORD_)[A-Z_]*)"', source))
    lines = (root / "docs/env/60-alerts.env").read_text().splitlines()
    documented = {}
    for previous, line in itertools.pairwise(lines):
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            assert previous.startswith("# "), f"{name} has no comment line"
            documented[name] = value
    assert used == set(documented)
    AlertSettings.from_env(Env(documented))  # the documented defaults are accepted


@pytest.mark.parametrize(
    ("env", "codes"),
    [
        pytest.param({}, {"voyagr.alerts.W002"}, id="log only"),
        pytest.param({"ALERTS_ENABLED": "false"}, {"voyagr.alerts.W001"}, id="disabled"),
        pytest.param(
            {"ALERT_WEBHOOK_ENABLED": "1", "ALERT_WEBHOOK_URL": "https://h.example/x"},
            {"voyagr.alerts.W004"},
            id="unsigned webhook",
        ),
        pytest.param(
            {"ALERTMANAGER_URL": "http://am:9093", "ALERT_WINDOW_SECONDS": "3600"},
            {"voyagr.alerts.W006"},
            id="window longer than metrics retention",
        ),
        pytest.param(
            {
                "ALERT_EMAIL_ENABLED": "1",
                "SMTP_HOST": "mx",
                "ALERT_EMAIL_FROM": "a@x",
                "ALERT_EMAIL_TO": "b@x",
                "SMTP_SECURITY": "none",
                "SMTP_PASSWORD": "pw",
            },
            {"voyagr.alerts.W003"},
            id="password in clear",
        ),
    ],
)
def test_deploy_checks_warn_about_risky_alert_settings(
    env: dict[str, str], codes: set[str]
) -> None:
    from voyagr_wsgi import Settings
    from voyagr_wsgi.check import findings

    found = {f.code for f in findings(Settings.from_env(env)) if f.code.startswith("voyagr.alerts")}
    assert found == codes


@pytest.mark.parametrize(
    ("snap", "state", "summary"),
    [
        pytest.param(
            snapshot(total=1000, errors=4), "ok", "Error rate 0.4% (4/1000)", id="measured, fine"
        ),
        pytest.param(snapshot(total=1000, errors=74), "firing", "Error rate 7.4%", id="breached"),
        pytest.param(snapshot(total=5, errors=5), "unknown", "too little traffic", id="too few"),
    ],
)
def test_a_rule_says_firing_ok_with_the_figure_or_unknown(
    snap: dict[str, Any], state: str, summary: str
) -> None:
    (alert,) = error_rate_rule(0.05, min_requests=20).check(Inputs(snap, None, NOW))
    assert alert.state == state and alert.summary.startswith(summary)
