"""The data every alerting module shares: :class:`Alert` and :class:`Notification`.

An :class:`Alert` is one breached condition, identified by ``(alert_type, scope)``: a low
cardinality key (``high_error_rate`` + ``""``, ``upstream_failure_rate`` + ``"geocoder"``),
never a request id or a path, so dedup keys cannot explode (pain point 8 in the research).

A :class:`Notification` is what a channel delivers: the alert, whether it is ``firing`` or
``resolved``, why it is sent now (``new_alert``, ``repeat``, ``resolved``, ``refresh``), how
many duplicates were suppressed since the previous one, and wall-clock times for humans.
``refresh`` notifications exist only for Alertmanager, which expects firing alerts to be
re-sent at regular intervals; the chat and mail channels ignore them.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "Alert",
    "AlertKey",
    "Notification",
    "Reason",
    "RuleState",
    "Severity",
    "Status",
    "iso_utc",
]

Severity = Literal["info", "warning", "critical"]
Status = Literal["firing", "resolved"]
Reason = Literal["new_alert", "repeat", "resolved", "refresh"]
RuleState = Literal["firing", "ok", "unknown"]
AlertKey = tuple[str, str]


def iso_utc(epoch: float) -> str:
    """RFC 3339 UTC with a ``Z`` (what Alertmanager and Discord expect)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def _camel(alert_type: str) -> str:
    return "".join(part.capitalize() for part in alert_type.split("_"))


@dataclass(frozen=True, slots=True)
class Alert:
    """One condition a rule looked at; ``value`` and ``threshold`` in the rule's unit.

    ``state`` is ``"firing"`` (breached: the default, and all a custom rule needs), ``"ok"``
    (measured and within the threshold: its summary is the current figure a resolved notice
    tells) or ``"unknown"`` (too little data to tell: an alert keeps its state).
    """

    alert_type: str  # "high_error_rate"
    summary: str  # "Error rate 7.4% over 300s (threshold 5.0%)"
    severity: Severity = "warning"
    scope: str = ""  # an upstream or cache name; "" for the whole service
    description: str = ""
    value: float | None = None
    threshold: float | None = None
    labels: tuple[tuple[str, str], ...] = ()  # extra low-cardinality labels
    state: RuleState = "firing"

    @property
    def key(self) -> AlertKey:
        return (self.alert_type, self.scope)

    @property
    def alertname(self) -> str:
        return "Voyagr" + _camel(self.alert_type)

    @property
    def title(self) -> str:
        return f"{self.alert_type} ({self.scope})" if self.scope else self.alert_type


@dataclass(frozen=True, slots=True)
class Notification:
    """An alert to deliver, with its lifecycle status and bookkeeping."""

    alert: Alert
    status: Status
    reason: Reason
    starts_at: float  # epoch seconds the alert started firing
    sent_at: float  # epoch seconds this notification was made
    ends_at: float | None = None  # epoch seconds it resolved (resolved only)
    suppressed: int = 0  # duplicates not sent since the previous notification
    service: str = "voyagr"
    instance: str = ""
    dashboard_url: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def resolved(self) -> bool:
        return self.status == "resolved"

    @property
    def headline(self) -> str:
        """``[FIRING] high_error_rate on api`` / ``[RESOLVED] ...``."""
        return f"[{self.status.upper()}] {self.alert.title} on {self.service}"

    @property
    def labels(self) -> dict[str, str]:
        """Alertmanager-style identifying labels (the same for firing and resolved)."""
        labels = {
            "alertname": self.alert.alertname,
            "alert_type": self.alert.alert_type,
            "severity": self.alert.severity,
            "service": self.service,
        }
        if self.instance:
            labels["instance"] = self.instance
        if self.alert.scope:
            labels["scope"] = self.alert.scope
        labels.update(self.alert.labels)
        return labels

    @property
    def fingerprint(self) -> str:
        """A stable 16-hex id of the label set (Alertmanager fingerprints labels too)."""
        text = "\x00".join(f"{k}\x01{v}" for k, v in sorted(self.labels.items()))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @property
    def annotations(self) -> dict[str, str]:
        notes = {"summary": self.alert.summary}
        if self.alert.description:
            notes["description"] = self.alert.description
        if self.alert.value is not None:
            notes["value"] = f"{self.alert.value:.6g}"
        if self.alert.threshold is not None:
            notes["threshold"] = f"{self.alert.threshold:.6g}"
        if self.suppressed:
            notes["suppressed"] = str(self.suppressed)
        if self.dashboard_url:
            notes["dashboard"] = self.dashboard_url
        return notes

    def suppressed_text(self, dedup_window: str = "") -> str:
        window = f" in last {dedup_window}" if dedup_window else ""
        return f"{self.suppressed} duplicates{window}"
