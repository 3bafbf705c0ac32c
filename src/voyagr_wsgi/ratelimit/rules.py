"""Per-route rules and path matching for the rate-limit layer.

A :class:`Rule` gives a path (and optionally some methods) its own policy and budget, e.g. a
tight limit on a login form::

    RateLimit("100/60s", rules=[Rule("/login", "5/60s", methods=("POST",))])

The first matching rule wins; a request no rule matches uses the layer's default policy.
Rule budgets are separate from the default budget (keys are ``<rule name>\\x1f<client>``).

Path patterns (rules and ``exempt``) follow the one path grammar of
:mod:`voyagr_wsgi.layers._paths`: ``"/login"`` is that path (and ``/login/``), never
``/loginx`` or ``/login/x``; ``"/api/*"`` is everything under ``/api/``. They match the
normalised request path (:func:`voyagr_wsgi.request.request_path`), so ``//login`` and
``/./login`` spend the ``/login`` budget. (Before this grammar, ``"/api"`` also covered
``/api/...`` and ``"/api/"`` was a prefix: write ``"/api/*"`` now; ``"/api/"`` is an error.)
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ConfigurationError
from .gcra import Policy
from .spec import Rate, parse_rates

__all__ = ["Rule"]


@dataclass(frozen=True, slots=True)
class Rule:
    """``path`` (see the module docs) limited to ``spec``; ``methods`` None = all methods."""

    path: str
    spec: str | Rate
    burst: int | None = None
    name: str | None = None
    methods: tuple[str, ...] | None = None

    def policy(self) -> Policy:
        return self.policies()[0]

    def policies(self) -> tuple[Policy, ...]:
        """The rule's policy, plus one per stacked rate (``"5/60s;20/1h"``)."""
        rates = parse_rates(self.spec, setting=f"Rule({self.path!r}).spec")
        name = self.name or self.path.strip("/").replace("/", "-") or "root"
        return build_policies(name, rates, check_burst(self.burst, f"Rule({self.path!r}).burst"))


def build_policies(name: str, rates: tuple[Rate, ...], burst: int | None) -> tuple[Policy, ...]:
    """``name`` for the first rate (with ``burst``), ``name-2``, ``name-3``... for the others
    (each with its quota as its burst)."""
    first = Policy.build(name, rates[0], burst)
    return (first, *(Policy.build(f"{name}-{i}", r) for i, r in enumerate(rates[1:], 2)))


def check_burst(burst: int | None, setting: str) -> int | None:
    if burst is not None and (not isinstance(burst, int) or burst < 1):
        raise ConfigurationError(f"{setting}={burst!r}: must be an integer >= 1")
    return burst
