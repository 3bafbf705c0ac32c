"""Readable rate specs: ``"100/60s"``, ``"5/minute"``, ``"1000/1h"``.

A spec is ``<quota>/<window>``: the quota is a positive integer number of requests (or cost
units), the window a positive number with an optional unit, ``s`` (default), ``m``, ``h`` or
``d``, or one of the words ``second``, ``minute``, ``hour``, ``day`` (singular or plural)::

    >>> parse_rate("100/60s")
    Rate(quota=100, window_s=60.0)
    >>> parse_rate("5/minute")
    Rate(quota=5, window_s=60.0)

A bad spec raises :class:`~voyagr_wsgi.ConfigurationError` naming the setting.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import ConfigurationError

__all__ = ["Rate", "parse_rate"]

_UNITS = {
    "": 1.0,
    "s": 1.0,
    "sec": 1.0,
    "second": 1.0,
    "seconds": 1.0,
    "m": 60.0,
    "min": 60.0,
    "minute": 60.0,
    "minutes": 60.0,
    "h": 3600.0,
    "hour": 3600.0,
    "hours": 3600.0,
    "d": 86400.0,
    "day": 86400.0,
    "days": 86400.0,
}
_SPEC = re.compile(r"^\s*(\d+)\s*(?:/|per)\s*(\d+(?:\.\d+)?)?\s*([a-z]*)\s*$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Rate:
    """``quota`` units per ``window_s`` seconds."""

    quota: int
    window_s: float

    def __str__(self) -> str:
        return f"{self.quota}/{self.window_s:g}s"


def parse_rate(spec: str | Rate, *, setting: str = "rate limit spec") -> Rate:
    """Parse ``"100/60s"`` into a :class:`Rate`; ``setting`` names the option in errors."""
    if isinstance(spec, Rate):
        return _checked(spec.quota, spec.window_s, setting, str(spec))
    match = _SPEC.match(spec) if isinstance(spec, str) else None
    if (
        match is None
        or match.group(3).lower() not in _UNITS
        or not (match.group(2) or match.group(3))
    ):
        raise ConfigurationError(
            f"{setting}={spec!r} is not a rate; use '<requests>/<window>' such as "
            "'100/60s', '5/minute', '1000/1h' (units s, m, h, d)"
        )
    amount = float(match.group(2)) if match.group(2) else 1.0
    return _checked(int(match.group(1)), amount * _UNITS[match.group(3).lower()], setting, spec)


def parse_rates(spec: str | Rate, *, setting: str = "rate limit spec") -> tuple[Rate, ...]:
    """``"10/1s;1000/1h"``: stacked rates (as Flask-Limiter writes them), every one enforced.
    A single rate gives a 1-tuple; empty parts and repeated windows are refused."""
    if isinstance(spec, Rate) or not isinstance(spec, str) or ";" not in spec:
        return (parse_rate(spec, setting=setting),)
    rates = tuple(parse_rate(part.strip(), setting=setting) for part in spec.split(";"))
    windows = [r.window_s for r in rates]
    if len(set(windows)) != len(windows):
        raise ConfigurationError(f"{setting}={spec!r}: two rates with the same window")
    return rates


def _checked(quota: int, window_s: float, setting: str, text: str) -> Rate:
    if quota < 1:
        raise ConfigurationError(f"{setting}={text!r}: the quota must be at least 1")
    if not window_s > 0 or window_s == float("inf"):
        raise ConfigurationError(f"{setting}={text!r}: the window must be > 0 seconds")
    return Rate(quota, float(window_s))
