"""Alerts: threshold rules over the merged metrics, deduplicated, delivered off the request path.

``compose(app, Settings.from_env())`` sets everything up when ``ALERTS_ENABLED`` (default
true): the :class:`AlertService` (a singleton service: one process evaluates and sends),
``stack.components["alerts"]``, the admin routes and the ``alerts:channel`` health source.
With no other configuration, alerts go to the log (logger ``voyagr_wsgi.alerts``). Add
channels with ``ALERT_EMAIL_ENABLED``, ``ALERT_SLACK_ENABLED``, ``ALERT_DISCORD_ENABLED``,
``ALERT_WEBHOOK_ENABLED`` and ``ALERTMANAGER_URL`` (see :mod:`.config` and
``docs/env/60-alerts.env``).

Admin endpoints (under ``/api/production/``, behind the admin token):

- ``GET alerts``: active alerts, the mute, per-channel ``sent/failed/dropped/retried``;
- ``POST alerts/mute`` with ``{"seconds": 3600, "reason": "migration"}``: a maintenance
  mute, seen by every process; ``DELETE alerts/mute`` ends it.

Module map: :mod:`.model` (Alert, Notification), :mod:`.rules` (pure threshold evaluation,
``for`` durations), :mod:`.lifecycle` (dedup, suppressed counts, resolved, mute),
:mod:`.dispatcher` (bounded queue, one sender thread, retries), :mod:`.channels`,
:mod:`.evaluator` (the service).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..admin import AdminRoute, Response, json_body
from .channels import Channel, DeliveryFailed
from .config import AlertSettings
from .dispatcher import Dispatcher
from .evaluator import AlertService, BackupSource, MetricsSource
from .exposition import json_section, prometheus_text
from .lifecycle import Lifecycle
from .model import Alert, Notification
from .rules import Inputs, Rule

if TYPE_CHECKING:
    from .._wsgi import Environ
    from ..check import Finding
    from ..compose import BuildContext
    from ..settings import Settings

__all__ = [
    "Alert",
    "AlertService",
    "AlertSettings",
    "BackupSource",
    "Channel",
    "DeliveryFailed",
    "Dispatcher",
    "Inputs",
    "Lifecycle",
    "MetricsSource",
    "Notification",
    "Rule",
    "admin_routes",
    "deploy_checks",
    "setup",
]


def admin_routes(service: AlertService) -> list[AdminRoute]:
    """``GET alerts``, ``POST alerts/mute``, ``DELETE alerts/mute``."""

    def show(environ: Environ, params: Mapping[str, str]) -> Response:
        return json_body("200 OK", service.snapshot())

    def mute(environ: Environ, params: Mapping[str, str]) -> Response:
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = -1
        if not 0 < length <= 4096:
            return json_body("400 Bad Request", {"error": "send a JSON body up to 4 KiB"})
        try:
            doc: Any = json.loads(environ["wsgi.input"].read(length))
            seconds = float(doc["seconds"])
            reason = str(doc.get("reason", ""))
        except (ValueError, KeyError, TypeError):
            return json_body("400 Bad Request", {"error": 'expected {"seconds": N, "reason": ""}'})
        if not 0 < seconds <= 7 * 86400:
            return json_body("400 Bad Request", {"error": "seconds must be in (0, 604800]"})
        service.mute(seconds, reason)
        return json_body("200 OK", service.snapshot())

    def unmute(environ: Environ, params: Mapping[str, str]) -> Response:
        service.unmute()
        return json_body("200 OK", service.snapshot())

    return [
        AdminRoute("GET", "alerts", show),
        AdminRoute("POST", "alerts/mute", mute),
        AdminRoute("DELETE", "alerts/mute", unmute),
    ]


def setup(settings: Settings, context: BuildContext) -> None:
    """Register the alert service, ``components["alerts"]``, admin routes and health."""
    alerts = settings.alerts
    if not alerts.enabled:
        return
    registry = context.components.get("metrics")
    metrics: MetricsSource | None = None
    if registry is not None:  # the rules read it merged across workers
        from ..metrics.reader import MetricsReader

        metrics = MetricsReader(registry)
    backups = context.components.get("backups")
    service = AlertService(
        alerts,
        metrics=metrics,
        backups=backups if isinstance(backups, BackupSource) else None,
        state_dir=settings.state_dir,
    )
    context.components["alerts"] = service
    context.services.append(service)
    context.admin_routes.extend(admin_routes(service))
    context.health.add(service.health_checks)
    from ..compose import MetricsSection  # compose imports settings, which imports this package

    context.metrics_sections.append(
        MetricsSection(
            "alerts",
            json=lambda: json_section(service.snapshot()),
            prometheus=lambda: prometheus_text(service.snapshot()),
        )
    )


def deploy_checks(settings: Settings, environ: Mapping[str, str] | None = None) -> list[Finding]:
    """``voyagr-wsgi check`` findings for the alerts area."""
    from ..check import Finding

    a = settings.alerts
    found: list[Finding] = []
    if not a.enabled:
        found.append(Finding("WARNING", "voyagr.alerts.W001", "ALERTS_ENABLED is off"))
        return found
    remote = a.email_enabled or a.slack_enabled or a.discord_enabled or a.webhook_enabled
    if not remote and a.alertmanager_url is None:
        found.append(
            Finding(
                "WARNING",
                "voyagr.alerts.W002",
                "no alert channel besides the log is enabled (ALERT_EMAIL_ENABLED, "
                "ALERT_SLACK_ENABLED, ALERT_DISCORD_ENABLED, ALERT_WEBHOOK_ENABLED, "
                "ALERTMANAGER_URL)",
            )
        )
    if a.email_enabled and a.smtp_security == "none" and a.smtp_password is not None:
        found.append(
            Finding(
                "WARNING",
                "voyagr.alerts.W003",
                "SMTP_SECURITY=none with SMTP_PASSWORD: the password crosses the network in "
                "clear; use starttls or ssl",
            )
        )
    if a.webhook_enabled and a.webhook_secret is None:
        found.append(
            Finding(
                "WARNING",
                "voyagr.alerts.W004",
                "ALERT_WEBHOOK_SECRET is not set: webhook bodies are not signed",
            )
        )
    if a.window_s > settings.metrics.retention_s:
        found.append(
            Finding(
                "WARNING",
                "voyagr.alerts.W006",
                f"ALERT_WINDOW_SECONDS={a.window_s:g} is longer than "
                f"METRICS_WINDOW_RETENTION_SECONDS={settings.metrics.retention_s:g}: rules only "
                "see the retained part",
            )
        )
    if a.evaluation_interval_s > a.window_s:
        found.append(
            Finding(
                "WARNING",
                "voyagr.alerts.W005",
                "ALERT_EVALUATION_INTERVAL_SECONDS is longer than ALERT_WINDOW_SECONDS: "
                "parts of the traffic are never looked at",
            )
        )
    return found
