"""``voyagr-wsgi alert test``: send one test notification through every configured channel.

::

    voyagr-wsgi alert test [--env-file FILE] [--timeout SECONDS]

Reads the same settings as the app, builds the channels they enable (``ALERT_*``, ``SMTP_*``,
``ALERTMANAGER_URL``; the log channel too, unless ``ALERT_LOG_ENABLED=false``) and sends each
a ``test_notification`` alert of severity ``info``, synchronously, one after the other, each
bounded by ``--timeout`` (default ``ALERT_SEND_TIMEOUT_SECONDS``). One line per channel says
``ok`` or why it failed (never the URL or a secret). Exit status 0 when every channel took it,
1 when one failed or the settings are wrong, 2 on bad usage. Sent to Alertmanager, the test
alert is resolved right after it fires, so it does not stay in its UI.
"""

from __future__ import annotations

import dataclasses
import socket
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .. import _cli
from ..errors import ConfigurationError

if TYPE_CHECKING:
    from .model import Notification

__all__ = ["main", "test_notification"]


def test_notification(service: str, instance: str) -> Notification:
    """The notification ``alert test`` sends."""
    from .model import Alert, Notification

    now = time.time()
    alert = Alert(
        "test_notification",
        f"Test notification from voyagr-wsgi on {instance}: this channel works",
        severity="info",
        description="Sent by `voyagr-wsgi alert test`; no action needed.",
    )
    return Notification(
        alert=alert,
        status="firing",
        reason="new_alert",
        starts_at=now,
        sent_at=now,
        service=service,
        instance=instance,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = _cli.parser("voyagr-wsgi alert", __doc__)
    sub = parser.add_subparsers(dest="action", required=True)
    test = sub.add_parser("test", help="send a test notification through every channel")
    _cli.add_env_file(test)
    test.add_argument("--timeout", type=float, help="seconds per channel")
    args = parser.parse_args(argv)
    try:
        settings, _ = _cli.settings_from(args.env_file)
    except ConfigurationError as exc:
        print(f"voyagr-wsgi alert test: error: {exc}", file=sys.stderr)
        return 1
    from .channels import DeliveryFailed, from_settings

    alerts = settings.alerts
    channels = from_settings(alerts)
    if not channels:
        print("no alert channel is enabled (ALERT_LOG_ENABLED=false and no other channel)")
        return 1
    instance = alerts.instance or socket.gethostname()
    note = test_notification(alerts.service_name, instance)
    timeout = args.timeout or alerts.send_timeout_s
    failed = 0
    for channel in channels:
        try:
            channel.send(note, timeout)
            if channel.name == "alertmanager":  # do not leave the test alert firing there
                channel.send(_resolved(note), timeout)
        except DeliveryFailed as exc:
            failed += 1
            print(f"FAIL {channel.name}: {exc}")
        else:
            print(f"ok   {channel.name}")
    print(f"{len(channels) - failed} of {len(channels)} channel(s) delivered the test")
    return 1 if failed else 0


def _resolved(note: Notification) -> Notification:
    return dataclasses.replace(note, status="resolved", reason="resolved", ends_at=time.time())
