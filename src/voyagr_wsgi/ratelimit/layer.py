"""``RateLimit``: GCRA rate limiting per client, with the IETF ``RateLimit`` fields.

When: in front of any app that must not be hammered by one client (a login form, an API).
It answers ``429 Too Many Requests`` with ``Retry-After`` (RFC 9110 §10.2.3, whole seconds,
>= 1), the ``RateLimit-Policy`` and ``RateLimit`` fields of draft-ietf-httpapi-ratelimit-
headers-11 and an ``application/problem+json`` body (RFC 9457, problem type
``quota-exceeded``); allowed responses carry the two RateLimit fields too (``headers=False``
turns that off; ``legacy_headers=True`` adds ``X-RateLimit-Limit/-Remaining/-Reset``, Reset
being seconds until the bucket is full)::

    from voyagr_wsgi.layers import ProxyTrust, RateLimit
    from voyagr_wsgi.ratelimit import Rule
    application = compose(app, ProxyTrust(trusted=["10.0.0.0/8"]),
                          RateLimit("100/60s", rules=[Rule("/login", "5/60s")],
                                    exempt=["/static/"], allow=["192.0.2.0/24"]))
    application = RateLimit(app, "100/60s", burst=20)      # standalone

Algorithm: GCRA (:mod:`.gcra`), one TAT per key; ``burst`` defaults to the quota, so
``100/60s`` lets a fresh client make 100 quick requests, then one every 0.6 s.

Key: the trusted client IP (:func:`voyagr_wsgi.request.client_ip`, set by ProxyTrust; never a
forwarded header), IPv6 grouped by ``ipv6_prefix`` bits (64), or ``key(environ)`` (an API
key, a user id; returning None falls back to the IP). A key taken from an unauthenticated
header lets a client mint budgets: only key on values the client cannot choose freely.
``cost`` is an int or ``cost(environ) -> int`` units per request.

Stores: :class:`~.memory.MemoryStore` (default, per process, bounded by ``max_keys``) or
:class:`~.redis_store.RedisStore`. When the store fails, ``failure="open"`` (default) lets the
request through without RateLimit fields, ``"closed"`` answers 503
(``temporary-reduced-capacity``). The body is never buffered: headers are added through a
wrapped ``start_response`` and the app's iterable (and its ``close()``) is returned as is.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal

from .._layer import Layer
from .._wsgi import Environ, Headers, StartResponse, WSGIApplication
from ..errors import ConfigurationError, StorageError
from ..request import CLIENT_IP, client_ip, request_path
from .gcra import Policy
from .keys import ipv6_grouper
from .memory import MemoryStore
from .rules import PathMatcher, Rule, check_burst
from .spec import Rate, parse_rate
from .store import Store

__all__ = ["RateLimit"]

log = logging.getLogger("voyagr_wsgi.ratelimit")

PROBLEM = "https://iana.org/assignments/http-problem-types#"
_ceil = math.ceil
_SEP = "\x1f"


class _Compiled:
    """A policy plus everything its responses need, built once."""

    __slots__ = (
        "burst", "cache", "denied_body", "interval", "methods", "policy", "policy_header",
        "prefix", "quoted", "tolerance",
    )

    def __init__(self, policy: Policy, prefix: str, methods: tuple[str, ...] | None) -> None:
        self.policy = policy
        self.interval = policy.interval
        self.tolerance = policy.tolerance
        self.burst = policy.burst
        self.cache: dict[int, Headers] = {}  # left + reset * (burst + 1) -> fields
        self.prefix = prefix
        self.methods = frozenset(m.upper() for m in methods) if methods else None
        self.quoted = json.dumps(policy.name)
        self.policy_header = (
            "RateLimit-Policy",
            f"{self.quoted};q={policy.rate.quota};w={policy.window_header}",
        )
        problem = {
            "type": PROBLEM + "quota-exceeded",
            "title": "Quota Exceeded",
            "status": 429,
            "violated-policies": [policy.name],
        }
        self.denied_body = json.dumps(problem, separators=(",", ":")).encode()

    def fields(self, left: int, reset: int) -> Headers:
        """The two RateLimit fields for ``r=left;t=reset`` (a bounded cache of shared lists:
        never mutate the result)."""
        code = left + reset * (self.burst + 1)
        fields = self.cache.get(code)
        if fields is None:
            if len(self.cache) >= 4096:
                self.cache.clear()
            fields = [self.policy_header, ("RateLimit", f"{self.quoted};r={left};t={reset}")]
            self.cache[code] = fields
        return fields


class RateLimit(Layer):
    """GCRA rate limit: ``RateLimit(app, "100/60s")`` or unbound ``RateLimit("100/60s")``."""

    def __init__(
        self,
        app: WSGIApplication | str | Rate | None = None,
        spec: str | Rate | None = None,
        /,
        *,
        burst: int | None = None,
        name: str = "default",
        key: Callable[[Environ], str | None] | None = None,
        ipv6_prefix: int = 64,
        rules: Sequence[Rule] = (),
        exempt: Iterable[str] = (),
        allow: Iterable[str] = (),
        cost: int | Callable[[Environ], int] = 1,
        store: Store | None = None,
        max_keys: int = 1_000_000,
        headers: bool = True,
        legacy_headers: bool = False,
        failure: Literal["open", "closed"] = "open",
    ) -> None:
        if isinstance(app, str | Rate):
            app, spec = None, app
        if spec is None:
            raise ConfigurationError("RateLimit: a spec such as '100/60s' is required")
        if store is None:
            store = MemoryStore(max_keys=max_keys)
        self._init(
            app,
            dict(spec=spec, burst=burst, name=name, key=key, ipv6_prefix=ipv6_prefix,
                 rules=tuple(rules), exempt=tuple(exempt), allow=tuple(allow), cost=cost,
                 store=store, max_keys=max_keys, headers=headers,
                 legacy_headers=legacy_headers, failure=failure),
        )
        if not isinstance(store, Store):
            raise ConfigurationError(f"RateLimit: store={store!r} has no update()/clear()")
        if failure not in ("open", "closed"):
            raise ConfigurationError(f"RateLimit: failure={failure!r}; use 'open' or 'closed'")
        if not (callable(cost) or (isinstance(cost, int) and cost >= 0)):
            raise ConfigurationError(f"RateLimit: cost={cost!r}; use an int >= 0 or a callable")
        rate = parse_rate(spec, setting="RateLimit spec")
        self.default = _Compiled(Policy.build(name, rate, check_burst(burst, "burst")), "", None)
        self.rules = [
            (PathMatcher([r.path], "RateLimit rules"), _Compiled(p, p.name + _SEP, r.methods))
            for r in rules
            for p in (r.policy(),)
        ]
        self.store = store
        self._update = store.update
        self.exempt = PathMatcher(exempt, "RateLimit exempt")
        self._routing = bool(self.rules) or bool(self.exempt)
        self.allow = tuple(_network(a) for a in allow)
        self._allowed_cache: dict[str, bool] = {}
        self._key = key
        self._group6 = ipv6_grouper(ipv6_prefix)
        self._cost = cost if isinstance(cost, int) else 1
        self._cost_fn = None if isinstance(cost, int) else cost
        self._headers = headers
        self._legacy = legacy_headers
        self._closed = failure == "closed"
        self._unavailable = json.dumps(
            {"type": PROBLEM + "temporary-reduced-capacity",
             "title": "Temporary Reduced Capacity", "status": 503},
            separators=(",", ":"),
        ).encode()
        if isinstance(cost, int) and not self.default.policy.can_ever_allow(cost):
            raise ConfigurationError(f"RateLimit: cost={cost} exceeds the burst, never allowed")

    def bind(self, app: WSGIApplication) -> RateLimit:
        options = dict(self._options)
        return type(self)(app, options.pop("spec"), **options)

    @classmethod
    def from_settings(cls, settings: Any, context: Any) -> RateLimit | None:
        from .config import layer_from_settings

        return layer_from_settings(cls, settings, context)

    # -- request path -----------------------------------------------------------------
    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        if self._routing:
            routed = self._route(environ)
            if routed is None:
                return self.app(environ, start_response)
            compiled = routed
        else:
            compiled = self.default
        ip = environ.get(CLIENT_IP)
        if ip is None:
            ip = client_ip(environ)
        if self.allow and self._is_allowed(ip):
            return self.app(environ, start_response)
        key = None if self._key is None else self._key(environ)
        if key is None:
            key = self._group6(ip) if ":" in ip else ip
        if compiled.prefix:
            key = compiled.prefix + key
        cost = self._cost if self._cost_fn is None else max(0, int(self._cost_fn(environ)))
        interval = compiled.interval
        try:
            allowed, offset = self._update(key, interval, compiled.tolerance, cost)
        except StorageError:
            if self._closed:
                return self._unavailable_response(start_response)
            return self.app(environ, start_response)
        if not allowed:
            return self._denied(compiled, offset, cost, start_response)
        if not self._headers:
            return self.app(environ, start_response)
        # RateLimit: r = units left now, t = whole seconds until r next grows (draft -11)
        left = int((compiled.tolerance - offset) / interval)
        if left >= compiled.burst:
            reset = 0
        else:
            wait = offset - compiled.tolerance + (left + 1) * interval
            reset = _ceil(wait - 1e-9) if wait > 1e-9 else 1
        extra = compiled.cache.get(left + reset * (compiled.burst + 1))
        if extra is None:
            extra = compiled.fields(left, reset)
        if self._legacy:
            extra = extra + self._legacy_fields(compiled.policy, left, offset)

        def start_with_fields(
            status: str, headers: Headers, exc_info: Any = None
        ) -> Callable[[bytes], object]:
            return start_response(status, headers + extra, exc_info)

        return self.app(environ, start_with_fields)

    def _route(self, environ: Environ) -> _Compiled | None:
        """The rule for this request, the default policy, or None when the path is exempt."""
        path = request_path(environ)
        if self.exempt and self.exempt(path):
            return None
        method = environ.get("REQUEST_METHOD", "GET")
        for matches, rule in self.rules:
            if matches(path) and (rule.methods is None or method in rule.methods):
                return rule
        return self.default

    # -- helpers ----------------------------------------------------------------------
    def _denied(
        self, compiled: _Compiled, offset: float, cost: int, start_response: StartResponse
    ) -> list[bytes]:
        policy = compiled.policy
        headers: Headers = [
            ("Content-Type", "application/problem+json"),
            ("Cache-Control", "no-store"),
            ("Content-Length", str(len(compiled.denied_body))),
        ]
        left = policy.remaining(offset)
        if policy.can_ever_allow(cost):
            retry = policy.retry_after(offset, cost)
            headers.append(("Retry-After", str(retry)))
        else:  # this request can never fit the burst: retrying will not help
            retry = policy.reset_after(offset)
        headers += [compiled.policy_header, ("RateLimit", f"{compiled.quoted};r={left};t={retry}")]
        if self._legacy:
            headers += self._legacy_fields(policy, left, offset)
        log.debug("rate limited: policy %s, retry after %s s", policy.name, retry)
        start_response("429 Too Many Requests", headers)
        return [compiled.denied_body]

    @staticmethod
    def _legacy_fields(policy: Policy, left: int, offset: float) -> Headers:
        return [
            ("X-RateLimit-Limit", str(policy.rate.quota)),
            ("X-RateLimit-Remaining", str(left)),
            ("X-RateLimit-Reset", str(math.ceil(offset - 1e-9) if offset > 0 else 0)),
        ]

    def _unavailable_response(self, start_response: StartResponse) -> list[bytes]:
        start_response(
            "503 Service Unavailable",
            [("Content-Type", "application/problem+json"), ("Cache-Control", "no-store"),
             ("Retry-After", "1"), ("Content-Length", str(len(self._unavailable)))],
        )
        return [self._unavailable]

    def _is_allowed(self, ip: str) -> bool:
        cache = self._allowed_cache
        hit = cache.get(ip)
        if hit is None:
            try:
                address = ipaddress.ip_address(ip.partition("%")[0])
            except ValueError:
                hit = False
            else:
                mapped = getattr(address, "ipv4_mapped", None)
                address = mapped or address
                hit = any(address in net for net in self.allow)
            if len(cache) >= 4096:
                cache.clear()
            cache[ip] = hit
        return hit


def _network(item: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        return ipaddress.ip_network(item, strict=False)
    except ValueError:
        raise ConfigurationError(
            f"RateLimit allow: {item!r} is not an IP address or CIDR network"
        ) from None
