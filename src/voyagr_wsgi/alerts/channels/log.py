"""The log channel: every notification as one line on the ``voyagr_wsgi.alerts`` logger.

Always on (``ALERT_LOG_ENABLED=false`` turns it off), so alerts reach the application log with
no configuration at all: firing at WARNING (ERROR for critical), resolved at INFO. The line is
greppable: ``alert FIRING high_error_rate scope= severity=critical suppressed=0: <summary>``.
"""

from __future__ import annotations

import logging

from ..model import Notification

__all__ = ["LogChannel"]

_LEVEL = {"info": logging.INFO, "warning": logging.WARNING, "critical": logging.ERROR}


class LogChannel:
    name = "log"
    min_interval_s = 0.0

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self.logger = logger or logging.getLogger("voyagr_wsgi.alerts")

    def __repr__(self) -> str:
        return f"LogChannel(logger={self.logger.name!r})"

    def accepts(self, notification: Notification) -> bool:
        return notification.reason != "refresh"

    def send(self, notification: Notification, timeout: float) -> None:
        alert = notification.alert
        level = logging.INFO if notification.resolved else _LEVEL[alert.severity]
        self.logger.log(
            level,
            "alert %s %s scope=%s severity=%s suppressed=%d: %s",
            notification.status.upper(),
            alert.alert_type,
            alert.scope,
            alert.severity,
            notification.suppressed,
            alert.summary,
        )
