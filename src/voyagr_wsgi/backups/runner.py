"""Run the queued backup and restore jobs (:mod:`.jobs`) with the manager, one at a time.

The :class:`~voyagr_wsgi.backups.scheduler.BackupScheduler` owns one :class:`JobRunner` and
calls :meth:`JobRunner.run_next` on every poll (each second) in the services process; nothing
else runs jobs. A job is marked ``running``, run under the backup lock like any backup, and
ends ``succeeded`` with its result or ``failed`` with the problem object the endpoint would
have answered (``backup-not-found``, ``backup-incompatible``, ``backup-verification-failed``,
``backup-failed``, ``storage-failed``). A job that meets the lock taken by another process
(the CLI) goes back to ``queued`` and is tried on the next poll.

Usage::

    runner = JobRunner(manager)
    runner.start()          # jobs left "running" by a killed process become "failed"
    while runner.run_next():
        pass
"""

from __future__ import annotations

import logging
import sqlite3
from typing import Any

from ..errors import BackupError, StorageError
from .jobs import JobQueue, problem_of
from .lock import BackupBusy
from .manager import BackupManager

__all__ = ["JobRunner"]

log = logging.getLogger("voyagr_wsgi.backups")


class JobRunner:
    def __init__(self, manager: BackupManager) -> None:
        self.manager = manager
        self.queue: JobQueue = manager.jobs

    def start(self) -> None:
        for job_id in self.queue.fail_interrupted():
            log.warning("backup job %s was interrupted (its process stopped)", job_id)

    def run_next(self) -> bool:
        """Run the oldest queued job; False when there was none or it must wait."""
        job = self.queue.next_queued()
        if job is None:
            return False
        clock = self.manager.clock
        self.queue.update(job, state="running", started_ts=clock(), note=None)
        try:
            result = self._run(job)
        except BackupBusy as exc:
            self.queue.update(
                job, state="queued", started_ts=None, progress=None, note=f"waiting: {exc}"
            )
            return False
        except (BackupError, StorageError, OSError) as exc:
            kind, detail = problem_of(exc) or ("backup-failed", str(exc))
            if kind in ("backup-failed", "storage-failed"):
                log.error("backup job %s (%s) failed: %s", job["id"], job["kind"], detail)
            self.queue.fail(job, kind, detail)
        except Exception as exc:
            log.exception("backup job %s (%s) raised", job["id"], job["kind"])
            self.queue.fail(job, "backup-failed", f"internal error: {type(exc).__name__}")
        else:
            self.queue.update(job, state="succeeded", finished_ts=clock(), result=result)
            log.info("backup job %s (%s) succeeded", job["id"], job["kind"])
        self.queue.prune()
        return True

    def _run(self, job: dict[str, Any]) -> dict[str, Any]:
        manager = self.manager
        if job["kind"] == "create":
            try:
                total = manager.engine.size()
            except (BackupError, OSError, sqlite3.Error):  # the backup itself tells why
                total = 0
            made = manager.create(progress=self.queue.reporter(job, "compress", total))
            return {"backup": made.as_dict()}
        params = job.get("params") or {}
        name = params.get("name")
        _, manifest = manager.find(name)
        report = self.queue.reporter(job, "verify", manifest.db_bytes)
        return manager.restore(name, force=bool(params.get("force")), progress=report)
