"""Parsing for ProxyTrust: RFC 7239 ``Forwarded`` elements and ``X-Forwarded-*`` lists.

Pure functions that know nothing of WSGI. Each returns ``None`` (or an empty string for an
optional value) instead of raising on malformed input; results are cached per input string
with small bounded LRU caches, so a repeat client costs a dict lookup.

Grammar (RFC 7239 §4)::

    Forwarded   = 1#forwarded-element
    forwarded-element = [ forwarded-pair ] *( ";" [ forwarded-pair ] )
    forwarded-pair = token "=" value          value = token / quoted-string
    node     = nodename [ ":" node-port ]     nodename = IPv4address / "[" IPv6address "]"
                                                       / "unknown" / obfnode
    obfnode  = "_" 1*( ALPHA / DIGIT / "." / "_" / "-" )

Values that RFC 7239 wants quoted (IPv6, ports) are accepted unquoted too: every value is
validated by what it must be (an IP, ``http``/``https``, a host) rather than by how it was
quoted, so leniency costs nothing. Parameter names are case-insensitive; a parameter given
twice makes the element malformed (§4: "MUST NOT occur more than once").
"""

from __future__ import annotations

import ipaddress
import re
import socket
from functools import lru_cache
from typing import NamedTuple

from .host_check import split_host

__all__ = [
    "UNKNOWN",
    "Hop",
    "Node",
    "forwarded_element",
    "parse_node",
    "pick",
    "valid_host",
    "valid_port",
    "valid_proto",
    "x_hop",
]


class Node(NamedTuple):
    """A hop's address: a normalised IP (``is_ip``) or an identifier (``unknown``, ``_x``)."""

    name: str
    is_ip: bool


class Hop(NamedTuple):
    """One entry of a chain; ``node`` None means the entry is malformed."""

    node: Node | None
    proto: str = ""  # "http" / "https", or "" when absent or invalid
    host: str = ""  # lower-cased host[:port], or "" when absent or invalid
    port: str = ""  # "1".."65535", or ""


UNKNOWN = Node("unknown", False)
_MALFORMED = Hop(None)

_OBF = re.compile(r"_[A-Za-z0-9._-]+")
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_VALUE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z:\[\]]+")
_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"', re.DOTALL)
_PAIR_ESCAPE = re.compile(r"\\(.)", re.DOTALL)


@lru_cache(maxsize=16384)  # ~2 MiB at most: the clients of the last few seconds hit it
def parse_node(value: str) -> Node | None:
    """``192.0.2.1``, ``192.0.2.1:80``, ``[2001:db8::1]:80``, ``2001:db8::1``, ``unknown``."""
    value = value.strip()
    if not value or len(value) > 100:
        return None
    if value.startswith("["):
        end = value.find("]")
        rest = value[end + 1 :]
        if end == -1 or (rest and not (rest[0] == ":" and _node_port(rest[1:]))):
            return None
        try:
            return Node(str(ipaddress.IPv6Address(value[1:end])), True)
        except ValueError:
            return None
    name = value
    if value.count(":") == 1:
        name, _, port = value.partition(":")
        if not _node_port(port):
            return None
    if name.lower() == "unknown":
        return UNKNOWN
    if ipv4_int(name) is not None:  # the common case, without the ipaddress module
        return Node(name, True)
    if _OBF.fullmatch(name):
        return Node(name, False)
    try:
        return Node(str(ipaddress.ip_address(name)), True)
    except ValueError:
        return None


def ipv4_int(name: str) -> int | None:
    """A canonical dotted-quad IPv4 address as an int (``inet_pton``, strict), else None."""
    try:
        packed = socket.inet_pton(socket.AF_INET, name)
    except (OSError, ValueError):
        return None
    if socket.inet_ntop(socket.AF_INET, packed) != name:  # leading zeros: not canonical
        return None
    return int.from_bytes(packed, "big")


def _node_port(port: str) -> bool:
    return bool(_OBF.fullmatch(port)) or valid_port(port) != ""


def valid_port(port: str) -> str:
    """The port as a canonical decimal string when it is 1..65535, else ""."""
    port = port.strip()
    if not port.isdigit() or not port.isascii() or len(port) > 5:
        return ""
    number = int(port)
    return str(number) if 0 < number < 65536 else ""


def valid_proto(proto: str) -> str:
    proto = proto.strip().lower()
    return proto if proto in ("http", "https") else ""


def valid_host(host: str) -> str:
    host = host.strip()
    return host.lower() if host and split_host(host) is not None else ""


@lru_cache(maxsize=1024)
def forwarded_element(element: str) -> Hop:
    """One ``Forwarded`` element (``for=...;proto=...;host=...``) as a :class:`Hop`."""
    params: dict[str, str] = {}
    for pair in element.split(";"):
        pair = pair.strip()
        if not pair:
            continue
        name, eq, value = pair.partition("=")
        name = name.strip().lower()
        value = value.strip()
        if not eq or not _TOKEN.fullmatch(name) or name in params:
            return _MALFORMED
        if value.startswith('"'):
            quoted = _QUOTED.fullmatch(value)
            if quoted is None:
                return _MALFORMED
            value = _PAIR_ESCAPE.sub(r"\1", quoted.group(1))
        elif not _VALUE.fullmatch(value):
            return _MALFORMED
        params[name] = value
    if not params:
        return _MALFORMED
    node = parse_node(params["for"]) if "for" in params else UNKNOWN
    if node is None:
        return _MALFORMED
    return Hop(
        node,
        valid_proto(params.get("proto", "")),
        valid_host(params.get("host", "")),
    )


def pick(values: list[str], from_right: int) -> str:
    """The value ``from_right`` places from the right, or the left-most of a shorter list."""
    if not values:
        return ""
    return values[-from_right] if from_right <= len(values) else values[0]


def x_hop(value: str, protos: list[str], hosts: list[str], ports: list[str], r: int) -> Hop:
    """The ``X-Forwarded-For`` entry ``value``, ``r`` places from the right, as a Hop."""
    node = parse_node(value)
    if node is None:
        return _MALFORMED
    return Hop(
        node,
        valid_proto(pick(protos, r)),
        valid_host(pick(hosts, r)),
        valid_port(pick(ports, r)),
    )
