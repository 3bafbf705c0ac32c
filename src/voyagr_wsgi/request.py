"""The one resolved view of a request that every layer reads.

:class:`~voyagr_wsgi.layers.ProxyTrust` resolves the client IP, scheme and host once per
request and stores them under these environ keys. Every other layer reads them through the
accessors below, which fall back to the plain WSGI values (``REMOTE_ADDR``,
``wsgi.url_scheme``, ``HTTP_HOST``) when no ProxyTrust layer is in front: no layer ever
parses a forwarded header itself.

Keys:

- ``voyagr.client_ip``: the client address (str), e.g. ``"203.0.113.9"``.
- ``voyagr.scheme``: ``"http"`` or ``"https"``.
- ``voyagr.host``: the Host as sent (``host[:port]``), lower-cased.
- ``voyagr.request_id``: the request id (set by the metrics / access-log layer).
- ``voyagr.route``: a route template (``/users/<id>``) set by the app or a route helper.
- ``voyagr.csp_nonce``: a lazily created CSP nonce (see ``SecurityHeaders``).
- ``voyagr.exception``: an exception the app handled itself (a framework that turns a view's
  exception into a 500 page sets it); the Metrics layer records it for a 5xx response.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from ._wsgi import Environ

__all__ = [
    "CLIENT_IP",
    "EXCEPTION",
    "HOST",
    "REQUEST_ID",
    "ROUTE",
    "SCHEME",
    "client_ip",
    "environ_key",
    "host",
    "hostname",
    "is_loopback_host",
    "request_path",
    "scheme",
]

CLIENT_IP = "voyagr.client_ip"
SCHEME = "voyagr.scheme"
HOST = "voyagr.host"
REQUEST_ID = "voyagr.request_id"
ROUTE = "voyagr.route"
EXCEPTION = "voyagr.exception"


def client_ip(environ: Environ) -> str:
    """The trusted client address: ProxyTrust's result, else ``REMOTE_ADDR``."""
    ip = environ.get(CLIENT_IP)
    if ip is None:
        ip = environ.get("REMOTE_ADDR") or ""
    return ip


def scheme(environ: Environ) -> str:
    """The trusted scheme: ProxyTrust's result, else ``wsgi.url_scheme``."""
    value = environ.get(SCHEME)
    if value is None:
        value = environ.get("wsgi.url_scheme", "http")
    return value  # type: ignore[no-any-return]


def host(environ: Environ) -> str:
    """The trusted ``host[:port]``: ProxyTrust's result, else ``HTTP_HOST`` (or SERVER_NAME)."""
    value = environ.get(HOST)
    if value is None:
        value = environ.get("HTTP_HOST")
        if not value:
            name = environ.get("SERVER_NAME", "")
            port = environ.get("SERVER_PORT", "")
            default = "443" if scheme(environ) == "https" else "80"
            value = name if port in ("", default) else f"{name}:{port}"
        value = value.lower()
    return value


def hostname(host_value: str) -> str:
    """``host[:port]`` without the port; IPv6 literals keep their brackets."""
    if host_value.startswith("["):
        end = host_value.find("]")
        return host_value[: end + 1] if end != -1 else host_value
    return host_value.rpartition(":")[0] if host_value.count(":") == 1 else host_value


@lru_cache(maxsize=1024)
def is_loopback_host(host_value: str) -> bool:
    """True for ``localhost``, ``*.localhost``, 127.0.0.0/8 and ``[::1]`` (port ignored)."""
    name = hostname(host_value).rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name.strip("[]")).is_loopback
    except ValueError:
        return False


def environ_key(header: str) -> str:
    """The environ key of a request header (PEP 3333 / CGI): ``X-Forwarded-For`` ->
    ``HTTP_X_FORWARDED_FOR``; ``Content-Type`` and ``Content-Length`` have no ``HTTP_``."""
    key = header.strip().upper().replace("-", "_")
    return key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else "HTTP_" + key


def request_path(environ: Environ) -> str:
    """``SCRIPT_NAME + PATH_INFO`` as the WSGI server decoded it (latin-1 str)."""
    return environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")  # type: ignore[no-any-return]
