"""Rate-limit specs, settings from the environment, compose and deploy checks."""

from __future__ import annotations

from typing import Any

import pytest

import voyagr_wsgi.ratelimit as ratelimit
from conftest import call, free_port, hello_app, make_environ
from voyagr_wsgi import Settings, compose
from voyagr_wsgi.errors import ConfigurationError
from voyagr_wsgi.ratelimit import Rate, RateLimitSettings, deploy_checks, parse_rate


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        pytest.param("100/60s", Rate(100, 60.0), id="seconds"),
        pytest.param("100/60", Rate(100, 60.0), id="bare number is seconds"),
        pytest.param("5/minute", Rate(5, 60.0), id="word unit"),
        pytest.param("5 per 2 minutes", Rate(5, 120.0), id="per, plural"),
        pytest.param("1000/1h", Rate(1000, 3600.0), id="hours"),
        pytest.param("10/d", Rate(10, 86400.0), id="day without amount"),
        pytest.param("3/0.5s", Rate(3, 0.5), id="fractional window"),
    ],
)
def test_spec_parses(spec: str, expected: Rate) -> None:
    assert parse_rate(spec) == expected


@pytest.mark.parametrize(
    "spec", ["", "100", "100/", "0/60s", "-1/60s", "100/0s", "100/60 fortnights", "a/b"]
)
def test_bad_spec_raises_naming_the_setting(spec: str) -> None:
    with pytest.raises(ConfigurationError, match="MY_SETTING"):
        parse_rate(spec, setting="MY_SETTING")


def test_settings_defaults_match_the_seed() -> None:
    section = Settings.from_env({}).ratelimit
    assert section == RateLimitSettings()
    assert (section.requests, section.window_s, section.storage) == (100, 60.0, "memory")


def test_settings_read_every_variable() -> None:
    env = {
        "RATE_LIMIT_ENABLED": "yes",
        "RATE_LIMIT_REQUESTS": "20",
        "RATE_LIMIT_WINDOW_SECONDS": "10",
        "RATE_LIMIT_BURST": "4",
        "RATE_LIMIT_STORAGE": "redis://cache:6379/1",
        "RATE_LIMIT_REDIS_FAILURE": "closed",
        "RATE_LIMIT_REDIS_PREFIX": "shop:rl:",
        "RATE_LIMIT_REDIS_BATCH": "8",
        "RATE_LIMIT_REDIS_LEASE_SECONDS": "0.25",
        "RATE_LIMIT_MAX_KEYS": "5000",
        "RATE_LIMIT_IPV6_PREFIX": "56",
        "RATE_LIMIT_HEADERS": "false",
        "RATE_LIMIT_LEGACY_HEADERS": "true",
        "RATE_LIMIT_EXEMPT_PATHS": "/static,/favicon.ico",
        "RATE_LIMIT_ALLOW": "10.0.0.0/8",
        "RATE_LIMIT_ROUTES": "/login=5/60s, /api/upload=10/1m",
    }
    assert Settings.from_env(env).ratelimit == RateLimitSettings(
        enabled=True,
        requests=20,
        window_s=10.0,
        burst=4,
        storage="redis://cache:6379/1",
        redis_failure="closed",
        redis_prefix="shop:rl:",
        redis_batch=8,
        redis_lease_s=0.25,
        max_keys=5000,
        ipv6_prefix=56,
        headers=False,
        legacy_headers=True,
        exempt_paths=("/static", "/favicon.ico"),
        allow=("10.0.0.0/8",),
        routes=(("/login", "5/60s"), ("/api/upload", "10/1m")),
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [
        pytest.param("RATE_LIMIT_REQUESTS", "0", id="requests 0"),
        pytest.param("RATE_LIMIT_REQUESTS", "many", id="requests not int"),
        pytest.param("RATE_LIMIT_WINDOW_SECONDS", "0", id="window 0"),
        pytest.param("RATE_LIMIT_STORAGE", "memcached://x", id="unknown storage"),
        pytest.param("RATE_LIMIT_REDIS_FAILURE", "sometimes", id="bad failure"),
        pytest.param("RATE_LIMIT_IPV6_PREFIX", "129", id="prefix > 128"),
        pytest.param("RATE_LIMIT_REDIS_PREFIX", "a b", id="redis prefix with a space"),
        pytest.param("RATE_LIMIT_REDIS_PREFIX", "x{y}", id="redis prefix with a hash tag"),
        pytest.param("RATE_LIMIT_REDIS_BATCH", "-1", id="negative redis batch"),
        pytest.param("RATE_LIMIT_REDIS_LEASE_SECONDS", "0", id="redis lease of 0 s"),
        pytest.param("RATE_LIMIT_REDIS_LEASE_SECONDS", "61", id="redis lease above 60 s"),
        pytest.param("RATE_LIMIT_ROUTES", "login=5/60s", id="route without slash"),
        pytest.param("RATE_LIMIT_ROUTES", "/login=fast", id="route bad spec"),
        pytest.param("RATE_LIMIT_ENABLED", "perhaps", id="bad bool"),
    ],
)
def test_bad_variable_raises_naming_it(name: str, value: str) -> None:
    with pytest.raises(ConfigurationError, match=name):
        Settings.from_env({name: value})


def test_compose_from_settings_limits_with_the_seed_variables() -> None:
    settings = Settings.from_env(
        {
            "RATE_LIMIT_REQUESTS": "2",
            "RATE_LIMIT_WINDOW_SECONDS": "60",
            "RATE_LIMIT_ROUTES": "/login=1/60s",
            "RATE_LIMIT_EXEMPT_PATHS": "/static/*",
        }
    )
    stack = compose(hello_app, settings)
    assert [call(stack, make_environ()).code for _ in range(3)] == [200, 200, 429]
    assert [call(stack, make_environ(path="/login")).code for _ in range(2)] == [200, 429]
    assert call(stack, make_environ(path="/static/x.css")).code == 200
    assert stack.components["ratelimit"] is stack.layer("RateLimit").store


def test_disabled_setting_builds_no_layer() -> None:
    stack = compose(hello_app, Settings.from_env({"RATE_LIMIT_ENABLED": "false"}))
    with pytest.raises(KeyError):
        stack.layer("RateLimit")


def test_redis_storage_registers_a_health_source_and_fails_open() -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    stack = compose(hello_app, Settings.from_env({"RATE_LIMIT_STORAGE": url}))
    assert call(stack, make_environ()).code == 200
    report = stack.health.evaluate()
    check = next(c for c in report.checks if c.name == "ratelimit:store")
    assert check.status == "warn" and check.observed_value == 1


@pytest.mark.parametrize(
    ("env", "environ", "codes"),
    [
        pytest.param({}, {}, [], id="memory, one worker"),
        pytest.param({}, {"WEB_CONCURRENCY": "4"}, ["voyagr.W302"], id="WEB_CONCURRENCY=4"),
        pytest.param(
            {}, {"GUNICORN_CMD_ARGS": "--bind :8000 -w 3"}, ["voyagr.W302"], id="gunicorn -w 3"
        ),
        pytest.param(
            {"RATE_LIMIT_STORAGE": "redis://r:6379/0"},
            {"WEB_CONCURRENCY": "4"},
            [],
            id="redis under 4 workers",
        ),
        pytest.param({"RATE_LIMIT_ENABLED": "false"}, {}, ["voyagr.W301"], id="disabled"),
    ],
)
def test_deploy_checks(env: dict[str, str], environ: dict[str, str], codes: list[str]) -> None:
    found = deploy_checks(Settings.from_env(env), environ)
    assert [f.code for f in found] == codes


def test_exported_members_exist() -> None:
    for name in ratelimit.__all__:
        assert getattr(ratelimit, name) is not None
    public: Any = {n for n in dir(ratelimit) if not n.startswith("_")}
    assert set(ratelimit.__all__) <= public


def test_local_failure_policy_from_the_environment() -> None:
    env = {"RATE_LIMIT_STORAGE": "redis://127.0.0.1:1/0", "RATE_LIMIT_REDIS_FAILURE": "local"}
    assert Settings.from_env(env).ratelimit.redis_failure == "local"


def test_the_default_policy_stacks_the_also_rates() -> None:
    from conftest import call, hello_app, make_environ
    from voyagr_wsgi import compose

    env = {"ALLOWED_HOSTS": "example.com", "RATE_LIMIT_REQUESTS": "5",
           "RATE_LIMIT_ALSO": "2/1h", "BACKUP_ENABLED": "false"}  # fmt: skip
    settings = Settings.from_env(env)
    assert settings.ratelimit.spec == "5/60s;2/1h"
    stack = compose(hello_app, settings)
    results = [call(stack, make_environ()) for _ in range(3)]
    assert [r.code for r in results] == [200, 200, 429]
    assert results[0].header("RateLimit-Policy") == '"default";q=5;w=60, "default-2";q=2;w=3600'


@pytest.mark.parametrize("also", ["lots", "3/60s", "1000/1h,500/1h"])
def test_bad_also_rates_are_refused_naming_the_variable(also: str) -> None:
    with pytest.raises(ConfigurationError, match="RATE_LIMIT_ALSO"):
        Settings.from_env({"RATE_LIMIT_ALSO": also})
