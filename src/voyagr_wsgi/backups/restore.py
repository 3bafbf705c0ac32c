"""Restore: a verified copy of a backup swapped into the live database through SQLite.

:class:`Restorer` runs a restore by id, under the backup lock the manager holds:

1. unless forced, a backup whose schema or ``user_version`` differs from the live
   database's (taken before or after a migration) is refused with
   :class:`~voyagr_wsgi.errors.BackupIncompatible`: the running code expects the live schema;
2. free space is checked first (:func:`~voyagr_wsgi.backups.verify.check_free_space`): the
   database's folder must hold the restored pages (written through its WAL), plus the
   candidate when staging is on the same volume, plus a margin; then the backup is fetched
   and verified completely (:mod:`~voyagr_wsgi.backups.verify`, decompression bounded by the
   recorded size): nothing touches the live database until the candidate passed every check;
3. a pinned ``pre-restore`` safety backup of the live database is taken (the caller's
   ``safety`` function: create, upload, no retention);
4. the candidate is swapped in and the live database checked; if that fails, the safety
   backup is swapped back and the restore reported as failed.

The swap (:func:`swap_in`) uses the backup API *into* the live database (what the sqlite3
shell's ``.restore`` does): SQLite takes the write lock, stays WAL-aware, and every connection
the running app holds sees the restored content on its next read transaction. Replacing the
file instead would be silently reverted by a stale ``-wal`` left beside it. A WAL database
cannot take pages of another size, so a candidate whose page size differs is first rebuilt
with the live page size (``PRAGMA page_size`` + ``VACUUM`` on the staging copy).

``offline=True`` is for a stopped app whose database cannot be opened any more (no safety
backup can be taken): :func:`replace_offline` moves the old files (with their
``-wal``/``-shm``/``-journal``) into ``quarantine/``, never deleting them, and puts the
candidate in their place.

Usage (the manager's ``restore(id)``)::

    restorer = Restorer("/data/app.db", LocalStore("/data/backups"))
    restorer.check_compatible(manifest)
    restorer.restore(store, manifest, safety=take_pinned_backup, now=time.time())
"""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
from collections.abc import Callable
from typing import Any

from ..errors import BackupError, BackupIncompatible, BackupVerificationError
from ._fs import durable_copy, remove_quietly
from .ids import new_id
from .local import LocalStore
from .manifest import Manifest
from .snapshot import connect_existing, db_facts, deadline
from .store import BackupStore
from .verify import check_free_space, fetch_verified

__all__ = [
    "Restorer",
    "fetch_verified",
    "live_matches",
    "replace_offline",
    "schema_of",
    "swap_checked",
    "swap_in",
]

log = logging.getLogger("voyagr_wsgi.backups")

SWAP_DEADLINE_S = 120.0


def swap_in(candidate: str, live_path: str, *, deadline_s: float = SWAP_DEADLINE_S) -> None:
    """Copy ``candidate`` into the live database through SQLite's backup API."""
    live = connect_existing(live_path, timeout_s=deadline_s)
    try:
        live_page = int(live.execute("PRAGMA page_size").fetchone()[0])
        cand = connect_existing(candidate)
        try:
            if int(cand.execute("PRAGMA page_size").fetchone()[0]) != live_page:
                cand.execute(f"PRAGMA page_size={live_page:d}")
                cand.execute("VACUUM")
            cand.backup(live, pages=-1, progress=deadline(deadline_s))
        finally:
            cand.close()
        result = [r[0] for r in live.execute("PRAGMA quick_check")]
        if result != ["ok"]:
            raise BackupVerificationError(f"live database after restore: {'; '.join(result)}")
    except sqlite3.Error as exc:
        raise BackupError(f"swapping the backup in failed: {exc}") from exc
    finally:
        live.close()


def swap_checked(
    candidate: str,
    live_path: str,
    manifest: Manifest,
    *,
    rollback: Callable[[], str] | None,
) -> None:
    """:func:`swap_in`, then check the live DB; on failure swap ``rollback()``'s copy back."""
    try:
        swap_in(candidate, live_path)
        problem = live_matches(live_path, manifest)
        if problem:
            raise BackupError(problem)
    except (BackupError, sqlite3.Error, OSError) as exc:
        if rollback is None:
            raise
        copy = rollback()
        try:
            swap_in(copy, live_path)
        finally:
            remove_quietly(copy)
        raise BackupError(
            f"restore of {manifest.id} failed ({exc}); rolled back to the safety backup"
        ) from exc


def schema_of(path: str) -> tuple[int, str]:
    """``(user_version, schema_sha256)`` of an existing database, as a manifest records them."""
    conn = connect_existing(path)
    try:
        _, user_version, schema = db_facts(conn)
    finally:
        conn.close()
    return user_version, schema


def live_matches(live_path: str, manifest: Manifest) -> str | None:
    """None when the live database now has the backup's schema and user_version."""
    if schema_of(live_path) != (manifest.user_version, manifest.schema_sha256):
        return "schema or user_version differ from the backup after the swap"
    return None


def replace_offline(candidate: str, live_path: str, quarantine_dir: str, stamp: str) -> list[str]:
    """Stopped app only: move the old files aside, rename the candidate into place."""
    os.makedirs(quarantine_dir, mode=0o700, exist_ok=True)
    moved = []
    for suffix in ("", "-wal", "-shm", "-journal"):
        old = live_path + suffix
        if os.path.exists(old):
            aside = os.path.join(quarantine_dir, f"{stamp}-{os.path.basename(old)}")
            shutil.move(old, aside)  # may cross file systems
            moved.append(aside)
    durable_copy(candidate, live_path, f"{live_path}.voyagr-restore")
    return moved


class Restorer:
    def __init__(self, db_path: str, local: LocalStore) -> None:
        self.db_path = os.path.abspath(db_path)
        self.local = local  # its staging folder holds the candidate, quarantine/ old files

    def verify(self, store: BackupStore, manifest: Manifest) -> None:
        """Fetch and check backup ``manifest`` completely; nothing is kept."""
        remove_quietly(fetch_verified(store, manifest, self.local.staging))

    def check_space(self, store: BackupStore, manifest: Manifest) -> None:
        """:class:`BackupError` unless the database's folder can take the restore."""
        db_dir = os.path.dirname(self.db_path)
        need = manifest.db_bytes  # the restored pages, written through the WAL
        os.makedirs(self.local.staging, mode=0o700, exist_ok=True)
        if os.stat(db_dir).st_dev == os.stat(self.local.staging).st_dev:
            need += manifest.db_bytes  # the verified candidate sits on the same volume
            if getattr(store, "name", "") != "local":
                need += manifest.gz_bytes  # and its download
        check_free_space(db_dir, need, f"restoring backup {manifest.id}")

    def check_compatible(self, manifest: Manifest) -> None:
        """:class:`BackupIncompatible` unless the live DB has the backup's schema."""
        try:
            user_version, schema = schema_of(self.db_path)
        except (BackupError, OSError, sqlite3.Error) as exc:
            log.warning("live database unreadable (%s): schema not compared", exc)
            return  # nothing to compare with (a damaged live DB is what restores are for)
        if (user_version, schema) != (manifest.user_version, manifest.schema_sha256):
            raise BackupIncompatible(
                f"backup {manifest.id} has user_version {manifest.user_version} and schema "
                f"{manifest.schema_sha256[:12]}, the live database user_version {user_version} "
                f"and schema {schema[:12]} {BackupIncompatible.FORCE_HINT}"
            )

    def restore(
        self,
        store: BackupStore,
        manifest: Manifest,
        *,
        safety: Callable[[], Manifest],
        now: float,
        offline: bool = False,
        force: bool = False,
        progress: Callable[[int], None] | None = None,
    ) -> dict[str, Any]:
        """Verify, take the safety backup, swap; ``{"restored", "safety_backup", ...}``.

        ``progress(done)`` is called with the decompressed bytes of the candidate so far.
        ``force`` changes nothing here (the caller compared the schemas, or chose not to):
        the swapped-in file is the backup's, schema included.
        """
        if manifest.engine != "sqlite":
            raise BackupIncompatible(
                f"backup {manifest.id} is a {manifest.engine} backup, not a SQLite one"
            )
        self.check_space(store, manifest)
        candidate = fetch_verified(store, manifest, self.local.staging, progress=progress)
        try:
            return self._swap(manifest, candidate, safety, now, offline)
        finally:
            remove_quietly(candidate)

    def _swap(
        self,
        manifest: Manifest,
        candidate: str,
        safety: Callable[[], Manifest],
        now: float,
        offline: bool,
    ) -> dict[str, Any]:
        try:
            kept: Manifest | None = safety()
        except BackupError:
            if not offline:
                raise
            kept = None  # offline: the unreadable live files are moved aside instead
        result: dict[str, Any] = {"restored": manifest.id, "safety_backup": kept and kept.id}
        if kept is None:
            result["moved_aside"] = replace_offline(
                candidate, self.db_path, self.local.quarantine, new_id(now)
            )
            return result
        safe = kept  # bound for the closure: mypy cannot narrow ``kept`` inside it
        swap_checked(
            candidate,
            self.db_path,
            manifest,
            rollback=lambda: fetch_verified(self.local, safe, self.local.staging),
        )
        log.info("restored %s (safety backup %s)", manifest.id, kept.id)
        return result
