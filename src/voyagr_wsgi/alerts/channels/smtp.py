"""E-mail over SMTP: a text and an HTML part, STARTTLS or implicit TLS, always a timeout.

``ALERT_EMAIL_ENABLED=true`` with ``SMTP_HOST``, ``SMTP_PORT`` (default 587 / 465 / 25 by
security), ``SMTP_SECURITY`` (``starttls``: plain connect then ``STARTTLS``, refusing a server
that does not offer it; ``ssl``: implicit TLS; ``none``: plain, for a local relay only),
``SMTP_USERNAME`` / ``SMTP_PASSWORD`` (login only after TLS unless security is ``none``),
``ALERT_EMAIL_FROM`` and ``ALERT_EMAIL_TO`` (a comma list). The subject follows
Alertmanager's default, ``[FIRING] high_error_rate on api: <summary>``; every message has the
``Date`` and a unique ``Message-ID`` RFC 5322 asks for, and its heading is coloured by
severity (critical red, warning amber, resolved green). Certificates are verified with the
system trust store, or with ``ALERT_CA_FILE`` (a private CA); a certificate that does not
verify is reported with that fix, not as a bare exception name. 4xx SMTP replies and network
errors are retried, 5xx replies and TLS verification failures are not.
"""

from __future__ import annotations

import html
import smtplib
import ssl
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Literal

from ...secret import Secret
from ..model import Notification, iso_utc
from .base import TLS_HINT, DeliveryFailed

__all__ = ["COLOURS", "SmtpChannel", "build_message"]

#: heading colours: by severity while firing, green once resolved
COLOURS = {"critical": "#A32037", "warning": "#E8A317", "info": "#439FE0"}
RESOLVED = "#3AA337"


def _rows(n: Notification) -> list[tuple[str, str]]:
    alert = n.alert
    rows = [("Status", n.status), ("Alert type", alert.alert_type), ("Severity", alert.severity)]
    if alert.scope:
        rows.append(("Scope", alert.scope))
    if alert.value is not None:
        rows.append(("Value", f"{alert.value:.6g}"))
    if alert.threshold is not None:
        rows.append(("Threshold", f"{alert.threshold:.6g}"))
    rows.append(("Since", iso_utc(n.starts_at)))
    if n.ends_at is not None:
        rows.append(("Resolved at", iso_utc(n.ends_at)))
    if n.suppressed:
        rows.append(("Suppressed", f"{n.suppressed} duplicates"))
    if n.instance:
        rows.append(("Instance", n.instance))
    return rows


def build_message(n: Notification, *, sender: str, recipients: tuple[str, ...]) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = f"{n.headline}: {n.alert.summary}"[:250]
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Date"] = format_datetime(datetime.fromtimestamp(n.sent_at, UTC))
    domain = sender.rpartition("@")[2] or "voyagr.invalid"
    message["Message-ID"] = make_msgid("voyagr", domain=domain)
    rows = _rows(n)
    text = [n.alert.summary, ""] + [f"{k}: {v}" for k, v in rows]
    if n.alert.description:
        text += ["", n.alert.description]
    if n.dashboard_url:
        text += ["", f"Dashboard: {n.dashboard_url}"]
    message.set_content("\n".join(text) + "\n")
    cells = "".join(
        f"<tr><th align='left'>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows
    )
    colour = RESOLVED if n.resolved else COLOURS.get(n.alert.severity, COLOURS["critical"])
    body = (
        f"<html><body><h2 style='color:{colour}'>{html.escape(n.headline)}</h2>"
        f"<p>{html.escape(n.alert.summary)}</p><table>{cells}</table>"
        + (f"<p>{html.escape(n.alert.description)}</p>" if n.alert.description else "")
        + "</body></html>"
    )
    message.add_alternative(body, subtype="html")
    return message


class SmtpChannel:
    name = "email"
    min_interval_s = 0.0

    def __init__(
        self,
        *,
        host: str,
        port: int,
        sender: str,
        recipients: tuple[str, ...],
        security: Literal["starttls", "ssl", "none"] = "starttls",
        username: str = "",
        password: Secret | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.host, self.port, self.security = host, port, security
        self.sender, self.recipients = sender, recipients
        self._username, self._password = username, password
        self._context = ssl_context

    def __repr__(self) -> str:
        return f"SmtpChannel(host={self.host!r}, port={self.port}, security={self.security!r})"

    def accepts(self, notification: Notification) -> bool:
        return notification.reason != "refresh"

    def send(self, notification: Notification, timeout: float) -> None:
        message = build_message(notification, sender=self.sender, recipients=self.recipients)
        context = self._context or ssl.create_default_context()
        try:
            client: smtplib.SMTP
            if self.security == "ssl":
                client = smtplib.SMTP_SSL(self.host, self.port, timeout=timeout, context=context)
            else:
                client = smtplib.SMTP(self.host, self.port, timeout=timeout)
            with client:
                if self.security == "starttls":
                    client.starttls(context=context)  # raises if the server lacks STARTTLS
                if self._username and self._password is not None:
                    client.login(self._username, self._password.reveal())
                client.send_message(message)
        except smtplib.SMTPResponseException as exc:
            retryable = 400 <= exc.smtp_code < 500
            raise DeliveryFailed(f"SMTP {exc.smtp_code}", retryable=retryable) from None
        except smtplib.SMTPRecipientsRefused:
            raise DeliveryFailed("SMTP recipients refused", retryable=False) from None
        except smtplib.SMTPNotSupportedError:
            raise DeliveryFailed("SMTP server lacks STARTTLS or AUTH", retryable=False) from None
        except ssl.SSLCertVerificationError:
            raise DeliveryFailed(f"SMTP TLS error: {TLS_HINT}", retryable=False) from None
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryFailed(f"SMTP error ({type(exc).__name__})") from None
