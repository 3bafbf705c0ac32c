from __future__ import annotations

from typing import Any

import pytest

from conftest import call, hello_app, make_environ, settings_layer
from voyagr_wsgi import ConfigurationError, Settings
from voyagr_wsgi.layers import ProxyTrust
from voyagr_wsgi.layers.proxy_trust import ORIG
from voyagr_wsgi.request import CLIENT_IP, HOST, SCHEME
from wsgi_apps import exc_info_app, lazy_streaming_app

TRUSTED = ["10.0.0.0/8", "fd00::/8"]


def resolve(
    trusted: list[str] | tuple[str, ...] = tuple(TRUSTED),
    *,
    remote: str = "10.0.0.2",
    headers: dict[str, str] | None = None,
    host: str = "internal:8000",
    scheme: str = "http",
    mode: Any = "auto",
) -> dict[str, Any]:
    """The environ the app saw behind ProxyTrust."""
    seen: dict[str, Any] = {}

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        seen.update(environ)
        return hello_app(environ, start_response)

    layer = ProxyTrust(app, trusted=trusted, headers=mode)
    result = call(layer, make_environ(remote=remote, host=host, scheme=scheme, headers=headers))
    assert result.code == 200
    return seen


@pytest.mark.parametrize(
    ("remote", "headers", "client", "scheme", "host"),
    [
        pytest.param(
            "10.0.0.2", {}, "10.0.0.2", "http", "internal:8000", id="trusted peer, no headers"
        ),
        pytest.param(
            "10.0.0.2",
            {
                "X-Forwarded-For": "203.0.113.9",
                "X-Forwarded-Proto": "https",
                "X-Forwarded-Host": "Example.com",
            },
            "203.0.113.9",
            "https",
            "example.com",
            id="ipv4, one hop",
        ),
        pytest.param(
            "fd00::2",
            {"X-Forwarded-For": "2001:db8::9", "X-Forwarded-Proto": "https"},
            "2001:db8::9",
            "https",
            "internal:8000",
            id="ipv6 peer and client",
        ),
        pytest.param(
            "10.0.0.2",
            {"X-Forwarded-For": "203.0.113.9, 10.0.0.3", "X-Forwarded-Proto": "https"},
            "203.0.113.9",
            "https",
            "internal:8000",
            id="two trusted hops",
        ),
        pytest.param(
            "10.0.0.2",
            {"X-Forwarded-For": "1.1.1.1, 203.0.113.9, 10.0.0.3"},
            "203.0.113.9",
            "http",
            "internal:8000",
            id="spoofed leftmost ignored: walk stops at first untrusted",
        ),
        pytest.param(
            "10.0.0.2",
            {"X-Forwarded-For": "10.0.0.9, 10.0.0.3"},
            "10.0.0.9",
            "http",
            "internal:8000",
            id="all hops trusted: leftmost is the client",
        ),
        pytest.param(
            "10.0.0.2",
            {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "javascript"},
            "203.0.113.9",
            "http",
            "internal:8000",
            id="bad proto ignored",
        ),
        pytest.param(
            "10.0.0.2",
            {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Host": "evil.com\r\nX: 1"},
            "203.0.113.9",
            "http",
            "internal:8000",
            id="malformed forwarded host ignored",
        ),
        pytest.param(
            "10.0.0.2",
            {"X-Forwarded-For": "203.0.113.9:51000"},
            "203.0.113.9",
            "http",
            "internal:8000",
            id="port on xff entry",
        ),
        pytest.param(
            "10.0.0.2",
            {"X-Forwarded-For": "[2001:db8::9]:51000"},
            "2001:db8::9",
            "http",
            "internal:8000",
            id="bracketed ipv6 with port in xff",
        ),
        pytest.param(
            "10.0.0.2",
            {
                "X-Forwarded-For": "203.0.113.9",
                "X-Forwarded-Proto": "https",
                "X-Forwarded-Host": "example.com",
                "X-Forwarded-Port": "8443",
            },
            "203.0.113.9",
            "https",
            "example.com:8443",
            id="x-forwarded-port added to host",
        ),
        pytest.param(
            "10.0.0.2",
            {
                "X-Forwarded-For": "203.0.113.9",
                "X-Forwarded-Proto": "https",
                "X-Forwarded-Host": "example.com:80",
                "X-Forwarded-Port": "443",
            },
            "203.0.113.9",
            "https",
            "example.com",
            id="default port dropped",
        ),
        pytest.param(
            "10.0.0.2",
            {"X-Forwarded-For": "203.0.113.9, 10.0.0.3", "X-Forwarded-Proto": "https, http"},
            "203.0.113.9",
            "https",
            "internal:8000",
            id="proto taken from the client's hop",
        ),
        pytest.param(
            "10.0.0.2",
            {"X-Forwarded-Proto": "https"},
            "10.0.0.2",
            "https",
            "internal:8000",
            id="proto without xff applies to the peer",
        ),
        pytest.param(
            "10.0.0.2",
            {"X-Forwarded-For": "garbage"},
            "10.0.0.2",
            "http",
            "internal:8000",
            id="malformed xff falls back to the peer",
        ),
        pytest.param(
            "10.0.0.2",
            {"X-Forwarded-For": "10.0.0.7, garbage, 10.0.0.3"},
            "10.0.0.3",
            "http",
            "internal:8000",
            id="malformed middle entry stops at last identified hop",
        ),
        pytest.param(
            "::ffff:10.0.0.2",
            {"X-Forwarded-For": "203.0.113.9"},
            "203.0.113.9",
            "http",
            "internal:8000",
            id="ipv4-mapped ipv6 peer matches ipv4 network",
        ),
        pytest.param(
            "203.0.113.50",
            {
                "X-Forwarded-For": "1.1.1.1",
                "X-Forwarded-Proto": "https",
                "X-Forwarded-Host": "evil.com",
            },
            "203.0.113.50",
            "http",
            "internal:8000",
            id="untrusted peer: xff ignored",
        ),
    ],
)
def test_x_forwarded_chains(
    remote: str, headers: dict[str, str], client: str, scheme: str, host: str
) -> None:
    seen = resolve(remote=remote, headers=headers)
    assert (seen[CLIENT_IP], seen[SCHEME], seen[HOST]) == (client, scheme, host)
    assert (seen["REMOTE_ADDR"], seen["wsgi.url_scheme"]) == (client, scheme)
    assert seen["HTTP_HOST"] == host
    assert seen[ORIG]["REMOTE_ADDR"] == remote


@pytest.mark.parametrize(
    ("forwarded", "client", "scheme", "host"),
    [
        pytest.param(
            "for=203.0.113.9;proto=https;host=example.com",
            "203.0.113.9",
            "https",
            "example.com",
            id="one element",
        ),
        pytest.param(
            'For="[2001:db8:cafe::17]:4711";Proto=HTTPS',
            "2001:db8:cafe::17",
            "https",
            "internal:8000",
            id="quoted ipv6 with port, case-insensitive names",
        ),
        pytest.param(
            'for="203.0.113.9:4711"; proto=https',
            "203.0.113.9",
            "https",
            "internal:8000",
            id="quoted ipv4 with port, space after semicolon",
        ),
        pytest.param(
            "for=1.1.1.1;proto=http, for=203.0.113.9;proto=https, for=10.0.0.3;proto=http",
            "203.0.113.9",
            "https",
            "internal:8000",
            id="two hops, spoofed leftmost ignored, proto from the client's element",
        ),
        pytest.param(
            "for=_hidden;proto=https",
            "_hidden",
            "https",
            "internal:8000",
            id="obfuscated identifier",
        ),
        pytest.param(
            "for=unknown",
            "unknown",
            "http",
            "internal:8000",
            id="unknown identifier",
        ),
        pytest.param(
            "for=203.0.113.9, for=unknown",
            "unknown",
            "http",
            "internal:8000",
            id="unknown hop ends the walk",
        ),
        pytest.param(
            "proto=https",
            "unknown",
            "https",
            "internal:8000",
            id="element without for",
        ),
        pytest.param(
            "for=203.0.113.9;proto=gopher",
            "203.0.113.9",
            "http",
            "internal:8000",
            id="bad proto ignored",
        ),
        pytest.param(
            'for=203.0.113.9;host="evil.com/x"',
            "203.0.113.9",
            "http",
            "internal:8000",
            id="bad host ignored",
        ),
        pytest.param(
            "for=203.0.113.9;for=1.1.1.1",
            "10.0.0.2",
            "http",
            "internal:8000",
            id="duplicate parameter is malformed",
        ),
        pytest.param(
            'for="203.0.113.9',
            "10.0.0.2",
            "http",
            "internal:8000",
            id="unterminated quote falls back to the peer",
        ),
        pytest.param(
            'for="unbalanced, for=203.0.113.9',
            "203.0.113.9",
            "http",
            "internal:8000",
            id="client's broken quote cannot swallow the proxy's element",
        ),
        pytest.param(
            "for=[2001:db8::1",
            "10.0.0.2",
            "http",
            "internal:8000",
            id="unterminated bracket falls back to the peer",
        ),
        pytest.param(
            'for=203.0.113.9;by=10.0.0.2;proto=https;host="example.com:8443"',
            "203.0.113.9",
            "https",
            "example.com:8443",
            id="by ignored, quoted host with port",
        ),
    ],
)
def test_forwarded_rfc7239(forwarded: str, client: str, scheme: str, host: str) -> None:
    seen = resolve(headers={"Forwarded": forwarded, "X-Forwarded-For": "6.6.6.6"})
    assert (seen[CLIENT_IP], seen[SCHEME], seen[HOST]) == (client, scheme, host)
    assert "HTTP_X_FORWARDED_FOR" not in seen  # the family not consulted is removed
    assert seen[ORIG]["HTTP_X_FORWARDED_FOR"] == "6.6.6.6"


def test_untrusted_peer_sending_forwarded_is_ignored_and_headers_removed() -> None:
    headers = {
        "Forwarded": "for=1.1.1.1;proto=https;host=evil.com",
        "X-Forwarded-For": "1.1.1.1",
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "evil.com",
        "X-Forwarded-Port": "443",
        "X-Real-IP": "1.1.1.1",
        "X-Forwarded-Prefix": "/evil",
    }
    seen = resolve(remote="203.0.113.50", headers=headers, host="example.com")
    assert (seen[CLIENT_IP], seen[SCHEME], seen[HOST]) == ("203.0.113.50", "http", "example.com")
    for key in (
        "HTTP_FORWARDED",
        "HTTP_X_FORWARDED_FOR",
        "HTTP_X_FORWARDED_PROTO",
        "HTTP_X_FORWARDED_HOST",
        "HTTP_X_FORWARDED_PORT",
        "HTTP_X_REAL_IP",
        "HTTP_X_FORWARDED_PREFIX",
    ):
        assert key not in seen
        assert seen[ORIG][key]


@pytest.mark.parametrize(
    ("trusted", "remote"),
    [
        pytest.param((), "10.0.0.2", id="nothing trusted by default"),
        pytest.param(("10.0.0.0/8",), "", id="unix socket peer never trusted"),
    ],
)
def test_nothing_trusted_sets_the_plain_values(trusted: tuple[str, ...], remote: str) -> None:
    seen = resolve(
        trusted,
        remote=remote,
        headers={"X-Forwarded-For": "1.1.1.1"},
        host="Example.COM",
        scheme="https",
    )
    assert (seen[CLIENT_IP], seen[SCHEME], seen[HOST]) == (remote, "https", "example.com")
    assert seen["HTTP_HOST"] == "Example.COM"  # not rewritten: nothing was forwarded
    assert "HTTP_X_FORWARDED_FOR" not in seen


def test_orig_keeps_rewritten_values() -> None:
    seen = resolve(
        headers={
            "X-Forwarded-For": "203.0.113.9",
            "X-Forwarded-Host": "example.com",
            "X-Forwarded-Proto": "https",
        }
    )
    orig = seen[ORIG]
    assert orig["REMOTE_ADDR"] == "10.0.0.2"
    assert orig["wsgi.url_scheme"] == "http"
    assert orig["HTTP_HOST"] == "internal:8000"
    assert seen["SERVER_NAME"] == "example.com"
    assert seen["SERVER_PORT"] == "443"


@pytest.mark.parametrize(
    ("mode", "headers", "client"),
    [
        pytest.param(
            "x-forwarded",
            {"Forwarded": "for=1.1.1.1", "X-Forwarded-For": "203.0.113.9"},
            "203.0.113.9",
            id="x-forwarded mode ignores Forwarded",
        ),
        pytest.param(
            "forwarded", {"X-Forwarded-For": "1.1.1.1"}, "10.0.0.2", id="forwarded mode ignores xff"
        ),
        pytest.param(
            "auto",
            {"Forwarded": "for=203.0.113.9", "X-Forwarded-For": "1.1.1.1"},
            "203.0.113.9",
            id="auto prefers Forwarded",
        ),
        pytest.param(
            "auto",
            {"Forwarded": "", "X-Forwarded-For": "203.0.113.9"},
            "203.0.113.9",
            id="auto with an empty Forwarded reads xff",
        ),
    ],
)
def test_header_mode(mode: str, headers: dict[str, str], client: str) -> None:
    assert resolve(headers=headers, mode=mode)[CLIENT_IP] == client


def test_bad_mode_and_bad_network_raise() -> None:
    with pytest.raises(ConfigurationError, match="headers"):
        ProxyTrust(hello_app, headers="both")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="TRUSTED_PROXIES"):
        ProxyTrust(hello_app, trusted=["10.0.0.0/33"])


def test_from_settings_always_builds_and_trusts_settings_networks() -> None:
    settings = Settings.from_env({"TRUSTED_PROXIES": "10.0.0.0/8"})
    layer = settings_layer(settings, "ProxyTrust")
    assert layer.is_trusted("10.1.2.3") and not layer.is_trusted("11.0.0.1")
    empty = settings_layer(Settings(), "ProxyTrust")
    assert empty.trusted == () and not empty.is_trusted("10.1.2.3")


def test_trust_cache_stays_bounded() -> None:
    layer = ProxyTrust(hello_app, trusted=TRUSTED)
    for i in range(3000):
        layer.is_trusted(f"192.0.{i // 256 % 256}.{i % 256}")
    assert len(layer._cache) <= 1024


def test_long_trusted_chain_is_cut() -> None:
    chain = ", ".join(["203.0.113.9"] + ["10.0.0.3"] * 100)
    seen = resolve(headers={"X-Forwarded-For": chain})
    assert seen[CLIENT_IP] == "10.0.0.3"


def test_streaming_body_with_lazy_start_response_passes_through() -> None:
    bodies: list[Any] = []
    layer = ProxyTrust(lazy_streaming_app(bodies), trusted=TRUSTED)
    result = call(layer, remote="10.0.0.2", headers={"X-Forwarded-For": "203.0.113.9"})
    assert (result.code, result.body) == (200, b"onetwothree")
    assert bodies[0].closed == 1


def test_exc_info_second_start_response_passes_through() -> None:
    result = call(ProxyTrust(exc_info_app, trusted=TRUSTED), remote="10.0.0.2")
    assert (result.code, result.body) == (500, b"error")


def test_chain_cache_stays_bounded_and_skips_huge_headers() -> None:
    layer = ProxyTrust(hello_app, trusted=TRUSTED)
    for i in range(1500):
        call(layer, remote="10.0.0.2", headers={"X-Forwarded-For": f"203.0.{i // 256}.{i % 256}"})
    assert len(layer._chains) <= 1024
    layer._chains.clear()
    huge = ", ".join(["203.0.113.9"] * 200)
    result = call(layer, remote="10.0.0.2", headers={"X-Forwarded-For": huge})
    assert result.environ[CLIENT_IP] == "203.0.113.9"
    assert layer._chains == {}


def test_default_reads_x_forwarded_and_ignores_a_passed_through_forwarded() -> None:
    seen: dict[str, Any] = {}

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        seen.update(environ)
        return hello_app(environ, start_response)

    # the proxy appends to X-Forwarded-For but passes the client's own Forwarded on untouched
    headers = {"Forwarded": "for=127.0.0.1;proto=https", "X-Forwarded-For": "203.0.113.9"}
    call(ProxyTrust(app, trusted=["10.0.0.0/8"]), remote="10.0.0.2", headers=headers)
    assert seen[CLIENT_IP] == "203.0.113.9"
    assert seen[SCHEME] == "http"


def test_settings_choose_the_header_family() -> None:
    settings = Settings.from_env(
        {"TRUSTED_PROXIES": "10.0.0.0/8", "TRUSTED_PROXY_HEADERS": "forwarded"}
    )
    layer = settings_layer(settings, "ProxyTrust").bind(hello_app)
    result = call(layer, remote="10.0.0.2", headers={"Forwarded": "for=198.51.100.4"})
    assert result.environ[CLIENT_IP] == "198.51.100.4"


@pytest.mark.parametrize(
    ("headers", "client", "scheme", "host"),
    [
        pytest.param({"X-Forwarded-For": "203.0.113.9"}, "203.0.113.9", "http", "internal:8000",
                     id="one hop, no proto"),
        pytest.param({"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"},
                     "203.0.113.9", "https", "internal:8000", id="one hop, https"),
        pytest.param({"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "HTTPS"},
                     "203.0.113.9", "https", "internal:8000", id="one hop, upper-case proto"),
        pytest.param({"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": " https"},
                     "203.0.113.9", "https", "internal:8000", id="one hop, padded proto"),
        pytest.param({"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https, http"},
                     "203.0.113.9", "http", "internal:8000", id="one hop, right-most proto"),
        pytest.param({"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "ftp"},
                     "203.0.113.9", "http", "internal:8000", id="one hop, invalid proto"),
        pytest.param({"X-Forwarded-For": "203.0.113.9:4711", "X-Forwarded-Proto": "https"},
                     "203.0.113.9", "https", "internal:8000", id="one hop with a port"),
        pytest.param({"X-Forwarded-For": "[2001:db8::1]", "X-Forwarded-Proto": "https"},
                     "2001:db8::1", "https", "internal:8000", id="one ipv6 hop"),
        pytest.param({"X-Forwarded-For": "not-an-ip", "X-Forwarded-Proto": "https"},
                     "10.0.0.2", "http", "internal:8000", id="malformed hop: the peer"),
        pytest.param({"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https",
                      "X-Forwarded-Host": "Example.com"},
                     "203.0.113.9", "https", "example.com", id="one hop with a host"),
        pytest.param({"X-Forwarded-For": "203.0.113.9", "Forwarded": "for=1.1.1.1"},
                     "203.0.113.9", "http", "internal:8000", id="one hop, Forwarded dropped"),
    ],
)  # fmt: skip
def test_one_x_forwarded_hop_from_a_trusted_router(
    headers: dict[str, str], client: str, scheme: str, host: str
) -> None:
    seen = resolve(headers=headers, mode="x-forwarded")
    assert (seen[CLIENT_IP], seen[SCHEME], seen[HOST]) == (client, scheme, host)
    assert (seen["REMOTE_ADDR"], seen["wsgi.url_scheme"]) == (client, scheme)
    assert seen[ORIG]["REMOTE_ADDR"] == "10.0.0.2"
    assert "HTTP_FORWARDED" not in seen
    if "Forwarded" in headers:
        assert seen[ORIG]["HTTP_FORWARDED"] == headers["Forwarded"]


# -- X-Forwarded-Prefix (opt-in) ---------------------------------------------------------


def behind_prefix(
    headers: dict[str, str], *, remote: str = "10.0.0.2", prefix: bool = True, script: str = ""
) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        seen.update(environ)
        return hello_app(environ, start_response)

    layer = ProxyTrust(app, trusted=TRUSTED, prefix=prefix)
    environ = make_environ("/x", remote=remote, headers=headers, SCRIPT_NAME=script)
    assert call(layer, environ).code == 200
    return seen


@pytest.mark.parametrize(
    ("headers", "script_name"),
    [
        pytest.param({"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Prefix": "/app"}, "/app",
                     id="one hop (the inline path)"),
        pytest.param({"X-Forwarded-For": "203.0.113.7, 10.0.0.9", "X-Forwarded-Prefix": "/a/b/"},
                     "/a/b", id="two hops, trailing slash dropped"),
        pytest.param({"X-Forwarded-Prefix": "/client, /app"}, "/app",
                     id="the right-most entry: the one the proxy wrote"),
        pytest.param({"X-Forwarded-Prefix": "/"}, "", id="root"),
    ],
)  # fmt: skip
def test_trusted_prefix_is_prepended_to_script_name(
    headers: dict[str, str], script_name: str
) -> None:
    seen = behind_prefix(headers)
    assert (seen["SCRIPT_NAME"], seen["PATH_INFO"]) == (script_name, "/x")
    assert seen[ORIG]["SCRIPT_NAME"] == ""


def test_prefix_goes_before_the_servers_own_script_name() -> None:
    assert behind_prefix({"X-Forwarded-Prefix": "/edge"}, script="/mount")["SCRIPT_NAME"] == (
        "/edge/mount"
    )


@pytest.mark.parametrize(
    "value",
    ["app", "//evil.example", "/a/../b", "/./a", "/a%2f..", "/a b", "/a?b", "/a#b", "/a\\b", ""],
)
def test_a_prefix_that_is_not_a_plain_path_is_ignored(value: str) -> None:
    assert behind_prefix({"X-Forwarded-Prefix": value})["SCRIPT_NAME"] == ""


def test_prefix_from_an_untrusted_peer_or_when_off_is_never_used() -> None:
    untrusted = behind_prefix({"X-Forwarded-Prefix": "/app"}, remote="198.51.100.4")
    assert untrusted["SCRIPT_NAME"] == "" and "HTTP_X_FORWARDED_PREFIX" not in untrusted
    assert behind_prefix({"X-Forwarded-Prefix": "/app"}, prefix=False)["SCRIPT_NAME"] == ""


def test_redirect_keeps_the_prefix_in_a_composed_stack() -> None:
    from voyagr_wsgi import compose

    settings = Settings.from_env(
        {"TRUSTED_PROXIES": "10.0.0.0/8", "TRUSTED_PROXY_PREFIX": "true",
         "ALLOWED_HOSTS": "example.com", "ENFORCE_HTTPS": "true", "BACKUP_ENABLED": "false"}
    )  # fmt: skip
    environ = make_environ(
        "/x",
        remote="10.0.0.2",
        headers={"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Prefix": "/app"},
    )
    result = call(compose(hello_app, settings), environ)
    assert (result.code, result.header("Location")) == (301, "https://example.com/app/x")
