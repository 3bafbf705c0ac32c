"""An option set explicitly (in the environment, in ``Settings(...)`` or on the layer) wins
over the preset's value for it; left unset, the preset's value applies."""

from __future__ import annotations

from typing import Any

import pytest

from conftest import call, hello_app, make_environ, settings_layer
from voyagr_wsgi import Settings
from voyagr_wsgi.layers import SecurityHeaders

HSTS, XSS, CSP = "Strict-Transport-Security", "X-XSS-Protection", "Content-Security-Policy"


def _sent(layer: SecurityHeaders | None) -> dict[str, str | None]:
    assert layer is not None
    result = call(layer.bind(hello_app), make_environ(scheme="https", host="example.com"))
    return {name: result.header(name) for name in (HSTS, XSS, CSP)}


CASES = [
    # (environment, header, expected value)
    ({"SECURITY_PRESET": "strict", "HSTS_MAX_AGE": "31536000"}, HSTS,
     "max-age=31536000; includeSubDomains"),
    ({"SECURITY_PRESET": "strict"}, HSTS, "max-age=63072000; includeSubDomains"),
    ({"SECURITY_PRESET": "balanced", "HSTS_MAX_AGE": "63072000"}, HSTS,
     "max-age=63072000; includeSubDomains"),
    ({"SECURITY_PRESET": "balanced"}, HSTS, "max-age=31536000; includeSubDomains"),
    ({"SECURITY_PRESET": "strict", "HSTS_INCLUDE_SUBDOMAINS": "false"}, HSTS,
     "max-age=63072000"),
    ({"SECURITY_PRESET": "strict", "HSTS_PRELOAD": "true"}, HSTS,
     "max-age=63072000; includeSubDomains; preload"),
    ({"SECURITY_PRESET": "django", "X_XSS_PROTECTION": "1; mode=block"}, XSS, "1; mode=block"),
    ({"SECURITY_PRESET": "django", "X_XSS_PROTECTION": "0"}, XSS, "0"),
    ({"SECURITY_PRESET": "django"}, XSS, None),
    ({"SECURITY_PRESET": "strict"}, XSS, "0"),
    ({"SECURITY_PRESET": "strict", "X_XSS_PROTECTION": "1; mode=block"}, XSS, "1; mode=block"),
    ({"SECURITY_PRESET": "django", "CSP_POLICY": "default-src 'self'"}, CSP,
     "default-src 'self'; frame-ancestors 'none'"),
    ({"SECURITY_PRESET": "django"}, CSP, None),
    ({"SECURITY_PRESET": "api", "CSP_POLICY": "default-src 'self'"}, CSP,
     "default-src 'self'; frame-ancestors 'none'"),
]  # fmt: skip
IDS = [" ".join(f"{k}={v}" for k, v in env.items()) + f" -> {h}" for env, h, _ in CASES]

#: the same options as the environment's, by their Settings field names
_FIELDS = {
    "SECURITY_PRESET": ("security_preset", str),
    "HSTS_MAX_AGE": ("hsts_max_age", int),
    "HSTS_INCLUDE_SUBDOMAINS": ("hsts_include_subdomains", lambda v: v == "true"),
    "HSTS_PRELOAD": ("hsts_preload", lambda v: v == "true"),
    "X_XSS_PROTECTION": ("x_xss_protection", str),
    "CSP_POLICY": ("csp", str),
}


def _options(env: dict[str, str]) -> dict[str, Any]:
    return {_FIELDS[k][0]: _FIELDS[k][1](v) for k, v in env.items()}  # type: ignore[operator]


@pytest.mark.parametrize("env, header, expected", CASES, ids=IDS)
def test_an_explicit_environment_option_wins_over_the_preset(
    env: dict[str, str], header: str, expected: str | None
) -> None:
    layer = settings_layer(Settings.from_env(env), "SecurityHeaders")
    assert _sent(layer)[header] == expected


@pytest.mark.parametrize("env, header, expected", CASES, ids=IDS)
def test_an_explicit_settings_field_wins_over_the_preset(
    env: dict[str, str], header: str, expected: str | None
) -> None:
    layer = settings_layer(Settings(**_options(env)), "SecurityHeaders")
    assert _sent(layer)[header] == expected


@pytest.mark.parametrize("env, header, expected", CASES, ids=IDS)
def test_an_explicit_layer_option_wins_over_the_preset(
    env: dict[str, str], header: str, expected: str | None
) -> None:
    options = _options(env)
    options["preset"] = options.pop("security_preset")
    assert _sent(SecurityHeaders(**options))[header] == expected


def test_settings_leave_preset_options_unset_by_default() -> None:
    settings = Settings.from_env({})
    assert settings.hsts_max_age is None
    assert settings.x_xss_protection is None
