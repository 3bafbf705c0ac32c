"""Alert channels: SMTP, Slack, Discord, a generic webhook, Alertmanager and the log.

Every channel follows :class:`~voyagr_wsgi.alerts.channels.base.Channel`; :func:`from_settings`
builds the ones the settings enable (the log channel always, unless ``ALERT_LOG_ENABLED``
is false). Only the standard library talks to the network (``urllib.request``,
``smtplib``), always with a timeout; webhook URLs and passwords stay inside
:class:`~voyagr_wsgi.secret.Secret` and never reach a repr, a log line or an error message.
"""

from __future__ import annotations

from ..config import AlertSettings
from .alertmanager import AlertmanagerChannel
from .base import Channel, DeliveryFailed
from .discord import DiscordChannel
from .log import LogChannel
from .slack import SlackChannel
from .smtp import SmtpChannel
from .webhook import WebhookChannel

__all__ = [
    "AlertmanagerChannel",
    "Channel",
    "DeliveryFailed",
    "DiscordChannel",
    "LogChannel",
    "SlackChannel",
    "SmtpChannel",
    "WebhookChannel",
    "from_settings",
]


def from_settings(settings: AlertSettings) -> list[Channel]:
    s = settings
    channels: list[Channel] = []
    if s.log_enabled:
        channels.append(LogChannel())
    if s.email_enabled:
        channels.append(
            SmtpChannel(
                host=s.smtp_host,
                port=s.smtp_port,
                sender=s.email_from,
                recipients=s.email_to,
                security=s.smtp_security,
                username=s.smtp_username,
                password=s.smtp_password,
            )
        )
    if s.slack_enabled and s.slack_webhook_url is not None:
        channels.append(SlackChannel(s.slack_webhook_url))
    if s.discord_enabled and s.discord_webhook_url is not None:
        channels.append(DiscordChannel(s.discord_webhook_url))
    if s.webhook_enabled and s.webhook_url is not None:
        channels.append(WebhookChannel(s.webhook_url, secret=s.webhook_secret))
    if s.alertmanager_url is not None:
        channels.append(AlertmanagerChannel(s.alertmanager_url, resend_s=s.alertmanager_resend_s))
    return channels
