"""HostCheck: answer ``400 Bad Request`` to a ``Host`` outside ``ALLOWED_HOSTS``.

Use it on every deployment: redirects, absolute links, password-reset mails and cache keys
are built from the Host header, and a forged one poisons them (CVE-2011-4139, werkzeug#609).
With HostCheck in front, no later layer (the HTTPS redirect included) builds a URL from a
Host nobody allowed::

    from voyagr_wsgi.layers import HostCheck
    application = HostCheck(app, allowed_hosts=["example.com", ".example.org"])

or ``ALLOWED_HOSTS=example.com,.example.org`` with ``compose(app, Settings.from_env())``.

Patterns follow Django's ``ALLOWED_HOSTS`` (``django.http.request.validate_host``):

- ``example.com`` matches that name exactly (case-insensitive);
- ``.example.com`` matches ``example.com`` and every subdomain (``a.b.example.com``);
- ``*`` matches any syntactically valid host;
- the port is ignored (``example.com:8443`` matches ``example.com``), and so is one trailing
  dot (``example.com.``) on the request's host or on a pattern;
- IPv6 literals are written with brackets: ``[2001:db8::1]``.

Before any pattern is consulted the host must pass Django's ``host_validation_re`` syntax
check (letters, digits, ``.`` and ``-``, or a bracketed IPv6 literal, then an optional
numeric port), matched in full, so CR/LF, spaces, ``@``, ``/``, ``\\`` and non-ASCII text
are always refused. With an empty allow-list only this syntax check runs; ``voyagr-wsgi
check`` reports that as ``voyagr.W001``.

A refused request gets ``400`` with an RFC 9457 problem body of type ``host-not-allowed``
(:mod:`voyagr_wsgi.problem`; never a redirect, never the host echoed back) and one INFO line
on the ``voyagr_wsgi.host_check`` logger. The host is read through
:func:`voyagr_wsgi.request.host`, i.e. the value ProxyTrust resolved (a forwarded host only
when a trusted proxy sent it). Decisions are cached per host string in a bounded dict, so
the per-request cost is one dict lookup.

Each refusal counts into ``counters=`` (a :class:`voyagr_wsgi.counters.Counters`, the layer's
own without it) as ``host_check``/``host-not-allowed`` or ``malformed-host``; in a composed
stack: ``voyagr_rejections_total``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Any

from .._layer import Layer
from .._wsgi import Environ, StartResponse, WSGIApplication
from ..counters import Counters
from ..errors import ConfigurationError
from ..problem import prepare
from ..request import HOST
from ..request import host as request_host

__all__ = ["HOST_RE", "HostCheck", "split_host"]

log = logging.getLogger("voyagr_wsgi.host_check")

#: Django's ``host_validation_re``, matched with ``fullmatch`` on the lower-cased host.
HOST_RE = re.compile(r"([a-z0-9.-]+|\[[a-f0-9]*:[a-f0-9.:]+\])(?::([0-9]+))?")

_STATUS, _HEADERS, _BODY = prepare(
    "host-not-allowed", "the Host header is malformed or not allowed"
)
_CACHE_MAX = 1024


def split_host(value: str) -> tuple[str, str] | None:
    """``(domain, port)`` of a syntactically valid host (lower-cased, trailing dot removed).

    None when ``value`` fails Django's host syntax check or the domain is empty.
    """
    match = HOST_RE.fullmatch(value.lower())
    if match is None:
        return None
    domain = match.group(1).removesuffix(".")
    if not domain:
        return None
    return domain, match.group(2) or ""


class HostCheck(Layer):
    """400 for a request whose Host is malformed or matches no allowed pattern."""

    def __init__(
        self,
        app: WSGIApplication | None = None,
        /,
        *,
        allowed_hosts: Iterable[str] = (),
        counters: Counters | None = None,
    ) -> None:
        patterns = tuple(allowed_hosts)
        self._init(app, {"allowed_hosts": patterns})
        #: refusals counted as ``rejection("host_check", "malformed-host"|"host-not-allowed")``
        self.counters = counters if counters is not None else Counters()
        exact: set[str] = set()
        suffixes: list[str] = []
        self.allow_any = False
        for raw in patterns:
            if not isinstance(raw, str):
                raise ConfigurationError(f"ALLOWED_HOSTS (allowed_hosts): {raw!r} is not a string")
            pattern = raw.strip().lower().removesuffix(".")
            if pattern == "*":
                self.allow_any = True
                continue
            bare = pattern[1:] if pattern.startswith(".") else pattern
            match = HOST_RE.fullmatch(bare)
            if match is None or match.group(2) is not None:
                raise ConfigurationError(
                    f"ALLOWED_HOSTS (allowed_hosts): {raw!r} is not a host pattern; accepts "
                    "names (example.com), subdomain wildcards (.example.com), IP literals "
                    "([2001:db8::1]) or '*', without a port"
                )
            if pattern.startswith("."):
                suffixes.append(pattern)
                exact.add(bare)
            else:
                exact.add(pattern)
        self.allowed_hosts = patterns
        self._exact = frozenset(exact)
        self._suffixes = tuple(suffixes)
        self._syntax_only = not patterns
        self._cache: dict[str, bool] = {}

    def allows(self, host: str) -> bool:
        """True when ``host`` (``host[:port]``) is well formed and matches a pattern."""
        decision = self._cache.get(host)
        if decision is None:
            decision = self._decide(host)
            if len(self._cache) >= _CACHE_MAX:
                self._cache.clear()
            self._cache[host] = decision
        return decision

    def _decide(self, host: str) -> bool:
        parts = split_host(host)
        if parts is None:
            return False
        if self._syntax_only or self.allow_any:
            return True
        domain = parts[0]
        return domain in self._exact or domain.endswith(self._suffixes)

    def explain(self, environ: Environ) -> dict[str, Any]:
        """The Host the request path checks and its answer: ``__call__`` run detached, its
        refusal recorded instead of logged."""
        refused: list[str] = []

        def refuse(environ: Environ, start_response: StartResponse, host: str) -> list[bytes]:
            refused.append(host)
            return self._refuse(environ, start_response, host, logged=False)

        seen, status, _ = self._run_detached(dict(environ), _refuse=refuse)
        if seen is not None:
            return {"outcome": "passes", "host": request_host(seen)}
        return {
            "outcome": "answers",
            "status": status,
            "host": refused[0],
            "reason": "not in ALLOWED_HOSTS, or malformed",
        }

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        host = environ.get(HOST)  # request.host() and allows(), their common case inline
        if host is None:
            host = request_host(environ)
        allowed = self._cache.get(host)
        if allowed or (allowed is None and self.allows(host)):
            nxt = self._next
            return nxt(environ, start_response)
        return self._refuse(environ, start_response, host)

    def _refuse(
        self, environ: Environ, start_response: StartResponse, host: str, logged: bool = True
    ) -> list[bytes]:
        if logged:
            self.counters.rejection(
                "host_check", "malformed-host" if split_host(host) is None else "host-not-allowed"
            )
            log.info("refused Host %r (not in ALLOWED_HOSTS or malformed)", host[:200])
        start_response(_STATUS, list(_HEADERS))
        return [_BODY]
