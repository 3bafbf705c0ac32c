"""The PostgreSQL engine (``DATABASE_URL``): ``pg_dump -Fc`` in, ``pg_restore`` out, no driver.

**Backup** (:meth:`PostgresEngine.capture`):

1. ``pg_dump --version`` against the server's ``server_version_num``: a client older than
   the server is refused with both versions named (:mod:`.pg_client`);
2. ``pg_dump --format=custom --compress=0`` (one consistent snapshot by itself; compressed
   once, by the shared stream) writes to a pipe; its stdout is read in 1 MiB chunks
   straight into the shared gzip + SHA-256 stream
   (:func:`~voyagr_wsgi.backups.snapshot.gzip_chunks`) and, at the same time, into the
   checking ``pg_restore`` children (:mod:`.pg_archive`): one reads the whole archive
   (``--file=/dev/null``: every data block parsed), one lists its table of contents, one
   prints its schema (hashed into ``schema_sha256``). The raw archive never touches the disk;
3. with ``BACKUP_VERIFY_RESTORE=true`` a fourth child restores the stream into a scratch
   database (``voyagr_verify_<random>``, made with ``CREATE DATABASE``: the role needs
   ``CREATEDB``), then the rows of each table are counted into the manifest's ``row_counts``
   (every table of the archive's table of contents must be there);
   the scratch database is dropped afterwards whatever happened;
4. a non-zero exit or any stderr from ``pg_dump``, or a failed check: the temp file is removed,
   nothing is kept, :class:`~voyagr_wsgi.errors.BackupError` (or
   ``BackupVerificationError``) with the tools' redacted messages. Else the ``.db.gz`` is
   renamed into place and the manifest (``engine: postgresql``) is written last, as for SQLite.

Verifying and restoring (the schema comparison behind a 409 included) are
:class:`~voyagr_wsgi.backups.pg_restore.PgRestorer`'s, which this engine extends.
"""

from __future__ import annotations

import logging
import os
import secrets
import subprocess
import threading
from collections.abc import Iterator

from ..errors import BackupError, BackupVerificationError
from ._fs import fsync_dir, nospace_error, remove_quietly
from .config import BackupSettings
from .engine import Captured
from .local import LocalStore
from .pg_archive import Consumers, schema_digest, tables_of
from .pg_client import PgClient
from .pg_restore import PgRestorer
from .snapshot import CHUNK, Progress, Stored, gzip_chunks

__all__ = ["PostgresEngine"]

log = logging.getLogger("voyagr_wsgi.backups")

COUNT_SQL = """SELECT n.nspname || '.' || c.relname || '=' ||
  (xpath('/row/c/text()', query_to_xml(format('SELECT count(*) AS c FROM %I.%I',
    n.nspname, c.relname), false, true, '')))[1]::text
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg_toast%' ORDER BY 1"""


class PostgresEngine(PgRestorer):
    def __init__(self, settings: BackupSettings, local: LocalStore) -> None:
        if settings.database_url is None:
            raise BackupError("DATABASE_URL is not set")
        client = PgClient(settings.database_url, staging=local.staging, bin_dir=settings.pg_bin_dir)
        super().__init__(client, local)
        self.verify_restore = settings.verify_restore

    def __repr__(self) -> str:
        return f"PostgresEngine({self.client.url!r})"

    def size(self) -> int:
        """``pg_database_size``: the files on the server (the archive is smaller)."""
        out = self.client.psql(
            "SELECT pg_database_size(current_database())", what=f"connecting to {self.client.url}"
        )
        return int(out.strip() or 0)

    # -- backup --------------------------------------------------------------------------
    def capture(self, backup_id: str, local: LocalStore, progress: Progress | None) -> Captured:
        _, server_num = self.client.check_versions()
        local.ensure()
        final = os.path.join(local.directory, f"{backup_id}.db.gz")
        tmp = os.path.join(local.directory, f".{backup_id}.db.gz.partial")
        scratch = f"voyagr_verify_{secrets.token_hex(6)}" if self.verify_restore else ""
        try:
            if scratch:
                self.client.psql(f'CREATE DATABASE "{scratch}"', what="creating the scratch DB")
            stored, outputs = self._dump(tmp, final, scratch, progress)
            counts = self._count_rows(scratch) if scratch else None
            missing = set(tables_of(outputs["list"])) - set(counts or {})
            if counts is not None and missing:
                raise BackupVerificationError(
                    f"the scratch restore of {backup_id} lacks tables {sorted(missing)}; "
                    "nothing was kept"
                )
        except BaseException as exc:
            remove_quietly(tmp)
            if isinstance(exc, OSError):
                raise nospace_error(exc, local.directory) or BackupError(f"{exc}") from exc
            raise
        finally:
            if scratch:
                self._drop(scratch)
        os.replace(tmp, final)
        fsync_dir(local.directory)
        return Captured(
            stored,
            schema_sha256=schema_digest(outputs["schema"]),
            engine=self.kind,
            server_version=str(server_num),
            row_counts=counts,
        )

    def _dump(
        self, tmp: str, final: str, scratch: str, progress: Progress | None
    ) -> tuple[Stored, dict[str, str]]:
        commands = self._checkers()
        if scratch:
            commands["scratch restore"] = [
                self.client.binary("pg_restore"),
                "--no-owner",
                "--no-privileges",
                "--single-transaction",
                "--exit-on-error",
                "-w",
                f"--dbname={self.client.url_for(scratch)}",
            ]
        dump_bin = self.client.binary("pg_dump")
        # uncompressed: the shared gzip stream compresses once (pg_dump's own zlib, then
        # gzip over incompressible blocks, cost ~1.3x the time for a 5 % smaller object)
        argv = [dump_bin, "--format=custom", "--compress=0", "-w", f"--dbname={self.client.url}"]
        with self.client.env() as env:
            readers = Consumers(commands, env, redact=self.client.redact)
            try:
                dump = subprocess.Popen(
                    argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
                )
            except OSError as exc:
                readers.kill()
                raise BackupError(f"cannot start {argv[0]}: {exc}") from exc
            errors: list[bytes] = []
            drain = threading.Thread(
                target=lambda: errors.append(dump.stderr.read() if dump.stderr else b""),
                name="voyagr-pg-dump-stderr",
                daemon=True,
            )
            drain.start()
            try:
                stored = gzip_chunks(self._chunks(dump, readers), tmp, progress)
                code = dump.wait()
                drain.join()
                stderr = self.client.redact(b"".join(errors).decode("utf-8", "replace"))
                if code != 0 or stderr:
                    raise BackupError(
                        f"pg_dump failed (exit {code}): {stderr or 'no message'}; nothing was kept"
                    )
                outputs = readers.finish(what=f"the new backup (from {self.client.url})")
            except BaseException:
                if dump.poll() is None:
                    dump.kill()
                dump.wait()
                readers.kill()
                raise
            finally:
                drain.join()
                for pipe in (dump.stdout, dump.stderr):
                    if pipe is not None:
                        pipe.close()
        return Stored(final, *stored), outputs

    @staticmethod
    def _chunks(dump: subprocess.Popen[bytes], readers: Consumers) -> Iterator[bytes]:
        if dump.stdout is None:  # Popen(stdout=PIPE) always sets it
            return
        read = dump.stdout.read
        while chunk := read(CHUNK):
            readers.feed(chunk)
            yield chunk

    def _count_rows(self, scratch: str) -> dict[str, int]:
        out = self.client.psql(COUNT_SQL, url=self.client.url_for(scratch), what="counting rows")
        counts: dict[str, int] = {}
        for line in out.splitlines():
            name, _, number = line.rpartition("=")
            if name and number.isdigit():
                counts[name] = int(number)
        return counts

    def _drop(self, scratch: str) -> None:
        try:
            self.client.psql(
                f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)', what="dropping the scratch DB"
            )
        except BackupError as exc:
            log.error("scratch database %s was not dropped: %s", scratch, exc)
