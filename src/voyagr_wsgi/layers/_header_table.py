"""Options of :class:`~voyagr_wsgi.layers.SecurityHeaders` -> validated header entries.

:class:`HeaderTable` checks every option once, at construction (a mistake raises
:class:`~voyagr_wsgi.ConfigurationError` naming the option and its environment variable),
and answers ``entries(secure, host_kind, nonce)``: the headers the layer adds for one kind of
request. The layer calls it for its six request variants and keeps the results.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Literal

from ..errors import ConfigurationError
from ._cookies import SameSite
from ._presets import PRESETS, PresetName
from .csp import _FETCH, ContentSecurityPolicy, Value

__all__ = ["IP", "LOOPBACK", "NAME", "Entry", "HeaderTable", "Merge", "PolicyArg"]

Merge = Literal["default", "set", "append"]
PolicyArg = str | Mapping[str, Value] | ContentSecurityPolicy | bool
Entry = tuple[str, str, str]  # (lower-case name, name, value)
NAME, IP, LOOPBACK = 0, 1, 2  # what the request's host is
ONE_YEAR = 31_536_000  # seconds; the hstspreload.org minimum
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")  # RFC 9110 field-name
_BAD_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_RESERVED = {
    "strict-transport-security",
    "content-security-policy",
    "content-security-policy-report-only",
    "x-xss-protection",
}


class HeaderTable:
    """Validated options; :meth:`entries` builds one variant's header list."""

    def __init__(
        self,
        *,
        preset: PresetName,
        hsts: bool | Literal["reset"],
        hsts_max_age: int | None,
        hsts_include_subdomains: bool,
        hsts_preload: bool,
        csp: PolicyArg,
        csp_report_only: PolicyArg,
        csp_nonce: bool | Iterable[str],
        nonce_cache_control: str | None,
        frame_ancestors: Literal["self", "none"] | None,
        x_xss_protection: Literal["0", "1; mode=block", "preset"] | None,
        headers: Mapping[str, str | None] | None,
        merge: Mapping[str, Merge] | None,
        secure_cookies: bool,
        cookie_samesite: SameSite | None,
        httponly_exempt: Iterable[str],
        strip: Iterable[str],
    ) -> None:
        if preset not in PRESETS:
            raise ConfigurationError(
                f"preset (SECURITY_PRESET)={preset!r} is not one of: {', '.join(PRESETS)}"
            )
        chosen = PRESETS[preset]
        base = ContentSecurityPolicy(chosen.csp, option=f"preset {preset!r}")
        max_age = chosen.hsts_max_age if hsts_max_age is None else hsts_max_age
        self.hsts = _hsts(hsts, max_age, hsts_include_subdomains, hsts_preload)
        if csp is True and not chosen.sends_csp:
            csp = False  # the preset sends none (django); its frame-ancestors still sets XFO
        enforced = _policy(base, csp, "csp (CSP_POLICY)")
        if csp_report_only is True and enforced is None:
            raise ConfigurationError("csp_report_only (CSP_REPORT_ONLY)=True needs a csp policy")
        self.report_only = csp_report_only is True
        self.extra_report_only = (
            None
            if isinstance(csp_report_only, bool)
            else _policy(base, csp_report_only, "csp_report_only")
        )
        self.csp, xfo = _frame(base, enforced, frame_ancestors)
        self.nonce_directives = _nonce_directives(csp_nonce)
        if self.nonce_directives and self.csp is None and self.extra_report_only is None:
            raise ConfigurationError("csp_nonce (CSP_NONCE) needs a csp policy to put it in")
        if nonce_cache_control is not None and _BAD_VALUE.search(nonce_cache_control):
            raise ConfigurationError("nonce_cache_control: no control characters")
        self.nonce_cache_control = nonce_cache_control
        if x_xss_protection not in ("0", "1; mode=block", "preset", None):
            raise ConfigurationError(
                f"x_xss_protection (X_XSS_PROTECTION)={x_xss_protection!r}: use '0' or "
                "'1; mode=block' (or None to omit)"
            )
        if cookie_samesite not in ("Lax", "Strict", "None", None):
            raise ConfigurationError(f"cookie_samesite={cookie_samesite!r}: Lax, Strict or None")
        fixed: dict[str, tuple[str, str]] = {}
        if xfo is not None:
            fixed["x-frame-options"] = ("X-Frame-Options", xfo)
        for name, value in chosen.headers:
            fixed[name.lower()] = (name, value)
        xss = chosen.x_xss_protection if x_xss_protection == "preset" else x_xss_protection
        if xss is not None:
            fixed["x-xss-protection"] = ("X-XSS-Protection", xss)
        _apply_overrides(fixed, headers or {})
        self.fixed = tuple(fixed.values())
        self.merge = {_name(k, "merge").lower(): v for k, v in (merge or {}).items()}
        for low, how in self.merge.items():
            if how not in ("default", "set", "append"):
                raise ConfigurationError(f"merge[{low!r}]={how!r}: use default, set or append")
        self.strip = {_name(s, "strip").lower() for s in strip}

    def entries(self, secure: bool, kind: int, nonce: str | None) -> list[Entry]:
        """Headers for HTTPS-or-not requests to a host of ``kind``; ``nonce`` in the CSP."""
        entries: list[Entry] = []
        if self.hsts is not None and secure and kind == NAME:
            entries.append(_entry("Strict-Transport-Security", self.hsts))
        for policy, report_only in ((self.csp, self.report_only), (self.extra_report_only, True)):
            if policy is not None:
                value = policy.render(
                    upgrade_insecure_requests=secure and kind != LOOPBACK,
                    nonce=nonce,
                    nonce_directives=self.nonce_directives,
                    report_only=report_only,
                )
                suffix = "-Report-Only" if report_only else ""
                entries.append(_entry("Content-Security-Policy" + suffix, value))
        entries.extend(_entry(name, value) for name, value in self.fixed)
        if (
            nonce is not None
            and self.nonce_cache_control is not None
            and not any(e[0] == "cache-control" for e in entries)
        ):
            entries.append(_entry("Cache-Control", self.nonce_cache_control))
        return entries


def _entry(name: str, value: str) -> Entry:
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
    if preload and (max_age < ONE_YEAR or not subdomains):
        raise ConfigurationError(
            "hsts_preload (HSTS_PRELOAD) needs hsts_max_age >= 31536000 and "
            f"hsts_include_subdomains=True (got max-age={max_age}, "
            f"includeSubDomains={subdomains}); see https://hstspreload.org"
        )
    return f"max-age={max_age}" + "; includeSubDomains" * subdomains + "; preload" * preload


def _policy(
    base: ContentSecurityPolicy, arg: PolicyArg, option: str
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


def _frame(
    base: ContentSecurityPolicy, policy: ContentSecurityPolicy | None, frame_ancestors: str | None
) -> tuple[ContentSecurityPolicy | None, str | None]:
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


def _apply_overrides(fixed: dict[str, tuple[str, str]], headers: Mapping[str, str | None]) -> None:
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
