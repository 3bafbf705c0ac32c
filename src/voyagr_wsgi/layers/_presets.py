"""Preset header tables for :class:`~voyagr_wsgi.layers.SecurityHeaders`.

Presets (values from helmet 8.3, secure 2.0.1, Django and the OWASP Secure Headers Project):

- ``balanced`` (default): helmet 8's CSP but ``frame-ancestors 'none'``, so ``DENY`` framing
  (what Django sends since 3.0; ``frame_ancestors="self"`` / ``SECURITY_FRAME_ANCESTORS=self``
  allows framing by the same origin, ``SAMEORIGIN``), the
  ``strict-origin-when-cross-origin`` referrer policy, a short Permissions-Policy deny list,
  one-year HSTS with ``includeSubDomains``. Safe for nearly every server-rendered site.
- ``strict``: the OWASP Secure Headers Project values (``ci/headers_add.json``): its CSP,
  ``DENY`` framing, ``no-referrer``, the 29-feature Permissions-Policy, COEP ``require-corp``,
  ``Cache-Control: no-store, max-age=0`` and two-year HSTS.
- ``api``: for JSON APIs: ``default-src 'none'; frame-ancestors 'none'``, ``DENY``,
  ``no-referrer``, ``nosniff``; no COOP/COEP, no Permissions-Policy (no documents to govern).

Parity presets, to move from another package without changing what browsers receive (values
from each package's own defaults; HSTS still follows the ``hsts*`` options and is only
ever sent over HTTPS, where helmet sends it on every response):

- ``helmet``: helmet 8's defaults: its CSP, ``SAMEORIGIN``, ``no-referrer``, COOP and CORP
  ``same-origin``, ``Origin-Agent-Cluster``, ``X-DNS-Prefetch-Control: off``,
  ``X-Download-Options: noopen``, ``X-Permitted-Cross-Domain-Policies: none``; no
  Permissions-Policy.
- ``django``: Django's SecurityMiddleware and XFrameOptionsMiddleware: ``DENY``, ``nosniff``,
  ``same-origin`` referrer policy, COOP ``same-origin``; no CSP (pass ``csp=`` for one) and no
  X-XSS-Protection.
- ``owasp``: the OWASP Secure Headers Project's list; the same headers as ``strict``.

Every other preset sends ``X-XSS-Protection: 0`` (OWASP: the legacy filter is harmful).
A preset only supplies values for options left unset: an explicit ``hsts_max_age``,
``x_xss_protection`` or ``csp`` (or ``HSTS_MAX_AGE``, ``X_XSS_PROTECTION``, ``CSP_POLICY``)
always wins over the preset's. X-Frame-Options is derived from the CSP's
``frame-ancestors`` (``'self'``: SAMEORIGIN, ``'none'``: DENY) so the two never disagree.
HSTS is listed apart because it depends on the request (scheme, host) and on options.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["PRESETS", "Preset", "PresetName"]

PresetName = Literal["balanced", "strict", "api", "helmet", "django", "owasp"]


@dataclass(frozen=True, slots=True)
class Preset:
    csp: dict[str, tuple[str, ...]]
    hsts_max_age: int  # seconds
    headers: tuple[tuple[str, str], ...]  # everything except CSP, XFO, HSTS, X-XSS-Protection
    #: sends ``csp`` unless the layer's ``csp`` option says otherwise (False: only ``csp``'s
    #: frame-ancestors is used, for X-Frame-Options)
    sends_csp: bool = True
    x_xss_protection: str | None = "0"  # what x_xss_protection="preset" sends; None: none


_HELMET_CSP: dict[str, tuple[str, ...]] = {
    "default-src": ("'self'",),
    "base-uri": ("'self'",),
    "font-src": ("'self'", "https:", "data:"),
    "form-action": ("'self'",),
    "frame-ancestors": ("'self'",),
    "img-src": ("'self'", "data:"),
    "object-src": ("'none'",),
    "script-src": ("'self'",),
    "script-src-attr": ("'none'",),
    "style-src": ("'self'", "https:", "'unsafe-inline'"),
    "upgrade-insecure-requests": (),
}

_OWASP_CSP: dict[str, tuple[str, ...]] = {
    "default-src": ("'self'",),
    "form-action": ("'self'",),
    "base-uri": ("'self'",),
    "object-src": ("'none'",),
    "frame-ancestors": ("'none'",),
    "upgrade-insecure-requests": (),
}

_OWASP_PERMISSIONS = (
    "accelerometer=(), autoplay=(), camera=(), cross-origin-isolated=(), "
    "display-capture=(), encrypted-media=(), fullscreen=(), geolocation=(), gyroscope=(), "
    "keyboard-map=(), magnetometer=(), microphone=(), midi=(), payment=(), "
    "picture-in-picture=(), publickey-credentials-get=(), screen-wake-lock=(), "
    "sync-xhr=(self), usb=(), web-share=(), xr-spatial-tracking=(), clipboard-read=(), "
    "clipboard-write=(), gamepad=(), hid=(), idle-detection=(), interest-cohort=(), "
    "serial=(), unload=()"
)

PRESETS: dict[str, Preset] = {
    "balanced": Preset(
        csp={**_HELMET_CSP, "frame-ancestors": ("'none'",)},
        hsts_max_age=31_536_000,
        headers=(
            ("X-Content-Type-Options", "nosniff"),
            ("Referrer-Policy", "strict-origin-when-cross-origin"),
            ("Permissions-Policy", "camera=(), geolocation=(), microphone=(), browsing-topics=()"),
            ("Cross-Origin-Opener-Policy", "same-origin"),
            ("Cross-Origin-Resource-Policy", "same-origin"),
            ("Origin-Agent-Cluster", "?1"),
            ("X-DNS-Prefetch-Control", "off"),
            ("X-Permitted-Cross-Domain-Policies", "none"),
        ),
    ),
    "strict": Preset(
        csp=_OWASP_CSP,
        hsts_max_age=63_072_000,
        headers=(
            ("X-Content-Type-Options", "nosniff"),
            ("Referrer-Policy", "no-referrer"),
            ("Permissions-Policy", _OWASP_PERMISSIONS),
            ("Cross-Origin-Opener-Policy", "same-origin"),
            ("Cross-Origin-Resource-Policy", "same-origin"),
            ("Cross-Origin-Embedder-Policy", "require-corp"),
            ("X-DNS-Prefetch-Control", "off"),
            ("X-Permitted-Cross-Domain-Policies", "none"),
            ("Cache-Control", "no-store, max-age=0"),
        ),
    ),
    "helmet": Preset(
        csp=_HELMET_CSP,
        hsts_max_age=31_536_000,
        headers=(
            ("X-Content-Type-Options", "nosniff"),
            ("Referrer-Policy", "no-referrer"),
            ("Cross-Origin-Opener-Policy", "same-origin"),
            ("Cross-Origin-Resource-Policy", "same-origin"),
            ("Origin-Agent-Cluster", "?1"),
            ("X-DNS-Prefetch-Control", "off"),
            ("X-Download-Options", "noopen"),
            ("X-Permitted-Cross-Domain-Policies", "none"),
        ),
    ),
    "django": Preset(
        csp={"default-src": ("'self'",), "frame-ancestors": ("'none'",)},
        hsts_max_age=31_536_000,
        headers=(
            ("X-Content-Type-Options", "nosniff"),
            ("Referrer-Policy", "same-origin"),
            ("Cross-Origin-Opener-Policy", "same-origin"),
        ),
        sends_csp=False,
        x_xss_protection=None,
    ),
    "api": Preset(
        csp={"default-src": ("'none'",), "frame-ancestors": ("'none'",)},
        hsts_max_age=31_536_000,
        headers=(
            ("X-Content-Type-Options", "nosniff"),
            ("Referrer-Policy", "no-referrer"),
            ("Cross-Origin-Resource-Policy", "same-origin"),
            ("X-Permitted-Cross-Domain-Policies", "none"),
        ),
    ),
}
PRESETS["owasp"] = PRESETS["strict"]
