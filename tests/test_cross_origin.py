"""CrossOriginProtection: the Go 1.25 algorithm with full-origin comparison."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from conftest import call, hello_app, make_environ, settings_layer
from voyagr_wsgi import ConfigurationError, Settings
from voyagr_wsgi.layers import CrossOriginProtection
from voyagr_wsgi.layers.cross_origin import normalize_origin
from wsgi_apps import CloseCounter, lazy_streaming_app

UNSAFE = ["POST", "PUT", "PATCH", "DELETE", "TRACE"]
SAFE = ["GET", "HEAD", "OPTIONS"]


def check(
    method: str = "POST",
    path: str = "/",
    *,
    host: str = "example.com",
    scheme: str = "https",
    layer: CrossOriginProtection | None = None,
    **headers: str,
) -> int:
    layer = layer or CrossOriginProtection(hello_app)
    names = {k.replace("_", "-"): v for k, v in headers.items()}
    return call(
        layer, make_environ(path, method=method, host=host, scheme=scheme, headers=names)
    ).code


@pytest.mark.parametrize("method", SAFE + UNSAFE)
@pytest.mark.parametrize(
    "site, passes_unsafe",
    [
        pytest.param("same-origin", True, id="same-origin"),
        pytest.param("none", True, id="none (typed URL)"),
        pytest.param("same-site", False, id="same-site"),
        pytest.param("cross-site", False, id="cross-site"),
        pytest.param("Same-Origin", False, id="unknown value"),
    ],
)
def test_sec_fetch_site_by_method(method: str, site: str, passes_unsafe: bool) -> None:
    expected = 200 if method in SAFE or passes_unsafe else 403
    assert check(method, Sec_Fetch_Site=site) == expected


@pytest.mark.parametrize(
    "origin, scheme, host, code",
    [
        pytest.param(None, "https", "example.com", 200, id="no Origin: not a browser"),
        pytest.param("https://example.com", "https", "example.com", 200, id="same origin"),
        pytest.param(
            "https://EXAMPLE.com:443",
            "https",
            "example.com",
            200,
            id="default port and case normalised",
        ),
        pytest.param(
            "http://example.com",
            "http",
            "example.com:80",
            200,
            id="request host carries the default port",
        ),
        pytest.param(
            "https://example.com:8443", "https", "example.com:8443", 200, id="same non-default port"
        ),
        pytest.param("https://example.com:8443", "https", "example.com", 403, id="port mismatch"),
        pytest.param(
            "http://example.com",
            "https",
            "example.com",
            403,
            id="scheme mismatch (Go fails open here)",
        ),
        pytest.param("https://evil.example", "https", "example.com", 403, id="cross origin"),
        pytest.param("https://a.example.com", "https", "example.com", 403, id="subdomain"),
        pytest.param("null", "https", "example.com", 403, id="null origin"),
        pytest.param("https://evil@example.com", "https", "example.com", 403, id="userinfo"),
        pytest.param("https://example.com/", "https", "example.com", 403, id="path: malformed"),
        pytest.param("example.com", "https", "example.com", 403, id="no scheme: malformed"),
        pytest.param("", "https", "example.com", 200, id="empty Origin"),
        pytest.param("https://[::1]:8443", "https", "[::1]:8443", 200, id="IPv6 same origin"),
    ],
)
def test_origin_fallback_without_sec_fetch_site(
    origin: str | None, scheme: str, host: str, code: int
) -> None:
    headers = {} if origin is None else {"Origin": origin}
    assert check("POST", scheme=scheme, host=host, **headers) == code


def test_own_origin_comes_from_the_resolved_scheme_and_host() -> None:
    env = make_environ(
        method="POST",
        scheme="http",
        host="10.0.0.5:8000",
        headers={"Origin": "https://shop.example"},
    )
    env.update({"voyagr.scheme": "https", "voyagr.host": "shop.example"})
    assert call(CrossOriginProtection(hello_app), env).code == 200


TRUSTED = CrossOriginProtection(
    hello_app,
    trusted_origins=[
        "https://admin.example.net",
        "https://*.partner.example",
        "http://*.dev.example:8080",
    ],
)


@pytest.mark.parametrize(
    "origin, site, code",
    [
        pytest.param("https://admin.example.net", "cross-site", 200, id="exact, cross-site"),
        pytest.param("https://admin.example.net:443", None, 200, id="exact, default port"),
        pytest.param("http://admin.example.net", None, 403, id="exact: scheme matters"),
        pytest.param("https://x.admin.example.net", None, 403, id="exact: no subdomains"),
        pytest.param("https://a.partner.example", "cross-site", 200, id="wildcard subdomain"),
        pytest.param("https://a.b.partner.example", None, 200, id="wildcard deeper"),
        pytest.param("https://partner.example", None, 403, id="wildcard: not the apex"),
        pytest.param("https://evilpartner.example", None, 403, id="wildcard: suffix trick"),
        pytest.param("http://abc.partner.example", None, 403, id="wildcard: scheme"),
        pytest.param("https://a.partner.example:444", None, 403, id="wildcard: port"),
        pytest.param("http://x.dev.example:8080", None, 200, id="wildcard with port"),
        pytest.param("https://u@a.partner.example", "same-site", 403, id="trusted but userinfo"),
    ],
)
def test_trusted_origins(origin: str, site: str | None, code: int) -> None:
    headers = {"Origin": origin}
    if site:
        headers["Sec_Fetch_Site"] = site
    assert check(layer=TRUSTED, **headers) == code


EXEMPT = CrossOriginProtection(hello_app, exempt_paths=["/webhooks/stripe", "/hooks/*"])


@pytest.mark.parametrize(
    "path, code",
    [
        pytest.param("/webhooks/stripe", 200, id="exact"),
        pytest.param("/webhooks/stripe/", 200, id="exact: also with a trailing slash"),
        pytest.param("/webhooks/stripe2", 403, id="exact: not a prefix"),
        pytest.param("/hooks/github", 200, id="prefix"),
        pytest.param("/hooks/", 200, id="prefix itself"),
        pytest.param("/hooks", 403, id="prefix: not without its slash (go#75054)"),
        pytest.param("/other", 403, id="not exempt"),
    ],
)
def test_exempt_paths(path: str, code: int) -> None:
    assert check("POST", path, layer=EXEMPT, Sec_Fetch_Site="cross-site") == code
    assert check("DELETE", path, layer=EXEMPT, Origin="https://evil.example") == code


def test_rejection_is_a_problem_403_with_a_reason_and_a_log_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    env = make_environ(
        "/transfer", method="POST", scheme="https", headers={"Origin": "https://evil.example"}
    )
    with caplog.at_level(logging.WARNING, logger="voyagr_wsgi.cross_origin"):
        result = call(CrossOriginProtection(hello_app), env)
    assert result.status == "403 Forbidden"
    assert result.header("Content-Type") == "application/problem+json"
    assert json.loads(result.body) == {
        "type": "https://voyagr-wsgi.dev/problems/cross-origin-blocked",
        "title": "Cross-Origin Request Blocked",
        "status": 403,
        "detail": "Origin does not match the request origin",
        "reason": "Origin does not match the request origin",
    }
    assert int(result.header("Content-Length") or 0) == len(result.body)
    assert "/transfer" in caplog.text and "https://evil.example" in caplog.text


@pytest.mark.parametrize(
    "headers, reason",
    [
        pytest.param({"Sec-Fetch-Site": "cross-site"}, "Sec-Fetch-Site is cross-site", id="xsite"),
        pytest.param(
            {"Sec-Fetch-Site": "same-site"},
            "Sec-Fetch-Site is same-site, not same-origin",
            id="same-site",
        ),
        pytest.param({"Origin": "null"}, "Origin is null", id="null"),
        pytest.param({"Origin": "https://a@example.com"}, "Origin contains userinfo", id="user"),
        pytest.param({"Origin": "javascript:alert(1)"}, "Origin is malformed", id="malformed"),
    ],
)
def test_rejection_reasons(headers: dict[str, str], reason: str) -> None:
    result = call(
        CrossOriginProtection(hello_app),
        make_environ(method="PUT", scheme="https", headers=headers),
    )
    assert result.code == 403 and json.loads(result.body)["reason"] == reason


def test_deny_handler_answers_rejections() -> None:
    def deny(environ: Any, start_response: Any, reason: str) -> list[bytes]:
        start_response("418 I'm a teapot", [("Content-Type", "text/plain")])
        return [reason.encode()]

    layer = CrossOriginProtection(hello_app, deny_handler=deny)
    result = call(layer, make_environ(method="POST", headers={"Sec-Fetch-Site": "cross-site"}))
    assert result.code == 418 and result.body == b"Sec-Fetch-Site is cross-site"


def test_passing_request_keeps_the_streaming_body_and_closes_it_once() -> None:
    bodies: list[CloseCounter] = []
    layer = CrossOriginProtection(lazy_streaming_app(bodies))
    result = call(layer, make_environ(method="POST", headers={"Sec-Fetch-Site": "same-origin"}))
    assert result.body == b"onetwothree" and bodies[0].closed == 1


@pytest.mark.parametrize(
    "option, value",
    [
        pytest.param("trusted_origins", "example.com", id="no scheme"),
        pytest.param("trusted_origins", "ftp://example.com", id="ftp"),
        pytest.param("trusted_origins", "https://example.com/path", id="path"),
        pytest.param("trusted_origins", "https://user@example.com", id="userinfo"),
        pytest.param("trusted_origins", "https://*", id="bare wildcard"),
        pytest.param("trusted_origins", "https://a.*.example.com", id="inner wildcard"),
        pytest.param("trusted_origins", "https://example.com:99999", id="port out of range"),
        pytest.param("exempt_paths", "hooks", id="relative path"),
        pytest.param("exempt_paths", "/a/*/b", id="inner star"),
    ],
)
def test_bad_configuration_names_the_option(option: str, value: str) -> None:
    env_name = {"trusted_origins": "CSRF_TRUSTED_ORIGINS", "exempt_paths": "CSRF_EXEMPT_PATHS"}
    with pytest.raises(ConfigurationError, match=env_name[option]) as info:
        CrossOriginProtection(hello_app, **{option: [value]})
    assert option in str(info.value)


def test_from_settings_is_on_by_default_and_off_when_disabled() -> None:
    layer = settings_layer(
        Settings.from_env(
            {
                "CSRF_TRUSTED_ORIGINS": "https://a.example,https://*.b.example",
                "CSRF_EXEMPT_PATHS": "/hook",
            }
        ),
        "CrossOriginProtection",
    )
    assert layer is not None
    bound = layer.bind(hello_app)
    assert check(layer=bound, Origin="https://x.b.example") == 200
    assert check("POST", "/hook", layer=bound, Origin="https://evil.example") == 200
    assert check(layer=bound, Origin="https://evil.example") == 403
    assert (
        settings_layer(Settings.from_env({"CSRF_ENABLED": "0"}), "CrossOriginProtection") is None
    )


@pytest.mark.parametrize(
    "value, normal",
    [
        ("HTTPS://Example.COM", "https://example.com"),
        ("http://example.com:80", "http://example.com"),
        ("https://example.com:0443", "https://example.com"),
        ("http://example.com:443", "http://example.com:443"),
        ("https://[2001:db8::1]", "https://[2001:db8::1]"),
        ("https://example.com:", "https://example.com"),
        ("https://", None),
        ("https://exa mple.com", None),
        ("https://[::1", None),
        ("https://[::1]x", None),
        ("https://a:b", None),
    ],
)
def test_normalize_origin(value: str, normal: str | None) -> None:
    assert normalize_origin(value) == normal
