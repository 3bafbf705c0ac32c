"""A wrapper that keeps tokens, passwords and webhook URLs out of logs and reprs.

``Secret("hunter2")`` prints as ``Secret('**********')``; call ``.reveal()`` where the value
is really needed (an ``Authorization`` header, an SMTP login). Modelled on Starlette's
``datastructures.Secret``.

:func:`bearer_token` validates a token that clients send in an ``Authorization: Bearer``
header (``VOYAGR_ADMIN_TOKEN``): printable ASCII without spaces (RFC 6750 ``b64token`` is a
subset; anything else cannot be sent reliably in a header) and at least
``MIN_TOKEN_LENGTH`` characters. It runs at start, so a bad token is a
:class:`~voyagr_wsgi.ConfigurationError`, never a failure on the first request.
"""

from __future__ import annotations

from .errors import ConfigurationError

__all__ = ["MIN_TOKEN_LENGTH", "Secret", "bearer_token"]

MIN_TOKEN_LENGTH = 16


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


def bearer_token(value: Secret | str | None, setting: str = "VOYAGR_ADMIN_TOKEN") -> Secret | None:
    """``value`` as a Secret after checking it (None or empty: no token); the error names
    ``setting`` and never shows the value."""
    if value is None:
        return None
    text = value.reveal() if isinstance(value, Secret) else value
    if not isinstance(text, str):
        raise ConfigurationError(f"{setting} must be a string")
    if not text:
        return None
    if not all("!" <= c <= "~" for c in text):
        raise ConfigurationError(
            f"{setting} must be printable ASCII without spaces (it is sent in an "
            'Authorization header); generate one with: python -c "import secrets; '
            'print(secrets.token_urlsafe(32))"'
        )
    if len(text) < MIN_TOKEN_LENGTH:
        raise ConfigurationError(
            f"{setting} is {len(text)} characters long; use at least {MIN_TOKEN_LENGTH} "
            '(32 random ones: python -c "import secrets; print(secrets.token_urlsafe(32))")'
        )
    return value if isinstance(value, Secret) else Secret(text)
