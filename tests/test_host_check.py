from __future__ import annotations

import json
from typing import Any

import pytest

from conftest import call, hello_app, make_environ, settings_layer
from voyagr_wsgi import ConfigurationError, Settings
from voyagr_wsgi.layers import HostCheck, ProxyTrust
from voyagr_wsgi.layers.host_check import split_host
from wsgi_apps import exc_info_app, lazy_streaming_app

ALLOWED = ("example.com", ".example.org", "[2001:db8::1]", "192.0.2.10")


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        pytest.param("example.com", True, id="exact name"),
        pytest.param("EXAMPLE.com", True, id="case-insensitive"),
        pytest.param("example.com:8443", True, id="port ignored"),
        pytest.param("example.com.", True, id="trailing dot"),
        pytest.param("example.com.:80", True, id="trailing dot and port"),
        pytest.param("www.example.com", False, id="subdomain of exact pattern refused"),
        pytest.param("example.org", True, id="dot pattern covers the domain itself"),
        pytest.param("a.b.example.org", True, id="dot pattern covers deep subdomains"),
        pytest.param("badexample.org", False, id="dot pattern is not a bare suffix"),
        pytest.param("example.org.evil.com", False, id="allowed name as a prefix refused"),
        pytest.param("[2001:db8::1]", True, id="ipv6 literal"),
        pytest.param("[2001:db8::1]:8000", True, id="ipv6 literal with port"),
        pytest.param("[2001:db8::2]", False, id="other ipv6 literal"),
        pytest.param("192.0.2.10:80", True, id="ipv4 literal with port"),
        pytest.param("10.0.0.5:8000", False, id="internal ip not listed"),
        pytest.param("evil.com", False, id="other name"),
        pytest.param("", False, id="empty host falls back to SERVER_NAME, not listed"),
        pytest.param("example.com\r\nX-Injected: 1", False, id="crlf injection"),
        pytest.param("example.com evil", False, id="space"),
        pytest.param("user@example.com", False, id="userinfo"),
        pytest.param("example.com/evil", False, id="slash"),
        pytest.param("example.com\\evil", False, id="backslash"),
        pytest.param("ex\xe4mple.com", False, id="non-ascii latin-1"),
        pytest.param("example.com:port", False, id="non-numeric port"),
        pytest.param("[::1", False, id="unterminated ipv6"),
    ],
)
def test_allowed_hosts_matrix(host: str, allowed: bool) -> None:
    layer = HostCheck(hello_app, allowed_hosts=ALLOWED)
    result = call(layer, make_environ(host=host))
    assert result.code == (200 if allowed else 400)
    if not allowed:
        assert result.header("Location") is None
        assert result.header("Content-Type") == "application/problem+json"
        assert json.loads(result.body)["type"].endswith("/problems/host-not-allowed")
        assert host.encode("latin-1") not in result.body or not host


@pytest.mark.parametrize(
    ("host", "code"),
    [
        pytest.param("anything.example", 200, id="any valid name"),
        pytest.param("10.0.0.5:8000", 200, id="ip and port"),
        pytest.param("bad host", 400, id="space still refused"),
        pytest.param("a\r\nb", 400, id="crlf still refused"),
        pytest.param("", 200, id="empty host falls back to SERVER_NAME"),
    ],
)
def test_empty_list_checks_syntax_only(host: str, code: int) -> None:
    assert call(HostCheck(hello_app), make_environ(host=host)).code == code


@pytest.mark.parametrize(
    ("host", "code"),
    [
        pytest.param("whatever.test:1", 200, id="any valid host"),
        pytest.param("evil.com\n", 400, id="trailing newline refused"),
    ],
)
def test_star_allows_any_valid_host(host: str, code: int) -> None:
    layer = HostCheck(hello_app, allowed_hosts=["*"])
    assert call(layer, make_environ(host=host)).code == code


def test_missing_host_header_uses_server_name() -> None:
    layer = HostCheck(hello_app, allowed_hosts=["example.com"])
    environ = make_environ(SERVER_NAME="example.com", SERVER_PORT="80")
    del environ["HTTP_HOST"]
    assert call(layer, environ).code == 200
    environ = make_environ(SERVER_NAME="other.test", SERVER_PORT="80")
    del environ["HTTP_HOST"]
    assert call(layer, environ).code == 400


@pytest.mark.parametrize(
    ("remote", "forwarded_host", "code"),
    [
        pytest.param("10.0.0.2", "example.com", 200, id="trusted proxy forwards allowed host"),
        pytest.param("203.0.113.9", "example.com", 400, id="untrusted forwarded host ignored"),
        pytest.param("10.0.0.2", "evil.com", 400, id="trusted proxy forwards forged host"),
    ],
)
def test_reads_the_host_proxy_trust_resolved(remote: str, forwarded_host: str, code: int) -> None:
    layer = ProxyTrust(HostCheck(hello_app, allowed_hosts=["example.com"]), trusted=["10.0.0.0/8"])
    environ = make_environ(
        host="internal:8000", remote=remote, headers={"X-Forwarded-Host": forwarded_host}
    )
    assert call(layer, environ).code == code


@pytest.mark.parametrize(
    "pattern",
    [
        pytest.param("example.com:80", id="port in pattern"),
        pytest.param("bad host", id="space"),
        pytest.param(".", id="lone dot"),
        pytest.param("", id="empty"),
        pytest.param("http://example.com", id="url"),
    ],
)
def test_bad_pattern_raises_naming_the_setting(pattern: str) -> None:
    with pytest.raises(ConfigurationError, match="ALLOWED_HOSTS"):
        HostCheck(hello_app, allowed_hosts=[pattern])


def test_trailing_dot_pattern_matches() -> None:
    layer = HostCheck(hello_app, allowed_hosts=["example.com."])
    assert call(layer, host="example.com").code == 200


def test_from_settings_always_builds_a_layer() -> None:
    settings = Settings(allowed_hosts=("example.com",))
    layer = settings_layer(settings, "HostCheck")
    assert layer.allowed_hosts == ("example.com",)
    assert settings_layer(Settings(), "HostCheck").allowed_hosts == ()


def test_decision_cache_stays_bounded() -> None:
    layer = HostCheck(hello_app, allowed_hosts=["example.com"])
    for i in range(3000):
        layer.allows(f"h{i}.test")
    assert len(layer._cache) <= 1024


@pytest.mark.parametrize(
    ("value", "parts"),
    [
        pytest.param("Example.COM:80", ("example.com", "80"), id="lower-cased with port"),
        pytest.param("example.com.", ("example.com", ""), id="trailing dot dropped"),
        pytest.param("[::1]:8000", ("[::1]", "8000"), id="ipv6"),
        pytest.param("a b", None, id="invalid"),
    ],
)
def test_split_host(value: str, parts: tuple[str, str] | None) -> None:
    assert split_host(value) == parts


def test_streaming_body_with_lazy_start_response_passes_through() -> None:
    bodies: list[Any] = []
    layer = HostCheck(lazy_streaming_app(bodies), allowed_hosts=["example.com"])
    result = call(layer, host="example.com")
    assert (result.code, result.body) == (200, b"onetwothree")
    assert bodies[0].closed == 1


def test_exc_info_second_start_response_passes_through() -> None:
    result = call(HostCheck(exc_info_app, allowed_hosts=["example.com"]), host="example.com")
    assert result.code == 500
    assert result.body == b"error"
