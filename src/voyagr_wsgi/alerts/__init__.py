"""Alerts: threshold rules over the merged metrics, deduplicated, delivered off the request path.

``compose(app, Settings.from_env())`` sets everything up when ``ALERTS_ENABLED`` (default
true; see :mod:`.area`): the :class:`AlertService` (a singleton service: one process evaluates
and sends), ``stack.components["alerts"]``, the admin routes (:mod:`.endpoints`) and the
``alerts:channel`` health source.
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
:mod:`.dispatcher` (a bounded queue and a sender thread per channel, retries), :mod:`.channels`,
:mod:`.evaluator` (the service), :mod:`.endpoints` (admin routes), :mod:`.area` (what the
settings contribute, the deploy checks). The names below load lazily: importing this package
loads none of its modules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy

if TYPE_CHECKING:
    from .area import deploy_checks as deploy_checks
    from .channels import Channel as Channel
    from .channels import DeliveryFailed as DeliveryFailed
    from .config import AlertSettings as AlertSettings
    from .dispatcher import Dispatcher as Dispatcher
    from .endpoints import admin_routes as admin_routes
    from .evaluator import AlertService as AlertService
    from .evaluator import BackupSource as BackupSource
    from .evaluator import MetricsSource as MetricsSource
    from .lifecycle import Lifecycle as Lifecycle
    from .model import Alert as Alert
    from .model import Notification as Notification
    from .rules import Inputs as Inputs
    from .rules import Rule as Rule

_WHERE = {
    "Alert": ".model",
    "AlertService": ".evaluator",
    "AlertSettings": ".config",
    "BackupSource": ".evaluator",
    "Channel": ".channels",
    "DeliveryFailed": ".channels",
    "Dispatcher": ".dispatcher",
    "Inputs": ".rules",
    "Lifecycle": ".lifecycle",
    "MetricsSource": ".evaluator",
    "Notification": ".model",
    "Rule": ".rules",
    "admin_routes": ".endpoints",
    "deploy_checks": ".area",
}

__all__ = sorted(_WHERE)


__getattr__, __dir__ = lazy(__name__, _WHERE)
