"""The alerts area: what ``ALERT_*`` settings contribute to a stack.

With ``ALERTS_ENABLED`` (default on): the :class:`~.evaluator.AlertService` (``context.alerts``,
a singleton service reading ``context.metrics_reader`` and ``context.backups``), its admin
routes, health checks and the ``alerts`` section of the metrics endpoints; with
``ALERT_DEDUP_URL`` (or else ``SERVICES_LEASE_URL``) a :class:`~.fleet.FleetDedup` across
machines. The deploy checks: no channel, SMTP password in clear, unsigned webhooks, windows
longer than the retained metrics.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .._build import BuildContext, Finding
    from ..settings import Settings

__all__ = ["contribute", "deploy_checks"]


def contribute(settings: Settings, context: BuildContext) -> None:
    """Register the alert service, admin routes, health and the metrics section."""
    alerts = settings.alerts
    if not alerts.enabled:
        return
    from .._build import MetricsSection
    from .endpoints import admin_routes
    from .evaluator import AlertService
    from .exposition import json_section, prometheus_text

    fleet = None
    dedup_url = settings.alert_dedup_url or settings.services_lease_url
    if dedup_url:
        from .fleet import FleetDedup

        fleet = FleetDedup.from_url(
            dedup_url,
            what="ALERT_DEDUP_URL" if settings.alert_dedup_url else "SERVICES_LEASE_URL",
            service=alerts.service_name,
            dedup_s=alerts.dedup_s,
            evaluation_interval_s=alerts.evaluation_interval_s,
        )
    service = AlertService(
        alerts,
        metrics=context.metrics_reader,  # merged across workers
        backups=context.backups,
        state_dir=settings.state_dir,
        fleet=fleet,
    )
    context.alerts = service
    context.services.append(service)
    context.admin_routes.extend(admin_routes(service))
    context.health.add(service.health_checks)
    context.metrics_sections.append(
        MetricsSection(
            "alerts",
            json=lambda: json_section(service.snapshot()),
            prometheus=lambda: prometheus_text(service.snapshot()),
        )
    )


def deploy_checks(settings: Settings, environ: Mapping[str, str] | None = None) -> list[Finding]:
    """``voyagr-wsgi check`` findings for the alerts area."""
    from .._build import Finding

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
