"""The alerting figures in Prometheus text format (0.0.4) and for the metrics JSON.

The metrics area owns ``/api/production/metrics`` and ``/api/production/prometheus``; it adds
the alerting figures from ``stack.components["alerts"]`` with these two functions::

    alerts = components.get("alerts")            # looked up per request: alerts set up later
    if alerts is not None:
        doc["alerts"] = json_section(alerts.snapshot())
        text += prometheus_text(alerts.snapshot())

Series (names modelled on Alertmanager's ``notify/metrics.go``)::

    voyagr_alert_notifications_total{channel, outcome="sent|failed|dropped|retried"}  counter
    voyagr_alert_suppressed_total{alert_type, reason="dedup|muted"}                    counter
    voyagr_alert_queue_length                                                          gauge
    voyagr_alerts_active{alert_type, severity}                                         gauge
    voyagr_alert_channel_up{channel}                  gauge: 0 when the last attempt failed

The figures come from the one process that runs the alerts (any worker reads its published
state), so they are never multiplied by the worker count. Label values are channel names and
alert types: low cardinality by construction.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["json_section", "prometheus_text"]

_OUTCOMES = ("sent", "failed", "dropped", "retried")


def _label(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def json_section(snapshot: Mapping[str, Any]) -> dict[str, Any]:
    """The part of an alerts snapshot that belongs in the metrics JSON."""
    return {
        "active": len(snapshot.get("active", ())),
        "queued": snapshot.get("queued", 0),
        "muted_until": snapshot.get("muted_until"),
        "channels": {
            name: {k: stats.get(k, 0) for k in (*_OUTCOMES, "last_ok", "queued", "suspended")}
            for name, stats in snapshot.get("channels", {}).items()
        },
        "suppressed_total": snapshot.get("suppressed_total", {}),
    }


def prometheus_text(snapshot: Mapping[str, Any]) -> str:
    """Text-format lines for an alerts snapshot (ends with a newline)."""
    channels: Mapping[str, Mapping[str, Any]] = snapshot.get("channels", {})
    out = [
        "# HELP voyagr_alert_notifications_total Alert deliveries per channel and outcome.",
        "# TYPE voyagr_alert_notifications_total counter",
    ]
    for name, stats in sorted(channels.items()):
        for outcome in _OUTCOMES:
            out.append(
                f'voyagr_alert_notifications_total{{channel="{_label(name)}",'
                f'outcome="{outcome}"}} {int(stats.get(outcome, 0))}'
            )
    out += [
        "# HELP voyagr_alert_suppressed_total Alert evaluations not notified (dedup or mute).",
        "# TYPE voyagr_alert_suppressed_total counter",
    ]
    for alert_type, reasons in sorted(snapshot.get("suppressed_total", {}).items()):
        for reason, count in sorted(reasons.items()):
            out.append(
                f'voyagr_alert_suppressed_total{{alert_type="{_label(alert_type)}",'
                f'reason="{_label(reason)}"}} {int(count)}'
            )
    out += [
        "# HELP voyagr_alert_queue_length Deliveries waiting in the alert sender's queue.",
        "# TYPE voyagr_alert_queue_length gauge",
        f"voyagr_alert_queue_length {int(snapshot.get('queued', 0))}",
        "# HELP voyagr_alerts_active Alerts currently firing.",
        "# TYPE voyagr_alerts_active gauge",
    ]
    counts: dict[tuple[str, str], int] = {}
    for row in snapshot.get("active", ()):
        key = (str(row.get("alert_type")), str(row.get("severity")))
        counts[key] = counts.get(key, 0) + 1
    for (alert_type, severity), count in sorted(counts.items()):
        out.append(
            f'voyagr_alerts_active{{alert_type="{_label(alert_type)}",'
            f'severity="{_label(severity)}"}} {count}'
        )
    out += [
        "# HELP voyagr_alert_channel_up 0 when the channel's last delivery attempt failed.",
        "# TYPE voyagr_alert_channel_up gauge",
    ]
    for name, stats in sorted(channels.items()):
        up = 0 if stats.get("last_ok") is False else 1
        out.append(f'voyagr_alert_channel_up{{channel="{_label(name)}"}} {up}')
    return "\n".join(out) + "\n"
