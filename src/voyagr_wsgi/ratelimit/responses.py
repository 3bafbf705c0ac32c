"""What the rate-limit layer sends: RateLimit fields and the 429 / 503 problem responses.

Field syntax follows draft-ietf-httpapi-ratelimit-headers-11 (RFC 9651 structured fields):
``RateLimit-Policy: "default";q=100;w=60`` and ``RateLimit: "default";r=42;t=1``; ``t`` is
delta-seconds until more quota is available, rounded up. ``Retry-After`` is delta-seconds
(RFC 9110 §10.2.3), >= 1, equal to ``t`` on a 429. Bodies are RFC 9457 problem documents
made by :mod:`voyagr_wsgi.problem` with the draft's problem types ``quota-exceeded`` (429,
member ``violated-policies``) and ``temporary-reduced-capacity`` (503). Everything that does
not depend on the request is built once per policy: the body stays constant, and the wait
is in ``Retry-After`` and the ``RateLimit`` field.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable

from .._wsgi import Headers, StartResponse
from ..problem import CONTENT_TYPE, KINDS, body, prepare, send
from .gcra import Policy

__all__ = ["PROBLEM", "CompiledPolicy", "legacy_fields", "unavailable"]

log = logging.getLogger("voyagr_wsgi.ratelimit")

#: the IANA problem-type registry the draft's types live in
PROBLEM = KINDS["quota-exceeded"].type.partition("#")[0] + "#"
_UNAVAILABLE = prepare(
    "temporary-reduced-capacity",
    "the rate-limit store is unavailable; retry shortly",
    headers=[("Retry-After", "1")],
)


class CompiledPolicy:
    """A policy plus its constant fields and 429 body; ``prefix`` separates rule budgets."""

    __slots__ = (
        "allowed",
        "burst",
        "cache",
        "denied_body",
        "extra",
        "interval",
        "methods",
        "policy",
        "policy_header",
        "prefix",
        "quoted",
        "state",
        "suffix",
        "tolerance",
    )

    def __init__(self, policy: Policy, prefix: str, methods: tuple[str, ...] | None) -> None:
        self.policy = policy
        self.interval = policy.interval
        self.tolerance = policy.tolerance
        self.burst = policy.burst
        #: ``policy.state``: (remaining, reset) at an offset, the one field arithmetic
        self.state = policy.state
        self.cache: dict[int, Headers] = {}  # left + reset * (burst + 1) -> fields
        self.prefix = prefix
        #: the other policies of a stacked spec ("10/1s;1000/1h"), decided with this one
        self.extra: tuple[CompiledPolicy, ...] = ()
        #: ticked per allowed request (the layer swaps in its counters' tick)
        self.allowed: Callable[[], object] = int
        self.suffix = ""  # how a stacked policy's store key differs from the first one's
        self.methods = frozenset(m.upper() for m in methods) if methods else None
        self.quoted = json.dumps(policy.name)  # an sf-string: the name is printable ASCII
        self.policy_header = (
            "RateLimit-Policy",
            f"{self.quoted};q={policy.rate.quota};w={policy.window_header}",
        )
        self.denied_body = body(
            "quota-exceeded",
            f"over the {policy.name} policy's quota",
            {"violated-policies": [policy.name]},
        )

    def fields_at(self, offset: float) -> Headers:
        """The two RateLimit fields for a client at ``offset = TAT - now`` (allowed)."""
        return self.fields(*self.state(offset))

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

    def denied(
        self, offset: float, cost: int, start_response: StartResponse, *, legacy: bool
    ) -> list[bytes]:
        """Send the 429 for a request of ``cost`` denied at ``offset = TAT - now``."""
        policy = self.policy
        headers: Headers = [
            ("Content-Type", CONTENT_TYPE),
            ("Cache-Control", "no-store"),
            ("Content-Length", str(len(self.denied_body))),
        ]
        left, reset = self.state(offset)
        if policy.can_ever_allow(cost):
            retry = policy.retry_after(offset, cost)
            headers.append(("Retry-After", str(retry)))
        else:  # this request can never fit the burst: retrying will not help
            retry = reset
        headers += [self.policy_header, ("RateLimit", f"{self.quoted};r={left};t={retry}")]
        if legacy:
            headers += legacy_fields(policy, left, offset)
        log.debug("rate limited: policy %s, retry after %s s", policy.name, retry)
        start_response("429 Too Many Requests", headers)
        return [self.denied_body]


def legacy_fields(policy: Policy, left: int, offset: float) -> Headers:
    """``X-RateLimit-Limit/-Remaining/-Reset`` (Reset: seconds until the bucket is full)."""
    return [
        ("X-RateLimit-Limit", str(policy.rate.quota)),
        ("X-RateLimit-Remaining", str(left)),
        ("X-RateLimit-Reset", str(math.ceil(offset - 1e-9) if offset > 0 else 0)),
    ]


def unavailable(start_response: StartResponse) -> list[bytes]:
    """The 503 sent when the store is down and the policy is ``closed``."""
    return send(start_response, _UNAVAILABLE)
