"""Slack incoming webhook: one message with an attachment coloured by severity.

``ALERT_SLACK_ENABLED=true`` and ``SLACK_WEBHOOK_URL=https://hooks.slack.com/services/...``.
The body follows Slack's (legacy, still supported) secondary attachments: ``color`` is
``#A32037`` for critical, ``#CACF29`` for warning, ``#439FE0`` for info and ``good`` (green)
for a resolved notice; the title is prefixed ``[RESOLVED]`` then. Slack allows about one
message per second per webhook and answers ``429`` with ``Retry-After`` beyond that, so the
channel is paced at ``min_interval_s = 1.0`` and the dispatcher honours ``Retry-After``
(https://api.slack.com/docs/rate-limits). A successful post answers ``ok``.
"""

from __future__ import annotations

import ssl
from typing import Any

from ...secret import Secret
from ..model import Notification
from .base import post_json

__all__ = ["SlackChannel", "slack_payload"]

COLOURS = {"critical": "#A32037", "warning": "#CACF29", "info": "#439FE0"}
RESOLVED = "good"
_ICON = {"firing": ":rotating_light:", "resolved": ":white_check_mark:"}


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def slack_payload(n: Notification) -> dict[str, Any]:
    alert = n.alert
    title = ("[RESOLVED] " if n.resolved else "") + alert.summary
    fields = [
        {"title": "Alert type", "value": alert.alert_type, "short": True},
        {"title": "Severity", "value": alert.severity, "short": True},
    ]
    if alert.scope:
        fields.append({"title": "Scope", "value": alert.scope, "short": True})
    if n.suppressed:
        fields.append({"title": "Suppressed", "value": f"{n.suppressed} duplicates", "short": True})
    attachment: dict[str, Any] = {
        "color": RESOLVED if n.resolved else COLOURS[alert.severity],
        "fallback": _cut(f"{n.headline}: {alert.summary}", 300),
        "title": _cut(title, 1024),
        "text": _cut(alert.description or alert.summary, 3000),
        "fields": fields,
        "footer": f"voyagr_wsgi · {n.instance}" if n.instance else "voyagr_wsgi",
        "ts": int(n.sent_at),
    }
    if n.dashboard_url:
        attachment["title_link"] = n.dashboard_url
    return {"text": _cut(f"{_ICON[n.status]} {n.headline}", 3000), "attachments": [attachment]}


class SlackChannel:
    name = "slack"
    min_interval_s = 1.0

    def __init__(self, url: Secret, *, ssl_context: ssl.SSLContext | None = None) -> None:
        self._url = url
        self._context = ssl_context

    def __repr__(self) -> str:
        return "SlackChannel(url=Secret('**********'))"

    def accepts(self, notification: Notification) -> bool:
        return notification.reason != "refresh"

    def send(self, notification: Notification, timeout: float) -> None:
        post_json(
            self._url, slack_payload(notification), timeout=timeout, context=self._context
        )
