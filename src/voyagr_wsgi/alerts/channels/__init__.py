"""Alert channels: SMTP, Slack, Discord, a generic webhook, Alertmanager and the log.

Every channel follows :class:`~voyagr_wsgi.alerts.channels.base.Channel`; :func:`from_settings`
builds the ones the settings enable (the log channel always, unless ``ALERT_LOG_ENABLED``
is false). Only the standard library talks to the network (``urllib.request``,
``smtplib``), always with a timeout; webhook URLs and passwords stay inside
:class:`~voyagr_wsgi.secret.Secret` and never reach a repr, a log line or an error message.
"""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING

from ..._lazy import lazy
from .base import Channel, DeliveryFailed

if TYPE_CHECKING:
    from ..config import AlertSettings
    from .alertmanager import AlertmanagerChannel as AlertmanagerChannel
    from .discord import DiscordChannel as DiscordChannel
    from .log import LogChannel as LogChannel
    from .slack import SlackChannel as SlackChannel
    from .smtp import SmtpChannel as SmtpChannel
    from .webhook import WebhookChannel as WebhookChannel

_WHERE = {
    "AlertmanagerChannel": ".alertmanager",
    "DiscordChannel": ".discord",
    "LogChannel": ".log",
    "SlackChannel": ".slack",
    "SmtpChannel": ".smtp",
    "WebhookChannel": ".webhook",
}

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


__getattr__, __dir__ = lazy(__name__, _WHERE)


def from_settings(settings: AlertSettings) -> list[Channel]:
    """The channels the settings enable; each channel's module loads only when enabled."""
    s = settings
    context = ssl.create_default_context(cafile=s.ca_file) if s.ca_file else None
    channels: list[Channel] = []
    if s.log_enabled:
        from .log import LogChannel

        channels.append(LogChannel())
    if s.email_enabled:
        from .smtp import SmtpChannel

        channels.append(
            SmtpChannel(
                host=s.smtp_host,
                port=s.smtp_port,
                sender=s.email_from,
                recipients=s.email_to,
                security=s.smtp_security,
                username=s.smtp_username,
                password=s.smtp_password,
                ssl_context=context,
            )
        )
    if s.slack_enabled and s.slack_webhook_url is not None:
        from .slack import SlackChannel

        channels.append(SlackChannel(s.slack_webhook_url, ssl_context=context))
    if s.discord_enabled and s.discord_webhook_url is not None:
        from .discord import DiscordChannel

        channels.append(DiscordChannel(s.discord_webhook_url, ssl_context=context))
    if s.webhook_enabled and s.webhook_url is not None:
        from .webhook import WebhookChannel

        channels.append(
            WebhookChannel(
                s.webhook_url,
                secret=s.webhook_secret,
                headers=s.webhook_headers,
                ssl_context=context,
            )
        )
    if s.alertmanager_url is not None:
        from .alertmanager import AlertmanagerChannel

        channels.append(
            AlertmanagerChannel(
                s.alertmanager_url,
                resend_s=s.alertmanager_resend_s,
                headers=s.alertmanager_headers,
                ssl_context=context,
            )
        )
    return channels
