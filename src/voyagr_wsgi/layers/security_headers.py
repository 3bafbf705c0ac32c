"""SecurityHeaders: HSTS, CSP and the rest of the OWASP set, plus Set-Cookie flags.

When: in front of any app that serves browsers (the ``api`` preset for JSON APIs). Why: the
headers that make XSS, clickjacking, MIME sniffing, downgrade and cookie theft harder, with
the pitfalls of the incumbents avoided (``reference/security.md`` section 4)::

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
  preset's other headers, ``X-XSS-Protection: 0`` (``"1; mode=block"`` selectable).
- Every ``Set-Cookie`` gets ``Secure`` (HTTPS only), ``HttpOnly`` (except names in
  ``httponly_exempt``) and ``SameSite=Lax`` unless it has them; cookies are never folded.
- ``X-Powered-By`` and an app-set ``Server`` are removed (``strip=``); no empty ``Server``.

Merging: a header the app set wins (Django semantics) unless ``merge={"name": "set"}``
(ours replaces it) or ``"append"`` (both are sent; two CSPs are both enforced). The list is
rebuilt in one pass, names compared case-insensitively, so no header is duplicated.
``headers={"Name": "value" or None}`` adds, changes or removes a preset header.

PEP 3333: only ``start_response`` is wrapped (lazily called or called again with
``exc_info``, it works the same); the body is returned untouched, so streaming,
``wsgi.file_wrapper`` and ``close()`` are unaffected. Header lists are precomputed for the
six (HTTPS?, host is name / IP / loopback) variants, so a request costs a dict-free tuple
lookup and one pass over the app's headers.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any, Literal

from .._layer import Layer
from .._wsgi import Environ, Headers, StartResponse, WSGIApplication
from ..errors import ConfigurationError
from ..request import host, hostname, is_loopback_host, scheme
from ._cookies import CookieFlags, SameSite
from ._presets import PRESETS, PresetName
from .csp import _FETCH, CSP_NONCE, NONCE_SLOT, ContentSecurityPolicy, LazyNonce, Value

__all__ = ["SecurityHeaders"]

Merge = Literal["default", "set", "append"]
PolicyArg = str | Mapping[str, Value] | ContentSecurityPolicy | bool
_Entry = tuple[str, str, str]  # (lower-case name, name, value)
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
_BAD_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_DROP, _MANAGED, _COOKIE = "drop", "managed", "cookie"
_ONE_YEAR = 31_536_000  # seconds; hstspreload.org minimum, Settings' default
_RESERVED = {"strict-transport-security", "content-security-policy",
             "content-security-policy-report-only", "x-xss-protection"}


class _Variant:
    """The precomputed headers for one (secure, host kind) combination."""

    __slots__ = ("defaults", "forced", "pairs", "special")

    def __init__(self, entries: list[_Entry], merge: Mapping[str, Merge], strip: set[str]):
        self.defaults = tuple(e for e in entries if merge.get(e[0], "default") == "default")
        self.forced = tuple(e for e in entries if merge.get(e[0], "default") != "default")
        self.pairs = [(name, value) for _, name, value in self.defaults]
        # lower-case name -> what to do with an app header of that name
        special = {e[0]: _MANAGED for e in entries}
        special.update((e[0], _DROP) for e in entries if merge.get(e[0]) == "set")
        special.update((name, _DROP) for name in strip)
        special["set-cookie"] = _COOKIE
        self.special = special

    def merged(self, headers: Headers, cookies: CookieFlags | None, secure: bool) -> Headers:
        out: Headers = []
        seen: set[tuple[str, str]] | None = None  # (name, value) of managed app headers
        special = self.special
        for item in headers:
            low = item[0].lower()
            what = special.get(low)
            if what is None:
                out.append(item)
            elif what is _COOKIE:
                out.append(item if cookies is None else (item[0], cookies.harden(item[1], secure)))
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
            out.extend((name, value) for low, name, value in self.defaults if low not in names)
        for low, name, value in self.forced:
            if seen is None or (low, value) not in seen:
                out.append((name, value))
        return out


@lru_cache(maxsize=1024)
def _host_kind(host_value: str) -> int:
    """0: a DNS name, 1: an IP literal (or no host), 2: loopback."""
    if is_loopback_host(host_value):
        return 2
    name = hostname(host_value).strip("[]")
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return 0 if name else 1
    return 1


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
        x_xss_protection: Literal["0", "1; mode=block"] | None = "0",
        headers: Mapping[str, str | None] | None = None,
        merge: Mapping[str, Merge] | None = None,
        secure_cookies: bool = True,
        cookie_samesite: SameSite | None = "Lax",
        httponly_exempt: Iterable[str] = (),
        strip: Iterable[str] = ("Server", "X-Powered-By"),
    ) -> None:
        options = dict(locals())
        del options["self"], options["app"]
        self._init(app, options)
        if preset not in PRESETS:
            raise ConfigurationError(
                f"preset (SECURITY_PRESET)={preset!r} is not one of: {', '.join(PRESETS)}"
            )
        chosen = PRESETS[preset]
        base = ContentSecurityPolicy(chosen.csp, option=f"preset {preset!r}")
        hsts_value = _hsts(hsts, hsts_max_age if hsts_max_age is not None else
                           chosen.hsts_max_age, hsts_include_subdomains, hsts_preload)
        enforced = _policy(base, csp, "csp (CSP_POLICY)")
        extra_ro = None if isinstance(csp_report_only, bool) else _policy(
            base, csp_report_only, "csp_report_only")
        if csp_report_only is True and enforced is None:
            raise ConfigurationError("csp_report_only (CSP_REPORT_ONLY)=True needs a csp policy")
        enforced, xfo = _frame(base, enforced, frame_ancestors)
        self._nonce_dirs = _nonce_directives(csp_nonce)
        if x_xss_protection not in ("0", "1; mode=block", None):
            raise ConfigurationError(
                f"x_xss_protection (X_XSS_PROTECTION)={x_xss_protection!r}: use '0' or "
                "'1; mode=block' (or None to omit)"
            )
        fixed: dict[str, tuple[str, str]] = {}
        if xfo is not None:
            fixed["x-frame-options"] = ("X-Frame-Options", xfo)
        for name, value in chosen.headers:
            fixed[name.lower()] = (name, value)
        if x_xss_protection is not None:
            fixed["x-xss-protection"] = ("X-XSS-Protection", x_xss_protection)
        _apply_overrides(fixed, headers or {})
        policies = {_name(k, "merge").lower(): v for k, v in (merge or {}).items()}
        for low, how in policies.items():
            if how not in ("default", "set", "append"):
                raise ConfigurationError(f"merge[{low!r}]={how!r}: use default, set or append")
        strip_set = {_name(s, "strip").lower() for s in strip}
        report_only = csp_report_only is True
        self._nonce_cc = nonce_cache_control
        self._variants: list[list[tuple[_Variant, _Variant | None]]] = []
        for secure in (False, True):
            row = []
            for kind in (0, 1, 2):
                def build(nonce: str | None, secure: bool = secure, kind: int = kind) -> _Variant:
                    uir = secure and kind != 2
                    entries: list[_Entry] = []
                    if hsts_value is not None and secure and kind == 0:
                        entries.append(_entry("Strict-Transport-Security", hsts_value))
                    for policy, ro in ((enforced, report_only), (extra_ro, True)):
                        if policy is not None:
                            value = policy.render(upgrade_insecure_requests=uir, nonce=nonce,
                                                  nonce_directives=self._nonce_dirs,
                                                  report_only=ro)
                            name = "Content-Security-Policy" + ("-Report-Only" if ro else "")
                            entries.append(_entry(name, value))
                    entries.extend(_entry(n, v) for n, v in fixed.values())
                    if nonce is not None and nonce_cache_control is not None and not any(
                            e[0] == "cache-control" for e in entries):
                        entries.append(_entry("Cache-Control", nonce_cache_control))
                    return _Variant(entries, policies, strip_set)
                row.append((build(None), build(NONCE_SLOT) if self._nonce_dirs else None))
            self._variants.append(row)
        self._cookies = CookieFlags(
            httponly=True, httponly_exempt=httponly_exempt, samesite=cookie_samesite
        ) if secure_cookies else None

    @classmethod
    def from_settings(cls, settings: Any, context: Any) -> SecurityHeaders | None:
        """Built from ``SECURITY_PRESET``, ``HSTS_*``, ``CSP_*``, ``X_XSS_PROTECTION``,
        ``SECURE_COOKIES``; ``HSTS_MAX_AGE`` left at its default takes the preset's."""
        return cls(
            preset=settings.security_preset,
            hsts=settings.hsts,
            hsts_max_age=None if settings.hsts_max_age == _ONE_YEAR else settings.hsts_max_age,
            hsts_include_subdomains=settings.hsts_include_subdomains,
            hsts_preload=settings.hsts_preload,
            csp=settings.csp if settings.csp else True,
            csp_report_only=settings.csp_report_only,
            csp_nonce=settings.csp_nonce,
            x_xss_protection=settings.x_xss_protection,
            secure_cookies=settings.secure_cookies,
        )

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        secure = scheme(environ) == "https"
        variant, template = self._variants[secure][_host_kind(host(environ))]
        cookies = self._cookies
        nonce: LazyNonce | None = None
        if template is not None:
            nonce = environ[CSP_NONCE] = LazyNonce()

        def wrapped(status: str, headers: Headers, exc_info: Any = None) -> Any:
            chosen = variant
            if nonce is not None and nonce.used and template is not None:
                chosen = _with_nonce(template, str(nonce))
            merged = chosen.merged(headers, cookies, secure)
            if exc_info is None:
                return start_response(status, merged)
            return start_response(status, merged, exc_info)

        return self.app(environ, wrapped)


def _with_nonce(template: _Variant, nonce: str) -> _Variant:
    variant = object.__new__(_Variant)
    variant.defaults = tuple((lo, n, v.replace(NONCE_SLOT, nonce)) for lo, n, v in
                             template.defaults)
    variant.forced = tuple((lo, n, v.replace(NONCE_SLOT, nonce)) for lo, n, v in
                           template.forced)
    variant.pairs = [(name, value) for _, name, value in variant.defaults]
    variant.special = template.special
    return variant


def _entry(name: str, value: str) -> _Entry:
    return (name.lower(), name, value)


def _name(name: str, option: str) -> str:
    if not isinstance(name, str) or not _TOKEN.match(name):
        raise ConfigurationError(f"{option}: {name!r} is not a valid header name")
    return name


def _hsts(enabled: bool | str, max_age: int, subdomains: bool, preload: bool) -> str | None:
    if enabled not in (True, False, "reset"):
        raise ConfigurationError(f"hsts (HSTS_ENABLED)={enabled!r}: use True, False or 'reset'")
    if enabled == "reset":
        return "max-age=0"
    if not enabled:
        return None
    if isinstance(max_age, bool) or not isinstance(max_age, int) or max_age < 0:
        raise ConfigurationError(f"hsts_max_age (HSTS_MAX_AGE)={max_age!r}: seconds, >= 0")
    if preload and (max_age < _ONE_YEAR or not subdomains):
        raise ConfigurationError(
            "hsts_preload (HSTS_PRELOAD) needs hsts_max_age >= 31536000 and "
            f"hsts_include_subdomains=True (got max-age={max_age}, "
            f"includeSubDomains={subdomains}); see https://hstspreload.org"
        )
    return f"max-age={max_age}" + "; includeSubDomains" * subdomains + "; preload" * preload


def _policy(base: ContentSecurityPolicy, arg: PolicyArg, option: str
            ) -> ContentSecurityPolicy | None:
    if arg is True:
        return base
    if arg is False or arg is None:
        return None
    if isinstance(arg, ContentSecurityPolicy):
        return arg
    if isinstance(arg, str):
        return ContentSecurityPolicy.parse(arg, option=option)
    if isinstance(arg, Mapping):
        return ContentSecurityPolicy(arg, option=option)
    raise ConfigurationError(f"{option}: {arg!r} is not a policy (str, mapping or bool)")


def _frame(base: ContentSecurityPolicy, policy: ContentSecurityPolicy | None,
           frame_ancestors: str | None) -> tuple[ContentSecurityPolicy | None, str | None]:
    """Make CSP ``frame-ancestors`` and X-Frame-Options agree; returns (policy, XFO)."""
    if frame_ancestors not in (None, "self", "none"):
        raise ConfigurationError(f"frame_ancestors={frame_ancestors!r}: use 'self' or 'none'")
    wanted = None if frame_ancestors is None else f"'{frame_ancestors}'"
    if policy is not None and policy is not base and policy.get("frame-ancestors"):
        if wanted is not None and policy.get("frame-ancestors") != (wanted,):
            raise ConfigurationError(
                f"frame_ancestors={frame_ancestors!r} disagrees with the csp's frame-ancestors "
                f"{' '.join(policy.get('frame-ancestors') or ())!r}; set one of them"
            )
        return policy, policy.frame_options()
    value = wanted or " ".join(base.get("frame-ancestors") or ("'self'",))
    source = (policy or base).replace("frame-ancestors", value)
    return (source if policy is not None else None), source.frame_options()


def _nonce_directives(arg: bool | Iterable[str]) -> tuple[str, ...]:
    if arg is True:
        return ("script-src",)
    if arg is False:
        return ()
    names = tuple(arg)
    for name in names:
        if name not in _FETCH:
            raise ConfigurationError(f"csp_nonce: {name!r} is not a fetch directive")
    return names


def _apply_overrides(fixed: dict[str, tuple[str, str]], headers: Mapping[str, str | None]
                     ) -> None:
    for name, value in headers.items():
        low = _name(name, "headers").lower()
        if low in _RESERVED:
            raise ConfigurationError(
                f"headers: set {name!r} with its own option (hsts, csp, csp_report_only, "
                "x_xss_protection), not through headers="
            )
        if value is None:
            fixed.pop(low, None)
        elif not isinstance(value, str) or _BAD_VALUE.search(value):
            raise ConfigurationError(f"headers[{name!r}]={value!r}: no control characters")
        else:
            fixed[low] = (name, value)
