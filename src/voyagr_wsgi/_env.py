"""Typed reading of environment variables for :meth:`Settings.from_env`.

Every getter raises :class:`ConfigurationError` naming the variable and what it accepts, so a
typo in a deployment fails at start-up with a message an operator can act on.
"""

from __future__ import annotations

import builtins
import ipaddress
import os
from collections.abc import Mapping
from typing import TypeVar

from .errors import ConfigurationError
from .secret import Secret

__all__ = ["Env"]

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})
_S = TypeVar("_S", bound=str)


class Env:
    """A read-only view of a mapping of variables with typed, validating getters."""

    __slots__ = ("_data",)

    def __init__(self, mapping: Mapping[str, builtins.str] | None = None) -> None:
        self._data: Mapping[str, builtins.str] = os.environ if mapping is None else mapping

    def raw(self, name: builtins.str) -> builtins.str | None:
        value = self._data.get(name)
        return None if value is None else value.strip()

    def has(self, name: builtins.str) -> builtins.bool:
        return self.raw(name) not in (None, "")

    def str(self, name: builtins.str, default: builtins.str = "") -> builtins.str:
        value = self.raw(name)
        return value if value else default

    def secret(self, name: builtins.str) -> Secret | None:
        value = self.raw(name)
        return Secret(value) if value else None

    def bool(self, name: builtins.str, default: builtins.bool = False) -> builtins.bool:
        value = self.raw(name)
        if value is None:
            return default
        low = value.lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise ConfigurationError(
            f"{name}={value!r} is not a boolean; use one of true/false, 1/0, yes/no, on/off"
        )

    def int(
        self,
        name: builtins.str,
        default: builtins.int,
        *,
        minimum: builtins.int | None = None,
        maximum: builtins.int | None = None,
    ) -> builtins.int:
        value = self.raw(name)
        if not value:
            return default
        try:
            number = int(value)
        except ValueError:
            raise ConfigurationError(f"{name}={value!r} is not an integer") from None
        self._check_range(name, number, minimum, maximum)
        return number

    def float(
        self,
        name: builtins.str,
        default: builtins.float,
        *,
        minimum: builtins.float | None = None,
        maximum: builtins.float | None = None,
    ) -> builtins.float:
        value = self.raw(name)
        if not value:
            return default
        try:
            number = float(value)
        except ValueError:
            raise ConfigurationError(f"{name}={value!r} is not a number") from None
        if number != number or number in (float("inf"), float("-inf")):
            raise ConfigurationError(f"{name}={value!r} is not a finite number")
        self._check_range(name, number, minimum, maximum)
        return number

    def list(
        self, name: builtins.str, default: tuple[builtins.str, ...] = ()
    ) -> tuple[builtins.str, ...]:
        value = self.raw(name)
        if value is None:
            return default
        return tuple(item.strip() for item in value.split(",") if item.strip())

    def paths(self, name: builtins.str) -> tuple[builtins.str, ...]:
        """A comma list of path rules (exact, or a prefix ending in ``/*``; see
        :mod:`voyagr_wsgi.layers._paths`), each checked now."""
        from .layers._paths import check_pattern

        return tuple(check_pattern(item, name) for item in self.list(name))

    def choice(self, name: builtins.str, default: _S, choices: tuple[_S, ...]) -> _S:
        value = self.raw(name)
        if not value:
            return default
        low = value.lower()
        for option in choices:
            if option == low:
                return option
        raise ConfigurationError(f"{name}={value!r} is not one of: {', '.join(choices)}")

    def networks(
        self, name: builtins.str
    ) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        nets = []
        for item in self.list(name):
            try:
                nets.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                raise ConfigurationError(
                    f"{name}: {item!r} is not an IP address or CIDR network "
                    "(accepts a comma list such as 10.0.0.0/8,192.0.2.7,::1)"
                ) from None
        return tuple(nets)

    @staticmethod
    def _check_range(
        name: builtins.str,
        number: builtins.float,
        minimum: builtins.float | None,
        maximum: builtins.float | None,
    ) -> None:
        if minimum is not None and number < minimum:
            raise ConfigurationError(f"{name}={number!r} must be >= {minimum}")
        if maximum is not None and number > maximum:
            raise ConfigurationError(f"{name}={number!r} must be <= {maximum}")
