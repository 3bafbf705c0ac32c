"""The database engines: how a snapshot is taken and a backup restored, per kind of database.

Everything after the snapshot is shared by every engine: the gzip + SHA-256 stream, temp file
+ fsync + rename, the manifest written last, the local and S3 stores, retention per backup
set, pins, jobs, endpoints, CLI, health, metrics and alerts. An engine supplies only what
depends on the database, behind the small :class:`Engine` protocol:

- ``capture(backup_id, local, progress)``: write ``<id>.db.gz`` (committed by rename, checked
  before it is kept) and return the manifest's engine fields;
- ``verify(store, manifest)``: read a stored backup back and check it completely;
- ``check_compatible(manifest)``: :class:`~voyagr_wsgi.errors.BackupIncompatible` when the
  backup's schema differs from the live database's (restoring it needs ``force``);
- ``restore(store, manifest, safety=..., now=..., ...)``: verify, call ``safety()`` (the
  pinned pre-restore backup), then put the backup's content into the live database;
- ``size()``: the live database's size in bytes, for progress meters (an estimate for
  PostgreSQL).

Two engines: :class:`SqliteEngine` (``DATABASE_PATH``: :mod:`.snapshot` and :mod:`.restore`)
and :class:`~voyagr_wsgi.backups.postgres.PostgresEngine` (``DATABASE_URL``), imported by
:func:`open_engine` only when the settings ask for PostgreSQL.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..errors import BackupError
from ._fs import remove_quietly
from .config import BackupSettings
from .local import LocalStore
from .manifest import Manifest
from .restore import Restorer
from .snapshot import Progress, Stored, compress_and_verify, live_size, take_snapshot
from .store import BackupStore

__all__ = ["Captured", "Engine", "SqliteEngine", "open_engine"]


@dataclass(frozen=True, slots=True)
class Captured:
    """A snapshot committed as ``<id>.db.gz`` and the manifest fields only the engine knows."""

    stored: Stored
    page_size: int = 0
    user_version: int = 0
    schema_sha256: str = ""
    sqlite_version: str = ""
    engine: str = "sqlite"
    server_version: str = ""
    row_counts: dict[str, int] | None = field(default=None, hash=False)


class Engine(Protocol):
    kind: str  # "sqlite" | "postgresql"

    def size(self) -> int: ...

    def capture(self, backup_id: str, local: LocalStore, progress: Progress | None) -> Captured: ...

    def verify(self, store: BackupStore, manifest: Manifest) -> None: ...

    def check_compatible(self, manifest: Manifest) -> None: ...

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
    ) -> dict[str, Any]: ...


class SqliteEngine(Restorer):
    """``DATABASE_PATH``: the online backup API, integrity checks, restore through SQLite."""

    kind = "sqlite"

    def size(self) -> int:
        return live_size(self.db_path)

    def capture(self, backup_id: str, local: LocalStore, progress: Progress | None) -> Captured:
        snap = take_snapshot(self.db_path, local.staging, backup_id)
        try:
            stored = compress_and_verify(
                snap, local.directory, quarantine_dir=local.quarantine, progress=progress
            )
        finally:
            remove_quietly(snap.path)
        return Captured(
            stored, snap.page_size, snap.user_version, snap.schema_sha256, snap.sqlite_version
        )


def open_engine(settings: BackupSettings, local: LocalStore) -> Engine:
    """The engine the settings select (PostgreSQL's module is imported only for it)."""
    if settings.database_url:
        from .postgres import PostgresEngine

        return PostgresEngine(settings, local)
    if settings.database_path:
        return SqliteEngine(os.path.abspath(settings.database_path), local)
    raise BackupError("DATABASE_PATH is not set (nor DATABASE_URL): there is nothing to back up")
