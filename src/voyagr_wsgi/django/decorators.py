"""Per-view decorators: ``voyagr_limit``, ``voyagr_exempt``, ``voyagr_csrf_exempt``.

``@voyagr_limit("5/minute")`` gives a view its own budget per client (stacked rates
``"10/1s;100/1h"`` allowed, all enforced), decided in the stack's rate-limit store (memory or
Redis, ``RATE_LIMIT_STORAGE``) that :func:`voyagr_wsgi.django.wrap` hands to the request.
Over budget it answers ``429`` with ``Retry-After``, the ``RateLimit-Policy`` / ``RateLimit``
fields and an RFC 9457 ``application/problem+json`` body (problem type ``quota-exceeded``),
as the RateLimit layer does; an allowed response carries the view's RateLimit fields. The
key is the trusted client IP (IPv6 by /64) or ``key(request) -> str | None``. With
``RATE_LIMIT_ENABLED=false`` the decorators do nothing; without ``wrap`` (Django's test
client) they decide in a per-process memory store. A store that fails lets the request
through (logged), like the layer's default ``failure="open"``.

``group="export"`` makes the views of one group share a budget (django-ratelimit's
``group``). Class-based views: ``method_decorator(voyagr_limit("5/m"), name="dispatch")``.

``@voyagr_exempt``: the view is exempt from the stack's global RateLimit layer.
``@voyagr_csrf_exempt``: the view is exempt from voyagr's ``CrossOriginProtection`` (a
webhook); Django's own ``csrf_exempt`` is separate (use both when ``CsrfViewMiddleware`` is
on). Both layers run before Django's URL resolution: ``wrap`` finds the view by resolving the
path with Django's resolver before the stack runs (see :mod:`.urls`), only when some view
carries the mark. The mark must be on what the URLconf holds: for a class-based view, wrap
the ``as_view()`` result (``path("hook/", voyagr_csrf_exempt(Hook.as_view()))``).
"""

from __future__ import annotations

import functools
import json
import logging
import re
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from ..errors import ConfigurationError, StorageError
from ..ratelimit.gcra import Policy
from ..ratelimit.keys import ipv6_grouper
from ..ratelimit.responses import PROBLEM, CompiledPolicy
from ..ratelimit.rules import build_policies, check_burst
from ..ratelimit.spec import Rate, parse_rates
from ..ratelimit.store import MultiStore, Store
from ..request import client_ip

__all__ = ["STORE", "voyagr_csrf_exempt", "voyagr_exempt", "voyagr_limit"]

log = logging.getLogger("voyagr_wsgi.ratelimit")

V = TypeVar("V", bound=Callable[..., Any])

#: environ key of the stack's rate-limit store (None: rate limiting is off), set by ``wrap``
STORE = "voyagr.ratelimit_store"
_MISSING = object()
_SEP = "\x1f"
_fallback: list[Store] = []  # the per-process store used without ``wrap``, made on first use


def _mark(view: V, attribute: str) -> V:
    @functools.wraps(view)
    def marked(*args: Any, **kwargs: Any) -> Any:
        return view(*args, **kwargs)

    setattr(marked, attribute, True)
    return marked  # type: ignore[return-value]


def voyagr_exempt(view: V) -> V:
    """Exempt ``view`` from the stack's global RateLimit layer (a ``voyagr_limit`` on it
    still applies)."""
    return _mark(view, "voyagr_exempt")


def voyagr_csrf_exempt(view: V) -> V:
    """Exempt ``view`` from voyagr's ``CrossOriginProtection`` (webhooks)."""
    return _mark(view, "voyagr_csrf_exempt")


def voyagr_limit(
    spec: str | Rate,
    *,
    burst: int | None = None,
    name: str | None = None,
    key: Callable[[Any], str | None] | None = None,
    methods: Iterable[str] | None = None,
    group: str | None = None,
    ipv6_prefix: int = 64,
) -> Callable[[V], V]:
    """Limit a view to ``spec`` per client with its own budget; see the module docs.

    ``name``: the policy name in the fields (default: the view's name); ``methods``: only
    these methods count (default all); ``group``: views decorated with the same group share
    one budget (django-ratelimit's ``group``; give them the same spec)."""
    rates = parse_rates(spec, setting="voyagr_limit")
    burst = check_burst(burst, "voyagr_limit(burst=)")
    group6 = ipv6_grouper(ipv6_prefix)
    only = frozenset(m.upper() for m in methods) if methods is not None else None

    def decorate(view: V) -> V:
        policy_name = name or re.sub(r"[^\x20-\x7e]", "_", view.__name__)[:64] or "view"
        policies = build_policies(policy_name, rates, burst)
        owner = f"group:{group}" if group else f"view:{view.__module__}.{view.__qualname__}"
        prefix = owner + _SEP  # the budget: one per view, or one per group
        compiled = [CompiledPolicy(p, prefix, None) for p in policies]
        for part in compiled[1:]:
            part.suffix = ":" + part.policy.name
        items = [(p.suffix, p.interval, p.tolerance) for p in compiled]
        first = compiled[0]

        @functools.wraps(view)
        def limited(request: Any, *args: Any, **kwargs: Any) -> Any:
            if only is not None and request.method not in only:
                return view(request, *args, **kwargs)
            environ = request.META
            store = environ.get(STORE, _MISSING)
            if store is None:  # RATE_LIMIT_ENABLED=false in the stack
                return view(request, *args, **kwargs)
            if store is _MISSING:
                store = _process_store()
            client = key(request) if key is not None else None
            if client is None:
                ip = client_ip(environ)
                client = group6(ip) if ":" in ip else ip
            try:
                if len(compiled) == 1:
                    allowed, offset = store.update(prefix + client, first.interval,
                                                   first.tolerance, 1)  # fmt: skip
                    offsets = [offset]
                elif isinstance(store, MultiStore):
                    allowed, offsets = store.update_many(prefix + client, items, 1)
                else:
                    raise ConfigurationError(
                        f"voyagr_limit({spec!r}) stacks rates; the store {store!r} has no "
                        "update_many()"
                    )
            except StorageError as exc:
                log.warning("voyagr_limit on %s: store unavailable (%s), not limited",
                            policy_name, exc)  # fmt: skip
                return view(request, *args, **kwargs)
            decided = list(zip(compiled, offsets, strict=True))
            if not allowed:
                worst, offset = max(decided, key=lambda d: d[1] + d[0].interval - d[0].tolerance)
                return _quota_exceeded(worst, offset)
            response = view(request, *args, **kwargs)
            fields = [part.fields_at(offset) for part, offset in decided]
            _append(response, "RateLimit-Policy", ", ".join(f[0][1] for f in fields))
            _append(response, "RateLimit", ", ".join(f[1][1] for f in fields))
            return response

        return limited  # type: ignore[return-value]

    return decorate


def _process_store() -> Store:
    if not _fallback:
        from ..ratelimit.memory import MemoryStore

        _fallback.append(MemoryStore())
    return _fallback[0]


def _append(response: Any, name: str, value: str) -> None:
    """Add a list-valued field, after what the response has (another decorator's)."""
    existing = response.get(name)
    response[name] = f"{existing}, {value}" if existing else value


def _quota_exceeded(compiled: CompiledPolicy, offset: float) -> Any:
    """The 429 for a request of cost 1 denied at ``offset = TAT - now``: RFC 9457
    problem+json (``quota-exceeded``), ``Retry-After``, the policy's RateLimit fields."""
    from django.http import HttpResponse

    policy: Policy = compiled.policy
    retry = policy.retry_after(offset, 1)
    body = json.dumps(
        {"type": PROBLEM + "quota-exceeded", "title": "Quota Exceeded", "status": 429,
         "violated-policies": [policy.name]},
        separators=(",", ":"),
    ).encode()  # fmt: skip
    response = HttpResponse(body, status=429, content_type="application/problem+json")
    response["Cache-Control"] = "no-store"
    response["Retry-After"] = str(retry)
    for field_name, value in compiled.fields(policy.remaining(offset), retry):
        response[field_name] = value
    return response
