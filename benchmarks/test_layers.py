"""Per-request cost of each voyagr layer, the default stack, and the peers, on one pool."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

import peers
from conftest import DIRECT, PROXIED, bare_app, run_wsgi
from voyagr_wsgi import Settings, compose
from voyagr_wsgi.ratelimit import RateLimitSettings

SETTINGS = Settings(
    trusted_proxies=(ipaddress.ip_network("10.0.0.0/8"),),
    allowed_hosts=("example.com",),
    enforce_https=True,
    ratelimit=RateLimitSettings(requests=1_000_000_000),  # every request allowed
)

LAYERS = [
    "ProxyTrust",
    "HostCheck",
    "HTTPSRedirect",
    "SecurityHeaders",
    "CrossOriginProtection",
    "RateLimit",
    "Metrics",
    "Probe",
]
PEER_OF = {
    "ProxyTrust": "werkzeug ProxyFix",
    "SecurityHeaders": "secure headers",
    "RateLimit": "limits fixed window",
    "Metrics": "prometheus_client",
}


def build_layer(name: str) -> tuple[Any, str]:
    """The layer as ``compose(app, SETTINGS)`` would build it, bound to the bare app."""
    from voyagr_wsgi import layers
    from voyagr_wsgi.areas import build_context

    note = ""
    for layer in build_context(SETTINGS).layers:
        if type(layer).__name__ == name:
            break
    else:
        layer, note = getattr(layers, name)(), "disabled by settings: built with defaults"
    return layer.bind(bare_app), note


def test_bare_app_direct(benchmark: Any) -> None:
    run_wsgi(benchmark, "bare (direct)", bare_app, DIRECT, group="1 bare", baseline=None)


def test_bare_app_proxied(benchmark: Any) -> None:
    run_wsgi(benchmark, "bare (proxied)", bare_app, PROXIED, group="1 bare", baseline=None)


@pytest.mark.parametrize("name", LAYERS)
def test_voyagr_layer_alone(benchmark: Any, name: str) -> None:
    app, note = build_layer(name)
    proxied = name == "ProxyTrust"
    run_wsgi(
        benchmark,
        name,
        app,
        PROXIED if proxied else DIRECT,
        group="2 one layer",
        baseline="bare (proxied)" if proxied else "bare (direct)",
        peer=PEER_OF.get(name),
        note=note,
    )


def test_voyagr_default_stack(benchmark: Any) -> None:
    stack = compose(bare_app, SETTINGS)
    names = ",".join(type(layer).__name__ for layer in stack.layers)
    run_wsgi(
        benchmark,
        "voyagr default stack",
        stack,
        PROXIED,
        group="3 stack",
        baseline="bare (proxied)",
        peer="peer composite",
        note=names,
    )


PEERS = {
    "werkzeug ProxyFix": (peers.proxy_fix, PROXIED, "bare (proxied)"),
    "secure headers": (peers.secure_headers, DIRECT, "bare (direct)"),
    "limits fixed window": (peers.limits_layer, DIRECT, "bare (direct)"),
    "limits moving window": (
        lambda app: peers.limits_layer(app, "moving"),
        DIRECT,
        "bare (direct)",
    ),
    "prometheus_client": (peers.prometheus_layer, DIRECT, "bare (direct)"),
    "peer composite": (peers.composite, PROXIED, "bare (proxied)"),
}


@pytest.mark.parametrize("name", list(PEERS))
def test_peer(benchmark: Any, name: str) -> None:
    wrap, pool, baseline = PEERS[name]
    group = "3 stack" if name == "peer composite" else "4 peers"
    run_wsgi(benchmark, name, wrap(bare_app), pool, group=group, baseline=baseline)


def test_proxytrust_with_a_small_client_set(benchmark: Any) -> None:
    """Diagnostic: the same layer when its per-chain cache holds every client (1,000)."""
    app, note = build_layer("ProxyTrust")
    run_wsgi(
        benchmark,
        "ProxyTrust, 1,000 clients (diagnostic)",
        app,
        PROXIED[:1000] * 10,
        group="2 one layer",
        baseline="bare (proxied)",
        peer="werkzeug ProxyFix",
        note=note or "10 passes over 1,000 clients: cache hits",
    )


def test_voyagr_default_stack_with_a_small_client_set(benchmark: Any) -> None:
    """Diagnostic: the default stack when ProxyTrust's chain cache holds every client."""
    stack = compose(bare_app, SETTINGS)
    run_wsgi(
        benchmark,
        "voyagr default stack, 1,000 clients (diagnostic)",
        stack,
        PROXIED[:1000] * 10,
        group="3 stack",
        baseline="bare (proxied)",
        peer="peer composite",
        note="10 passes over 1,000 clients",
    )
