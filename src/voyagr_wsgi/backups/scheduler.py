"""``BackupScheduler``: the background service that takes a backup every interval.

A :class:`~voyagr_wsgi.services.Service` with ``singleton = True``: the stack's Supervisor
starts it only in the process holding the services lock, and every run additionally takes
the backup lock (a ``flock`` beside the backups), so a CLI backup and the scheduler never
overlap. The next run is due ``BACKUP_INTERVAL_HOURS`` after the newest verified backup
(read from the shared status, so a restart does not back up again at once); after a failure
it retries sooner (``BACKUP_S3_RETRY_SECONDS``, capped by the interval). The thread waits on a
``threading.Event``: ``stop(timeout)`` wakes it and waits for a running backup to finish;
``wake()`` runs one now. The clock is injectable for tests (``now=``).

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

__all__ = ["BackupScheduler"]

log = logging.getLogger("voyagr_wsgi.backups")


class BackupScheduler:
    name = "backups"
    singleton = True
    #: set by the Supervisor under a fleet lease: ``claim(slot, ttl_s) -> bool``, asked once
    #: per schedule slot before a due backup; refused = another holder ran this slot
    claim: Callable[[int, float], bool] | None = None

    def __init__(self, manager: BackupManager, *, now: Callable[[], float] | None = None) -> None:
        self.manager = manager
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

    def _loop(self) -> None:
        while not self._stop.is_set():
            if self.delay() <= 0 or self._wake.is_set():
                self._wake.clear()
                self.tick()
                continue
            self._wake.wait(max(1.0, min(self.delay(), 3600.0)))
