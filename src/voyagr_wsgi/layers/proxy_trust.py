"""ProxyTrust: resolve the client IP, scheme and host once, trusting only declared proxies.

Put it outermost. Every other layer (host check, redirect, HSTS, CSRF, rate limit, admin)
reads its result through :mod:`voyagr_wsgi.request`; none parses a forwarded header::

    from voyagr_wsgi.layers import ProxyTrust
    application = ProxyTrust(app, trusted=["10.0.0.0/8", "fd00::/8"])

or ``TRUSTED_PROXIES=10.0.0.0/8,fd00::/8`` with ``compose(app, Settings.from_env())``.

**Nothing is trusted by default**: the client is ``REMOTE_ADDR``, the scheme
``wsgi.url_scheme``, the host ``HTTP_HOST`` (Django's ``USE_X_FORWARDED_HOST=False``).
Forwarded headers are read only when the immediate peer (``REMOTE_ADDR``) is inside one of
the ``trusted`` networks; IPv4-mapped IPv6 peers (``::ffff:10.0.0.2``) match IPv4 networks.

Headers: ``headers="x-forwarded"`` (the default, ``TRUSTED_PROXY_HEADERS``) reads
``X-Forwarded-For`` / ``-Proto`` / ``-Host`` / ``-Port``, which PaaS routers, nginx and most
load balancers write; ``"forwarded"`` reads RFC 7239 ``Forwarded``; ``"auto"`` prefers
``Forwarded`` when present. Pick the one your proxy writes: in ``auto`` mode a client could
send a ``Forwarded`` header a proxy that only writes ``X-Forwarded-For`` passes through
untouched, which is why ``auto`` is not the default. The proxy must overwrite or append
to that header, never pass a client's value on alone.

The chain is walked **right to left**, each entry being the peer of the hop that wrote it,
and the walk stops at the first address outside ``trusted``: that entry is the client (the
left-most values are whatever the client sent, werkzeug#290). If every entry is trusted the
left-most one is the client. Scheme and host come from the same hop as the client: the
``Forwarded`` element's ``proto=`` / ``host=``, or the ``X-Forwarded-Proto`` / ``-Host`` /
``-Port`` value at the same position from the right (the left-most one when the list is
shorter, which covers an edge proxy that sets them once). A proto other than ``http`` /
``https``, a host failing the Host syntax check or a port outside 1-65535 is ignored.

``Forwarded`` values follow RFC 7239 §4-6: quoted strings, ``for="[2001:db8::1]:4711"``,
ports, and the identifiers ``unknown`` and ``_obfuscated``. An identifier ends the walk and
becomes the client "address" as written (``"unknown"``, ``"_hidden"``): a trusted proxy's
own address is never used for a client it could not name, so a proxy on loopback cannot
make an unnamed client look local. A malformed entry ends the walk too: the client is the
last hop that could be identified (the peer itself when the first entry is malformed).
Malformed input never raises.

Results: ``voyagr.client_ip``, ``voyagr.scheme``, ``voyagr.host`` (lower-cased) are set on
every request. When a trusted proxy changed them, ``REMOTE_ADDR``, ``wsgi.url_scheme``,
``HTTP_HOST`` (and ``SERVER_NAME`` / ``SERVER_PORT`` with the host) are rewritten for the app,
as werkzeug's ``ProxyFix`` does. From an untrusted peer every forwarded header is removed
from the environ (waitress ``clear_untrusted_proxy_headers``), and so are ``X-Real-IP`` and
``X-Forwarded-Prefix`` / ``-Ssl`` / ``-Scheme`` / ``-Server``, which this layer never reads;
from a trusted peer the family not consulted (``Forwarded`` or ``X-Forwarded-*``) is
removed. The original values of everything rewritten or removed are kept in
``environ["voyagr.proxy_trust.orig"]`` (a dict, set on every request).

``prefix=True`` (``TRUSTED_PROXY_PREFIX``, off by default) also honours ``X-Forwarded-Prefix``
from a trusted peer, for an app served under a path its proxy strips (werkzeug's
``x_prefix``): the right-most entry (the one the trusted proxy wrote) is prepended to
``SCRIPT_NAME``, so URLs the app builds, redirects included, keep the prefix. It must be a
plain absolute path (``/app``, ``/a/b``): no ``//``, no ``.`` or ``..`` segment, no ``%``,
nothing outside the RFC 3986 path characters; anything else is ignored. Turn it on only when
the proxy sets the header itself (overwriting or appending to a client's value).

Unix-socket peers (``REMOTE_ADDR`` empty) cannot be matched by a network and are never
trusted. The per-peer trust decision and each resolved chain (keyed by the header values)
are cached in bounded dicts, so a repeat client costs a dict lookup. The common case, one
``X-Forwarded-For`` entry from a trusted router (with at most ``X-Forwarded-Proto``), needs
no chain at all: it is resolved inline, about 0.8 us per request (``make bench``).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Literal

from .._layer import Layer
from .._wsgi import Environ, StartResponse, WSGIApplication
from ..errors import ConfigurationError
from ..request import CLIENT_IP, HOST, SCHEME, hostname
from ..request import host as request_host
from ._forwarded import Hop, forwarded_element, ipv4_int, parse_node, x_hop

if TYPE_CHECKING:
    import ipaddress

    Network = ipaddress.IPv4Network | ipaddress.IPv6Network

__all__ = ["ORIG", "ProxyTrust"]

ORIG = "voyagr.proxy_trust.orig"
HeaderMode = Literal["auto", "forwarded", "x-forwarded"]

_X_KEYS = (
    "HTTP_X_FORWARDED_FOR",
    "HTTP_X_FORWARDED_PROTO",
    "HTTP_X_FORWARDED_HOST",
    "HTTP_X_FORWARDED_PORT",
)
#: never read here, but spoofable when a client sends them: removed from untrusted peers
_OTHER_KEYS = (
    "HTTP_X_REAL_IP",
    "HTTP_X_FORWARDED_PREFIX",
    "HTTP_X_FORWARDED_SSL",
    "HTTP_X_FORWARDED_SCHEME",
    "HTTP_X_FORWARDED_SERVER",
)
_ALL_KEYS = ("HTTP_FORWARDED", *_X_KEYS, *_OTHER_KEYS)
_PREFIX_KEY = "HTTP_X_FORWARDED_PREFIX"
#: an X-Forwarded-Prefix worth believing: segments of RFC 3986 pchar, without "%"
_PREFIX_RE = re.compile(r"(?:/[A-Za-z0-9._~!$&'()*+,;=:@-]+)+/?|/")
_CACHE_MAX = 1024
_CACHE_CHARS = 512  # longer header sets are resolved every time, never cached
_MAX_HOPS = 64  # a longer chain is cut: its 65th entry from the right is never read
#: X-Forwarded-Proto values -> the proto a one-hop chain takes (valid_proto of the last)
_LAST_PROTO: dict[str | None, str] = {
    None: "", "": "", "http": "http", "https": "https", "HTTPS": "https", "HTTP": "http",
}  # fmt: skip


class ProxyTrust(Layer):
    """Resolve client IP / scheme / host, reading forwarded headers from trusted peers only."""

    def __init__(
        self,
        app: WSGIApplication | None = None,
        /,
        *,
        trusted: Iterable[str | Network] = (),
        headers: HeaderMode = "x-forwarded",
        prefix: bool = False,
    ) -> None:
        networks = tuple(_network(item) for item in trusted)
        self._init(app, {"trusted": networks, "headers": headers, "prefix": prefix})
        self.prefix = prefix
        if headers not in ("auto", "forwarded", "x-forwarded"):
            raise ConfigurationError(
                f"ProxyTrust headers={headers!r}: accepts 'auto', 'forwarded' or 'x-forwarded'"
            )
        self.trusted = networks
        self.headers = headers
        self._x_only = headers == "x-forwarded"
        self._v4 = tuple(n for n in networks if n.version == 4)
        self._v4_ranges = tuple((int(n.network_address), int(n.netmask)) for n in self._v4)
        self._v6 = tuple(n for n in networks if n.version == 6)
        self._cache: dict[str, bool] = {}
        self._chains: dict[tuple[str, ...], tuple[str, Hop | None]] = {}

    def is_trusted(self, address: str) -> bool:
        """True when ``address`` (an IP string, a port allowed) is inside a trusted network."""
        decision = self._cache.get(address)
        if decision is None:
            decision = self._match(address)
            if len(self._cache) >= _CACHE_MAX:
                self._cache.clear()
            self._cache[address] = decision
        return decision

    def _match(self, address: str) -> bool:
        node = parse_node(address)
        if node is None or not node.is_ip:
            return False
        as_int = ipv4_int(node.name)
        if as_int is not None:  # integer masks: no ipaddress objects on the hot path
            return any(as_int & mask == net for net, mask in self._v4_ranges)
        ip = ipaddress.ip_address(node.name)
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        networks = self._v4 if ip.version == 4 else self._v6
        return any(ip in net for net in networks)

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        peer = environ.get("REMOTE_ADDR") or ""
        url_scheme = environ.get("wsgi.url_scheme") or "http"
        raw_host = environ.get("HTTP_HOST")
        orig: dict[str, str | None] = {
            "REMOTE_ADDR": peer,
            "wsgi.url_scheme": url_scheme,
            "HTTP_HOST": raw_host,
        }
        environ[ORIG] = orig
        host = raw_host.lower() if raw_host else _plain_host(environ)
        trusted = self._cache.get(peer)  # is_trusted(peer), its cache hit inline
        if trusted is None:
            trusted = bool(self.trusted) and bool(peer) and self.is_trusted(peer)
        if not trusted:
            for key in _ALL_KEYS:
                if key in environ:
                    orig[key] = environ.pop(key)
            environ[CLIENT_IP] = peer
            environ[SCHEME] = url_scheme
            environ[HOST] = host
            nxt = self._next
            return nxt(environ, start_response)
        xff = environ.get("HTTP_X_FORWARDED_FOR")
        if (
            not self._x_only
            or not xff
            or "," in xff
            or environ.get("HTTP_X_FORWARDED_HOST")
            or environ.get("HTTP_X_FORWARDED_PORT")
        ):
            return self._trusted(environ, start_response, peer, url_scheme, host, orig)
        # The common case inline: one X-Forwarded-For entry (a PaaS router in front) and at
        # most X-Forwarded-Proto. The walk is that entry alone, trusted or not; what
        # _trusted would compute, without building its hop record.
        node = parse_node(xff)
        xfp = environ.get("HTTP_X_FORWARDED_PROTO")
        proto = _LAST_PROTO.get(xfp)
        if node is None or proto is None:  # malformed entry, unusual proto: the full path
            return self._trusted(environ, start_response, peer, url_scheme, host, orig)
        if "HTTP_FORWARDED" in environ:
            orig["HTTP_FORWARDED"] = environ.pop("HTTP_FORWARDED")
        client = node.name
        scheme = proto or url_scheme
        environ[CLIENT_IP] = client
        environ[SCHEME] = scheme
        environ[HOST] = host
        if client != peer:
            environ["REMOTE_ADDR"] = client
        if scheme != url_scheme:
            environ["wsgi.url_scheme"] = scheme
        if self.prefix and _PREFIX_KEY in environ:
            _apply_prefix(environ, orig)
        nxt = self._next
        return nxt(environ, start_response)

    def explain(self, environ: Environ) -> dict[str, Any]:
        """The peer, whether it is trusted, and the client IP, scheme and host resolved for
        the next layers (``environ`` is updated as the request path would update it)."""
        peer = environ.get("REMOTE_ADDR") or ""
        seen, _, _ = self._run_detached(dict(environ))
        if seen is None:  # pragma: no cover - ProxyTrust never answers itself
            raise AssertionError("ProxyTrust answered a request")
        environ.clear()
        environ.update(seen)
        removed = [k for k in seen.get(ORIG, {}) if k not in ("REMOTE_ADDR", "wsgi.url_scheme")]
        return {
            "outcome": "passes",
            "peer": peer,
            "peer_trusted": bool(self.trusted) and bool(peer) and self.is_trusted(peer),
            "headers": self.headers,
            "client_ip": seen[CLIENT_IP],
            "scheme": seen[SCHEME],
            "host": seen[HOST],
            "removed": [k for k in removed if k != "HTTP_HOST"],
        }

    def _trusted(
        self,
        environ: Environ,
        start_response: StartResponse,
        peer: str,
        url_scheme: str,
        host: str,
        orig: dict[str, str | None],
    ) -> Iterable[bytes]:
        mode = self.headers
        if mode == "forwarded" or (mode == "auto" and environ.get("HTTP_FORWARDED")):
            key: tuple[str, ...] = (peer, environ.get("HTTP_FORWARDED") or "")
            dropped: tuple[str, ...] = _X_KEYS
        else:
            key = (peer, *[environ.get(k) or "" for k in _X_KEYS])
            dropped = ("HTTP_FORWARDED",)
        xff = key[1] if len(key) == 5 else ""
        found: tuple[str, Hop | None] | None
        if xff and "," not in xff:
            # One hop (a PaaS router in front): the walk is that entry alone, whether or not
            # it is itself trusted, so resolve it directly: no cache, no trust lookup.
            hop = x_hop(xff, _split(key[2]), _split(key[3]), _split(key[4]), 1)
            found = (peer, None) if hop.node is None else (hop.node.name, hop)
        else:
            found = self._chains.get(key)
        if found is None:
            found = self._walk_forwarded(*key) if len(key) == 2 else self._walk_x_forwarded(*key)
            if sum(map(len, key)) <= _CACHE_CHARS:
                if len(self._chains) >= _CACHE_MAX:
                    self._chains.clear()
                self._chains[key] = found
        client, chosen = found
        for header in dropped:
            if header in environ:
                orig[header] = environ.pop(header)
        scheme = url_scheme
        new_host = host
        if chosen is not None:
            scheme = chosen.proto or url_scheme
            new_host = chosen.host or host
            if chosen.port:
                name = hostname(new_host)
                default = "443" if scheme == "https" else "80"
                new_host = name if chosen.port == default else f"{name}:{chosen.port}"
        environ[CLIENT_IP] = client
        environ[SCHEME] = scheme
        environ[HOST] = new_host
        if client != peer:
            environ["REMOTE_ADDR"] = client
        if scheme != url_scheme:
            environ["wsgi.url_scheme"] = scheme
        if new_host != host:
            orig["SERVER_NAME"] = environ.get("SERVER_NAME")
            orig["SERVER_PORT"] = environ.get("SERVER_PORT")
            name = hostname(new_host)
            environ["HTTP_HOST"] = new_host
            environ["SERVER_NAME"] = name
            port = new_host[len(name) + 1 :]
            environ["SERVER_PORT"] = port or ("443" if scheme == "https" else "80")
        if self.prefix and _PREFIX_KEY in environ:
            _apply_prefix(environ, orig)
        nxt = self._next
        return nxt(environ, start_response)

    def _walk_forwarded(self, peer: str, header: str) -> tuple[str, Hop | None]:
        elements = header.split(",")
        return self._walk(peer, len(elements), lambda i: forwarded_element(elements[i]))

    def _walk_x_forwarded(
        self, peer: str, xff: str, proto: str, host: str, port: str
    ) -> tuple[str, Hop | None]:
        fors = _split(xff) or [peer]
        protos, hosts, ports = _split(proto), _split(host), _split(port)
        n = len(fors)
        return self._walk(peer, n, lambda i: x_hop(fors[i], protos, hosts, ports, n - i))

    def _walk(self, peer: str, n: int, hop_at: Callable[[int], Hop]) -> tuple[str, Hop | None]:
        """Right-to-left: (client address, the hop record that names the client)."""
        client = peer
        chosen: Hop | None = None
        for i in range(n - 1, max(n - _MAX_HOPS, 0) - 1, -1):
            hop = hop_at(i)
            if hop.node is None:  # malformed: the last identified hop stays the client
                break
            chosen = hop
            client = hop.node.name
            if not hop.node.is_ip or not self.is_trusted(client):
                break
        return client, chosen


def _apply_prefix(environ: Environ, orig: dict[str, str | None]) -> None:
    """Prepend the trusted proxy's ``X-Forwarded-Prefix`` (its right-most entry) to
    ``SCRIPT_NAME``; a value that is not a plain absolute path is ignored."""
    value = str(environ[_PREFIX_KEY]).rsplit(",", 1)[-1].strip()
    if not _PREFIX_RE.fullmatch(value) or any(seg in (".", "..") for seg in value.split("/")):
        return
    script_name = environ.get("SCRIPT_NAME", "")
    orig["SCRIPT_NAME"] = script_name
    environ["SCRIPT_NAME"] = value.rstrip("/") + script_name
    environ.pop("voyagr.path", None)  # request.request_path(): computed again from the new one


def _split(value: str | None) -> list[str]:
    return value.split(",") if value else []


def _plain_host(environ: Environ) -> str:
    """The host from SERVER_NAME/SERVER_PORT when the request carried no Host header."""
    saved = environ.pop(HOST, None)
    value = request_host(environ)
    if saved is not None:
        environ[HOST] = saved
    return value


def _network(item: str | Network) -> Network:
    if isinstance(item, ipaddress.IPv4Network | ipaddress.IPv6Network):
        return item
    try:
        return ipaddress.ip_network(str(item).strip(), strict=False)
    except ValueError:
        raise ConfigurationError(
            f"TRUSTED_PROXIES (trusted): {item!r} is not an IP address or CIDR network "
            "(accepts e.g. 10.0.0.0/8, 192.0.2.7, ::1)"
        ) from None
