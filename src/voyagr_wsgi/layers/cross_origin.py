"""CrossOriginProtection: stateless CSRF protection from Fetch Metadata and ``Origin``.

When: in front of any app that uses cookies for authentication and accepts form posts or
``fetch`` calls from browsers. Why: it stops cross-site request forgery without tokens,
cookies or server state. It follows Go 1.25's ``http.CrossOriginProtection``
(``src/net/http/csrf.go``, proposal golang/go#73626) with fixes: the full origin is
compared, not only the host; an ``Origin`` with userinfo is rejected; exemptions are exact
or an explicit ``*`` prefix (golang/go#75054); trusted origins may use ``https://*.``::

    from voyagr_wsgi.layers import CrossOriginProtection
    application = CrossOriginProtection(
        app,
        trusted_origins=["https://admin.example.com", "https://*.partner.example"],
        exempt_paths=["/webhooks/stripe", "/hooks/*"],
    )

The check, for each request:

1. ``GET``, ``HEAD`` and ``OPTIONS`` pass (safe methods; methods are case-sensitive).
2. ``Sec-Fetch-Site: same-origin`` or ``none`` (typed URL, bookmark) passes; any other value
   (``same-site``, ``cross-site``) is rejected unless the request is exempt. ``same-site`` is
   not ``same-origin``: a sibling subdomain is rejected (umputun/secrets#119).
3. Without ``Sec-Fetch-Site`` (older browsers, non-browser clients): no ``Origin`` passes
   (not a browser request, or a same-origin one); ``Origin: null`` and an ``Origin`` carrying
   userinfo (golang/go#78563) are rejected; otherwise the **full** origin
   ``scheme://host[:port]`` (default ports dropped) must equal the request's own origin,
   built from :func:`voyagr_wsgi.request.scheme` and :func:`~voyagr_wsgi.request.host`, so
   a proxy declared to ProxyTrust is respected (Go compares the host only).
4. Exempt: an ``Origin`` in ``trusted_origins`` (exact ``scheme://host[:port]``, or opt-in
   ``scheme://*.example.com`` for any subdomain, not the domain itself), or a path in
   ``exempt_paths`` (``CSRF_EXEMPT_PATHS``, the one path grammar of
   :mod:`voyagr_wsgi.layers._paths`: exact, ``/webhooks/stripe`` also covering
   ``/webhooks/stripe/``, or a prefix ending in ``/*``, so ``/hooks/*`` does not cover
   ``/hooks``; golang/go#75054), matched against the normalised request path
   (:func:`voyagr_wsgi.request.request_path`: ``//webhooks/stripe`` is the same path).

A rejection is a ``403`` RFC 9457 problem (:mod:`voyagr_wsgi.problem`) of type
``https://voyagr-wsgi.dev/problems/cross-origin-blocked`` whose ``reason`` member (also the
``detail``) names the failed check, and one warning on the ``voyagr_wsgi.cross_origin``
logger, or whatever ``deny_handler`` answers. This protects browsers only: pair it with
``SameSite=Lax`` cookies and HSTS (:class:`~voyagr_wsgi.layers.SecurityHeaders` does both).

Each refusal counts into ``counters=`` (:class:`voyagr_wsgi.counters.Counters`) as
``cross_origin``/<reason slug> (``cross-site``, ``same-site``, ``not-same-origin``,
``null-origin``, ``origin-userinfo``, ``malformed-origin``, ``origin-mismatch``); in a
composed stack: ``voyagr_rejections_total``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import Any

from .._layer import Layer
from .._wsgi import Environ, StartResponse, WSGIApplication
from ..counters import Counters
from ..errors import ConfigurationError
from ..problem import prepare
from ..request import host, request_path, scheme
from ._paths import PathPatterns

__all__ = ["CrossOriginProtection", "DenyHandler"]

logger = logging.getLogger("voyagr_wsgi.cross_origin")

DenyHandler = Callable[[Environ, StartResponse, str], Iterable[bytes]]
_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})
_DEFAULT_PORT = {"http": "80", "https": "443"}
_REASONS = (
    "Sec-Fetch-Site is cross-site",
    "Sec-Fetch-Site is same-site, not same-origin",
    "Sec-Fetch-Site is not same-origin",
    "Origin is null",
    "Origin contains userinfo",
    "Origin is malformed",
    "Origin does not match the request origin",
)
#: the ``reason`` label of ``voyagr_rejections_total{layer="cross_origin"}``, per reason
_SLUGS = dict(
    zip(
        _REASONS,
        ("cross-site", "same-site", "not-same-origin", "null-origin", "origin-userinfo",
         "malformed-origin", "origin-mismatch"),
        strict=True,
    )
)  # fmt: skip
_HOST_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()+=[]:%")


@lru_cache(maxsize=1024)  # browsers send a handful of distinct origins; bounded anyway
def normalize_origin(value: str) -> str | None:
    """``scheme://host[:port]`` lower-cased with the default port dropped; None if malformed.

    Userinfo, paths, queries and fragments make an origin malformed (browsers never send
    them)."""
    scheme_part, sep, rest = value.strip().lower().partition("://")
    if not sep or scheme_part not in _DEFAULT_PORT or not rest:
        return None
    if not set(rest) <= _HOST_CHARS or "@" in rest:
        return None
    name, port = rest, ""
    if rest.startswith("["):
        end = rest.find("]")
        if end == -1:
            return None
        name, tail = rest[: end + 1], rest[end + 1 :]
        if tail and not tail.startswith(":"):
            return None
        port = tail[1:]
    elif ":" in rest:
        name, _, port = rest.partition(":")
    if not name or (port and (not port.isdigit() or not 0 < int(port) < 65536)):
        return None
    if port and int(port) != int(_DEFAULT_PORT[scheme_part]):
        return f"{scheme_part}://{name}:{int(port)}"
    return f"{scheme_part}://{name}"


class CrossOriginProtection(Layer):
    """403 for cross-origin browser requests with unsafe methods; see the module docs."""

    def __init__(
        self,
        app: WSGIApplication | None = None,
        /,
        *,
        trusted_origins: Iterable[str] = (),
        exempt_paths: Iterable[str] = (),
        deny_handler: DenyHandler | None = None,
        counters: Counters | None = None,
    ) -> None:
        trusted_origins = tuple(trusted_origins)
        exempt_paths = tuple(exempt_paths)
        self._init(
            app,
            {
                "trusted_origins": trusted_origins,
                "exempt_paths": exempt_paths,
                "deny_handler": deny_handler,
            },
        )
        exact: set[str] = set()
        wildcards: list[tuple[str, str]] = []  # (scheme://, .suffix[:port])
        for item in trusted_origins:
            wild = isinstance(item, str) and "://*." in item
            origin = (
                normalize_origin(item.replace("://*.", "://", 1) if wild else item)
                if isinstance(item, str)
                else None
            )
            if origin is None or "*" in origin:
                raise ConfigurationError(
                    f"trusted_origins (CSRF_TRUSTED_ORIGINS): {item!r} is not an origin; "
                    "accepts scheme://host[:port] such as https://example.com, or "
                    "https://*.example.com for every subdomain"
                )
            if wild:
                prefix, _, rest = origin.partition("://")
                wildcards.append((prefix + "://", "." + rest))
            else:
                exact.add(origin)
        self._exact = frozenset(exact)
        self._wildcards = tuple(wildcards)
        self._paths = PathPatterns(exempt_paths, setting="exempt_paths (CSRF_EXEMPT_PATHS)")
        self._deny_handler = deny_handler
        #: refusals counted as ``rejection("cross_origin", <reason slug>)``
        self.counters = counters if counters is not None else Counters()
        self._answers = {
            reason: prepare("cross-origin-blocked", reason, extensions={"reason": reason})
            for reason in _REASONS
        }

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") in _SAFE:
            nxt = self._next
            return nxt(environ, start_response)
        reason = self.reject_reason(environ)
        if reason is None:
            nxt = self._next
            return nxt(environ, start_response)
        return self._deny(environ, start_response, reason)

    def explain(self, environ: Environ) -> dict[str, Any]:
        """Whether the request path blocks the request and why: ``__call__`` run detached,
        its refusal recorded instead of logged or handed to ``deny_handler``."""
        denied: list[str] = []

        def deny(environ: Environ, start_response: StartResponse, reason: str) -> list[bytes]:
            denied.append(reason)
            start_response("403 Forbidden", [])
            return []

        seen, status, _ = self._run_detached(dict(environ), _deny=deny)
        inputs = {
            name: environ[key]
            for name, key in (
                ("method", "REQUEST_METHOD"),
                ("sec_fetch_site", "HTTP_SEC_FETCH_SITE"),
                ("origin", "HTTP_ORIGIN"),
            )
            if environ.get(key)
        }
        if seen is not None:
            return {"outcome": "passes", **inputs}
        return {"outcome": "answers", "status": status, "reason": denied[0], **inputs}

    def reject_reason(self, environ: Environ) -> str | None:
        """Why this request would be rejected, or None when it passes (for any method)."""
        site = environ.get("HTTP_SEC_FETCH_SITE")
        origin = environ.get("HTTP_ORIGIN")
        if site:
            if site in ("same-origin", "none"):
                return None
            if self._exempt(environ, origin):
                return None
            if site == "cross-site":
                return _REASONS[0]
            return _REASONS[1] if site == "same-site" else _REASONS[2]
        if not origin:
            return None
        if origin == "null":
            reason = _REASONS[3]
        elif "@" in origin:
            reason = _REASONS[4]
        else:
            normal = normalize_origin(origin)
            if normal is not None and normal == _own_origin(environ):
                return None
            reason = _REASONS[5] if normal is None else _REASONS[6]
        return None if self._exempt(environ, origin) else reason

    def _exempt(self, environ: Environ, origin: str | None) -> bool:
        if self._paths and self._paths(request_path(environ)):
            return True
        if origin and (self._exact or self._wildcards) and "@" not in origin:
            normal = normalize_origin(origin)
            if normal is None:
                return False
            if normal in self._exact:
                return True
            for prefix, suffix in self._wildcards:
                if (
                    normal.startswith(prefix)
                    and normal.endswith(suffix)
                    and len(normal) > len(prefix) + len(suffix)
                ):
                    return True
        return False

    def _deny(
        self, environ: Environ, start_response: StartResponse, reason: str
    ) -> Iterable[bytes]:
        self.counters.rejection("cross_origin", _SLUGS.get(reason, "other"))
        logger.warning(
            "cross-origin request blocked: %s %r from origin %r: %s",
            environ.get("REQUEST_METHOD"),
            request_path(environ)[:200],
            str(environ.get("HTTP_ORIGIN", ""))[:200],
            reason,
        )
        if self._deny_handler is not None:
            return self._deny_handler(environ, start_response, reason)
        status, headers, body = self._answers[reason]
        start_response(status, list(headers))
        return [body]


def _own_origin(environ: Environ) -> str | None:
    return normalize_origin(f"{scheme(environ)}://{host(environ)}")
