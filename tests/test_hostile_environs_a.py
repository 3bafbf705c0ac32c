"""Property tests: hostile environs never raise through the request-path layers.

Odd Host values, CR/LF injection, latin-1 text, huge headers and bogus Forwarded /
X-Forwarded-* chains are fed to ProxyTrust, HostCheck, HTTPSRedirect, Probe and to the whole
``compose(app, Settings(...))`` stack with everything enabled. No exception may escape,
every answer passes ``wsgiref.validate`` (so no control character reaches a header), and the
status is a 4xx, a pass-through 200, or a redirect that stays on the request's own host.
"""

from __future__ import annotations

import functools
import ipaddress
from typing import Any
from urllib.parse import urlsplit

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import call, hello_app, make_environ
from voyagr_wsgi import Settings, compose
from voyagr_wsgi.health import Check, Health
from voyagr_wsgi.layers import HostCheck, HTTPSRedirect, Probe, ProxyTrust
from voyagr_wsgi.layers.host_check import split_host
from voyagr_wsgi.layers.proxy_trust import ORIG
from voyagr_wsgi.request import CLIENT_IP, HOST, SCHEME, hostname
from voyagr_wsgi.secret import Secret

TRUSTED = ("10.0.0.0/8", "fd00::/8", "127.0.0.1")
FORWARDED_KEYS = (
    "HTTP_FORWARDED",
    "HTTP_X_FORWARDED_FOR",
    "HTTP_X_FORWARDED_PROTO",
    "HTTP_X_FORWARDED_HOST",
    "HTTP_X_FORWARDED_PORT",
)
PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

latin1 = st.text(st.characters(max_codepoint=255), max_size=40)
nasty_bits = st.sampled_from(
    [
        "\r\n",
        "\n",
        "\r",
        " ",
        "\t",
        "\\",
        "//",
        "@",
        "#",
        "?",
        "%",
        "%0d%0a",
        "\x00",
        "\x7f",
        "\xff",
        "\xe9",
        ":",
        "[",
        "]",
        '"',
        ";",
        ",",
        "=",
        "..",
        "evil.com",
        "_",
        "unknown",
    ]
)
hostile_text = st.lists(st.one_of(latin1, nasty_bits), max_size=6).map("".join)

ips = st.one_of(
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(str),
    st.sampled_from(["10.0.0.2", "10.9.9.9", "fd00::7", "127.0.0.1", "::ffff:10.0.0.3"]),
)
node = st.one_of(
    ips,
    ips.map(lambda ip: f"[{ip}]:443" if ":" in ip else f"{ip}:8080"),
    st.sampled_from(["unknown", "_hidden", "_a.b-c", "[::1", "1.2.3.4:99999", "", "::", "[]"]),
    hostile_text,
)
hosts = st.one_of(
    st.sampled_from(
        [
            "example.com",
            "EXAMPLE.com.",
            "www.example.org:8443",
            "10.0.0.5:8000",
            "[::1]:80",
            "localhost",
            "evil.com",
            "example.com:65536",
            "[2001:db8::1]",
            "",
            "a..b",
            "-",
        ]
    ),
    hostile_text,
)
paths = st.one_of(
    st.sampled_from(
        [
            "/",
            "//evil.com",
            "/\\evil.com",
            "/api/production/health",
            "/api/production/livez",
            "/api/production/readyz",
            "/api/production/metrics",
            "/up",
            "/up/x",
        ]
    ),
    hostile_text.map(lambda s: "/" + s),
)


def forwarded_element() -> st.SearchStrategy[str]:
    value = st.one_of(node, node.map(lambda v: '"' + v + '"'), hostile_text)
    pair = st.tuples(st.sampled_from(["for", "proto", "host", "by", "For", "x", ""]), value).map(
        lambda kv: f"{kv[0]}={kv[1]}"
    )
    return st.lists(st.one_of(pair, hostile_text), max_size=4).map(";".join)


chains = st.one_of(
    st.lists(node, max_size=6).map(", ".join),
    st.lists(forwarded_element(), max_size=5).map(", ".join),
    hostile_text,
    st.integers(200, 3000).map(lambda n: ", ".join(["10.0.0.3"] * n)),  # huge, all trusted
    st.integers(200, 3000).map(lambda n: "x" * n * 10),  # huge garbage
)
header_values = st.one_of(
    chains, st.sampled_from(["http", "https", "HTTPS", "ftp", "443", "0", "-1", "x"]), hostile_text
)
forwarded_headers = st.dictionaries(
    st.sampled_from(
        [
            "Forwarded",
            "X-Forwarded-For",
            "X-Forwarded-Proto",
            "X-Forwarded-Host",
            "X-Forwarded-Port",
            "Authorization",
            "Origin",
            "Sec-Fetch-Site",
            "Cookie",
        ]
    ),
    header_values,
    max_size=6,
)


@st.composite
def environs(draw: st.DrawFn) -> dict[str, Any]:
    return make_environ(
        draw(paths),
        method=draw(st.sampled_from(["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS"])),
        host=draw(hosts),
        scheme=draw(st.sampled_from(["http", "https"])),
        remote=draw(
            st.one_of(st.just("10.0.0.2"), st.just("fd00::1"), ips, st.sampled_from(["", "x"]))
        ),
        headers=draw(forwarded_headers),
        query=draw(st.one_of(st.just(""), hostile_text)),
    )


def assert_redirect_stays_on_host(location: str, host: str) -> None:
    assert location.isascii()
    assert not any(c in location for c in "\r\n\t \\\x00")
    parts = urlsplit(location)
    assert parts.scheme == "https"
    assert parts.hostname is not None
    assert parts.netloc == hostname(host).rstrip(".")


@PROPERTY
@given(environs())
def test_proxy_trust_never_raises_and_resolves_sane_values(environ: dict[str, Any]) -> None:
    peer = environ.get("REMOTE_ADDR", "")
    result = call(ProxyTrust(hello_app, trusted=TRUSTED), environ)
    assert result.code == 200
    seen = result.environ
    assert seen[SCHEME] in ("http", "https") and seen["wsgi.url_scheme"] == seen[SCHEME]
    assert isinstance(seen[HOST], str) and isinstance(seen[CLIENT_IP], str)
    assert seen[ORIG]["REMOTE_ADDR"] == peer
    client = seen[CLIENT_IP]
    if client not in (peer, "unknown") and not client.startswith("_"):
        ipaddress.ip_address(client)  # anything else resolved is a real IP address
    if seen[HOST] != (environ.get("HTTP_HOST") or "").lower() and seen[HOST] != seen[ORIG].get(
        "HTTP_HOST"
    ):
        assert split_host(seen[HOST]) is not None  # a forwarded host is always well formed


@PROPERTY
@given(environs())
def test_untrusted_peer_never_reaches_forwarded_values(environ: dict[str, Any]) -> None:
    environ["REMOTE_ADDR"] = "203.0.113.9"
    scheme = environ["wsgi.url_scheme"]
    result = call(ProxyTrust(hello_app, trusted=TRUSTED), environ)
    seen = result.environ
    assert (seen[CLIENT_IP], seen[SCHEME]) == ("203.0.113.9", scheme)
    assert not any(key in seen for key in FORWARDED_KEYS)


@PROPERTY
@given(environs())
def test_host_check_answers_200_or_400(environ: dict[str, Any]) -> None:
    layer = HostCheck(hello_app, allowed_hosts=["example.com", ".example.org", "[2001:db8::1]"])
    result = call(layer, environ)
    assert result.code in (200, 400)
    if result.code == 200:
        domain = split_host(environ["HTTP_HOST"] or "127.0.0.1")
        assert domain is not None


@PROPERTY
@given(environs())
def test_https_redirect_stays_on_the_host(environ: dict[str, Any]) -> None:
    host = (environ.get("HTTP_HOST") or "127.0.0.1").lower()
    result = call(HTTPSRedirect(hello_app, exempt=["/up"]), environ)
    assert result.code in (200, 301, 308, 400)
    if result.code in (301, 308):
        assert_redirect_stays_on_host(result.header("Location") or "", host)


@PROPERTY
@given(environs())
def test_probe_answers_or_passes_through(environ: dict[str, Any]) -> None:
    health = Health([lambda: [Check("x:y", "warn", output="w")]])
    result = call(Probe(hello_app, health=health, token=Secret("t" * 32)), environ)
    assert result.code in (200, 405)


@functools.cache
def stack() -> Any:
    """The whole default stack with every request-path option on (built once)."""
    return compose(
        hello_app,
        Settings(
            trusted_proxies=tuple(ipaddress.ip_network(n) for n in TRUSTED),
            allowed_hosts=("example.com", ".example.org", "10.0.0.5"),
            enforce_https=True,
            https_redirect_exempt=("/up", "/static/*"),
            admin_token=Secret("a" * 32),
            csp_nonce=True,
        ),
    )


@PROPERTY
@given(environs())
def test_whole_stack_with_everything_enabled(environ: dict[str, Any]) -> None:
    result = call(stack(), environ)
    path = environ["PATH_INFO"]
    is_probe = path.startswith("/api/production/")
    assert result.code < 500 or (is_probe and result.code == 503), result.status
    if result.code in (301, 308):
        assert_redirect_stays_on_host(result.header("Location") or "", result.environ[HOST])
