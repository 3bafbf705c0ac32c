"""Discord webhook: one embed with an integer colour, Discord's size limits enforced.

``ALERT_DISCORD_ENABLED=true`` and ``DISCORD_WEBHOOK_URL=https://discord.com/api/webhooks/..``.
Colours are Alertmanager's: ``0x992D22`` (10038562) firing critical, ``0xE67E22`` (15105570)
firing warning, ``0x95A5A6`` info, ``0x2ECC71`` (3066993) resolved. Limits from Discord's
"Embed Limits": content 2000, title 256, description 4096, 25 fields, field name 256 and
value 1024, footer 2048, 6000 characters in total; every text is cut to fit, so an alert
never turns into a ``400 Bad Request``. ``allowed_mentions: {"parse": []}`` keeps an alert
text containing ``@everyone`` from pinging anyone. A ``429`` carries ``Retry-After`` and a
JSON ``retry_after`` (seconds, float); the dispatcher waits the larger one. After a success
with ``X-RateLimit-Remaining: 0`` the channel pauses for ``X-RateLimit-Reset-After`` seconds
(``pause_s``, read by the dispatcher), as Discord asks, instead of hitting the 429.
"""

from __future__ import annotations

import ssl
from typing import Any

from ...secret import Secret
from ..model import Notification, iso_utc
from .base import post_json

__all__ = ["DiscordChannel", "discord_payload"]

COLOURS = {"critical": 0x992D22, "warning": 0xE67E22, "info": 0x95A5A6}
RESOLVED = 0x2ECC71
LIMITS = {
    "content": 2000,
    "title": 256,
    "description": 4096,
    "field_name": 256,
    "field_value": 1024,
    "footer": 2048,
    "fields": 25,
    "total": 6000,
}


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[: limit - 1] + "…" if limit > 0 else ""


def discord_payload(n: Notification) -> dict[str, Any]:
    alert = n.alert
    title = _cut(("[RESOLVED] " if n.resolved else "") + alert.summary, LIMITS["title"])
    # footer kept to 256 so title + footer + 4 fields always leave >= 1300 for the description
    footer = _cut(f"voyagr_wsgi · {n.instance}" if n.instance else "voyagr_wsgi", 256)
    pairs = [("Alert type", alert.alert_type), ("Severity", alert.severity)]
    if alert.scope:
        pairs.append(("Scope", alert.scope))
    if n.suppressed:
        pairs.append(("Suppressed", f"{n.suppressed} duplicates"))
    texts = [
        (_cut(k, LIMITS["field_name"]), _cut(v, LIMITS["field_value"]))
        for k, v in pairs[: LIMITS["fields"]]
    ]
    fields = [{"name": k, "value": v, "inline": True} for k, v in texts]
    used = len(title) + len(footer) + sum(len(k) + len(v) for k, v in texts)
    description = _cut(
        alert.description or alert.summary, min(LIMITS["description"], LIMITS["total"] - used)
    )
    embed: dict[str, Any] = {
        "title": title,
        "description": description,
        "color": RESOLVED if n.resolved else COLOURS[alert.severity],
        "fields": fields,
        "footer": {"text": footer},
        "timestamp": iso_utc(n.sent_at),
    }
    if n.dashboard_url:
        embed["url"] = n.dashboard_url
    return {
        "username": "voyagr",
        "content": _cut(n.headline, LIMITS["content"]),
        "allowed_mentions": {"parse": []},
        "embeds": [embed],
    }


class DiscordChannel:
    name = "discord"
    min_interval_s = 0.5  # Discord paces webhooks at roughly 5 per 2 s

    def __init__(self, url: Secret, *, ssl_context: ssl.SSLContext | None = None) -> None:
        self._url = url
        self._context = ssl_context
        self.pause_s = 0.0  # X-RateLimit-Reset-After when the bucket is empty

    def __repr__(self) -> str:
        return "DiscordChannel(url=Secret('**********'))"

    def accepts(self, notification: Notification) -> bool:
        return notification.reason != "refresh"

    def send(self, notification: Notification, timeout: float) -> None:
        _, headers, _ = post_json(
            self._url, discord_payload(notification), timeout=timeout, context=self._context
        )
        # Discord says to pace by its headers: out of requests in this bucket -> wait for reset
        self.pause_s = 0.0
        lower = {k.lower(): v for k, v in headers.items()}
        if lower.get("x-ratelimit-remaining") == "0":
            try:
                self.pause_s = max(0.0, float(lower.get("x-ratelimit-reset-after", "0")))
            except ValueError:
                self.pause_s = 1.0
