"""A wrapper that keeps tokens, passwords and webhook URLs out of logs and reprs.

``Secret("hunter2")`` prints as ``Secret('**********')``; call ``.reveal()`` where the value
is really needed (an ``Authorization`` header, an SMTP login). Modelled on Starlette's
``datastructures.Secret``.
"""

from __future__ import annotations

__all__ = ["Secret"]


class Secret:
    """An opaque string; ``str()`` and ``repr()`` never show it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)
