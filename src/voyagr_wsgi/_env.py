"""Typed reading of environment variables for :meth:`Settings.from_env`.

Every getter raises :class:`ConfigurationError` naming the variable and what it accepts, so a
typo in a deployment fails at start-up with a message an operator can act on.
"""

from __future__ import annotations

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

    def __init__(self, mapping: Mapping[str, str] | None = None) -> None:
        self._data: Mapping[str, str] = os.environ if mapping is None else mapping

    def raw(self, name: str) -> str | None:
        value = self._data.get(name)
        return None if value is None else value.strip()

    def has(self, name: str) -> bool:
        return self.raw(name) not in (None, "")

    def str(self, name: str, default: str = "") -> str:
        value = self.raw(name)
        return default if value in (None, "") else value  # type: ignore[return-value]

    def secret(self, name: str) -> Secret | None:
        value = self.raw(name)
        return Secret(value) if value else None

    def bool(self, name: str, default: bool = False) -> bool:
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
        self, name: str, default: int, *, minimum: int | None = None, maximum: int | None = None
    ) -> int:
        value = self.raw(name)
        if value in (None, ""):
            return default
        try:
            number = int(value)  # type: ignore[arg-type]
        except ValueError:
            raise ConfigurationError(f"{name}={value!r} is not an integer") from None
        self._check_range(name, number, minimum, maximum)
        return number

    def float(
        self,
        name: str,
        default: float,
        *,
        minimum: float | None = None,
        maximum: float | None = None,
    ) -> float:
        value = self.raw(name)
        if value in (None, ""):
            return default
        try:
            number = float(value)  # type: ignore[arg-type]
        except ValueError:
            raise ConfigurationError(f"{name}={value!r} is not a number") from None
        if number != number or number in (float("inf"), float("-inf")):
            raise ConfigurationError(f"{name}={value!r} is not a finite number")
        self._check_range(name, number, minimum, maximum)
        return number

    def list(self, name: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
        value = self.raw(name)
        if value is None:
            return default
        return tuple(item.strip() for item in value.split(",") if item.strip())

    def choice(self, name: str, default: _S, choices: tuple[_S, ...]) -> _S:
        value = self.raw(name)
        if value in (None, ""):
            return default
        low = value.lower()  # type: ignore[union-attr]
        for option in choices:
            if option == low:
                return option
        raise ConfigurationError(f"{name}={value!r} is not one of: {', '.join(choices)}")

    def networks(self, name: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
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
        name: str, number: float, minimum: float | None, maximum: float | None
    ) -> None:
        if minimum is not None and number < minimum:
            raise ConfigurationError(f"{name}={number!r} must be >= {minimum}")
        if maximum is not None and number > maximum:
            raise ConfigurationError(f"{name}={number!r} must be <= {maximum}")
