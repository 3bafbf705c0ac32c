"""SecurityHeaders: HSTS, CSP and the rest of the OWASP set, plus Set-Cookie flags.

When: in front of any app that serves browsers (the ``api`` preset for JSON APIs). Why: the
headers that make XSS, clickjacking, MIME sniffing, downgrade and cookie theft harder, with
the pitfalls of the incumbents avoided (HSTS over plain HTTP, folded Set-Cookie headers,
duplicate headers from a header list edited in place)::

    from voyagr_wsgi.layers import SecurityHeaders
    application = SecurityHeaders(app)                              # preset="balanced"
    application = SecurityHeaders(app, preset="strict", csp_nonce=True,
                                  httponly_exempt=["csrftoken"])

What it does, per response (the exact values of each preset are in ``_presets.py``):

- ``Strict-Transport-Security`` (RFC 6797) only when the trusted scheme
  (:func:`voyagr_wsgi.request.scheme`) is ``https`` and the host is a name, never an IP
  literal or loopback (sections 7.2, 8.1); ``hsts="reset"`` sends ``max-age=0`` to undo it.
  ``hsts_preload`` requires ``max-age >= 31536000`` and ``includeSubDomains``.
- ``Content-Security-Policy`` from a validated :class:`~voyagr_wsgi.layers.csp.
  ContentSecurityPolicy`; ``csp_report_only=True`` sends it as ``...-Report-Only`` instead,
  a policy there sends a second, report-only policy beside the enforced one.
  ``upgrade-insecure-requests`` only on HTTPS, non-loopback requests (helmet#429).
  ``csp_nonce=True``: a lazy nonce in ``environ["voyagr.csp_nonce"]``, in the header only if
  used, then ``Cache-Control: no-store`` unless the app set a Cache-Control.
- ``X-Frame-Options`` derived from the CSP ``frame-ancestors`` (``frame_ancestors=``), the
  preset's other headers, ``X-XSS-Protection: 0`` (``"1; mode=block"`` selectable, None
  omits it; the default ``"preset"`` is the preset's: none for ``django``).
- Options a preset supplies (``hsts_max_age``, ``x_xss_protection``, ``csp``) take the
  preset's value only when left unset: an explicit value always wins.
- Every ``Set-Cookie`` gets ``Secure`` (HTTPS only), ``HttpOnly`` and ``SameSite=Lax``
  unless it has them; cookies are never folded. ``httponly_exempt=("csrftoken",)``
  (``SECURE_COOKIES_HTTPONLY_EXEMPT``) leaves the named cookies readable by JavaScript
  (Django's CSRF cookie; :mod:`voyagr_wsgi.django` sets it for you); a name is exact,
  case-sensitive and must be an RFC 6265 token.
- ``X-Powered-By`` and an app-set ``Server`` are removed (``strip=``); no empty ``Server``.

Merging: a header the app set wins (Django semantics) unless ``merge={"name": "set"}``
(ours replaces it) or ``"append"`` (both are sent; two CSPs are both enforced). The list is
rebuilt in one pass, names compared case-insensitively, so no header is duplicated.
``headers={"Name": "value" or None}`` adds, changes or removes a preset header.

Per-route rules: ``routes={"/docs/*": {"csp": "..."}, "/static/*": {"headers":
{"Cross-Origin-Resource-Policy": "cross-origin"}}}`` gives paths (the normalised
``SCRIPT_NAME + PATH_INFO`` of :func:`voyagr_wsgi.request.request_path`; exact, or a
prefix ending in ``/*``: the one path grammar of :mod:`voyagr_wsgi.layers._paths`) their own
options, laid over the layer's; the first rule that matches wins, and each rule is validated
and precomputed at construction like the layer itself (``Settings(security_routes=...)`` in
a composed stack).
A view that needs its own header per response can still set it: the app's header wins.

PEP 3333: only ``start_response`` is wrapped (lazily called or called again with
``exc_info``, it works the same); the body is returned untouched, so streaming,
``wsgi.file_wrapper`` and ``close()`` are unaffected. Header lists are precomputed for the
six (HTTPS?, host is name / IP / loopback) variants (per rule), so a request costs a tuple
lookup (and a path match per rule, when there are rules) and one pass over the app's header
names: a set lookup each once a name is known to need nothing (names are remembered per
variant, at most 256).
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable, Iterable, Mapping
from functools import lru_cache
from typing import Any, Literal

from .._layer import Layer
from .._wsgi import Environ, Headers, StartResponse, WSGIApplication
from ..errors import ConfigurationError
from ..request import HOST, SCHEME, host, hostname, is_loopback_host, request_path, scheme
from ._cookies import CookieFlags, SameSite, cookie_names
from ._header_table import IP as _IP
from ._header_table import LOOPBACK as _LOOPBACK
from ._header_table import NAME as _NAME
from ._header_table import Entry, HeaderTable, Merge, PolicyArg
from ._paths import PathPatterns
from ._presets import PresetName
from .csp import CSP_NONCE, NONCE_SLOT, LazyNonce

__all__ = ["SecurityHeaders"]

log = logging.getLogger("voyagr_wsgi.security_headers")

_DROP, _MANAGED, _COOKIE = "drop", "managed", "cookie"
_PLAIN_MAX = 256  # app header names remembered as needing nothing, per variant


class _Variant:
    """The precomputed headers for one (secure, host kind) combination."""

    __slots__ = ("cookies", "defaults", "forced", "pairs", "plain", "secure", "special", "tail")

    def __init__(
        self,
        entries: list[Entry],
        merge: Mapping[str, Merge],
        strip: set[str],
        cookies: CookieFlags | None,
        secure: bool,
    ):
        self.defaults = tuple(e for e in entries if merge.get(e[0], "default") == "default")
        self.forced = tuple(e for e in entries if merge.get(e[0], "default") != "default")
        self.pairs = [(name, value) for _, name, value in self.defaults]
        # what a response whose app headers all pass through untouched gets appended
        self.tail = (*self.pairs, *((name, value) for _, name, value in self.forced))
        # lower-case name -> what to do with an app header of that name
        special = {e[0]: _MANAGED for e in entries}
        special.update((e[0], _DROP) for e in entries if merge.get(e[0]) == "set")
        special.update((name, _DROP) for name in strip)
        special["set-cookie"] = _COOKIE
        self.special = special
        # app header names (as sent) seen to need nothing: the per-response check is a set
        # lookup, no lower(); learned by the full pass, bounded
        self.plain: set[str] = set()
        self.cookies = cookies
        self.secure = secure

    def merged(self, headers: Headers) -> Headers:
        """The app's headers with ours merged in (a new list; ``headers`` is not changed)."""
        if type(headers) is not list:  # an iterator would be used up by the check below
            headers = list(headers)
        plain = self.plain
        for item in headers:
            if item[0] not in plain:
                return self._merged(headers)
        return [*headers, *self.tail]

    def _merged(self, headers: Headers) -> Headers:
        out: Headers = []
        seen: set[tuple[str, str]] | None = None  # (name, value) of managed app headers
        special = self.special
        cookies = self.cookies
        plain = self.plain
        for item in headers:
            low = item[0].lower()
            what = special.get(low)
            if what is None:
                out.append(item)
                if len(plain) < _PLAIN_MAX:
                    plain.add(item[0])
            elif what is _COOKIE:
                out.append(
                    item if cookies is None else (item[0], cookies.harden(item[1], self.secure))
                )
            elif what is _MANAGED:
                if seen is None:
                    seen = set()
                elif (low, item[1]) in seen:
                    continue  # an exact duplicate of a header we manage
                seen.add((low, item[1]))
                out.append(item)
        if seen is None:
            out.extend(self.pairs)
        else:
            names = {low for low, _ in seen}
            if len(names) < len(seen):
                _warn_conflicts(seen)
            out.extend((name, value) for low, name, value in self.defaults if low not in names)
        for low, name, value in self.forced:
            if seen is None or (low, value) not in seen:
                out.append((name, value))
        return out

    def with_nonce(self, nonce: str) -> _Variant:
        """A copy with the nonce placeholder replaced (for requests that used the nonce)."""
        copy = object.__new__(_Variant)
        copy.defaults = tuple((lo, n, v.replace(NONCE_SLOT, nonce)) for lo, n, v in self.defaults)
        copy.forced = tuple((lo, n, v.replace(NONCE_SLOT, nonce)) for lo, n, v in self.forced)
        copy.pairs = [(name, value) for _, name, value in copy.defaults]
        copy.tail = (*copy.pairs, *((name, value) for _, name, value in copy.forced))
        copy.special = self.special
        copy.plain = self.plain  # same names, same answers
        copy.cookies = self.cookies
        copy.secure = self.secure
        return copy


#: headers a browser reads one value of: two different values may make it ignore both
#: (X-Frame-Options: DENY, SAMEORIGIN protects nothing) or take one at random
_SINGLE = frozenset({
    "x-frame-options", "strict-transport-security", "x-content-type-options",
    "cross-origin-opener-policy", "cross-origin-resource-policy", "cross-origin-embedder-policy",
})  # fmt: skip
_warned: set[str] = set()


def _warn_conflicts(seen: set[tuple[str, str]]) -> None:
    """Log once per header name an app that sends a single-valued header with two values."""
    values: dict[str, list[str]] = {}
    for low, value in seen:
        if low in _SINGLE:
            values.setdefault(low, []).append(value)
    for low, found in values.items():
        if len(found) > 1 and low not in _warned and len(_warned) < 64:
            _warned.add(low)
            log.warning(
                "the app sends %s with %d different values (%s): a browser may ignore them "
                "all; send one (this is logged once)",
                low, len(found), ", ".join(sorted(repr(v[:80]) for v in found)),
            )  # fmt: skip


@lru_cache(maxsize=1024)
def _host_kind(host_value: str) -> int:
    """_NAME: a DNS name; _IP: an IP literal (or no host); _LOOPBACK: loopback."""
    if is_loopback_host(host_value):
        return _LOOPBACK
    name = hostname(host_value).strip("[]")
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return _NAME if name else _IP
    return _IP


_Row = tuple[tuple[_Variant, "_Variant | None", Callable[[Headers], Headers]], ...]
_Variants = tuple[_Row, _Row]  # [secure][host kind] -> (variant, nonce template, merged)


def _build(options: dict[str, Any]) -> tuple[_Variants, CookieFlags | None]:
    """The six precomputed variants (HTTPS or not x host kind) for one set of options."""
    table = HeaderTable(**options)
    exempt = cookie_names(
        options["httponly_exempt"], "httponly_exempt (SECURE_COOKIES_HTTPONLY_EXEMPT)"
    )  # checked even with secure_cookies off, so a bad name never waits for the switch
    cookies = (
        CookieFlags(httponly=True, httponly_exempt=exempt, samesite=options["cookie_samesite"])
        if options["secure_cookies"]
        else None
    )
    variants = []
    for secure in (False, True):
        row = []
        for kind in (_NAME, _IP, _LOOPBACK):
            plain = _Variant(
                table.entries(secure, kind, None), table.merge, table.strip, cookies, secure
            )
            template = (
                _Variant(
                    table.entries(secure, kind, NONCE_SLOT), table.merge, table.strip, cookies,
                    secure,
                )
                if table.nonce_directives
                else None
            )  # fmt: skip
            row.append((plain, template, plain.merged))
        variants.append(tuple(row))
    return (variants[0], variants[1]), cookies


class SecurityHeaders(Layer):
    """Adds the security headers of a preset to every response; see the module docs."""

    def __init__(
        self,
        app: WSGIApplication | None = None,
        /,
        *,
        preset: PresetName = "balanced",
        hsts: bool | Literal["reset"] = True,
        hsts_max_age: int | None = None,  # seconds; None: the preset's (1 y; strict 2 y)
        hsts_include_subdomains: bool = True,
        hsts_preload: bool = False,
        csp: PolicyArg = True,  # True: the preset's policy; False: no CSP
        csp_report_only: PolicyArg = False,  # True: send `csp` report-only; policy: both
        csp_nonce: bool | Iterable[str] = False,  # True: script-src; or directive names
        nonce_cache_control: str | None = "no-store",
        frame_ancestors: Literal["self", "none"] | None = None,  # None: CSP's or preset's
        x_xss_protection: Literal["0", "1; mode=block", "preset"] | None = "preset",  # None: omit
        headers: Mapping[str, str | None] | None = None,
        merge: Mapping[str, Merge] | None = None,
        secure_cookies: bool = True,
        cookie_samesite: SameSite | None = "Lax",
        httponly_exempt: Iterable[str] = (),
        strip: Iterable[str] = ("Server", "X-Powered-By"),
        routes: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        options = dict(locals())
        del options["self"], options["app"]
        self._init(app, dict(options))
        del options["routes"]
        self._variants, self._cookies = _build(options)
        compiled = []
        for pattern, override in (routes or {}).items():
            setting = f"SecurityHeaders(routes=) {pattern!r}"
            matches = PathPatterns([pattern], setting=setting)
            if not isinstance(override, Mapping):
                raise ConfigurationError(f"{setting}: give a mapping of SecurityHeaders options")
            unknown = sorted(set(override) - set(options))
            if unknown:
                raise ConfigurationError(
                    f"{setting}: {', '.join(map(repr, unknown))} is not a SecurityHeaders option"
                )
            try:
                variants = _build({**options, **override})[0]
            except ConfigurationError as exc:
                raise ConfigurationError(f"{setting}: {exc}") from exc
            compiled.append((pattern, matches, variants))
        #: (pattern, matcher, variants) per rule, first match wins; () when there is none
        self._routes = tuple(compiled)

    def variants_for(self, environ: Environ) -> tuple[str | None, _Variants]:
        """The rule (its pattern, None for the layer's own options) and header variants that
        apply to a request."""
        if self._routes:
            path = request_path(environ)
            for pattern, matches, variants in self._routes:
                if matches(path):
                    return pattern, variants
        return None, self._variants

    def explain(self, environ: Environ) -> dict[str, Any]:
        """The rule that applies and the headers added to a response that has none."""
        rule, _ = self.variants_for(environ)
        _, _, headers = self._run_detached(dict(environ))
        return {"outcome": "passes", "rule": rule, "adds": headers}

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        value = environ.get(SCHEME)  # scheme() and host(), their ProxyTrust case inline
        if value is None:
            value = scheme(environ)
        host_value = environ.get(HOST)
        if host_value is None:
            host_value = host(environ)
        variants = self._variants if not self._routes else self.variants_for(environ)[1]
        variant, template, merged = variants[value == "https"][_host_kind(host_value)]
        if template is None:

            def wrapped(status: str, headers: Headers, exc_info: Any = None) -> Any:
                if exc_info is None:
                    return start_response(status, merged(headers))
                return start_response(status, merged(headers), exc_info)

            nxt = self._next
            return nxt(environ, wrapped)

        nonce = environ[CSP_NONCE] = LazyNonce()

        def wrapped_nonce(status: str, headers: Headers, exc_info: Any = None) -> Any:
            chosen = template.with_nonce(str(nonce)) if nonce.used else variant
            if exc_info is None:
                return start_response(status, chosen.merged(headers))
            return start_response(status, chosen.merged(headers), exc_info)

        nxt = self._next
        return nxt(environ, wrapped_nonce)
