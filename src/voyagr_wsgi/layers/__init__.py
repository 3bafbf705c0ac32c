"""Every WSGI layer of voyagr_wsgi, importable on its own.

``from voyagr_wsgi.layers import ProxyTrust, SecurityHeaders, RateLimit, Metrics`` imports
only the modules you name (lazily), so a user composing two layers pays for two.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy

if TYPE_CHECKING:
    from ..admin import Admin as Admin
    from ..metrics.layer import Metrics as Metrics
    from ..ratelimit.layer import RateLimit as RateLimit
    from .cross_origin import CrossOriginProtection as CrossOriginProtection
    from .csp import ContentSecurityPolicy as ContentSecurityPolicy
    from .host_check import HostCheck as HostCheck
    from .https_redirect import HTTPSRedirect as HTTPSRedirect
    from .probe import Probe as Probe
    from .proxy_trust import ProxyTrust as ProxyTrust
    from .security_headers import SecurityHeaders as SecurityHeaders

_WHERE = {
    "Admin": "voyagr_wsgi.admin",
    "ContentSecurityPolicy": "voyagr_wsgi.layers.csp",
    "CrossOriginProtection": "voyagr_wsgi.layers.cross_origin",
    "HostCheck": "voyagr_wsgi.layers.host_check",
    "HTTPSRedirect": "voyagr_wsgi.layers.https_redirect",
    "Metrics": "voyagr_wsgi.metrics.layer",
    "Probe": "voyagr_wsgi.layers.probe",
    "ProxyTrust": "voyagr_wsgi.layers.proxy_trust",
    "RateLimit": "voyagr_wsgi.ratelimit.layer",
    "SecurityHeaders": "voyagr_wsgi.layers.security_headers",
}

__all__ = sorted(_WHERE)


__getattr__, __dir__ = lazy(__name__, _WHERE)
