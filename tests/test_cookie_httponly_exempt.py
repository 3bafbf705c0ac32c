"""Cookie flags can leave named cookies JS-readable: SecurityHeaders(httponly_exempt=) and
SECURE_COOKIES_HTTPONLY_EXEMPT, through the validator and a composed stack."""

from __future__ import annotations

from typing import Any

import pytest

from conftest import call, make_environ
from voyagr_wsgi import ConfigurationError, Settings, compose
from voyagr_wsgi.layers import SecurityHeaders


def cookie_app(*cookies: str) -> Any:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        headers = [("Content-Type", "text/plain"), ("Content-Length", "2")]
        start_response("200 OK", headers + [("Set-Cookie", c) for c in cookies])
        return [b"ok"]

    return app


def test_exempt_cookie_gets_secure_and_samesite_but_not_httponly() -> None:
    layer = SecurityHeaders(
        cookie_app("csrftoken=abc; Path=/", "sessionid=xyz; Path=/"),
        httponly_exempt=("csrftoken",),
    )
    result = call(layer, make_environ(scheme="https"))
    assert result.all("Set-Cookie") == [
        "csrftoken=abc; Path=/; Secure; SameSite=Lax",
        "sessionid=xyz; Path=/; Secure; HttpOnly; SameSite=Lax",
    ]


def test_exempt_names_are_exact_and_case_sensitive() -> None:
    layer = SecurityHeaders(
        cookie_app("CSRFTOKEN=1", "csrftoken2=2", "csrftoken=3"), httponly_exempt=["csrftoken"]
    )
    cookies = call(layer).all("Set-Cookie")
    assert cookies == [
        "CSRFTOKEN=1; HttpOnly; SameSite=Lax",
        "csrftoken2=2; HttpOnly; SameSite=Lax",
        "csrftoken=3; SameSite=Lax",
    ]


def test_app_set_httponly_on_an_exempt_cookie_is_kept() -> None:
    layer = SecurityHeaders(cookie_app("csrftoken=1; HttpOnly"), httponly_exempt=["csrftoken"])
    assert call(layer).all("Set-Cookie") == ["csrftoken=1; HttpOnly; SameSite=Lax"]


@pytest.mark.parametrize(
    "names",
    [
        pytest.param("csrftoken", id="a bare string, not a list"),
        pytest.param(["csrf token"], id="space"),
        pytest.param(["a=b"], id="equals sign"),
        pytest.param([""], id="empty name"),
        pytest.param(["caf\u00e9"], id="non-ascii"),
        pytest.param(["a;b"], id="semicolon"),
    ],
)
def test_bad_exempt_names_raise_naming_the_option(names: Any) -> None:
    with pytest.raises(ConfigurationError, match="httponly_exempt"):
        SecurityHeaders(httponly_exempt=names)


def test_setting_from_the_environment_reaches_the_stack() -> None:
    settings = Settings.from_env({"SECURE_COOKIES_HTTPONLY_EXEMPT": " csrftoken , js_pref "})
    assert settings.secure_cookies_httponly_exempt == ("csrftoken", "js_pref")
    stack = compose(cookie_app("csrftoken=1", "js_pref=2", "sessionid=3"), settings)
    cookies = call(stack, make_environ(host="localhost")).all("Set-Cookie")
    assert cookies == ["csrftoken=1; SameSite=Lax", "js_pref=2; SameSite=Lax",
                       "sessionid=3; HttpOnly; SameSite=Lax"]  # fmt: skip


def test_default_setting_exempts_nothing() -> None:
    assert Settings.from_env({}).secure_cookies_httponly_exempt == ()
    stack = compose(cookie_app("csrftoken=1"), Settings.from_env({}))
    assert call(stack, make_environ(host="localhost")).all("Set-Cookie") == [
        "csrftoken=1; HttpOnly; SameSite=Lax"
    ]


def test_bad_setting_raises_naming_the_variable() -> None:
    with pytest.raises(ConfigurationError, match="SECURE_COOKIES_HTTPONLY_EXEMPT"):
        Settings.from_env({"SECURE_COOKIES_HTTPONLY_EXEMPT": "csrftoken,bad name"})
