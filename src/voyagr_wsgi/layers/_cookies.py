"""Set-Cookie hardening for :class:`~voyagr_wsgi.layers.SecurityHeaders` (RFC 6265bis).

One ``Set-Cookie`` value in, one out: cookies are never folded or split (``Expires`` holds a
comma). Attributes are detected case-insensitively by name (``secure``, ``HttpOnly``,
``samesite=strict``), so a flag the app set is never added twice or changed.

``httponly_exempt``: cookie names (exact, case-sensitive, RFC 6265 tokens) that JavaScript
must read, such as Django's ``csrftoken``; they get ``Secure`` and ``SameSite`` but not
``HttpOnly``. The name check costs nothing per response without a ``Set-Cookie``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Literal

from ..errors import ConfigurationError

__all__ = ["CookieFlags", "cookie_names"]

SameSite = Literal["Lax", "Strict", "None"]
_ATTRIBUTE = re.compile(r";[ \t]*([a-z0-9_-]+)")  # attribute names; a cookie value has no ";"
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")  # RFC 6265 cookie-name (RFC 9110 token)


def cookie_names(names: Iterable[str], setting: str) -> frozenset[str]:
    """``names`` validated as cookie names; ``setting`` names the option in the error."""
    if isinstance(names, str | bytes):
        raise ConfigurationError(f"{setting}={names!r}: give a list of cookie names")
    found = frozenset(names)
    for name in sorted(found, key=repr):
        if not isinstance(name, str) or not _TOKEN.match(name):
            raise ConfigurationError(
                f"{setting}: {name!r} is not a cookie name (RFC 6265: letters, digits and "
                "!#$%&'*+-.^_`|~, no spaces, '=' or ';')"
            )
    return found


class CookieFlags:
    """Adds ``Secure`` (HTTPS only), ``HttpOnly`` and ``SameSite`` where a cookie lacks them."""

    __slots__ = ("_httponly", "_httponly_exempt", "_samesite")

    def __init__(
        self,
        *,
        httponly: bool = True,
        httponly_exempt: Iterable[str] = (),
        samesite: SameSite | None = "Lax",
    ) -> None:
        self._httponly = httponly
        self._httponly_exempt = cookie_names(
            httponly_exempt, "httponly_exempt (SECURE_COOKIES_HTTPONLY_EXEMPT)"
        )
        self._samesite = samesite

    def harden(self, value: str, secure: bool) -> str:
        """``value`` with the missing flags appended; ``secure``: the response is HTTPS."""
        have = _ATTRIBUTE.findall(value.lower())
        extra = ""
        if secure and "secure" not in have:
            extra += "; Secure"
        if (
            self._httponly
            and "httponly" not in have
            and (
                not self._httponly_exempt
                or value.partition("=")[0].strip() not in self._httponly_exempt
            )
        ):
            extra += "; HttpOnly"
        if self._samesite is not None and "samesite" not in have:
            extra += f"; SameSite={self._samesite}"
        if not extra:
            return value
        return value.rstrip().rstrip(";").rstrip() + extra
