"""Admin routes of the metrics area, under ``/api/production/`` (token-checked by ``Admin``).

- ``GET metrics``: the JSON document (:func:`~.views.json_view`) plus ``health``, merged
  across workers;
- ``GET metrics/history``: one point per time slot over the retention
  (``METRICS_WINDOW_RETENTION_SECONDS``, 15 minutes by default), merged across workers
  (:func:`~.views.history`); ``?since=<unix seconds>`` keeps the slots starting at or after it;
- ``GET prometheus``: text format 0.0.4 (:mod:`.prometheus`);
- ``GET dashboard``: one self-contained HTML page (inline script and style, no external
  resource). It opens with ``metrics/history`` (the charts show the whole retention at first
  paint), then polls ``metrics/history?since=`` (the current slot and any newer) and
  ``metrics`` every 2 s (``#interval=<ms>`` changes it), keeping the retention in the browser.
  The charts (request rate, latency percentiles, error rate, cache hit rate, upstream success
  and calls, one point per slot) have a clock-time axis and show the values under the pointer.
  It carries its own ``Content-Security-Policy`` allowing exactly its inline script and style
  by SHA-256 hash (``connect-src 'self'`` for the polling), which wins over the stack's
  default policy.

Browsers cannot send a bearer token on navigation, so the page is an admin *public page* route:
it holds no data, and with a token configured it is served without one. Open
``/api/production/dashboard#token=...``: the page reads the token from its URL fragment
(never sent to the server; removed from the address bar) and sends it as
``Authorization: Bearer`` on every request, which stays token-protected. Any 401 (a missing or
wrong token, whatever the body) shows an in-page token form and stops polling until a token is
entered; the page never opens a blocking dialog (``prompt``/``alert``), which would hang a
headless browser. The token is kept in ``sessionStorage`` for the tab. With no token
configured, the loopback rule applies to the page too (use an SSH tunnel).
"""

from __future__ import annotations

import base64
import hashlib
import math
import re
from importlib import resources
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from ..admin import AdminRoute
from ..health import Health
from ..problem import ProblemError, Response, json_response
from . import prometheus
from .reader import merged
from .registry import Registry
from .views import history, json_view

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from .._build import MetricsSection
    from .._wsgi import Environ
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
        return json_response("200 OK", metrics_document(registry, health, sections))

    def points(environ: Environ, params: Mapping[str, str]) -> Response:
        since = parse_qs(environ.get("QUERY_STRING", "")).get("since", [""])[-1]
        try:
            start = float(since) if since else None
        except ValueError:
            start = float("nan")
        if start is not None and not math.isfinite(start):
            raise ProblemError("invalid-query", "since must be a time in unix seconds")
        doc = history(
            merged(registry),
            now=registry.now(),
            slot_s=registry.slot_s,
            retention_s=registry.retention_s,
            since=start,
        )
        return json_response("200 OK", doc)

    def exposition(environ: Environ, params: Mapping[str, str]) -> Response:
        text = prometheus.render(merged(registry), registry.now())
        body = "".join([text, *(section.prometheus() for section in sections)]).encode()
        return prometheus.response(body, environ.get("HTTP_ACCEPT_ENCODING", ""))

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

    routes = [AdminRoute("GET", "metrics", metrics), AdminRoute("GET", "metrics/history", points)]
    if options is None or options.prometheus:
        routes.append(AdminRoute("GET", "prometheus", exposition))
    if options is None or options.dashboard:
        routes.append(AdminRoute("GET", "dashboard", dashboard, public_page=True))
    return routes
