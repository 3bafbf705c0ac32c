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
- ``voyagr.path``: the normalised request path (:func:`request_path`), computed once.

The request path: every layer matches paths against one normalised path, so no spelling of
a path reaches a route while escaping its rule (``//login``, ``/./login``, ``/a/../login``;
gunicorn decodes ``%2F`` in the request target, so ``/%2Flogin`` arrives as ``//login``).
:func:`request_path` is ``SCRIPT_NAME + PATH_INFO`` with repeated slashes collapsed and dot
segments resolved (RFC 3986 §5.2.4; ``..`` never climbs above the mount point or the root),
what werkzeug's router and most servers do. A trailing slash is kept (``/login/``); the path
rules of :mod:`voyagr_wsgi.layers._paths` cover it. It is what operator path rules match:
``HTTPS_REDIRECT_EXEMPT``, ``CSRF_EXEMPT_PATHS``, ``RATE_LIMIT_EXEMPT_PATHS``,
``RATE_LIMIT_ROUTES``, SecurityHeaders ``routes``. :func:`app_path` is the same
normalisation of ``PATH_INFO`` alone: the path below the mount point the app routes on,
which the library's own endpoints (``Probe``, ``Admin``) and the metrics route templates
match, like the app's own routes. Neither is written back: the app sees ``PATH_INFO`` as
the server delivered it. An ordinary path (no ``//``, no ``/.``) is returned as it is,
so the normalisation costs two substring checks per request.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from ._wsgi import Environ

__all__ = [
    "CLIENT_IP",
    "HOST",
    "PATH",
    "REQUEST_ID",
    "ROUTE",
    "SCHEME",
    "app_path",
    "client_ip",
    "environ_key",
    "host",
    "hostname",
    "is_loopback_host",
    "is_loopback_ip",
    "normalize_path",
    "prefix_needle",
    "request_path",
    "scheme",
]

CLIENT_IP = "voyagr.client_ip"
SCHEME = "voyagr.scheme"
HOST = "voyagr.host"
REQUEST_ID = "voyagr.request_id"
ROUTE = "voyagr.route"
PATH = "voyagr.path"


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


def is_loopback_ip(ip: str) -> bool:
    """True for 127.0.0.0/8, ``::1`` and IPv4-mapped loopback (``::ffff:127.0.0.1``, what a
    server bound to ``[::]`` reports for a local IPv4 client); a zone (``%lo``) is ignored."""
    try:
        address = ipaddress.ip_address(ip.partition("%")[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


@lru_cache(maxsize=1024)
def is_loopback_host(host_value: str) -> bool:
    """True for ``localhost``, ``*.localhost`` and loopback IP literals (:func:`is_loopback_ip`:
    127.0.0.0/8, ``[::1]``, ``[::ffff:127.0.0.1]``); the port is ignored."""
    name = hostname(host_value).rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    return is_loopback_ip(name.strip("[]"))


def environ_key(header: str) -> str:
    """The environ key of a request header (PEP 3333 / CGI): ``X-Forwarded-For`` ->
    ``HTTP_X_FORWARDED_FOR``; ``Content-Type`` and ``Content-Length`` have no ``HTTP_``."""
    key = header.strip().upper().replace("-", "_")
    return key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else "HTTP_" + key


def normalize_path(path: str) -> str:
    """``path`` with repeated slashes collapsed and ``.``/``..`` segments resolved, ``..``
    never above the root; a trailing slash is kept, ``""`` becomes ``"/"``.

    ``//a/./b/../c/`` -> ``/a/c/``; ``/../login`` -> ``/login``; an ordinary path is
    returned as it is (the same object)."""
    if path and "//" not in path and "/." not in path:
        return path if path[0] == "/" else "/" + path
    kept: list[str] = []
    segments = path.split("/")
    for segment in segments:
        if segment == "..":
            if kept:
                kept.pop()
        elif segment and segment != ".":
            kept.append(segment)
    result = "/" + "/".join(kept)
    if kept and segments[-1] in ("", ".", ".."):
        result += "/"
    return result


def prefix_needle(prefix: str) -> str:
    """What every spelling of a path under ``prefix`` contains: its last segment
    (``/api/production/`` -> ``production``; ``""`` for ``/``, which every path contains).

    Normalising keeps or drops whole segments and never makes one, so a path without it cannot
    normalise to anything under the prefix: one ``in`` per request instead of normalising."""
    return prefix.rstrip("/").rpartition("/")[2]


def request_path(environ: Environ) -> str:
    """The normalised ``SCRIPT_NAME + PATH_INFO`` (see the module docs), computed once per
    request and kept in ``environ["voyagr.path"]``; a layer that rewrites ``SCRIPT_NAME`` or
    ``PATH_INFO`` (ProxyTrust's ``X-Forwarded-Prefix``) drops that key."""
    path = environ.get(PATH)
    if path is None:
        path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
        if not path or "//" in path or "/." in path:
            script = environ.get("SCRIPT_NAME", "")
            info = environ.get("PATH_INFO", "")
            path = (normalize_path(script).rstrip("/") if script else "") + (
                normalize_path(info) if info else ""
            ) or "/"
        environ[PATH] = path
    return path


def app_path(environ: Environ) -> str:
    """The normalised ``PATH_INFO``: the path below the mount point, as the app routes it
    (``..`` never climbs above the mount). Not cached: ordinary paths cost two substring
    checks."""
    path: str = environ.get("PATH_INFO", "")
    if "//" in path or "/." in path:
        return normalize_path(path)
    return path
