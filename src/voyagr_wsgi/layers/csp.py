"""Content-Security-Policy: a validated policy builder and the lazy per-request nonce.

Build a policy once, at start-up; a malformed one raises
:class:`~voyagr_wsgi.ConfigurationError` there instead of being silently ignored by
browsers (the checks helmet 8 added, CHANGELOG 8.0.0/8.3.0)::

    from voyagr_wsgi.layers import ContentSecurityPolicy, SecurityHeaders

    policy = ContentSecurityPolicy({
        "default-src": "'self'",
        "img-src": ["'self'", "data:", "https://cdn.example.com"],
        "upgrade-insecure-requests": True,
    })
    # or ContentSecurityPolicy.parse("default-src 'self'; img-src 'self' data:")
    application = SecurityHeaders(app, csp=policy)

Rejected: unknown or duplicate directive names, a missing ``default-src``, ``;`` or ``,`` or
whitespace/control characters inside a value, unquoted keywords (``self``, ``none``,
``unsafe-inline``, ``nonce-...``, ``sha256-...``), unknown quoted keywords, ``'none'`` mixed
with other sources, an empty source list, values on ``upgrade-insecure-requests``.

Nonces (W3C CSP3 section 6.7.2.3; Django's ``LazyNonce``): with ``csp_nonce=True`` the
:class:`SecurityHeaders` layer puts a :class:`LazyNonce` in ``environ["voyagr.csp_nonce"]``.
``str(nonce)`` creates ``secrets.token_urlsafe(16)`` on first use; the nonce is added to the
header (``script-src`` by default) only if the app used it before calling
``start_response``. Responses carrying a nonce must not be cached (a cached body with a new
header nonce blocks every inline script), so the layer adds ``Cache-Control: no-store`` when
the app set none.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Iterator, Mapping
from typing import Literal

from ..errors import ConfigurationError

__all__ = ["CSP_NONCE", "ContentSecurityPolicy", "LazyNonce"]

#: environ key holding the request's :class:`LazyNonce`
CSP_NONCE = "voyagr.csp_nonce"

_FETCH = frozenset(
    "child-src connect-src default-src fenced-frame-src font-src frame-src img-src "
    "manifest-src media-src object-src prefetch-src script-src script-src-attr "
    "script-src-elem style-src style-src-attr style-src-elem worker-src".split()
)
#: directives whose values are source lists (keywords must be quoted)
_SOURCE_LISTS = _FETCH | {"base-uri", "form-action", "frame-ancestors", "navigate-to"}
_NO_VALUE = frozenset({"upgrade-insecure-requests", "block-all-mixed-content"})
_OTHER = frozenset(
    {
        "sandbox",
        "report-uri",
        "report-to",
        "require-trusted-types-for",
        "trusted-types",
        "webrtc",
        "require-sri-for",
    }
)
_KNOWN = _SOURCE_LISTS | _NO_VALUE | _OTHER
_KEYWORDS = frozenset(
    "self none unsafe-inline unsafe-eval strict-dynamic unsafe-hashes report-sample "
    "wasm-unsafe-eval unsafe-allow-redirects inline-speculation-rules trusted-types-eval "
    "report-sha256 report-sha384 report-sha512".split()
)
_HASH_OR_NONCE = re.compile(r"(nonce-|sha256-|sha384-|sha512-)[A-Za-z0-9+/_=-]+\Z", re.I)
_TOKEN = re.compile(r"[\x21-\x2b\x2d-\x3a\x3c-\x7e]+\Z")  # visible ASCII except , and ;
NONCE_SLOT = "\x00nonce\x00"  # render(nonce=NONCE_SLOT): a template for the layer

Value = str | Iterable[str] | bool | None


class LazyNonce:
    """A per-request nonce generated on first ``str()``; ``used`` tells whether it was."""

    __slots__ = ("_value",)

    def __init__(self) -> None:
        self._value: str | None = None

    def __str__(self) -> str:
        if self._value is None:
            self._value = secrets.token_urlsafe(16)
        return self._value

    __html__ = __str__  # Jinja2/MarkupSafe: render without escaping (the value is URL-safe)

    @property
    def used(self) -> bool:
        return self._value is not None

    def __repr__(self) -> str:
        return f"LazyNonce(used={self.used})"


class ContentSecurityPolicy:
    """An immutable, validated CSP: ``ContentSecurityPolicy({"default-src": "'self'"})``."""

    __slots__ = ("_directives",)

    def __init__(self, directives: Mapping[str, Value], *, option: str = "csp") -> None:
        parsed: dict[str, tuple[str, ...]] = {}
        for raw_name, raw in directives.items():
            name = raw_name.strip().lower().replace("_", "-")
            if name in parsed:
                raise ConfigurationError(f"{option}: directive {name!r} is given twice")
            if raw is None or raw is False:
                continue
            values = _values(name, raw, option)
            if values is not None:
                parsed[name] = values
        if "default-src" not in parsed:
            raise ConfigurationError(
                f"{option}: 'default-src' is required (it is the fallback for every fetch "
                "directive), e.g. \"default-src 'self'\""
            )
        self._directives = parsed

    @classmethod
    def parse(cls, text: str, *, option: str = "csp") -> ContentSecurityPolicy:
        """Parse a policy string (``"default-src 'self'; img-src *"``) strictly."""
        items: list[tuple[str, Value]] = []
        for part in text.split(";"):
            words = part.split()
            if not words:
                continue
            items.append((words[0], True if len(words) == 1 else words[1:]))
        names = [n.lower() for n, _ in items]
        for name in names:
            if names.count(name) > 1:
                raise ConfigurationError(f"{option}: directive {name!r} is given twice")
        return cls(dict(items), option=option)

    @property
    def directives(self) -> Mapping[str, tuple[str, ...]]:
        return dict(self._directives)

    def get(self, name: str) -> tuple[str, ...] | None:
        return self._directives.get(name)

    def replace(self, name: str, value: Value, *, option: str = "csp") -> ContentSecurityPolicy:
        """A copy with ``name`` set to ``value`` (in place if present); ``None`` removes it."""
        merged: dict[str, Value] = dict(self._directives)
        merged[name] = value
        return ContentSecurityPolicy(merged, option=option)

    def frame_options(self) -> Literal["DENY", "SAMEORIGIN"] | None:
        """The X-Frame-Options equivalent of ``frame-ancestors`` (None: not expressible)."""
        ancestors = self._directives.get("frame-ancestors")
        if ancestors == ("'none'",):
            return "DENY"
        if ancestors == ("'self'",):
            return "SAMEORIGIN"
        return None

    def render(
        self,
        *,
        upgrade_insecure_requests: bool = True,
        nonce: str | None = None,
        nonce_directives: Iterable[str] = ("script-src",),
        report_only: bool = False,
    ) -> str:
        """The header value. ``upgrade-insecure-requests`` is dropped when not wanted (plain
        HTTP or loopback) and always in report-only policies, where browsers ignore it."""
        directives = dict(self._directives)
        if nonce is not None:
            for name in nonce_directives:
                sources = directives.get(name, directives["default-src"])
                kept = tuple(s for s in sources if s != "'none'")
                directives[name] = (*kept, f"'nonce-{nonce}'")
        if not upgrade_insecure_requests or report_only:
            directives.pop("upgrade-insecure-requests", None)
        return "; ".join(" ".join((n, *v)) for n, v in directives.items())

    def __iter__(self) -> Iterator[str]:
        return iter(self._directives)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ContentSecurityPolicy):
            return NotImplemented
        return self._directives == other._directives

    def __hash__(self) -> int:
        return hash(tuple(self._directives.items()))

    def __str__(self) -> str:
        return self.render()

    def __repr__(self) -> str:
        return f"ContentSecurityPolicy.parse({self.render()!r})"


def _values(name: str, raw: Value, option: str) -> tuple[str, ...] | None:
    if name not in _KNOWN:
        raise ConfigurationError(f"{option}: unknown directive {name!r}")
    if raw is True:
        if name in _SOURCE_LISTS:
            raise ConfigurationError(
                f"{option}: {name!r} needs at least one source; write \"'none'\" to block all"
            )
        return ()
    values = tuple(raw.split()) if isinstance(raw, str) else tuple(raw)  # type: ignore[arg-type]
    if name in _NO_VALUE:
        if values:
            raise ConfigurationError(f"{option}: {name!r} takes no value, got {values!r}")
        return ()
    if not values and name in _SOURCE_LISTS:
        raise ConfigurationError(
            f"{option}: {name!r} needs at least one source; write \"'none'\" to block all"
        )
    for value in values:
        _check_value(name, value, option)
    if "'none'" in (v.lower() for v in values) and len(values) > 1:
        raise ConfigurationError(f"{option}: {name!r}: \"'none'\" must be its only source")
    return values


def _check_value(name: str, value: str, option: str) -> None:
    if not isinstance(value, str) or not _TOKEN.match(value):
        raise ConfigurationError(
            f"{option}: {name!r} value {value!r} is malformed: values may not be empty or "
            "contain ';', ',', whitespace or control characters"
        )
    if name not in _SOURCE_LISTS:
        return
    low = value.lower()
    if low in _KEYWORDS or _HASH_OR_NONCE.match(value):
        raise ConfigurationError(
            f"{option}: {name!r} value {value!r} must be quoted: \"'{value}'\""
        )
    if low.startswith("'"):
        inner = low[1:-1] if len(low) > 1 and low.endswith("'") else ""
        if inner not in _KEYWORDS and not _HASH_OR_NONCE.match(inner):
            raise ConfigurationError(f"{option}: {name!r}: unknown keyword {value!r}")
