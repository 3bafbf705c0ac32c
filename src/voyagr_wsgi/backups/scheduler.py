"""``BackupScheduler``: the background service that takes a backup every interval and runs
the backup and restore jobs the admin endpoints queue (:mod:`.jobs`, :mod:`.runner`).

A :class:`~voyagr_wsgi.services.Service` with ``singleton = True``: the stack's Supervisor
starts it only in the process holding the services lock, and every run additionally takes
the backup lock (a ``flock`` beside the backups), so a CLI backup and the scheduler never
overlap. The next run is due ``BACKUP_INTERVAL_HOURS`` after the newest verified backup
(read from the shared status, so a restart does not back up again at once); after a failure
it retries sooner (``BACKUP_S3_RETRY_SECONDS``, capped by the interval). The thread waits on a
``threading.Event`` at most ``poll_s`` (1 s) at a time: each poll first runs the queued jobs
(oldest first, one at a time), then the scheduled backup if due. So a job submitted by any
worker starts within about a second in the services process. ``stop(timeout)`` wakes it and
waits for a running backup or job to finish; ``wake()`` runs a scheduled step now. When the
thread starts, jobs left ``running`` by a killed process are marked ``failed``. The clock is
injectable for tests (``now=``).

Across machines (``SERVICES_LEASE_URL``) the Supervisor runs it under the lease
``backups:<set>`` (:attr:`BackupScheduler.lease_name`) and sets :attr:`BackupScheduler.claim`:
before a due backup the scheduler claims its slot, ``floor(wall clock / interval)``, and
skips the slot when another holder already ran it, so a failover never runs a slot twice.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from ..errors import BackupError
from .manager import BackupBusy, BackupManager
from .runner import JobRunner

__all__ = ["BackupScheduler"]

log = logging.getLogger("voyagr_wsgi.backups")


class BackupScheduler:
    name = "backups"
    singleton = True
    #: set by the Supervisor under a fleet lease: ``claim(slot, ttl_s) -> bool``, asked once
    #: per schedule slot before a due backup; refused = another holder ran this slot
    claim: Callable[[int, float], bool] | None = None

    def __init__(
        self,
        manager: BackupManager,
        *,
        now: Callable[[], float] | None = None,
        poll_s: float = 1.0,  # seconds between two looks at the job queue
    ) -> None:
        self.manager = manager
        self.jobs = JobRunner(manager)
        self.poll_s = poll_s
        self.clock = now or manager.clock
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._running = False
        self.runs = 0
        self.ran = threading.Event()  # set after every run (tests and callers may wait on it)
        self._claimed_slot: int | None = None  # the slot this scheduler claimed (retries run)
        self._done_slot: int | None = None  # a claimed slot whose backup succeeded
        self._skip_until = 0.0  # end of a slot another holder claimed (wall clock)

    @property
    def lease_name(self) -> str:
        """The fleet lease this scheduler runs under: one holder per backup set."""
        return f"backups:{self.manager.set_name}"

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="voyagr-backups", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        self._stop.set()
        self._wake.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)

    def wake(self) -> None:
        self._wake.set()

    def state(self) -> dict[str, Any]:
        return {
            "running": self._thread is not None,
            "backup_in_progress": self._running,
            "next_run_in_s": self.delay(),
            **self.manager.status(),
        }

    def tick(self) -> None:
        """One scheduling step: a backup if due, failed uploads retried if due."""
        self._running = True
        try:
            if not self._slot_claimed():
                return
            if self.manager.run_scheduled() is not None:
                self._done_slot = self._claimed_slot
        except BackupBusy as exc:
            log.info("scheduled backup skipped: %s", exc)
        except BackupError as exc:
            log.error("scheduled backup failed: %s", exc)
        except Exception:
            log.exception("scheduled backup raised")
        finally:
            self._running = False
            self.runs += 1
            self.ran.set()

    def delay(self) -> float:
        """Seconds until the next run is due (0 = now)."""
        status = self.manager.status()
        settings = self.manager.settings
        now = self.clock()
        last = status["last_success_ts"]
        due = now if last is None else last + settings.interval_s
        failed = status["last_failure_ts"]
        if status["last_error"] and failed is not None:
            retry_at = failed + min(settings.s3_retry_s, settings.interval_s)
            due = retry_at if last is None else min(due, retry_at)
        if status["pending_uploads"]:
            upload_failed = status["last_upload_failure_ts"] or 0.0
            since = status.get("pending_since") or {}
            if any((since.get(i) or 0.0) > upload_failed for i in status["pending_uploads"]):
                return 0.0  # an upload interrupted by a kill: retried at once
            due = min(due, upload_failed + settings.s3_retry_s)
        return max(0.0, due - now, self._skip_until - now)

    # -- the fleet hook (claim) -------------------------------------------------------------
    def _slot_claimed(self) -> bool:
        """True unless a due backup's slot belongs to another holder (then skip the slot)."""
        claim = self.claim
        interval = self.manager.settings.interval_s
        if claim is None:
            return True
        now = self.clock()
        last = self.manager.status()["last_success_ts"]
        slot = int(now // interval)
        if last is not None and now - last < interval:
            return True  # no backup due: upload retries only
        if slot == self._claimed_slot and slot != self._done_slot:
            return True  # a retry within our own slot after a failure
        if slot != self._done_slot and claim(slot, 3 * interval):
            self._claimed_slot = slot
            return True
        self._skip_until = (slot + 1) * interval
        log.info("backup slot %d already claimed or done: skipped", slot)
        return False

    def run_jobs(self) -> int:
        """Run the queued jobs (until the queue is empty or one must wait); how many ran."""
        ran = 0
        while not self._stop.is_set():
            self._running = True
            try:
                if not self.jobs.run_next():
                    break
            except Exception:  # the runner records a job's failure; this is its own bug
                log.exception("backup job runner raised")
                break
            finally:
                self._running = False
            ran += 1
        return ran

    def _loop(self) -> None:
        try:
            self.jobs.start()
        except Exception:
            log.exception("could not read the backup job queue")
        while not self._stop.is_set():
            self.run_jobs()
            if self._stop.is_set():
                break
            if self._wake.is_set() or self.delay() <= 0:
                self._wake.clear()
                self.tick()
            delay = self.delay()
            self._wake.wait(min(self.poll_s, delay) if delay > 0 else self.poll_s)
