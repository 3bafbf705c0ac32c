"""The request-path area: the layers every stack has, built from the core settings.

What it contributes (see :mod:`voyagr_wsgi._build` for what an area is):

- ``ProxyTrust`` (always; trusts nothing without ``TRUSTED_PROXIES``), ``Probe`` (always, with
  the stack's health sources), ``HostCheck`` (always; syntax only without ``ALLOWED_HOSTS``),
  ``HTTPSRedirect`` (with ``ENFORCE_HTTPS``), ``SecurityHeaders`` (always),
  ``CrossOriginProtection`` (unless ``CSRF_ENABLED=false``);
- the deploy checks on hosts, HTTPS, HSTS, the admin token and CSRF.

The ``Admin`` layer is built by ``compose`` itself once every area has added its routes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._build import BuildContext, Finding
    from .settings import Settings

__all__ = ["contribute", "deploy_checks"]


def contribute(settings: Settings, context: BuildContext) -> None:
    from .layers.host_check import HostCheck
    from .layers.probe import Probe
    from .layers.proxy_trust import ProxyTrust

    context.add_layer(
        ProxyTrust(
            trusted=settings.trusted_proxies,
            headers=settings.trusted_proxy_headers,
            prefix=settings.trusted_proxy_prefix,
        )
    )
    context.add_layer(Probe(health=context.health, token=settings.admin_token))
    context.add_layer(HostCheck(allowed_hosts=settings.allowed_hosts, counters=context.counters))
    if settings.enforce_https:
        from .layers.https_redirect import HTTPSRedirect

        context.add_layer(
            HTTPSRedirect(
                exempt=settings.https_redirect_exempt,
                host=settings.https_redirect_host or None,
                unsafe=settings.https_redirect_unsafe,
                counters=context.counters,
            )
        )
    context.add_layer(security_headers(settings))
    if settings.csrf_enabled:
        from .layers.cross_origin import CrossOriginProtection

        context.add_layer(
            CrossOriginProtection(
                trusted_origins=settings.csrf_trusted_origins,
                exempt_paths=settings.csrf_exempt_paths,
                counters=context.counters,
            )
        )


def security_headers(settings: Settings) -> SecurityHeaders:
    """``SecurityHeaders`` from ``SECURITY_PRESET``, ``HSTS_*``, ``CSP_*``,
    ``X_XSS_PROTECTION``, ``SECURE_COOKIES``, ``SECURE_COOKIES_HTTPONLY_EXEMPT``;
    ``HSTS_MAX_AGE`` left at its default takes the
    preset's."""
    from .layers.security_headers import SecurityHeaders

    return SecurityHeaders(
        preset=settings.security_preset,
        hsts=settings.hsts,
        hsts_max_age=settings.hsts_max_age,
        hsts_include_subdomains=settings.hsts_include_subdomains,
        hsts_preload=settings.hsts_preload,
        csp=settings.csp if settings.csp else True,
        csp_report_only=settings.csp_report_only,
        csp_nonce=settings.csp_nonce,
        frame_ancestors=settings.frame_ancestors,
        x_xss_protection=settings.x_xss_protection or "preset",
        secure_cookies=settings.secure_cookies,
        httponly_exempt=settings.secure_cookies_httponly_exempt,
        routes=settings.security_routes or None,
    )


def deploy_checks(settings: Settings, environ: Mapping[str, str] | None = None) -> list[Finding]:
    """``voyagr-wsgi check`` findings for the request path."""
    return list(_findings(settings))


def _findings(settings: Settings) -> Iterable[Finding]:
    from ._build import Finding

    if not settings.allowed_hosts:
        yield Finding(
            "WARNING",
            "voyagr.W001",
            "ALLOWED_HOSTS is empty: any Host header is accepted (syntax-checked only); "
            "set it to your domain(s)",
        )
    elif "*" in settings.allowed_hosts:
        yield Finding("WARNING", "voyagr.W002", "ALLOWED_HOSTS contains '*': host check is off")
    if not settings.enforce_https:
        yield Finding(
            "WARNING",
            "voyagr.W003",
            "ENFORCE_HTTPS is off: plain-HTTP requests are served (set it once TLS works)",
        )
    elif not settings.trusted_proxies:
        yield Finding(
            "WARNING",
            "voyagr.W004",
            "ENFORCE_HTTPS is on but TRUSTED_PROXIES is empty: behind a TLS-terminating "
            "proxy (a PaaS router) every request looks like HTTP and redirects forever; "
            "set TRUSTED_PROXIES to the proxy's addresses unless the app serves TLS itself",
        )
    if settings.hsts and not settings.enforce_https and not settings.trusted_proxies:
        yield Finding(
            "WARNING",
            "voyagr.W005",
            "HSTS is on but there is no HTTPS source (ENFORCE_HTTPS off, no TRUSTED_PROXIES): "
            "it is only ever sent on HTTPS requests, so it may never be sent",
        )
    if settings.hsts_preload and (
        (settings.hsts_max_age is not None and settings.hsts_max_age < 31_536_000)
        or not settings.hsts_include_subdomains
    ):
        yield Finding(
            "ERROR",
            "voyagr.E001",
            "HSTS_PRELOAD needs HSTS_MAX_AGE >= 31536000 and HSTS_INCLUDE_SUBDOMAINS=true",
        )
    if settings.admin_token is None:
        yield Finding(
            "WARNING",
            "voyagr.W006",
            "VOYAGR_ADMIN_TOKEN is not set: read-only admin endpoints answer loopback clients "
            "only, and state changes (backup create/restore, alert mute) are refused to "
            "everyone; behind a proxy on the same host every client looks like loopback",
        )
    elif len(settings.admin_token.reveal()) < 24:
        yield Finding("WARNING", "voyagr.W007", "VOYAGR_ADMIN_TOKEN is shorter than 24 characters")
    if not settings.csrf_enabled:
        yield Finding("WARNING", "voyagr.W008", "CSRF_ENABLED is off: no cross-origin protection")


if TYPE_CHECKING:
    from .layers.security_headers import SecurityHeaders
