"""Exempt-path patterns shared by the layers that skip some paths.

A pattern is an exact path (``/webhooks/stripe``) or a prefix written with a trailing ``*``
(``/hooks/*``, which covers ``/hooks/`` and everything under it, but not ``/hooks``): an
exemption never covers more than it says (golang/go#75054). Used by ``HTTPSRedirect``
(``HTTPS_REDIRECT_EXEMPT``) and ``CrossOriginProtection`` (``CSRF_EXEMPT_PATHS``).
"""

from __future__ import annotations

from collections.abc import Iterable

from ..errors import ConfigurationError

__all__ = ["PathPatterns"]


class PathPatterns:
    """Exact paths plus ``*``-suffixed prefixes; ``patterns(path)`` tells if one matches."""

    __slots__ = ("exact", "prefixes")

    def __init__(self, patterns: Iterable[str], *, setting: str) -> None:
        exact: set[str] = set()
        prefixes: list[str] = []
        for item in patterns:
            if not isinstance(item, str) or not item.startswith("/") or "*" in item[:-1]:
                raise ConfigurationError(
                    f"{setting}: {item!r} is not accepted; use exact paths starting with '/' "
                    "(/webhooks/stripe) or prefixes ending in '*' (/static/*)"
                )
            if item.endswith("*"):
                prefixes.append(item[:-1])
            else:
                exact.add(item)
        self.exact = frozenset(exact)
        self.prefixes = tuple(prefixes)

    def __bool__(self) -> bool:
        return bool(self.exact or self.prefixes)

    def __call__(self, path: str) -> bool:
        return path in self.exact or (bool(self.prefixes) and path.startswith(self.prefixes))
