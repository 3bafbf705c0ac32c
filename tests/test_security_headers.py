"""SecurityHeaders: HSTS rules, presets, merge policy, cookie flags, PEP 3333 mechanics."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from conftest import call, hello_app, make_environ, settings_layer
from voyagr_wsgi import ConfigurationError, Settings, compose
from voyagr_wsgi.layers import CrossOriginProtection, SecurityHeaders
from wsgi_apps import CloseCounter, exc_info_app, lazy_streaming_app


def app_with(headers: list[tuple[str, str]], status: str = "200 OK") -> Any:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response(status, [("Content-Type", "text/plain"), *headers])
        return [b"body"]

    return app


# -- HSTS ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "scheme, host, environ_extra, sent",
    [
        pytest.param("https", "example.com", {}, True, id="https name"),
        pytest.param("https", "example.com:8443", {}, True, id="https name with port"),
        pytest.param("http", "example.com", {}, False, id="plain http"),
        pytest.param("https", "203.0.113.5", {}, False, id="https IPv4 literal"),
        pytest.param("https", "[2001:db8::1]:443", {}, False, id="https IPv6 literal"),
        pytest.param("https", "localhost", {}, False, id="https localhost"),
        pytest.param("https", "app.localhost:8443", {}, False, id="https *.localhost"),
        pytest.param("https", "127.0.0.1:8443", {}, False, id="https 127.0.0.1"),
        pytest.param(
            "http", "example.com", {"voyagr.scheme": "https"}, True, id="ProxyTrust says https"
        ),
        pytest.param(
            "https", "example.com", {"voyagr.scheme": "http"}, False, id="ProxyTrust says http"
        ),
        pytest.param(
            "https",
            "10.0.0.9",
            {"voyagr.host": "example.com"},
            True,
            id="ProxyTrust host is a name",
        ),
    ],
)
def test_hsts_only_on_https_to_a_host_name(
    scheme: str, host: str, environ_extra: dict[str, str], sent: bool
) -> None:
    result = call(
        SecurityHeaders(hello_app), make_environ(scheme=scheme, host=host, **environ_extra)
    )
    expected = ["max-age=31536000; includeSubDomains"] if sent else []
    assert result.all("Strict-Transport-Security") == expected


@pytest.mark.parametrize(
    "options, value",
    [
        pytest.param(
            {"hsts_max_age": 600, "hsts_include_subdomains": False},
            "max-age=600",
            id="short, no subdomains",
        ),
        pytest.param(
            {"hsts_preload": True}, "max-age=31536000; includeSubDomains; preload", id="preload"
        ),
        pytest.param({"hsts": "reset"}, "max-age=0", id="reset"),
        pytest.param(
            {"preset": "strict"}, "max-age=63072000; includeSubDomains", id="strict preset"
        ),
        pytest.param({"hsts": False}, None, id="off"),
    ],
)
def test_hsts_value(options: dict[str, Any], value: str | None) -> None:
    result = call(SecurityHeaders(hello_app, **options), make_environ(scheme="https"))
    assert result.all("Strict-Transport-Security") == ([value] if value else [])


@pytest.mark.parametrize(
    "options",
    [
        pytest.param({"hsts_preload": True, "hsts_max_age": 86400}, id="max-age too short"),
        pytest.param(
            {"hsts_preload": True, "hsts_include_subdomains": False}, id="no includeSubDomains"
        ),
        pytest.param({"hsts_max_age": -1}, id="negative max-age"),
        pytest.param({"hsts": "yes"}, id="hsts not a bool"),
    ],
)
def test_hsts_misconfiguration_raises_naming_the_setting(options: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError, match="HSTS"):
        SecurityHeaders(hello_app, **options)


@pytest.mark.parametrize("status", ["301 Moved Permanently", "404 Not Found", "500 Oops"])
def test_hsts_on_redirects_and_error_pages(status: str) -> None:
    result = call(SecurityHeaders(app_with([], status)), make_environ(scheme="https"))
    assert result.status == status
    assert result.header("Strict-Transport-Security") is not None


def test_app_set_hsts_wins_by_default_and_is_replaced_with_merge_set() -> None:
    app = app_with([("strict-transport-security", "max-age=5")])
    env = make_environ(scheme="https")
    assert call(SecurityHeaders(app), env).all("Strict-Transport-Security") == ["max-age=5"]
    replaced = call(SecurityHeaders(app, merge={"Strict-Transport-Security": "set"}), env)
    assert replaced.all("Strict-Transport-Security") == ["max-age=31536000; includeSubDomains"]


# -- presets -----------------------------------------------------------------------------

BALANCED = {
    "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
    "Content-Security-Policy": (
        "default-src 'self'; base-uri 'self'; font-src 'self' https: data:; "
        "form-action 'self'; frame-ancestors 'none'; img-src 'self' data:; "
        "object-src 'none'; script-src 'self'; script-src-attr 'none'; "
        "style-src 'self' https: 'unsafe-inline'; upgrade-insecure-requests"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "Permissions-Policy": "camera=(), geolocation=(), microphone=(), browsing-topics=()",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Origin-Agent-Cluster": "?1",
    "X-DNS-Prefetch-Control": "off",
    "X-Permitted-Cross-Domain-Policies": "none",
    "X-XSS-Protection": "0",
}
STRICT = {  # OWASP Secure Headers Project, ci/headers_add.json
    "Strict-Transport-Security": "max-age=63072000; includeSubDomains",
    "Content-Security-Policy": (
        "default-src 'self'; form-action 'self'; base-uri 'self'; object-src 'none'; "
        "frame-ancestors 'none'; upgrade-insecure-requests"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Permissions-Policy": (
        "accelerometer=(), autoplay=(), camera=(), cross-origin-isolated=(), "
        "display-capture=(), encrypted-media=(), fullscreen=(), geolocation=(), gyroscope=(), "
        "keyboard-map=(), magnetometer=(), microphone=(), midi=(), payment=(), "
        "picture-in-picture=(), publickey-credentials-get=(), screen-wake-lock=(), "
        "sync-xhr=(self), usb=(), web-share=(), xr-spatial-tracking=(), clipboard-read=(), "
        "clipboard-write=(), gamepad=(), hid=(), idle-detection=(), interest-cohort=(), "
        "serial=(), unload=()"
    ),
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
    "X-DNS-Prefetch-Control": "off",
    "X-Permitted-Cross-Domain-Policies": "none",
    "Cache-Control": "no-store, max-age=0",
    "X-XSS-Protection": "0",
}
API = {
    "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Resource-Policy": "same-origin",
    "X-Permitted-Cross-Domain-Policies": "none",
    "X-XSS-Protection": "0",
}

HELMET = {  # helmet 8.3.0 helmet(); HSTS only because the request is HTTPS
    "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
    "Content-Security-Policy": BALANCED["Content-Security-Policy"].replace(
        "frame-ancestors 'none'", "frame-ancestors 'self'"
    ),
    "X-Frame-Options": "SAMEORIGIN",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Origin-Agent-Cluster": "?1",
    "X-DNS-Prefetch-Control": "off",
    "X-Download-Options": "noopen",
    "X-Permitted-Cross-Domain-Policies": "none",
    "X-XSS-Protection": "0",
}
DJANGO = {  # SecurityMiddleware + XFrameOptionsMiddleware defaults; HSTS as HSTS_* say
    "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}


@pytest.mark.parametrize(
    "preset, expected",
    [
        pytest.param("balanced", BALANCED, id="balanced"),
        pytest.param("strict", STRICT, id="strict (OWASP)"),
        pytest.param("api", API, id="api"),
        pytest.param("helmet", HELMET, id="helmet parity"),
        pytest.param("django", DJANGO, id="django parity"),
        pytest.param("owasp", STRICT, id="owasp = strict"),
    ],
)
def test_preset_sends_exactly_its_headers(preset: str, expected: dict[str, str]) -> None:
    result = call(
        SecurityHeaders(app_with([]), preset=preset),  # type: ignore[arg-type]
        make_environ(scheme="https"),
    )
    added = {k: v for k, v in result.headers if k != "Content-Type"}
    assert added == expected
    assert len(result.headers) == len(expected) + 1


def test_django_preset_takes_an_explicit_policy_and_keeps_xfo_in_step() -> None:
    layer = SecurityHeaders(app_with([]), preset="django", csp="default-src 'self'")
    result = call(layer, make_environ())
    assert result.header("Content-Security-Policy") == "default-src 'self'; frame-ancestors 'none'"
    assert result.header("X-Frame-Options") == "DENY"
    assert result.header("X-XSS-Protection") is None


def test_parity_presets_from_the_environment() -> None:
    for preset in ("helmet", "django", "owasp"):
        assert Settings.from_env({"SECURITY_PRESET": preset}).security_preset == preset


def test_unknown_preset_raises() -> None:
    with pytest.raises(ConfigurationError, match="SECURITY_PRESET"):
        SecurityHeaders(preset="paranoid")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "options, name, value",
    [
        pytest.param(
            {"x_xss_protection": "1; mode=block"},
            "X-XSS-Protection",
            "1; mode=block",
            id="legacy xss filter",
        ),
        pytest.param({"x_xss_protection": None}, "X-XSS-Protection", None, id="xss omitted"),
        pytest.param(
            {"headers": {"Referrer-Policy": "no-referrer"}},
            "Referrer-Policy",
            "no-referrer",
            id="override",
        ),
        pytest.param(
            {"headers": {"Origin-Agent-Cluster": None}}, "Origin-Agent-Cluster", None, id="removed"
        ),
        pytest.param(
            {"headers": {"X-Robots-Tag": "noindex"}}, "X-Robots-Tag", "noindex", id="added"
        ),
    ],
)
def test_header_options(options: dict[str, Any], name: str, value: str | None) -> None:
    result = call(SecurityHeaders(hello_app, **options), make_environ())
    assert result.all(name) == ([value] if value else [])


@pytest.mark.parametrize(
    "options",
    [
        pytest.param({"headers": {"Bad Name": "x"}}, id="header name with space"),
        pytest.param({"headers": {"X-A": "a\r\nSet-Cookie: x=1"}}, id="CRLF in value"),
        pytest.param(
            {"headers": {"Content-Security-Policy": "default-src *"}}, id="CSP through headers"
        ),
        pytest.param({"merge": {"X-Frame-Options": "sometimes"}}, id="unknown merge policy"),
        pytest.param({"x_xss_protection": "1"}, id="xss value"),
        pytest.param({"csp_nonce": ["sandbox"]}, id="nonce in a non-fetch directive"),
        pytest.param({"frame_ancestors": "partner"}, id="frame_ancestors value"),
        pytest.param({"csp": False, "csp_nonce": True}, id="nonce without a policy"),
        pytest.param({"cookie_samesite": "lax"}, id="samesite spelling"),
    ],
)
def test_bad_options_raise(options: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        SecurityHeaders(hello_app, **options)


# -- merging -----------------------------------------------------------------------------

APP_HEADERS = [
    ("x-frame-options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    ("CONTENT-SECURITY-POLICY", "default-src 'none'"),
]


@pytest.mark.parametrize(
    "order",
    [pytest.param(p, id="/".join(h[0] for h in p)) for p in itertools.permutations(APP_HEADERS)],
)
def test_app_headers_win_and_nothing_is_duplicated(order: tuple[tuple[str, str], ...]) -> None:
    result = call(SecurityHeaders(app_with(list(order))), make_environ(scheme="https"))
    names = [k.lower() for k, _ in result.headers]
    assert len(names) == len(set(names))
    for name, value in APP_HEADERS:
        assert result.all(name) == [value]
    assert result.header("Cross-Origin-Opener-Policy") == "same-origin"  # not lost (secure#9)
    assert result.header("Strict-Transport-Security") is not None


def test_exact_duplicate_app_headers_are_dropped() -> None:
    app = app_with([("X-Frame-Options", "DENY"), ("x-frame-options", "DENY")])
    assert call(SecurityHeaders(app), make_environ()).all("X-Frame-Options") == ["DENY"]


@pytest.mark.parametrize(
    "merge, expected",
    [
        pytest.param("default", ["default-src 'none'"], id="app wins"),
        pytest.param("set", [BALANCED["Content-Security-Policy"]], id="ours replaces"),
        pytest.param(
            "append", ["default-src 'none'", BALANCED["Content-Security-Policy"]], id="both sent"
        ),
    ],
)
def test_merge_policy(merge: str, expected: list[str]) -> None:
    app = app_with([("Content-Security-Policy", "default-src 'none'")])
    layer = SecurityHeaders(app, merge={"content-security-policy": merge})  # type: ignore[dict-item]
    assert call(layer, make_environ(scheme="https")).all("Content-Security-Policy") == expected


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param([("X-Powered-By", "PHP/5"), ("Server", "app/1.0")], id="both"),
        pytest.param([("server", "")], id="empty server"),
        pytest.param([("x-powered-by", "Express")], id="lower case"),
    ],
)
def test_server_and_x_powered_by_are_removed(headers: list[tuple[str, str]]) -> None:
    result = call(SecurityHeaders(app_with(headers)), make_environ())
    assert result.all("Server") == [] and result.all("X-Powered-By") == []


# -- cookies ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "scheme, cookie, expected",
    [
        pytest.param(
            "https",
            "sid=1; Path=/",
            "sid=1; Path=/; Secure; HttpOnly; SameSite=Lax",
            id="all flags on https",
        ),
        pytest.param(
            "http", "sid=1; Path=/", "sid=1; Path=/; HttpOnly; SameSite=Lax", id="no Secure on http"
        ),
        pytest.param(
            "https",
            "sid=1; secure; HTTPONLY; samesite=Strict",
            "sid=1; secure; HTTPONLY; samesite=Strict",
            id="flags kept, any case",
        ),
        pytest.param(
            "https",
            "a=b; Expires=Wed, 21 Oct 2037 07:28:00 GMT;",
            "a=b; Expires=Wed, 21 Oct 2037 07:28:00 GMT; Secure; HttpOnly; SameSite=Lax",
            id="expires comma, trailing semicolon",
        ),
        pytest.param(
            "https",
            "name=secure",
            "name=secure; Secure; HttpOnly; SameSite=Lax",
            id="value that looks like a flag",
        ),
        pytest.param(
            "https",
            "csrftoken=abc; SameSite=None",
            "csrftoken=abc; SameSite=None; Secure",
            id="httponly exempt name",
        ),
    ],
)
def test_cookie_flags(scheme: str, cookie: str, expected: str) -> None:
    layer = SecurityHeaders(app_with([("Set-Cookie", cookie)]), httponly_exempt=["csrftoken"])
    assert call(layer, make_environ(scheme=scheme)).all("Set-Cookie") == [expected]


def test_multiple_cookies_stay_separate_and_in_order() -> None:
    cookies = [("Set-Cookie", "a=1"), ("set-cookie", "b=2; Secure"), ("SET-COOKIE", "c=3")]
    result = call(SecurityHeaders(app_with(cookies)), make_environ(scheme="https"))
    assert result.all("Set-Cookie") == [
        "a=1; Secure; HttpOnly; SameSite=Lax",
        "b=2; Secure; HttpOnly; SameSite=Lax",
        "c=3; Secure; HttpOnly; SameSite=Lax",
    ]


def test_secure_cookies_off_leaves_cookies_alone() -> None:
    layer = SecurityHeaders(app_with([("Set-Cookie", "a=1")]), secure_cookies=False)
    assert call(layer, make_environ(scheme="https")).all("Set-Cookie") == ["a=1"]


# -- PEP 3333 mechanics ------------------------------------------------------------------


def test_lazy_start_response_in_a_streaming_body() -> None:
    bodies: list[CloseCounter] = []
    result = call(SecurityHeaders(lazy_streaming_app(bodies)), make_environ(scheme="https"))
    assert result.body == b"onetwothree"
    assert result.header("Strict-Transport-Security") is not None
    assert bodies[0].closed == 1 and bodies[0].yielded == 3


def test_body_object_is_returned_untouched() -> None:
    bodies: list[CloseCounter] = []
    layer = SecurityHeaders(lazy_streaming_app(bodies))
    body = layer(make_environ(), lambda status, headers, exc_info=None: None)
    assert body is bodies[0]


def test_second_start_response_with_exc_info_gets_the_headers_too() -> None:
    result = call(SecurityHeaders(exc_info_app), make_environ(scheme="https"))
    assert result.status.startswith("500")
    assert result.header("Strict-Transport-Security") is not None
    assert len(result.all("X-Frame-Options")) == 1


def test_from_settings_maps_the_environment() -> None:
    settings = Settings.from_env(
        {
            "SECURITY_PRESET": "strict",
            "HSTS_PRELOAD": "true",
            "X_XSS_PROTECTION": "1; mode=block",
            "CSP_POLICY": "default-src 'self'; img-src 'self' data:",
            "CSP_REPORT_ONLY": "true",
            "SECURE_COOKIES": "false",
        }
    )
    layer = settings_layer(settings, "SecurityHeaders")
    assert layer is not None
    result = call(layer.bind(app_with([("Set-Cookie", "a=1")])), make_environ(scheme="https"))
    assert result.header("Strict-Transport-Security") == (
        "max-age=63072000; includeSubDomains; preload"
    )
    assert result.header("X-XSS-Protection") == "1; mode=block"
    assert result.header("Content-Security-Policy") is None
    assert result.header("Content-Security-Policy-Report-Only") == (
        "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'"
    )
    assert result.all("Set-Cookie") == ["a=1"]


def test_from_settings_rejects_preload_with_a_short_max_age() -> None:
    settings = Settings.from_env({"HSTS_PRELOAD": "1", "HSTS_MAX_AGE": "600"})
    with pytest.raises(ConfigurationError, match="HSTS_PRELOAD"):
        settings_layer(settings, "SecurityHeaders")


def test_unbound_layers_compose_around_an_app() -> None:
    stack = compose(
        app_with([("Set-Cookie", "a=1")]), SecurityHeaders(preset="api"), CrossOriginProtection()
    )
    result = call(stack, make_environ(scheme="https"))
    assert result.header("Content-Security-Policy") == API["Content-Security-Policy"]
    assert result.all("Set-Cookie") == ["a=1; Secure; HttpOnly; SameSite=Lax"]
    blocked = call(stack, make_environ(method="POST", headers={"Sec-Fetch-Site": "cross-site"}))
    assert blocked.code == 403 and blocked.header("X-Frame-Options") == "DENY"


# -- one layer, many responses -----------------------------------------------------------

RESPONSES = [
    [("X-Custom", "1")],
    [("X-Custom", "1"), ("x-frame-options", "DENY")],
    [("Server", "gunicorn"), ("X-Custom", "2")],
    [("X-Custom", "3"), ("Set-Cookie", "sid=1; Path=/")],
    [("X-Frame-Options", "SAMEORIGIN"), ("X-Custom", "4")],
    [("X-Custom", "5")],
]


@pytest.mark.parametrize(
    "options",
    [
        pytest.param({}, id="balanced"),
        pytest.param({"merge": {"X-Frame-Options": "set"}}, id="ours replaces the app's"),
        pytest.param({"strip": ["X-Custom"]}, id="a stripped name"),
    ],
)
def test_a_layer_answers_every_response_as_a_fresh_one_would(options: dict[str, Any]) -> None:
    """Header names seen earlier (remembered as needing nothing) never change an answer."""
    current: list[tuple[str, str]] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain"), *current])
        return [b"body"]

    shared = SecurityHeaders(app, **options)
    for headers in RESPONSES * 2:
        current[:] = headers
        environ = make_environ(scheme="https", host="example.com")
        fresh = call(SecurityHeaders(app, **options), dict(environ)).headers
        assert call(shared, dict(environ)).headers == fresh


# -- per-route rules -----------------------------------------------------------------------

DOCS_CSP = (
    "default-src 'self'; script-src 'self' https://cdn.example.net; "
    "style-src 'self' 'unsafe-inline'"
)
DOCS_SENT = DOCS_CSP + "; frame-ancestors 'none'"  # added so that CSP and X-Frame-Options agree


def routed(**kw: Any) -> SecurityHeaders:
    return SecurityHeaders(
        hello_app,
        routes={
            "/docs/*": {"csp": DOCS_CSP},
            "/static/*": {"headers": {"Cross-Origin-Resource-Policy": "cross-origin"}},
            "/embed/widget": {"frame_ancestors": "none", "preset": "strict"},
            "/docs/private/*": {"csp": False},  # shadowed: /docs/* is listed first
        },
        **kw,
    )


@pytest.mark.parametrize(
    "path, csp, corp, xfo",
    [
        pytest.param("/", None, "same-origin", "DENY", id="no rule: the layer's own"),
        pytest.param("/docs/", DOCS_SENT, "same-origin", "DENY", id="/docs/* relaxed CSP"),
        pytest.param("/docs/private/x", DOCS_SENT, "same-origin", "DENY", id="first wins"),
        pytest.param("/docs", None, "same-origin", "DENY", id="/docs/* does not cover /docs"),
        pytest.param("/static/app.js", None, "cross-origin", "DENY", id="public assets"),
        pytest.param("/embed/widget", "strict", "same-origin", "DENY", id="exact path, strict"),
        pytest.param("/embed/widget/x", None, "same-origin", "DENY", id="exact only"),
    ],
)
def test_route_rules_choose_the_headers_by_path(
    path: str, csp: str | None, corp: str, xfo: str
) -> None:
    result = call(routed(), path=path)
    default = call(SecurityHeaders(hello_app), path=path).header("Content-Security-Policy")
    strict = call(SecurityHeaders(hello_app, preset="strict")).header("Content-Security-Policy")
    expected = {None: default, "strict": strict}.get(csp, csp)
    assert result.header("Content-Security-Policy") == expected
    assert result.header("Cross-Origin-Resource-Policy") == corp
    assert result.header("X-Frame-Options") == xfo
    assert result.header("X-Content-Type-Options") == "nosniff"
    assert result.body == b"hello"


def test_route_rules_match_script_name_plus_path_info() -> None:
    environ = make_environ("/", SCRIPT_NAME="/docs")
    assert call(routed(), environ).header("Content-Security-Policy") == DOCS_SENT


def test_route_rule_without_a_csp_sends_none_but_keeps_the_rest() -> None:
    layer = SecurityHeaders(hello_app, routes={"/raw/*": {"csp": False}})
    result = call(layer, path="/raw/file")
    assert result.header("Content-Security-Policy") is None
    assert result.header("X-Frame-Options") == "DENY"  # from the preset's frame-ancestors
    assert call(layer, path="/").header("Content-Security-Policy") is not None


def test_route_rule_with_a_nonce_while_the_layer_has_none() -> None:
    def nonce_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        nonce = str(environ["voyagr.csp_nonce"])
        start_response("200 OK", [("Content-Type", "text/html")])
        return [nonce.encode()]

    layer = SecurityHeaders(nonce_app, routes={"/page/*": {"csp_nonce": True}})
    result = call(layer, path="/page/1")
    assert f"'nonce-{result.body.decode()}'" in (result.header("Content-Security-Policy") or "")
    assert result.header("Cache-Control") == "no-store"
    with pytest.raises(KeyError):  # no rule, no nonce: the layer does not create one
        call(layer, path="/other")


def test_route_rules_from_settings() -> None:
    settings = Settings(
        allowed_hosts=("example.com",), security_routes={"/docs/*": {"csp": DOCS_CSP}}
    )
    stack = compose(hello_app, settings)
    assert call(stack, path="/docs/a").header("Content-Security-Policy") == DOCS_SENT
    assert call(stack, path="/a").header("Content-Security-Policy") != DOCS_SENT


def test_route_rules_survive_binding_in_compose() -> None:
    stack = compose(hello_app, routed())
    assert call(stack, path="/docs/a").header("Content-Security-Policy") == DOCS_SENT
    assert call(stack, path="/a").header("Content-Security-Policy") != DOCS_SENT


@pytest.mark.parametrize(
    "routes, message",
    [
        pytest.param({"docs/*": {}}, "'docs/*' must start with '/'", id="pattern without /"),
        pytest.param({"/a*b": {}}, "'/a*b' may use '*' only as the last", id="star inside"),
        pytest.param({"/a": {"cps": "x"}}, "'cps' is not a SecurityHeaders option", id="typo"),
        pytest.param({"/a": {"routes": {}}}, "'routes' is not a SecurityHeaders option", id="nest"),
        pytest.param({"/a": "default-src 'self'"}, "give a mapping", id="not a mapping"),
        pytest.param(
            {"/a": {"csp": "default-src self"}}, "SecurityHeaders(routes=) '/a'", id="bad CSP"
        ),
        pytest.param({"/a": {"preset": "loose"}}, "'loose' is not one of", id="unknown preset"),
    ],
)
def test_route_rule_mistakes_are_refused_at_construction(
    routes: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigurationError) as info:
        SecurityHeaders(hello_app, routes=routes)
    assert message in str(info.value)


def test_an_app_sending_conflicting_frame_options_is_warned_about_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # "X-Frame-Options: DENY" plus "SAMEORIGIN" is no valid policy: browsers may ignore both
    from voyagr_wsgi.layers import security_headers

    security_headers._warned.discard("x-frame-options")
    app = app_with([("X-Frame-Options", "DENY"), ("X-Frame-Options", "SAMEORIGIN")])
    with caplog.at_level("WARNING", logger="voyagr_wsgi.security_headers"):
        first = call(SecurityHeaders(app), make_environ())
        call(SecurityHeaders(app), make_environ())
    assert first.all("X-Frame-Options") == ["DENY", "SAMEORIGIN"]  # the app's headers, as sent
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "x-frame-options with 2 different values" in warnings[0]


def test_two_content_security_policies_are_not_a_conflict(caplog: pytest.LogCaptureFixture) -> None:
    app = app_with([("Content-Security-Policy", "default-src 'self'"),
                    ("Content-Security-Policy", "img-src *")])  # fmt: skip
    with caplog.at_level("WARNING", logger="voyagr_wsgi.security_headers"):
        result = call(SecurityHeaders(app), make_environ())
    assert len(result.all("Content-Security-Policy")) == 2 and caplog.records == []


@pytest.mark.parametrize(
    ("env", "frame_options", "ancestors"),
    [
        pytest.param({}, "DENY", "frame-ancestors 'none'", id="default: DENY, as Django"),
        pytest.param(
            {"SECURITY_FRAME_ANCESTORS": "self"}, "SAMEORIGIN", "frame-ancestors 'self'",
            id="one setting away: SAMEORIGIN",
        ),
        pytest.param(
            {"SECURITY_PRESET": "helmet"}, "SAMEORIGIN", "frame-ancestors 'self'",
            id="helmet parity keeps helmet's SAMEORIGIN",
        ),
    ],
)
def test_the_default_forbids_framing_and_sameorigin_is_one_setting_away(
    env: dict[str, str], frame_options: str, ancestors: str
) -> None:
    layer = settings_layer(Settings.from_env(env), "SecurityHeaders")
    result = call(layer.bind(hello_app), make_environ(scheme="https"))
    assert result.header("X-Frame-Options") == frame_options
    assert ancestors in (result.header("Content-Security-Policy") or "")


def test_a_bad_frame_ancestors_setting_names_the_variable() -> None:
    with pytest.raises(ConfigurationError, match="SECURITY_FRAME_ANCESTORS"):
        Settings.from_env({"SECURITY_FRAME_ANCESTORS": "everyone"})
