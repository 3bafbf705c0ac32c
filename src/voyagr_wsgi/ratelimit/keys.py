"""Client keys for rate limiting: the trusted client IP, IPv6 grouped by prefix.

The address comes from :func:`voyagr_wsgi.request.client_ip` (ProxyTrust's result, else
``REMOTE_ADDR``), never from a forwarded header. IPv4 addresses are used as given (a compact
``str``). An IPv6 client controls at least a /64, so a per-/128 limit is trivially evaded
(jsocol/django-ratelimit#175): IPv6 addresses are grouped by ``ipv6_prefix`` bits (default
64) into a key such as ``"20010db8000100020000000000000000/64"``. IPv4-mapped addresses
(``::ffff:192.0.2.1``) become the IPv4 address. A zone id (``fe80::1%eth0``) is ignored.

:class:`AllowList` matches clients that are never limited (monitoring, office networks).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable

from ..errors import ConfigurationError

__all__ = ["AllowList", "ipv6_grouper"]

_MAPPED = b"\x00" * 10 + b"\xff\xff"
_CACHE_MAX = 8192


def ipv6_grouper(prefix: int = 64) -> Callable[[str], str]:
    """A function mapping an IPv6 address string to its ``/prefix`` key."""
    if not isinstance(prefix, int) or not 1 <= prefix <= 128:
        raise ConfigurationError(f"ipv6_prefix={prefix!r}: must be an integer from 1 to 128")
    full, bits = divmod(prefix, 8)
    mask = (0xFF << (8 - bits)) & 0xFF if bits else 0
    suffix = f"/{prefix}"
    pad = b"\x00" * (16 - full - (1 if bits else 0))

    cache: dict[str, str] = {}  # repeat clients cost one lookup; bounded, cleared when full

    def compute(address: str) -> str:
        try:
            packed = socket.inet_pton(socket.AF_INET6, address.partition("%")[0])
        except (OSError, ValueError):
            return address  # not an address (a unix socket peer): use it as given
        if packed[:12] == _MAPPED:
            return socket.inet_ntop(socket.AF_INET, packed[12:])
        head = packed[:full]
        if bits:
            head += bytes((packed[full] & mask,))
        return (head + pad).hex() + suffix

    def group(address: str) -> str:
        key = cache.get(address)
        if key is None:
            key = compute(address)
            if len(cache) >= _CACHE_MAX:
                cache.clear()
            cache[address] = key
        return key

    return group


class AllowList:
    """Client addresses never limited: CIDRs, IPv4-mapped IPv6 matched as IPv4, cached."""

    __slots__ = ("_cache", "networks")

    def __init__(self, items: Iterable[str]) -> None:
        networks = []
        for item in items:
            try:
                networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                raise ConfigurationError(
                    f"RateLimit allow: {item!r} is not an IP address or CIDR network"
                ) from None
        self.networks = tuple(networks)
        self._cache: dict[str, bool] = {}

    def __bool__(self) -> bool:
        return bool(self.networks)

    def __contains__(self, ip: str) -> bool:
        cache = self._cache
        hit = cache.get(ip)
        if hit is None:
            try:
                address = ipaddress.ip_address(ip.partition("%")[0])
            except ValueError:
                hit = False
            else:
                mapped = getattr(address, "ipv4_mapped", None)
                address = mapped or address
                hit = any(address in net for net in self.networks)
            if len(cache) >= 4096:
                cache.clear()
            cache[ip] = hit
        return hit
