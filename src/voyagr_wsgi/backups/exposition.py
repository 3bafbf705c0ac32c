"""The backup figures in Prometheus text format (0.0.4), read at scrape time.

The backups area adds them to ``GET /api/production/prometheus`` as a metrics section
(``context.metrics_sections``); every value comes from :meth:`BackupManager.status` and the
local catalogue, read when Prometheus scrapes, never on the request path. The status file is
shared by every process, so any worker answers the same. One label, ``backup_set``
(``BACKUP_SET``, or the database file's name)::

    voyagr_backup_last_success_timestamp_seconds  gauge  last verified backup (Unix s)
    voyagr_backup_last_failure_timestamp_seconds  gauge  last failed backup or upload
    voyagr_backup_failing                          gauge  1 while the last failure (backup or
                                                         upload) is newer than the last
                                                         success, as voyagr's own rule
    voyagr_backup_duration_seconds                 gauge  last backup: snapshot, gzip and
                                                         verify until the data file was
                                                         written (the upload not included)
    voyagr_backup_size_bytes                       gauge  last backup, compressed (.db.gz)
    voyagr_backup_interval_seconds                 gauge  BACKUP_INTERVAL_HOURS, in seconds
    voyagr_backup_pending_uploads                  gauge  committed locally, not yet in S3
    voyagr_backup_failures_total                   counter  failed backups or uploads
    voyagr_backup_successes_total                  counter  verified backups

A family whose value is not known yet (no backup so far, no failure so far) is left out.
The shipped rules (``static/prometheus-rules.yml``) alert on ``voyagr_backup_failing`` and on
no success for twice the interval (``time() - last_success > 2 * interval``).
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .manager import BackupManager

__all__ = ["prometheus_text", "section"]

log = logging.getLogger("voyagr_wsgi.backups")


def _label(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _last_backup(manager: BackupManager, status: dict[str, Any]) -> tuple[float, float] | None:
    """(compressed size in bytes, seconds from start to the data file written) of the last
    backup in the local store, or None when there is none."""
    try:
        manifests = [m for m in manager.catalogue.listing(manager.local).manifests if m.verified]
    except OSError as exc:
        log.warning("backup figures: cannot list the local backups: %s", exc)
        return None
    wanted = status.get("last_backup_id")
    chosen = next((m for m in manifests if m.id == wanted), None)
    if chosen is None and manifests:
        chosen = max(manifests, key=lambda m: m.created_ts)
    if chosen is None:
        return None
    try:
        written = os.stat(manager.local.data_path(chosen)).st_mtime
    except OSError:
        return float(chosen.gz_bytes), -1.0
    return float(chosen.gz_bytes), max(0.0, written - chosen.created_ts)


def _failing(status: dict[str, Any]) -> bool:
    """voyagr's own ``backup_failed`` condition: a failure newer than the last success."""
    ok, bad = status.get("last_success_ts"), status.get("last_failure_ts")
    return bad is not None and (ok is None or bad > ok)


def prometheus_text(manager: BackupManager) -> str:
    """Text-format families for the manager's backup set (ends with a newline)."""
    status = manager.status()
    labels = f'{{backup_set="{_label(manager.set_name)}"}}'
    out: list[str] = []

    def family(name: str, kind: str, text: str, value: float | None) -> None:
        if value is None:  # not known yet (no backup so far): no sample, no family
            return
        out.append(f"# HELP {name} {text}")
        out.append(f"# TYPE {name} {kind}")
        out.append(f"{name}{labels} {_number(value)}")

    family(
        "voyagr_backup_last_success_timestamp_seconds",
        "gauge",
        "Time of the last verified backup, in Unix seconds.",
        status.get("last_success_ts"),
    )
    family(
        "voyagr_backup_last_failure_timestamp_seconds",
        "gauge",
        "Time of the last failed backup or upload, in Unix seconds.",
        status.get("last_failure_ts"),
    )
    family(
        "voyagr_backup_failing",
        "gauge",
        "1 while the last failure (backup or upload) is newer than the last success.",
        1 if _failing(status) else 0,
    )
    last = _last_backup(manager, status)
    duration = None if last is None or last[1] < 0 else round(last[1], 3)
    family(
        "voyagr_backup_duration_seconds",
        "gauge",
        "Duration of the last backup (snapshot, gzip, verify), upload excluded.",
        duration,
    )
    family(
        "voyagr_backup_size_bytes",
        "gauge",
        "Size of the last backup, compressed.",
        None if last is None else last[0],
    )
    family(
        "voyagr_backup_interval_seconds",
        "gauge",
        "Interval between scheduled backups.",
        status.get("interval_s"),
    )
    family(
        "voyagr_backup_pending_uploads",
        "gauge",
        "Backups committed locally and not yet uploaded.",
        len(status.get("pending_uploads") or ()),
    )
    for key, name, text in (
        ("failures_total", "voyagr_backup_failures_total", "Failed backup runs."),
        ("successes_total", "voyagr_backup_successes_total", "Successful backup runs."),
    ):
        if isinstance(status.get(key), int | float):
            family(name, "counter", text, status[key])
    return "\n".join(out) + "\n"


def section(manager: BackupManager) -> Any:
    """The :class:`~voyagr_wsgi._build.MetricsSection` the backups area registers."""
    from .._build import MetricsSection

    def json_figures() -> dict[str, Any]:
        status = manager.status()
        last = _last_backup(manager, status)
        return {
            "last_success_ts": status.get("last_success_ts"),
            "last_failure_ts": status.get("last_failure_ts"),
            "failing": _failing(status),
            "size_bytes": None if last is None else int(last[0]),
            "duration_s": None if last is None or last[1] < 0 else round(last[1], 3),
            "interval_s": status.get("interval_s"),
            "pending_uploads": len(status.get("pending_uploads") or ()),
        }

    return MetricsSection("backups", json=json_figures, prometheus=lambda: prometheus_text(manager))
