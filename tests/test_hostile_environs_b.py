"""Property tests: hostile requests and hostile app headers never break SecurityHeaders or
CrossOriginProtection; the answer is always a 403 or the app's own response."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import call, make_environ
from voyagr_wsgi.layers import CrossOriginProtection, SecurityHeaders
from voyagr_wsgi.layers.csp import CSP_NONCE

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# latin-1 (what PEP 3333 strings hold) plus some wider code points servers should not send
HOSTILE_TEXT = st.text(st.characters(max_codepoint=0x2FF), max_size=80) | st.sampled_from(
    [
        "",
        " ",
        "\r\n",
        "null",
        "\x00",
        "a" * 5000,
        "\uff21\uff22\uff23",
        "https://evil@example.com",
        "https://example.com:443",
        "https://example.com:99999",
        "https://[::1",
        "*",
        "%00",
    ]
)
ORIGINS = st.one_of(
    HOSTILE_TEXT,
    st.builds(
        lambda s, h, p: f"{s}://{h}{p}",
        st.sampled_from(["http", "https", "HTTPS", "ftp"]),
        st.sampled_from(
            [
                "example.com",
                "EXAMPLE.com",
                "evil.example",
                "a.example.com",
                "[::1]",
                "127.0.0.1",
                "user@example.com",
                "",
            ]
        ),
        st.sampled_from(["", ":443", ":80", ":8443", ":", ":0x1bb", "/", "/path"]),
    ),
)
HOSTS = st.one_of(
    st.sampled_from(
        [
            "example.com",
            "localhost",
            "127.0.0.1:8000",
            "[::1]",
            "203.0.113.5",
            "[2001:db8::1]:443",
            "",
            ":",
            "[",
            "]:80",
            "example.com.",
            "LOCALHOST",
        ]
    ),
    HOSTILE_TEXT,
)
METHODS = st.sampled_from(["GET", "HEAD", "POST", "OPTIONS", "PATCH", "PUT", "DELETE", "TRACE"])
SITES = st.one_of(
    st.none(), st.sampled_from(["same-origin", "none", "same-site", "cross-site"]), HOSTILE_TEXT
)


@st.composite
def hostile_environs(draw: st.DrawFn) -> dict[str, Any]:
    headers: dict[str, str] = {}
    for name, strategy in (
        ("Origin", ORIGINS),
        ("Sec-Fetch-Site", SITES),
        ("Cookie", HOSTILE_TEXT),
        ("X-Forwarded-Proto", HOSTILE_TEXT),
    ):
        value = draw(st.one_of(st.none(), strategy))
        if value is not None:
            headers[name] = value
    environ = make_environ(
        "/" + draw(HOSTILE_TEXT),
        method=draw(METHODS),
        host=draw(HOSTS),
        scheme=draw(st.sampled_from(["http", "https"])),
        headers=headers,
    )
    if draw(st.booleans()):  # what a ProxyTrust in front would have resolved
        environ["voyagr.scheme"] = draw(st.sampled_from(["http", "https"]) | HOSTILE_TEXT)
        environ["voyagr.host"] = draw(HOSTS)
    if draw(st.booleans()):
        del environ["HTTP_HOST"]
    return environ


def echo_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"passed"]


CSRF = CrossOriginProtection(
    echo_app, trusted_origins=["https://*.example.com"], exempt_paths=["/hooks/*"]
)
HEADERS = SecurityHeaders(echo_app, csp_nonce=True)


@SETTINGS
@given(hostile_environs())
def test_csrf_answers_403_or_passes_through(environ: dict[str, Any]) -> None:
    result = call(CSRF, environ)
    assert (result.code, result.body) == (200, b"passed") or result.code == 403
    if environ["REQUEST_METHOD"] in ("GET", "HEAD", "OPTIONS"):
        assert result.code == 200
    if environ.get("HTTP_SEC_FETCH_SITE") in ("same-origin", "none"):
        assert result.code == 200


@SETTINGS
@given(hostile_environs())
def test_security_headers_pass_through_with_sane_headers(environ: dict[str, Any]) -> None:
    result = call(HEADERS, environ)
    assert (result.code, result.body) == (200, b"passed")
    names = [name.lower() for name, _ in result.headers]
    assert len(names) == len(set(names))
    secure = environ.get("voyagr.scheme", environ["wsgi.url_scheme"]) == "https"
    if not secure:
        assert "strict-transport-security" not in names
    assert not result.environ[CSP_NONCE].used


HEADER_NAMES = st.one_of(
    st.sampled_from(
        [
            "Set-Cookie",
            "set-cookie",
            "Server",
            "X-Powered-By",
            "X-Frame-Options",
            "content-security-policy",
            "Strict-Transport-Security",
            "Cache-Control",
            "Content-Type",
            "X-Custom",
        ]
    ),
    st.from_regex(r"\A[A-Za-z][A-Za-z0-9-]{0,30}[A-Za-z0-9]\Z"),
)
COOKIE_VALUES = st.one_of(
    HOSTILE_TEXT,
    st.builds(
        lambda n, v, attrs: f"{n}={v}" + "".join(f"; {a}" for a in attrs),
        st.sampled_from(["sid", "csrftoken", "", "a b", "__Host-x"]),
        st.sampled_from(["1", "", "secure", "x;y", "é"]),
        st.lists(
            st.sampled_from(
                [
                    "Secure",
                    "secure",
                    "HttpOnly",
                    "SameSite=None",
                    "samesite",
                    "Path=/",
                    "Max-Age=-1",
                    "",
                    " ",
                    "Expires=Wed, 21 Oct 2037 07:28:00 GMT",
                ]
            ),
            max_size=5,
        ),
    ),
)
APP_HEADERS = st.lists(st.tuples(HEADER_NAMES, st.one_of(HOSTILE_TEXT, COOKIE_VALUES)), max_size=12)


def headers_app(headers: list[tuple[str, str]]) -> Any:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", list(headers))
        return [b"passed"]

    return app


def direct_call(app: Any, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
    """Without the validator: the app's own headers may be invalid (CR/LF), which the
    validator would reject before our layer is even in question."""
    captured: list[Any] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        captured[:] = [status, headers]
        return lambda data: None

    body = app(environ, start_response)
    try:
        data = b"".join(body)
    finally:
        getattr(body, "close", lambda: None)()
    return captured[0], captured[1], data


@SETTINGS
@given(APP_HEADERS, hostile_environs(), st.booleans())
def test_hostile_app_headers_are_kept_apart_from_what_the_layer_adds(
    app_headers: list[tuple[str, str]], environ: dict[str, Any], https: bool
) -> None:
    environ["voyagr.scheme"] = "https" if https else "http"
    layer = SecurityHeaders(headers_app(app_headers), httponly_exempt=["csrftoken"])
    status, headers, body = direct_call(layer, environ)
    assert (status, body) == ("200 OK", b"passed")
    app_cookies = [v for k, v in app_headers if k.lower() == "set-cookie"]
    out_cookies = [v for k, v in headers if k.lower() == "set-cookie"]
    assert len(out_cookies) == len(app_cookies)  # never folded, never dropped
    for before, after in zip(app_cookies, out_cookies, strict=True):
        assert after.startswith(before.rstrip().rstrip(";").rstrip())
        assert https or "; Secure" not in after[len(before.rstrip().rstrip(";").rstrip()) :]
    app_names = {k.lower() for k, _ in app_headers}
    assert all(k.lower() not in ("server", "x-powered-by") for k, _ in headers)
    plain = [
        (k, v) for k, v in app_headers if k.lower() not in ("set-cookie", "server", "x-powered-by")
    ]
    assert all(item in headers for item in plain)  # the app's headers win, unchanged
    added = [(k, v) for k, v in headers if k.lower() not in app_names and k.lower() != "set-cookie"]
    added_names = [k.lower() for k, _ in added]
    assert len(added_names) == len(set(added_names))


SAFE_TEXT = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xFF, blacklist_characters="\x7f"), max_size=200
)


@SETTINGS
@given(st.lists(st.tuples(HEADER_NAMES, SAFE_TEXT), max_size=10), hostile_environs())
def test_valid_app_headers_stay_valid_through_the_validator(
    app_headers: list[tuple[str, str]], environ: dict[str, Any]
) -> None:
    app_headers = [("Content-Type", "text/plain"), *app_headers]
    result = call(SecurityHeaders(headers_app(app_headers), preset="strict"), environ)
    assert (result.code, result.body) == (200, b"passed")
