"""Admin routes of the metrics area, under ``/api/production/`` (token-checked by ``Admin``).

- ``GET metrics``: the JSON document (:func:`~.views.json_view`) plus ``health``, merged
  across workers;
- ``GET prometheus``: text format 0.0.4 (:mod:`.prometheus`);
- ``GET dashboard``: one self-contained HTML page (inline script and style, no external
  resource) that polls ``metrics`` and draws the live charts on ``<canvas>``. It carries its
  own ``Content-Security-Policy`` allowing exactly its inline script and style by SHA-256
  hash (``connect-src 'self'`` for the polling), which wins over the stack's default policy.

Browsers cannot send a bearer token on navigation, so the page is an admin *public page* route:
it holds no data, and with a token configured it is served without one. Open
``/api/production/dashboard#token=...``: the page reads the token from its URL fragment
(never sent to the server) or prompts after a 401, and sends it as ``Authorization: Bearer``
on every poll of ``metrics``, which stays token-protected. With no token configured, the
loopback rule applies to the page too (use an SSH tunnel).
"""

from __future__ import annotations

import base64
import hashlib
import re
from importlib import resources
from typing import TYPE_CHECKING, Any

from ..admin import AdminRoute, Response, json_body
from ..health import Health
from . import prometheus
from .reader import merged
from .registry import Registry
from .views import json_view

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from .._wsgi import Environ
    from ..compose import MetricsSection
    from .config import MetricsSettings

__all__ = ["admin_routes", "dashboard_page", "metrics_document"]


def metrics_document(
    registry: Registry,
    health: Health | None = None,
    sections: Sequence[MetricsSection] = (),
) -> dict[str, Any]:
    now = registry.now()
    doc = json_view(
        merged(registry),
        now=now,
        slot_s=registry.slot_s,
        threshold_s=registry.slow_query_threshold_s,
    )
    if health is not None:
        report = health.evaluate()
        doc["health"] = {
            "status": report.status,
            "issues": list(report.issues),
            "checks": report.document()["checks"],
        }
    else:
        doc["health"] = None
    for section in sections:
        doc[section.name] = section.json()
    return doc


_page: tuple[bytes, str] | None = None


def _hash(text: str) -> str:
    digest = hashlib.sha256(text.encode()).digest()
    return "'sha256-" + base64.b64encode(digest).decode() + "'"


def dashboard_page() -> tuple[bytes, str]:
    """The dashboard HTML and its Content-Security-Policy (read once)."""
    global _page
    if _page is None:
        html = (resources.files("voyagr_wsgi") / "static" / "dashboard.html").read_text("utf-8")
        scripts = re.findall(r"<script>(.*?)</script>", html, re.S)
        styles = re.findall(r"<style>(.*?)</style>", html, re.S)
        csp = (
            "default-src 'none'; "
            f"script-src {' '.join(_hash(s) for s in scripts)}; "
            f"style-src {' '.join(_hash(s) for s in styles)}; "
            "connect-src 'self'; img-src 'self' data:; base-uri 'none'; "
            "form-action 'none'; frame-ancestors 'none'"
        )
        _page = (html.encode(), csp)
    return _page


def admin_routes(
    registry: Registry,
    health: Health | None,
    options: MetricsSettings | None = None,
    *,
    sections: Sequence[MetricsSection] = (),
) -> list[AdminRoute]:
    """The routes to add to ``context.admin_routes``.

    ``sections`` is read at each request (areas set up after metrics append to it), so the
    alert deliveries and the like appear in both ``metrics`` and ``prometheus``.
    """

    def metrics(environ: Environ, params: Mapping[str, str]) -> Response:
        return json_body("200 OK", metrics_document(registry, health, sections))

    def exposition(environ: Environ, params: Mapping[str, str]) -> Response:
        text = prometheus.render(merged(registry), registry.now())
        body = "".join([text, *(section.prometheus() for section in sections)]).encode()
        headers = [
            ("Content-Type", prometheus.CONTENT_TYPE),
            ("Cache-Control", "no-store"),
            ("Content-Length", str(len(body))),
        ]
        return "200 OK", headers, [body]

    def dashboard(environ: Environ, params: Mapping[str, str]) -> Response:
        body, csp = dashboard_page()
        headers = [
            ("Content-Type", "text/html; charset=utf-8"),
            ("Cache-Control", "no-store"),
            ("Content-Security-Policy", csp),
            ("Referrer-Policy", "no-referrer"),
            ("Content-Length", str(len(body))),
        ]
        return "200 OK", headers, [body]

    routes = [AdminRoute("GET", "metrics", metrics)]
    if options is None or options.prometheus:
        routes.append(AdminRoute("GET", "prometheus", exposition))
    if options is None or options.dashboard:
        routes.append(AdminRoute("GET", "dashboard", dashboard, public_page=True))
    return routes
