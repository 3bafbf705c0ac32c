"""Per-route rules and path matching for the rate-limit layer.

A :class:`Rule` gives a path (and optionally some methods) its own policy and budget, e.g. a
tight limit on a login form::

    RateLimit("100/60s", rules=[Rule("/login", "5/60s", methods=("POST",))])

The first matching rule wins; a request no rule matches uses the layer's default policy.
Rule budgets are separate from the default budget (keys are ``<rule name>\\x1f<client>``).

Path patterns (rules and ``exempt``): ``"/login"`` matches ``/login`` and everything under
``/login/``, never ``/loginx``; a pattern ending in ``/`` matches that prefix.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..errors import ConfigurationError
from .gcra import Policy
from .spec import Rate, parse_rates

__all__ = ["PathMatcher", "Rule"]


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


class PathMatcher:
    """Exact-or-under matching of a request path against several patterns."""

    __slots__ = ("exact", "prefixes")

    def __init__(self, patterns: Iterable[str], setting: str) -> None:
        exact: set[str] = set()
        prefixes: list[str] = []
        for pattern in patterns:
            if not isinstance(pattern, str) or not pattern.startswith("/"):
                raise ConfigurationError(f"{setting}: {pattern!r} must be a path starting '/'")
            if pattern.endswith("/"):
                prefixes.append(pattern)
            else:
                exact.add(pattern)
                prefixes.append(pattern + "/")
        self.exact = frozenset(exact)
        self.prefixes = tuple(prefixes)

    def __bool__(self) -> bool:
        return bool(self.prefixes)

    def __call__(self, path: str) -> bool:
        return path in self.exact or path.startswith(self.prefixes)
