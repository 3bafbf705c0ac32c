"""``BackupManager``: create, list, verify, restore and prune, one run at a time.

Everything that changes the backup folder or the live database runs under two locks: a
``threading.Lock`` and an exclusive ``flock`` on ``BACKUP_DIR/.voyagr-backup.lock`` (never on
the database). A second runner, in this process or another (the CLI while the scheduler
works), gets :class:`BackupBusy` at once instead of overlapping.

A backup: clean the leftovers of interrupted runs -> snapshot through SQLite -> verify while
gzip+SHA-256 stream it -> rename -> manifest (commit) -> upload to S3 (a failure keeps the
local backup, is reported in ``status()`` and retried later) -> retention on each store.

Usage::

    manager = BackupManager(settings.backups)
    manifest = manager.create()
    manager.restore("20260102T030405Z-0a1b2c3d")     # by id only
    manager.status()   # {"last_success_ts": ..., "last_failure_ts": ..., "last_error": ...}
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from ..errors import BackupError, BackupIncompatible, BackupNotFound, StorageError
from ..services import FileLock
from ._fs import nospace_error, remove_quietly
from .config import BackupSettings
from .ids import new_id, parse_id
from .local import LocalStore
from .manifest import Manifest
from .restore import fetch_verified, replace_offline, schema_of, swap_checked
from .retention import Plan, Policy, RetentionError, plan
from .snapshot import Progress, compress_and_verify, take_snapshot
from .status import Status, StatusFile
from .store import BackupStore, Listing

__all__ = ["BackupBusy", "BackupManager"]

log = logging.getLogger("voyagr_wsgi.backups")


class BackupBusy(BackupError):
    """Another backup or restore holds the lock; nothing was done."""


class BackupManager:
    def __init__(
        self,
        settings: BackupSettings,
        *,
        remote: BackupStore | None = None,
        now: Callable[[], float] = time.time,  # wall clock: backup ids and ages are dates
        progress: Progress | None = None,
    ) -> None:
        if not settings.database_path:
            raise BackupError("DATABASE_PATH is not set: there is nothing to back up")
        self.settings = settings
        self.set_name = settings.set_name
        self.db_path = os.path.abspath(settings.database_path)
        self.local = LocalStore(settings.backup_dir)
        self._remote = remote
        self.clock = now
        self.progress = progress
        self.policy = Policy(
            settings.retention_daily,
            settings.retention_weekly,
            settings.retention_monthly,
            settings.retention_min_keep,
            settings.retention_tz(),
        )
        self.status_file = StatusFile(
            os.path.join(self.local.directory, ".voyagr-backup-status.json")
        )
        self._flock = FileLock(os.path.join(self.local.directory, ".voyagr-backup.lock"))
        self._mutex = threading.Lock()

    @property
    def remote(self) -> BackupStore | None:
        if self._remote is None and self.settings.s3_enabled:
            from .s3 import S3Store  # boto3 is imported only when S3 is on

            self._remote = S3Store.from_settings(self.settings)
        return self._remote

    def stores(self) -> list[BackupStore]:
        remote = self.remote
        return [self.local] if remote is None else [self.local, remote]

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        if not self._mutex.acquire(blocking=False):
            raise BackupBusy("another backup or restore is running in this process")
        try:
            self.local.ensure()
            if not self._flock.try_acquire():
                raise BackupBusy(f"another process holds {self._flock.path}; try again later")
            try:
                for path in self.local.clean_leftovers():
                    log.info("removed %s left by an interrupted run", path)
                yield
            finally:
                self._flock.release()
        finally:
            self._mutex.release()

    # -- backups -------------------------------------------------------------------------
    def create(self, *, reason: str = "manual", pinned: bool = False) -> Manifest:
        """Take, verify and commit one backup (then upload and apply retention)."""
        with self.locked():
            return self._create(reason, pinned, retention=not pinned)

    def run_scheduled(self) -> Manifest | None:
        """A backup if none newer than the interval exists; pending uploads retried."""
        with self.locked():
            self._retry_uploads(force=False)
            newest = self.status().get("last_success_ts")
            if newest is not None and self.clock() - newest < self.settings.interval_s:
                return None
            return self._create("scheduled", False, retention=True)

    def _create(self, reason: str, pinned: bool, *, retention: bool) -> Manifest:
        now = self.clock()
        backup_id = new_id(now)
        try:
            snap = take_snapshot(self.db_path, self.local.staging, backup_id)
            try:
                stored = compress_and_verify(
                    snap,
                    self.local.directory,
                    quarantine_dir=self.local.quarantine,
                    progress=self.progress,
                )
            finally:
                remove_quietly(snap.path)
            manifest = Manifest(
                backup_id,
                now,
                stored.db_bytes,
                stored.gz_bytes,
                stored.sha256_db,
                stored.sha256_gz,
                snap.page_size,
                snap.user_version,
                snap.schema_sha256,
                snap.sqlite_version,
                verified=True,
                pinned=pinned,
                reason=reason,
                backup_set=self.set_name,
            )
            manifest = self.local.put(manifest, stored.path)
        except BackupError as exc:
            self._record(error=f"backup failed: {exc}")
            raise
        except OSError as exc:
            error = nospace_error(exc, self.local.directory) or BackupError(f"{exc}")
            self._record(error=f"backup failed: {error}")
            raise error from exc
        self._record(success=manifest)
        log.info("backup %s committed (%d bytes gz)", backup_id, manifest.gz_bytes)
        uploaded = self._upload(manifest)
        if retention:
            self._prune_all(remote=uploaded)
        return manifest

    def _upload(self, manifest: Manifest) -> bool:
        remote = self.remote
        if remote is None:
            return True
        try:
            remote.put(manifest, self.local.data_path(manifest))
        except (BackupError, StorageError) as exc:
            self._record(upload_failed=manifest.id, error=f"upload failed (will retry): {exc}")
            log.warning("backup %s kept locally; upload failed: %s", manifest.id, exc)
            return False
        except Exception as exc:
            self._record(upload_failed=manifest.id, error=f"upload failed (will retry): {exc!r}")
            log.exception("backup %s kept locally; upload raised", manifest.id)
            return False
        self._record(uploaded=manifest.id)
        return True

    def retry_uploads(self) -> list[str]:
        """Upload every backup whose upload failed earlier; the ids now uploaded."""
        with self.locked():
            return self._retry_uploads(force=True)

    def _retry_uploads(self, *, force: bool) -> list[str]:
        status = self.status_file.read()
        if not status.pending_uploads or self.remote is None:
            return []
        failed_at = status.last_upload_failure_ts or 0.0
        if not force and self.clock() - failed_at < self.settings.s3_retry_s:
            return []
        listing = self._listing(self.local)
        done = []
        for backup_id in list(status.pending_uploads):
            manifest = listing.find(backup_id)
            if manifest is None:
                self._record(uploaded=backup_id)  # deleted locally meanwhile: nothing to send
            elif self._upload(manifest):
                done.append(backup_id)
            else:
                break
        return done

    def _record(self, **event: Any) -> None:
        self.status_file.record(self.clock(), **event)

    def status(self) -> dict[str, Any]:
        """``last_success_ts``, ``last_failure_ts``, ``last_error``, ``interval_s``, ..."""
        status: Status = self.status_file.read()
        doc = status.as_dict()
        doc["interval_s"] = self.settings.interval_s
        if doc["last_success_ts"] is None:
            verified = [m for m in self._listing(self.local).manifests if m.verified]
            if verified:
                doc["last_success_ts"] = verified[-1].created_ts
        return doc

    # -- listing, retention --------------------------------------------------------------
    def _listing(self, store: BackupStore) -> Listing:
        """``store``'s listing, this set's backups only: another database's backups sharing
        the folder or S3 prefix are never pruned, restored, pinned or counted here."""
        listing = store.list()
        own = tuple(m for m in listing.manifests if m.backup_set in ("", self.set_name))
        return Listing(own, listing.problems)

    def list(self) -> dict[str, Listing]:
        return {store.name: self._listing(store) for store in self.stores()}

    def prune(self, *, dry_run: bool = False) -> dict[str, Plan[Manifest]]:
        if dry_run:
            return {s.name: self._plan(s) for s in self.stores()}
        with self.locked():
            return self._prune_all()

    def _plan(self, store: BackupStore) -> Plan[Manifest]:
        listing = self._listing(store)
        if not listing.complete:
            raise RetentionError(
                f"{store.name}: incomplete listing, retention aborted: {listing.problems[0]}"
            )
        return plan(listing.manifests, self.policy, now=self.clock())

    def _prune_all(self, *, remote: bool = True) -> dict[str, Plan[Manifest]]:
        plans: dict[str, Plan[Manifest]] = {}
        for store in self.stores() if remote else [self.local]:
            try:
                plans[store.name] = result = self._plan(store)
                for manifest in result.delete:
                    store.delete(manifest)
                    log.info("retention: deleted %s from %s", manifest.id, store.name)
                collect = getattr(store, "collect_garbage", None)
                if collect is not None:
                    for key in collect(now=self.clock()):
                        log.info("removed %s left by an interrupted run", key)
            except (BackupError, StorageError) as exc:
                self._record(error=f"retention on {store.name} failed: {exc}")
                log.warning("retention on %s skipped: %s", store.name, exc)
        return plans

    # -- verify, restore -----------------------------------------------------------------
    def find(self, name: object) -> tuple[BackupStore, Manifest]:
        """The store and manifest of backup ``name`` (validated first, then looked up)."""
        backup_id = parse_id(name)
        for store in self.stores():
            manifest = self._listing(store).find(backup_id)
            if manifest is not None:
                return store, manifest
        raise BackupNotFound(f"no committed backup of set {self.set_name!r} has id {backup_id}")

    def pin(self, name: object, pinned: bool = True) -> Manifest:
        """Pin backup ``name`` (retention never deletes it) or unpin it, in every store that
        holds it; the pre-restore safety backups are made pinned."""
        backup_id = parse_id(name)
        changed: Manifest | None = None
        with self.locked():
            for store in self.stores():
                manifest = self._listing(store).find(backup_id)
                if manifest is None:
                    continue
                if manifest.pinned != pinned:
                    store.write_manifest(manifest.with_(pinned=pinned))
                changed = manifest.with_(pinned=pinned)
        if changed is None:
            raise BackupNotFound(f"no committed backup of set {self.set_name!r} has id {backup_id}")
        log.info("backup %s %s", backup_id, "pinned" if pinned else "unpinned")
        return changed

    def verify(self, name: object) -> Manifest:
        store, manifest = self.find(name)
        with self.locked():
            remove_quietly(fetch_verified(store, manifest, self.local.staging))
        return manifest

    def restore(
        self, name: object, *, offline: bool = False, force: bool = False
    ) -> dict[str, Any]:
        """Replace the live database's content with backup ``name``; see restore.py.

        A backup whose schema or ``user_version`` differs from the live database's (taken
        before or after a migration) is refused with :class:`BackupIncompatible` unless
        ``force``: the running code expects the live schema.
        """
        store, manifest = self.find(name)
        if not force:
            self._check_compatible(manifest)
        with self.locked():
            candidate = fetch_verified(store, manifest, self.local.staging)
            try:
                return self._swap(manifest, candidate, offline)
            finally:
                remove_quietly(candidate)

    def _check_compatible(self, manifest: Manifest) -> None:
        try:
            user_version, schema = schema_of(self.db_path)
        except (BackupError, OSError, sqlite3.Error) as exc:
            log.warning("live database unreadable (%s): schema not compared", exc)
            return  # nothing to compare with (a damaged live DB is what restores are for)
        if (user_version, schema) != (manifest.user_version, manifest.schema_sha256):
            raise BackupIncompatible(
                f"backup {manifest.id} has user_version {manifest.user_version} and schema "
                f"{manifest.schema_sha256[:12]}, the live database user_version {user_version} "
                f"and schema {schema[:12]} (a migration between them?); nothing was changed. "
                "Restore it anyway with force (--force, ?force=1) if the code that will run "
                "expects the backup's schema"
            )

    def _swap(self, manifest: Manifest, candidate: str, offline: bool) -> dict[str, Any]:
        try:
            safety: Manifest | None = self._create("pre-restore", True, retention=False)
        except BackupError:
            if not offline:
                raise
            safety = None  # offline: the unreadable live files are moved aside instead
        result: dict[str, Any] = {"restored": manifest.id, "safety_backup": safety and safety.id}
        if offline and safety is None:
            stamp = new_id(self.clock())
            result["moved_aside"] = replace_offline(
                candidate, self.db_path, self.local.quarantine, stamp
            )
            return result
        rollback = None if safety is None else (lambda: self._fetch_local(safety))
        swap_checked(candidate, self.db_path, manifest, rollback=rollback)
        log.info("restored %s (safety backup %s)", manifest.id, safety and safety.id)
        return result

    def _fetch_local(self, manifest: Manifest) -> str:
        return fetch_verified(self.local, manifest, self.local.staging)
