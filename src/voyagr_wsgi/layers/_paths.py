"""Path rules: the one grammar of every path list, and its one matcher.

Used by ``HTTPS_REDIRECT_EXEMPT`` (``HTTPSRedirect(exempt=)``), ``CSRF_EXEMPT_PATHS``
(``CrossOriginProtection(exempt_paths=)``), ``RATE_LIMIT_EXEMPT_PATHS`` and
``RATE_LIMIT_ROUTES`` (``RateLimit(exempt=, rules=)``) and ``SecurityHeaders(routes=)``.
A pattern is one of:

- an exact path, written without a trailing slash: ``/login`` matches ``/login`` and
  ``/login/`` (frameworks route both spellings to one view, or redirect one to the other),
  never ``/loginx`` or ``/login/x``. ``/`` is the root alone;
- a prefix, a path ending in ``/*``: ``/static/*`` matches ``/static/`` and everything under
  it, not ``/static`` itself (an exemption never covers more than it says,
  golang/go#75054); ``/*`` matches every path.

Nothing else is accepted, and a value in another syntax raises
:class:`~voyagr_wsgi.ConfigurationError` naming the option at start: a trailing ``/``
(``/static/``: write ``/static/*`` for everything under it, ``/static`` for that path), a
``*`` anywhere but after the last ``/`` (``/static*``, ``/a/*/b``), regex or template syntax
(``^ $ ( ) [ ] { } < > | \\ ?``), ``%``-escapes (servers decode the path: write it decoded),
``//`` or ``.``/``..`` segments (a request path never contains them), no leading ``/``.

Patterns match :func:`voyagr_wsgi.request.request_path`, the normalised
``SCRIPT_NAME + PATH_INFO``, so ``//login``, ``/./login`` and ``/a/../login`` are all
``/login``. Non-ASCII patterns are compared as WSGI delivers the path (UTF-8 bytes decoded
as latin-1). Matching is one set lookup and one ``str.startswith``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from ..errors import ConfigurationError

__all__ = ["SYNTAX", "PathPatterns", "check_pattern"]

#: the accepted syntax, as every error message states it
SYNTAX = (
    "accepts exact paths starting with '/' ('/login', which also matches '/login/') and "
    "prefixes ending in '/*' ('/static/*' for everything under /static/)"
)
_REJECTED = re.compile(r"[\s^$()\[\]{}<>|\\?#\"`]")


def check_pattern(pattern: object, setting: str) -> str:
    """``pattern`` if it is in the grammar above, else a ConfigurationError naming
    ``setting``, the accepted syntax and the spelling to write instead."""
    problem = _problem(pattern)
    if problem is not None:
        raise ConfigurationError(f"{setting}: {pattern!r} {problem}; {SYNTAX}")
    return pattern  # type: ignore[return-value]


def _problem(pattern: object) -> str | None:
    if not isinstance(pattern, str) or not pattern.startswith("/"):
        return "must start with '/'"
    body = pattern[:-1] if pattern.endswith("/*") else pattern
    if "*" in body:
        star = body.index("*")
        if star == len(body) - 1 and _problem(body[:-1] + "/*") is None:
            return f"has '*' not after a '/': write {body[:-1] + '/*'!r}"
        return "may use '*' only as the last segment ('/*')"
    if _REJECTED.search(body):
        return "has a character not accepted in a path rule (regex or template syntax?)"
    if "%" in body:
        return "has a %-escape: write the path decoded, as the server delivers it"
    segments = body.split("/")[1:]
    if "" in segments[:-1] or any(s in (".", "..") for s in segments):
        from ..request import normalize_path

        fixed = normalize_path(body).rstrip("/")
        fixed = fixed + "/*" if pattern.endswith("/*") else fixed or "/"
        return f"is not a normalised path: write {fixed!r}"
    if body.endswith("/") and body != "/" and not pattern.endswith("/*"):
        name = body.rstrip("/")
        return f"ends in '/': write {name + '/*'!r} for everything under {name}/, or {name!r}"
    return None


def _wsgi(text: str) -> str:
    """``text`` as a WSGI server delivers a path: UTF-8 bytes decoded as latin-1."""
    return text.encode("utf-8").decode("latin-1")


class PathPatterns:
    """A list of path rules (see the module docs); ``patterns(path)`` tells if one matches."""

    __slots__ = ("exact", "prefixes")

    def __init__(self, patterns: Iterable[str], *, setting: str) -> None:
        exact: set[str] = set()
        prefixes: list[str] = []
        for item in patterns:
            pattern = _wsgi(check_pattern(item, setting))
            if pattern.endswith("/*"):
                prefixes.append(pattern[:-1])
            else:
                exact.add(pattern)
                if pattern != "/":
                    exact.add(pattern + "/")
        self.exact = frozenset(exact)
        self.prefixes = tuple(prefixes)

    def __bool__(self) -> bool:
        return bool(self.exact or self.prefixes)

    def __call__(self, path: str) -> bool:
        return path in self.exact or (bool(self.prefixes) and path.startswith(self.prefixes))
