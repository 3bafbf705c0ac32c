"""The ``backup:age`` health check: the age of the last verified backup.

``pass`` when the newest verified backup is younger than 2x the interval, ``warn`` when it is
older (or there is none yet), ``warn`` too while the last attempt (backup, upload or
retention) failed, i.e. ``status()["last_error"]`` is set (the next success clears it), and
``warn`` when a backup is missing from S3 past the retry interval: an upload recorded as
pending (``pending_since``) more than ``BACKUP_S3_RETRY_SECONDS`` ago, whether it failed or
its process was killed mid-upload. Time to detect a lost upload: the retry interval.

A backup problem never makes the check ``fail``: health ``fail`` answers 503, which takes the
instance out of a load balancer, and an app whose backup failed still serves. The failure is
reported in the check's output, in ``notes``, and by the alert rule for failed backups.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from ..health import Check, HealthSource
from .manager import BackupManager

__all__ = ["health_source"]


def health_source(
    manager: BackupManager, *, now: Callable[[], float] | None = None
) -> HealthSource:
    now = now or manager.clock

    def source() -> Iterable[Check]:
        status = manager.status()
        last_ok, interval = status["last_success_ts"], float(status["interval_s"])
        if status["last_error"]:  # cleared by the next success
            age = None if last_ok is None else round(now() - last_ok)
            return [
                Check("backup:age", "warn", age, "s", f"last backup failed: {status['last_error']}")
            ]
        late = _late_uploads(status, now(), manager.settings.s3_retry_s)
        if late:
            age = None if last_ok is None else round(now() - last_ok)
            return [Check("backup:age", "warn", age, "s", late)]
        if last_ok is None:
            return [Check("backup:age", "warn", None, "s", "no verified backup yet")]
        age_s = now() - last_ok
        if age_s > 2 * interval:
            return [
                Check(
                    "backup:age",
                    "warn",
                    round(age_s),
                    "s",
                    f"last verified backup is {age_s / 3600:.1f} h old "
                    f"(interval {interval / 3600:g} h)",
                )
            ]
        return [Check("backup:age", "pass", round(age_s), "s")]

    return source


def _late_uploads(status: dict[str, Any], now: float, retry_s: float) -> str | None:
    since = status.get("pending_since") or {}
    late = [
        (i, now - since[i])
        for i in status.get("pending_uploads") or ()
        if isinstance(since.get(i), (int, float)) and now - since[i] > retry_s
    ]
    if not late:
        return None
    backup_id, age = late[0]
    more = f" (and {len(late) - 1} more)" if len(late) > 1 else ""
    return (
        f"backup {backup_id}{more} not in S3 for {age:.0f} s: its upload is pending past the "
        f"retry interval ({retry_s:g} s)"
    )
