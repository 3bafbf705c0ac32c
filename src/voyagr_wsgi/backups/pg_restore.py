"""Verify and restore PostgreSQL backups: ``pg_restore`` reading the archive, never ``psql``.

**Restore** (:meth:`PgRestorer.restore`, by id, under the backup lock): the stored object
is checked against its manifest while ``pg_restore`` reads it whole; then the pinned
pre-restore safety backup is taken; then ``pg_restore --clean --if-exists
--single-transaction --exit-on-error`` runs against the live database, fed from the
decompressing stream (never plain SQL through ``psql``). One transaction: a failure changes
nothing. The stream's checks are settled before ``pg_restore`` sees the end of its input, so a
backup that changed since it was checked is killed before the commit. Objects in the live
database that the backup does not have are left alone (``--clean`` drops only the backup's).
``PGOPTIONS=-c lock_timeout=...`` bounds the wait for the app's locks (120 s).

**Schemas** (what a 409 means): the schema is compared as SQL text, ``pg_dump
--schema-only --no-owner --no-privileges`` of the live database against the backup's
``pg_restore --schema-only`` with the same options, both hashed by
:func:`~voyagr_wsgi.backups.pg_archive.schema_digest` (comments, ``SET`` lines and the random
``\\restrict`` keys left out). Any difference (a table, a column, a type, an index, a
constraint, a function) refuses the restore with
:class:`~voyagr_wsgi.errors.BackupIncompatible` unless forced. Both sides come from the same
client major version when nothing was upgraded in between; after a client upgrade the text may
differ for an equal schema: check, then force. An unreachable server is not compared (the
restore then fails on its own).

:class:`PgRestorer` is the restore half of
:class:`~voyagr_wsgi.backups.postgres.PostgresEngine` (as :class:`~.restore.Restorer` is
SQLite's).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

from ..errors import BackupError, BackupIncompatible, BackupVerificationError
from ._fs import remove_quietly
from .local import LocalStore
from .manifest import Manifest
from .pg_archive import Consumers, schema_digest
from .pg_client import PgClient
from .store import BackupStore
from .verify import check_free_space, gunzip_checked

__all__ = ["SCHEMA_OPTS", "PgRestorer"]

log = logging.getLogger("voyagr_wsgi.backups")

LOCK_TIMEOUT = "120s"
SCHEMA_OPTS = ("--schema-only", "--no-owner", "--no-privileges")


class PgRestorer:
    kind = "postgresql"

    def __init__(self, client: PgClient, local: LocalStore) -> None:
        self.client = client
        self.local = local

    def _checkers(self) -> dict[str, list[str]]:
        restore = self.client.binary("pg_restore")
        return {
            "full read": [restore, "--file=/dev/null"],
            "list": [restore, "--list"],
            "schema": [restore, *SCHEMA_OPTS, "--file=-"],
        }

    # -- verify, compare, restore --------------------------------------------------------
    def _fetch(self, store: BackupStore, manifest: Manifest) -> tuple[str, str]:
        """``(path of the .gz, download path to remove)``; refuses another engine's backup."""
        if manifest.engine != self.kind:
            raise BackupIncompatible(
                f"backup {manifest.id} is a {manifest.engine} backup, not PostgreSQL's"
            )
        os.makedirs(self.local.staging, mode=0o700, exist_ok=True)
        download = os.path.join(self.local.staging, f"{manifest.id}.db.gz.download")
        if getattr(store, "name", "") != "local":
            check_free_space(self.local.staging, manifest.gz_bytes, f"backup {manifest.id}")
        return store.fetch(manifest, download), download

    def _read_checked(
        self, source: str, manifest: Manifest, progress: Callable[[int], None] | None
    ) -> dict[str, str]:
        with self.client.env() as env:
            readers = Consumers(self._checkers(), env, redact=self.client.redact)
            try:
                gunzip_checked(source, manifest, readers.feed, progress)
            except BaseException:
                readers.kill()
                raise
            return readers.finish(what=f"backup {manifest.id}")

    def verify(self, store: BackupStore, manifest: Manifest) -> None:
        """Size, SHA-256s, gzip stream, and ``pg_restore`` reading the whole archive."""
        source, download = self._fetch(store, manifest)
        try:
            self._read_checked(source, manifest, None)
        finally:
            remove_quietly(download)

    def live_schema(self) -> str:
        """:func:`schema_digest` of the live database's schema-only dump."""
        sql = self.client.run(
            [self.client.binary("pg_dump"), *SCHEMA_OPTS, "-w", f"--dbname={self.client.url}"],
            what="pg_dump --schema-only of the live database",
        )
        return schema_digest(sql)

    def check_compatible(self, manifest: Manifest) -> None:
        if manifest.engine != self.kind:
            raise BackupIncompatible(
                f"backup {manifest.id} is a {manifest.engine} backup, not PostgreSQL's"
            )
        try:
            live = self.live_schema()
        except BackupError as exc:
            log.warning("live database unreadable (%s): schema not compared", exc)
            return
        if live != manifest.schema_sha256:
            raise BackupIncompatible(
                f"backup {manifest.id} has schema {manifest.schema_sha256[:12]}, the live "
                f"database schema {live[:12]} {BackupIncompatible.FORCE_HINT}"
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
        """Verify, take the safety backup, ``pg_restore`` in one transaction."""
        if offline:
            raise BackupError(
                "--offline is for a SQLite file; a PostgreSQL restore runs against the server"
            )
        source, download = self._fetch(store, manifest)
        try:
            checked = self._read_checked(source, manifest, progress)
            kept = safety()
            self._pg_restore(source, manifest)
            if not force and self.live_schema() != schema_digest(checked["schema"]):
                self._rollback(kept, manifest)
        finally:
            remove_quietly(download)
        log.info("restored %s (safety backup %s)", manifest.id, kept.id)
        return {"restored": manifest.id, "safety_backup": kept.id}

    def _pg_restore(self, source: str, manifest: Manifest) -> None:
        argv = [
            self.client.binary("pg_restore"),
            "--clean",
            "--if-exists",
            "--single-transaction",
            "--exit-on-error",
            "-w",
            f"--dbname={self.client.url}",
        ]
        options = f"{os.environ.get('PGOPTIONS', '')} -c lock_timeout={LOCK_TIMEOUT}".strip()
        with self.client.env(PGOPTIONS=options) as env:
            restore = Consumers({"restore": argv}, env, redact=self.client.redact)
            try:
                gunzip_checked(source, manifest, restore.feed)
            except BaseException:
                restore.kill()  # before its input ends: the transaction never commits
                raise
            restore.finish(
                error=BackupError,
                what=f"backup {manifest.id} into the live database (one transaction: "
                "nothing was changed)",
            )

    def _rollback(self, kept: Manifest, manifest: Manifest) -> None:
        try:
            self._pg_restore(self.local.data_path(kept), kept)
        except BackupError as exc:
            raise BackupError(
                f"restore of {manifest.id}: the live schema differs from the backup's after "
                f"the restore, and putting the safety backup {kept.id} back failed: {exc}"
            ) from exc
        raise BackupVerificationError(
            f"restore of {manifest.id}: the live schema differs from the backup's after the "
            f"restore; rolled back to the safety backup {kept.id}"
        )
