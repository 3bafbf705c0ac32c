from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest

from conftest import call, hello_app, make_environ, settings_layer
from voyagr_wsgi import ConfigurationError, Settings
from voyagr_wsgi.layers import HTTPSRedirect, ProxyTrust
from wsgi_apps import exc_info_app, lazy_streaming_app


@pytest.mark.parametrize(
    ("method", "code"),
    [
        pytest.param("GET", 301, id="GET gets 301"),
        pytest.param("HEAD", 301, id="HEAD gets 301"),
        pytest.param("POST", 308, id="POST gets 308 so it stays a POST"),
        pytest.param("PUT", 308, id="PUT gets 308"),
        pytest.param("DELETE", 308, id="DELETE gets 308"),
        pytest.param("PATCH", 308, id="PATCH gets 308"),
        pytest.param("OPTIONS", 308, id="OPTIONS gets 308"),
    ],
)
def test_http_request_is_redirected_with_method_preserving_status(method: str, code: int) -> None:
    result = call(HTTPSRedirect(hello_app), make_environ("/a", method=method))
    assert result.code == code
    assert result.header("Location") == "https://example.com/a"
    assert result.body == b""


@pytest.mark.parametrize(
    ("environ", "location"),
    [
        pytest.param(make_environ("/"), "https://example.com/", id="root"),
        pytest.param(
            make_environ("/a/b", query="x=1&y=%20z"),
            "https://example.com/a/b?x=1&y=%20z",
            id="query kept",
        ),
        pytest.param(
            make_environ("/a", host="example.com:8080"),
            "https://example.com/a",
            id="http port dropped",
        ),
        pytest.param(
            make_environ("/a", host="Example.COM."),
            "https://example.com/a",
            id="host lower-cased, trailing dot dropped",
        ),
        pytest.param(
            make_environ("/app/x", SCRIPT_NAME="/mount", PATH_INFO="/app/x"),
            "https://example.com/mount/app/x",
            id="script name kept",
        ),
        pytest.param(
            make_environ("/caf\xc3\xa9"),
            "https://example.com/caf%C3%A9",
            id="utf-8 bytes in latin-1 path re-quoted",
        ),
        pytest.param(
            make_environ("/100%"), "https://example.com/100%25", id="decoded percent re-encoded"
        ),
        pytest.param(make_environ("/a b"), "https://example.com/a%20b", id="space quoted"),
        pytest.param(make_environ("/a#frag"), "https://example.com/a%23frag", id="hash quoted"),
        pytest.param(
            make_environ("/a;p=1/@x:y"), "https://example.com/a;p=1/@x:y", id="pchar kept"
        ),
        pytest.param(
            make_environ("/", query="q=a b\r\nX: 1"),
            "https://example.com/?q=a%20b%0D%0AX:%201",
            id="query made safe",
        ),
        pytest.param(
            make_environ("/", host="[2001:db8::1]:80"), "https://[2001:db8::1]/", id="ipv6 host"
        ),
    ],
)
def test_location_is_exact(environ: dict[str, Any], location: str) -> None:
    result = call(HTTPSRedirect(hello_app), environ)
    assert result.header("Location") == location


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("//evil.com", id="double slash"),
        pytest.param("//evil.com/%2F..", id="double slash with dots"),
        pytest.param("/\\evil.com", id="backslash"),
        pytest.param("/\\\\evil.com", id="double backslash"),
        pytest.param("/\r\nLocation: https://evil.com", id="crlf header injection"),
        pytest.param("/a\nSet-Cookie: x=1", id="lf header injection"),
        pytest.param("/@evil.com", id="at sign"),
        pytest.param("/\xff\xfe\x00", id="non-ascii and nul"),
        pytest.param("/\u2028caf\u00e9\u0130", id="characters beyond latin-1"),
        pytest.param("/\t/evil.com", id="tab"),
    ],
)
def test_hostile_paths_cannot_escape_the_host(path: str) -> None:
    result = call(HTTPSRedirect(hello_app), make_environ(path))
    location = result.header("Location")
    assert result.code == 301 and location is not None
    parts = urlsplit(location)
    assert (parts.scheme, parts.netloc) == ("https", "example.com")
    assert location.isascii()
    assert not any(c in location for c in "\r\n\t \\\x00")


@pytest.mark.parametrize(
    "host",
    [
        pytest.param("localhost:8000", id="localhost"),
        pytest.param("app.localhost", id="subdomain of localhost"),
        pytest.param("127.0.0.1:5000", id="127.0.0.1"),
        pytest.param("127.8.9.1", id="127/8"),
        pytest.param("[::1]:8000", id="ipv6 loopback"),
    ],
)
def test_loopback_hosts_are_not_redirected(host: str) -> None:
    assert call(HTTPSRedirect(hello_app), make_environ("/", host=host)).code == 200


def test_https_request_passes_through() -> None:
    assert call(HTTPSRedirect(hello_app), make_environ("/", scheme="https")).code == 200


@pytest.mark.parametrize(
    ("remote", "code"),
    [
        pytest.param("10.0.0.2", 200, id="trusted proxy says https: no redirect"),
        pytest.param("203.0.113.9", 301, id="client-sent X-Forwarded-Proto ignored"),
    ],
)
def test_scheme_comes_from_proxy_trust(remote: str, code: int) -> None:
    layer = ProxyTrust(HTTPSRedirect(hello_app), trusted=["10.0.0.0/8"])
    environ = make_environ("/", remote=remote, headers={"X-Forwarded-Proto": "https"})
    assert call(layer, environ).code == code


@pytest.mark.parametrize(
    ("path", "code"),
    [
        pytest.param("/healthz", 200, id="exact path exempt"),
        pytest.param("/healthz/", 200, id="exact path covers its trailing slash"),
        pytest.param("/healthzz", 301, id="exact path is not a prefix"),
        pytest.param("/static/", 200, id="prefix covers its own slash"),
        pytest.param("/static/app.js", 200, id="prefix covers below"),
        pytest.param("/static", 301, id="'/static/*' does not cover '/static'"),
        pytest.param("/staticky", 301, id="prefix is not a bare string prefix"),
        pytest.param("/other", 301, id="other path redirected"),
    ],
)
def test_exempt_paths(path: str, code: int) -> None:
    layer = HTTPSRedirect(hello_app, exempt=["/healthz", "/static/*"])
    assert call(layer, make_environ(path)).code == code


@pytest.mark.parametrize(
    ("port", "location"),
    [
        pytest.param(8443, "https://example.com:8443/a", id="fixed port"),
        pytest.param(443, "https://example.com/a", id="443 never written"),
    ],
)
def test_fixed_https_port(port: int, location: str) -> None:
    layer = HTTPSRedirect(hello_app, https_port=port)
    assert call(layer, make_environ("/a", host="example.com:8080")).header("Location") == location


@pytest.mark.parametrize(
    "host",
    [
        pytest.param("evil.com\r\nX-Injected: 1", id="crlf in host"),
        pytest.param("evil.com/path", id="slash in host"),
        pytest.param("user@evil.com", id="userinfo in host"),
    ],
)
def test_malformed_host_gets_400_never_a_redirect(host: str) -> None:
    result = call(HTTPSRedirect(hello_app), make_environ("/", host=host))
    assert result.code == 400
    assert result.header("Location") is None


@pytest.mark.parametrize(
    "options",
    [
        pytest.param({"exempt": ["healthz"]}, id="exempt without slash"),
        pytest.param({"exempt": ["/a*b"]}, id="star in the middle"),
        pytest.param({"https_port": 0}, id="port zero"),
        pytest.param({"https_port": 70000}, id="port too big"),
        pytest.param({"https_port": "443"}, id="port as string"),
    ],
)
def test_bad_options_raise(options: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        HTTPSRedirect(hello_app, **options)


def test_from_settings_follows_enforce_https() -> None:
    off = Settings()
    assert settings_layer(off, "HTTPSRedirect") is None
    on = Settings.from_env({"ENFORCE_HTTPS": "true", "HTTPS_REDIRECT_EXEMPT": "/up,/static/*"})
    layer = settings_layer(on, "HTTPSRedirect")
    assert layer is not None and layer.exempt == ("/up", "/static/*")


def test_streaming_body_with_lazy_start_response_passes_through() -> None:
    bodies: list[Any] = []
    layer = HTTPSRedirect(lazy_streaming_app(bodies))
    result = call(layer, make_environ("/", scheme="https"))
    assert (result.code, result.body) == (200, b"onetwothree")
    assert bodies[0].closed == 1


def test_exc_info_second_start_response_passes_through() -> None:
    result = call(HTTPSRedirect(exc_info_app), make_environ("/", scheme="https"))
    assert (result.code, result.body) == (500, b"error")


@pytest.mark.parametrize("bad_host", [".", "..", "...:8080"])
def test_host_of_dots_only_gets_400_not_an_empty_location(bad_host: str) -> None:
    result = call(HTTPSRedirect(hello_app), make_environ("/", host=bad_host))
    assert result.code == 400
    assert result.header("Location") is None


@pytest.mark.parametrize(
    ("host", "port", "location"),
    [
        pytest.param("www.example.com", None, "https://www.example.com/a/b?x=1", id="canonical"),
        pytest.param("WWW.Example.com", 8443, "https://www.example.com:8443/a/b?x=1",
                     id="lower-cased, with https_port"),
    ],
)  # fmt: skip
def test_redirects_go_to_the_configured_host(host: str, port: int | None, location: str) -> None:
    layer = HTTPSRedirect(hello_app, host=host, https_port=port)
    result = call(layer, make_environ("/a/b", query="x=1", host="example.com"))
    assert (result.code, result.header("Location")) == (301, location)


@pytest.mark.parametrize(
    "bad", ["https://www.example.com", "www.example.com/x", "www.example.com:443", "a b", ".."]
)
def test_a_redirect_host_that_is_not_a_host_name_is_refused(bad: str) -> None:
    with pytest.raises(ConfigurationError, match="HTTPS_REDIRECT_HOST"):
        HTTPSRedirect(hello_app, host=bad)


def test_redirect_host_from_the_environment() -> None:
    from voyagr_wsgi import compose

    settings = Settings.from_env(
        {"ENFORCE_HTTPS": "true", "HTTPS_REDIRECT_HOST": "www.example.com",
         "ALLOWED_HOSTS": "example.com,www.example.com", "BACKUP_ENABLED": "false"}
    )  # fmt: skip
    result = call(compose(hello_app, settings), make_environ("/", host="example.com"))
    assert result.header("Location") == "https://www.example.com/"


@pytest.mark.parametrize(
    ("method", "code"),
    [("GET", 301), ("HEAD", 301), ("POST", 403), ("PUT", 403), ("DELETE", 403), ("PATCH", 403)],
)
def test_reject_mode_refuses_body_methods_over_http(method: str, code: int) -> None:
    result = call(HTTPSRedirect(hello_app, unsafe="reject"), make_environ("/f", method=method))
    assert result.code == code
    if code == 403:
        assert result.header("Location") is None
        assert method == "HEAD" or b"must be sent over HTTPS" in result.body


def test_reject_mode_from_the_environment_and_bad_values() -> None:
    from voyagr_wsgi import compose

    settings = Settings.from_env(
        {"ENFORCE_HTTPS": "true", "HTTPS_REDIRECT_UNSAFE": "reject",
         "ALLOWED_HOSTS": "example.com", "BACKUP_ENABLED": "false", "CSRF_ENABLED": "false"}
    )  # fmt: skip
    assert call(compose(hello_app, settings), make_environ("/", method="POST")).code == 403
    with pytest.raises(ConfigurationError, match="HTTPS_REDIRECT_UNSAFE"):
        Settings.from_env({"HTTPS_REDIRECT_UNSAFE": "sometimes"})
    with pytest.raises(ConfigurationError, match="HTTPS_REDIRECT_UNSAFE"):
        HTTPSRedirect(hello_app, unsafe="drop")  # type: ignore[arg-type]
