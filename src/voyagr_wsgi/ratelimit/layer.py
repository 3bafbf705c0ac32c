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
                                    exempt=["/static/*"], allow=["192.0.2.0/24"]))
    application = RateLimit(app, "100/60s", burst=20)      # standalone

Algorithm: GCRA (:mod:`.gcra`), one TAT per key; ``burst`` defaults to the quota, so
``100/60s`` lets a fresh client make 100 quick requests, then one every 0.6 s.

Key: the trusted client IP (:func:`voyagr_wsgi.request.client_ip`, set by ProxyTrust; never a
forwarded header), IPv6 grouped by ``ipv6_prefix`` bits (64), or ``key(environ)`` (an API
key, a user id; returning None falls back to the IP). A key taken from an unauthenticated
header lets a client mint budgets: only key on values the client cannot choose freely.
``cost`` is an int or ``cost(environ) -> int`` units per request.

Paths (``rules``, ``exempt``): exact (``/login``, also ``/login/``) or a prefix ending in
``/*`` (``/static/*``), matched against the normalised ``SCRIPT_NAME + PATH_INFO``
(:func:`voyagr_wsgi.request.request_path`): ``//login`` and ``/a/../login`` are ``/login``.
See :mod:`voyagr_wsgi.ratelimit.rules`.

Stacked rates: a spec may join several rates with ``;`` (``"10/1s;1000/1h"``, as
Flask-Limiter writes them); every one applies, in one atomic store decision (all allowed and
spent, or none), policies named ``default``, ``default-2``... Both fields list every policy;
a 429 comes from the one with the longest wait. Rules take the same syntax.

Stores: :class:`~.memory.MemoryStore` (default, per process, bounded by ``max_keys``) or
:class:`~.redis_store.RedisStore`. When the store fails, ``failure="open"`` (default) lets the
request through without RateLimit fields, ``"closed"`` answers 503
(``temporary-reduced-capacity``), ``"local"`` decides in a per-process memory store until the
shared store answers again (each worker then enforces the limit alone: at most N x the limit
over N workers, instead of no limit at all). The body is never buffered: headers are added through a
wrapped ``start_response`` and the app's iterable (and its ``close()``) is returned as is.

Counting: decisions go to ``counters=`` (a :class:`voyagr_wsgi.counters.Counters`; one of the
layer's own without it, ``layer.counters``) per policy (a stacked spec under its first
policy's name): ``allowed`` by a C-level tick on the request path (about 20-40 ns),
``denied`` and ``error`` (a store failure) off it; a 429 also counts as the rejection
``ratelimit``/``quota-exceeded``, a ``failure="closed"`` 503 as ``store-unavailable``.
``explain`` counts nothing. A composed stack exposes them as
``voyagr_ratelimit_decisions_total`` (:mod:`voyagr_wsgi.metrics.prometheus`).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal

from .._layer import Layer
from .._wsgi import Environ, Headers, StartResponse, WSGIApplication
from ..counters import Counters
from ..errors import ConfigurationError, StorageError
from ..layers._paths import PathPatterns
from ..request import CLIENT_IP, client_ip, request_path
from .gcra import Policy, step
from .keys import AllowList, ipv6_grouper
from .memory import MemoryStore
from .responses import CompiledPolicy, legacy_fields, unavailable
from .rules import Rule, build_policies, check_burst
from .spec import Rate, parse_rates
from .store import MultiStore, Store

__all__ = ["RateLimit"]

_SEP = "\x1f"


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
        failure: Literal["open", "closed", "local"] = "open",
        counters: Counters | None = None,
    ) -> None:
        if isinstance(app, str | Rate):
            app, spec = None, app
        if spec is None:
            raise ConfigurationError("RateLimit: a spec such as '100/60s' is required")
        if store is None:
            store = MemoryStore(max_keys=max_keys)
        self._init(
            app,
            dict(
                spec=spec,
                burst=burst,
                name=name,
                key=key,
                ipv6_prefix=ipv6_prefix,
                rules=tuple(rules),
                exempt=tuple(exempt),
                allow=tuple(allow),
                cost=cost,
                store=store,
                max_keys=max_keys,
                headers=headers,
                legacy_headers=legacy_headers,
                failure=failure,
            ),
        )
        if not isinstance(store, Store):
            raise ConfigurationError(f"RateLimit: store={store!r} has no update()/clear()")
        if failure not in ("open", "closed", "local"):
            raise ConfigurationError(
                f"RateLimit: failure={failure!r}; use 'open', 'closed' or 'local'"
            )
        if not (callable(cost) or (isinstance(cost, int) and cost >= 0)):
            raise ConfigurationError(f"RateLimit: cost={cost!r}; use an int >= 0 or a callable")
        rates = parse_rates(spec, setting="RateLimit spec")
        self.default = _compile(build_policies(name, rates, check_burst(burst, "burst")), "", None)
        self.rules = [
            (
                PathPatterns([r.path], setting="RateLimit rules (RATE_LIMIT_ROUTES)"),
                _compile(ps, ps[0].name + _SEP, r.methods),
            )
            for r in rules
            for ps in (r.policies(),)
        ]
        stacked = [c for c in (self.default, *(c for _, c in self.rules)) if c.extra]
        if stacked and not isinstance(store, MultiStore):
            raise ConfigurationError(
                f"RateLimit: {stacked[0].policy.name!r} stacks several rates, but the store "
                f"{store!r} has no update_many()"
            )
        #: decisions counted per policy: ``allowed`` (a C-level tick), ``denied``, ``error``
        self.counters = counters if counters is not None else Counters()
        for compiled in (self.default, *(c for _, c in self.rules)):
            compiled.allowed = self.counters.allowed_counter(compiled.policy.name)
        self.store = store
        self._update = store.update
        self.exempt = PathPatterns(exempt, setting="RateLimit exempt (RATE_LIMIT_EXEMPT_PATHS)")
        self._routing = bool(self.rules) or bool(self.exempt)
        self.allow = AllowList(allow)
        self._allowing = bool(self.allow)
        self._key = key
        self._group6 = ipv6_grouper(ipv6_prefix)
        self._cost = cost if isinstance(cost, int) else 1
        self._cost_fn = None if isinstance(cost, int) else cost
        self._headers = headers
        self._legacy = legacy_headers
        self._closed = failure == "closed"
        #: failure="local": where decisions go while the shared store is down
        self._fallback = MemoryStore(max_keys=max_keys) if failure == "local" else None
        self._simple = not (
            self._routing or self._allowing or key or self._cost_fn or self.default.extra
        )
        if isinstance(cost, int) and not self.default.policy.can_ever_allow(cost):
            raise ConfigurationError(f"RateLimit: cost={cost} exceeds the burst, never allowed")

    # -- request path -----------------------------------------------------------------
    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        if self._simple:  # one policy, keyed by the client IP, fixed cost: no lookups
            compiled = self.default
            ip = environ.get(CLIENT_IP)
            if ip is None:
                ip = client_ip(environ)
            key = self._group6(ip) if ":" in ip else ip
            cost = self._cost
        else:
            found = self._request_key(environ)
            if found is None:
                nxt = self._next
                return nxt(environ, start_response)
            compiled, key, cost = found
            if compiled.extra:
                return self._stacked(environ, start_response, compiled, key, cost)
        interval = compiled.interval
        tolerance = compiled.tolerance
        try:
            update = self._update
            allowed, offset = update(key, interval, tolerance, cost)
        except StorageError:
            self._count_error(compiled)
            if self._fallback is not None:
                allowed, offset = self._fallback.update(key, interval, tolerance, cost)
            elif self._closed:
                return unavailable(start_response)
            else:
                nxt = self._next
                return nxt(environ, start_response)
        if not allowed:
            self._count_denied(compiled)
            return compiled.denied(offset, cost, start_response, legacy=self._legacy)
        tick = compiled.allowed  # slot members read into locals before the call: a method
        tick()  # lookup on a slot is not specialised (voyagr_wsgi._layer.direct_call)
        if not self._headers:
            nxt = self._next
            return nxt(environ, start_response)
        # RateLimit: r = units left now, t = whole seconds until r next grows (draft -11);
        # compiled.fields(left, reset), its cache hit inline
        state = compiled.state
        left, reset = state(offset)
        extra = compiled.cache.get(left + reset * (compiled.burst + 1))
        if extra is None:
            extra = compiled.fields(left, reset)
        if self._legacy:
            extra = extra + legacy_fields(compiled.policy, left, offset)

        def start_with_fields(
            status: str, headers: Headers, exc_info: Any = None
        ) -> Callable[[bytes], object]:
            return start_response(status, headers + extra, exc_info)

        nxt = self._next
        return nxt(environ, start_with_fields)

    def _count_denied(self, compiled: CompiledPolicy) -> None:
        self.counters.decision(compiled.policy.name, "denied")
        self.counters.rejection("ratelimit", "quota-exceeded")

    def _count_error(self, compiled: CompiledPolicy) -> None:
        self.counters.decision(compiled.policy.name, "error")
        if self._closed and self._fallback is None:
            self.counters.rejection("ratelimit", "store-unavailable")

    def explain(self, environ: Environ) -> dict[str, Any]:
        """The policy (or stacked policies), key and budget left for a request, and what the
        request path would answer: its own ``__call__`` run detached over a store that peeks
        (cost 0) and decides with :func:`.gcra.step`, so nothing is spent."""
        found = self._request_key(environ)
        if found is None:
            return {"outcome": "passes", "reason": "exempt path or allow-listed client"}
        compiled, key, cost = found
        parts = (compiled, *compiled.extra)
        detail: dict[str, Any] = {
            "policy": ", ".join(p.policy.name for p in parts),
            "rate": ";".join(str(p.policy.rate) for p in parts),
            "burst": compiled.burst,
            "key": key,
            "cost": cost,
        }
        store = _Peek(self.store)
        fallback = None if self._fallback is None else _Peek(self._fallback)
        seen, status, headers = self._run_detached(
            dict(environ),
            store=store,
            _update=store.update,
            _fallback=fallback,
            counters=Counters(),  # a peek is no decision: counted nowhere
            default=_quiet(self.default),
            rules=[(patterns, _quiet(c)) for patterns, c in self.rules],
        )
        peeked = (fallback if fallback is not None and fallback.offsets else store).offsets
        if store.error is not None:
            then = "failure policy " + ("closed" if self._closed else "open")
            if fallback is not None:
                then = "deciding in this process"
            detail["reason"] = f"store unavailable ({store.error}), {then}"
        if peeked:
            detail["remaining"] = min(p.state(o)[0] for p, o in zip(parts, peeked, strict=True))
        if seen is not None:
            return {"outcome": "passes", **detail}
        sent = dict(headers)
        if "Retry-After" in sent or status.startswith("429"):
            detail["retry_after"] = int(sent["Retry-After"]) if "Retry-After" in sent else None
        return {"outcome": "answers", "status": status, **detail}

    def _decide_many(
        self, compiled: CompiledPolicy, key: str, cost: int
    ) -> tuple[bool, list[float]]:
        """One atomic decision over a stacked spec's policies (StorageError passes up)."""
        items = [(p.suffix, p.interval, p.tolerance) for p in (compiled, *compiled.extra)]
        try:
            return self.store.update_many(key, items, cost)  # type: ignore[attr-defined, no-any-return]
        except StorageError:
            if self._fallback is None:
                raise
            return self._fallback.update_many(key, items, cost)

    def _stacked(
        self,
        environ: Environ,
        start_response: StartResponse,
        compiled: CompiledPolicy,
        key: str,
        cost: int,
    ) -> Iterable[bytes]:
        """A stacked spec ("10/1s;1000/1h"): every policy must allow the request."""
        parts = (compiled, *compiled.extra)
        try:
            allowed, offsets = self._decide_many(compiled, key, cost)
        except StorageError:
            self._count_error(compiled)
            if self._closed:
                return unavailable(start_response)
            nxt = self._next
            return nxt(environ, start_response)
        if not allowed:
            # the policy furthest over its tolerance (the longest wait) answers; chosen by
            # excess, never from an empty list (Redis rounds to whole microseconds)
            _, worst, offset = max(
                ((o + cost * p.interval - p.tolerance, p, o)
                 for p, o in zip(parts, offsets, strict=True)),
                key=lambda d: d[0],
            )  # fmt: skip
            self._count_denied(compiled)
            return worst.denied(offset, cost, start_response, legacy=self._legacy)
        compiled.allowed()
        if not self._headers:
            nxt = self._next
            return nxt(environ, start_response)
        fields = [p.fields_at(o) for p, o in zip(parts, offsets, strict=True)]
        extra = [
            ("RateLimit-Policy", ", ".join(f[0][1] for f in fields)),
            ("RateLimit", ", ".join(f[1][1] for f in fields)),
        ]
        if self._legacy:  # the X-RateLimit-* of the policy with the least left
            tightest = min(
                zip(parts, offsets, strict=True), key=lambda po: po[0].policy.remaining(po[1])
            )
            extra += legacy_fields(
                tightest[0].policy, tightest[0].policy.remaining(tightest[1]), tightest[1]
            )

        def start_with_fields(
            status: str, headers: Headers, exc_info: Any = None
        ) -> Callable[[bytes], object]:
            return start_response(status, headers + extra, exc_info)

        nxt = self._next
        return nxt(environ, start_with_fields)

    def _request_key(self, environ: Environ) -> tuple[CompiledPolicy, str, int] | None:
        """(policy, store key, cost) of a request, or None when it is exempt or allowed."""
        compiled = self.default
        if self._routing:
            routed = self._route(environ)
            if routed is None:
                return None
            compiled = routed
        ip = environ.get(CLIENT_IP)
        if ip is None:
            ip = client_ip(environ)
        if self._allowing and ip in self.allow:
            return None
        key = None if self._key is None else self._key(environ)
        if key is None:
            key = self._group6(ip) if ":" in ip else ip
        if compiled.prefix:
            key = compiled.prefix + key
        cost = self._cost if self._cost_fn is None else max(0, int(self._cost_fn(environ)))
        return compiled, key, cost

    def _route(self, environ: Environ) -> CompiledPolicy | None:
        """The rule for this request, the default policy, or None when the path is exempt."""
        path = request_path(environ)
        if self.exempt and self.exempt(path):
            return None
        method = environ.get("REQUEST_METHOD", "GET")
        for matches, rule in self.rules:
            if matches(path) and (rule.methods is None or method in rule.methods):
                return rule
        return self.default


class _Peek:
    """A stand-in store for :meth:`RateLimit.explain`: answers ``update``/``update_many`` as
    the real store would for that cost, from the store's own peek (cost 0, nothing written)
    and the reference :func:`.gcra.step`; keeps the peeked offsets and a StorageError."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.offsets: list[float] = []
        self.error: StorageError | None = None

    def update(self, key: str, interval: float, tolerance: float, cost: int) -> tuple[bool, float]:
        allowed, offsets = self.update_many(key, [("", interval, tolerance)], cost, single=True)
        return allowed, offsets[0]

    def update_many(
        self,
        key: str,
        items: Sequence[tuple[str, float, float]],
        cost: int,
        *,
        single: bool = False,
    ) -> tuple[bool, list[float]]:
        try:
            if single:
                self.offsets = [self.store.update(key, items[0][1], items[0][2], 0)[1]]
            else:
                self.offsets = list(self.store.update_many(key, items, 0)[1])
        except StorageError as exc:
            self.error = exc
            raise
        steps = [step(o, 0.0, i, t, cost) for o, (_, i, t) in zip(self.offsets, items, strict=True)]
        allowed = all(s[0] for s in steps)
        return allowed, [s[2] for s in steps] if allowed else list(self.offsets)


def _quiet(compiled: CompiledPolicy) -> CompiledPolicy:
    """A copy of ``compiled`` whose allowed tick counts nowhere (for :meth:`explain`)."""
    quiet = copy.copy(compiled)
    quiet.allowed = int
    return quiet


def _compile(
    policies: tuple[Policy, ...], prefix: str, methods: tuple[str, ...] | None
) -> CompiledPolicy:
    """The first policy, carrying the stacked others (their keys: ``<key>:<name>``)."""
    first = CompiledPolicy(policies[0], prefix, methods)
    extra = []
    for policy in policies[1:]:
        compiled = CompiledPolicy(policy, prefix, methods)
        compiled.suffix = ":" + policy.name
        extra.append(compiled)
    first.extra = tuple(extra)
    return first
