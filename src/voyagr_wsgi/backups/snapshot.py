"""Take a snapshot through SQLite, verify it, and stream it once through gzip and SHA-256.

Why this way:

- the live database is only ever opened *by SQLite* (``mode=rw`` so a wrong path is an error,
  not a new empty database) and copied with the online backup API in one step
  (``src.backup(dst, pages=-1)``), one consistent read transaction: every row committed before
  the backup started is in the copy, whatever writers do meanwhile. The live file is never
  opened, hashed or copied with plain file I/O (that would drop SQLite's POSIX locks);
- the copy is switched to ``journal_mode=DELETE`` (one self-contained file), then
  ``PRAGMA integrity_check`` and ``foreign_key_check`` run on it *while* it is being compressed
  (in a second thread; SQLite, zlib and hashlib release the GIL). Nothing is kept unless both
  pass: a failing copy is moved to ``quarantine/`` and reported;
- the copy is read once in 1 MiB chunks: SHA-256 of the raw bytes, gzip (level 6,
  ``mtime=0`` through zlib's own gzip wrapper, so equal databases give equal bytes), SHA-256
  of the compressed bytes, written to a temp file, fsync, atomic rename, fsync of the folder.
  Memory stays O(chunk) whatever the database size.

Usage (``create.Creator`` does this under the backup lock)::

    snap = take_snapshot("/data/app.db", "/data/backups/.staging", backup_id)
    stored = compress_and_verify(snap, "/data/backups", quarantine_dir=...)
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import threading
import time
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote

from ..errors import BackupError, BackupVerificationError
from ._fs import fsync_dir, nospace_error, remove_quietly

__all__ = [
    "CHUNK",
    "Snapshot",
    "Stored",
    "compress_and_verify",
    "db_facts",
    "gzip_chunks",
    "take_snapshot",
]

CHUNK = 1024 * 1024
GZIP_LEVEL = 6
Progress = Callable[[int], None]


@dataclass(frozen=True, slots=True)
class Snapshot:
    backup_id: str
    path: str  # the raw copy in the staging folder
    page_size: int
    user_version: int
    schema_sha256: str
    sqlite_version: str


@dataclass(frozen=True, slots=True)
class Stored:
    path: str  # <dir>/<id>.db.gz, committed by rename (the manifest is the caller's job)
    db_bytes: int
    gz_bytes: int
    sha256_db: str
    sha256_gz: str


def connect_existing(
    path: str, *, timeout_s: float = 30.0, mode: Literal["rw", "ro"] = "rw"
) -> sqlite3.Connection:
    """A connection to an existing database (``mode=rw`` or ``ro``: a missing file is an
    error, never a new empty database)."""
    uri = f"file:{quote(os.path.abspath(path))}?mode={mode}"
    return sqlite3.connect(uri, uri=True, timeout=timeout_s, check_same_thread=False)


def db_facts(conn: sqlite3.Connection) -> tuple[int, int, str]:
    """``(page_size, user_version, schema_sha256)`` of an open database."""
    page_size = int(conn.execute("PRAGMA page_size").fetchone()[0])
    user_version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    digest = hashlib.sha256()
    rows = conn.execute(
        "SELECT type, name, tbl_name, coalesce(sql, '') FROM sqlite_master ORDER BY type, name"
    )
    for row in rows:
        digest.update("\x1f".join(row).encode() + b"\x1e")
    return page_size, user_version, digest.hexdigest()


def deadline(seconds: float) -> Callable[[int, int, int], None]:
    """A backup ``progress`` callback that aborts the copy after ``seconds``.

    CPython retries a busy backup step forever; writers can also restart it endlessly (a
    write by another connection restarts an online backup, see SQLite's backup API page).
    Raising here makes SQLite finish the backup object.
    """
    end = time.monotonic() + seconds

    def progress(status: int, remaining: int, total: int) -> None:
        if time.monotonic() > end:
            raise BackupError(f"the database stayed busy for {seconds:.0f} s; gave up")

    return progress


def live_size(db_path: str) -> int:
    """Bytes of the live database, asked of SQLite (page_count * page_size)."""
    conn = connect_existing(db_path)
    try:
        count = int(conn.execute("PRAGMA page_count").fetchone()[0])
        size = int(conn.execute("PRAGMA page_size").fetchone()[0])
    finally:
        conn.close()
    return count * size


def take_snapshot(
    db_path: str, staging_dir: str, backup_id: str, *, deadline_s: float = 600.0
) -> Snapshot:
    """Copy the live database into ``staging_dir/<id>.db.partial`` through SQLite."""
    if not os.path.exists(db_path):
        raise BackupError(f"DATABASE_PATH={db_path!r} does not exist")
    os.makedirs(staging_dir, mode=0o700, exist_ok=True)
    try:
        need = live_size(db_path)
    except sqlite3.Error as exc:
        raise BackupError(f"DATABASE_PATH={db_path!r} cannot be read by SQLite: {exc}") from exc
    free = shutil.disk_usage(staging_dir).free
    if free < need:
        raise BackupError(
            f"no space left in {staging_dir}: the snapshot needs {need} bytes, {free} free; "
            "nothing was kept"
        )
    path = os.path.join(staging_dir, f"{backup_id}.db.partial")
    src = connect_existing(db_path)
    try:
        dst = sqlite3.connect(path)
        try:
            src.backup(dst, pages=-1, progress=deadline(deadline_s))
            dst.execute("PRAGMA journal_mode=DELETE")
            page_size, user_version, schema = db_facts(dst)
        finally:
            dst.close()
    except (sqlite3.Error, OSError, BackupError) as exc:
        remove_quietly(path)
        remove_quietly(path + "-journal")
        if isinstance(exc, BackupError):
            raise
        raise nospace_error(exc, staging_dir) or BackupError(f"snapshot failed: {exc}") from exc
    finally:
        src.close()
    return Snapshot(backup_id, path, page_size, user_version, schema, sqlite3.sqlite_version)


def check_database(path: str) -> str | None:
    """None when ``integrity_check`` and ``foreign_key_check`` pass, else what failed."""
    try:
        conn = connect_existing(path, mode="ro")
        try:
            result = [r[0] for r in conn.execute("PRAGMA integrity_check(20)")]
            if result != ["ok"]:
                return "integrity_check: " + "; ".join(map(str, result))
            bad = conn.execute("PRAGMA foreign_key_check").fetchmany(5)
            if bad:
                return f"foreign_key_check: {len(bad)}+ violations, first {bad[0]!r}"
        finally:
            conn.close()
    except sqlite3.Error as exc:
        return f"not a readable SQLite database: {exc}"
    return None


def compress_and_verify(
    snap: Snapshot,
    target_dir: str,
    *,
    quarantine_dir: str,
    progress: Progress | None = None,
) -> Stored:
    """Verify ``snap`` (in a thread) while gzipping + hashing it into ``target_dir``."""
    verdict: list[str | None] = []
    checker = threading.Thread(
        target=lambda: verdict.append(check_database(snap.path)),
        name="voyagr-backup-verify",
        daemon=True,
    )
    checker.start()
    final = os.path.join(target_dir, f"{snap.backup_id}.db.gz")
    tmp = os.path.join(target_dir, f".{snap.backup_id}.db.gz.partial")
    try:
        db_bytes, gz_bytes, sha_db, sha_gz = _gzip_file(snap.path, tmp, progress)
    except BaseException as exc:
        checker.join()
        remove_quietly(tmp)
        if isinstance(exc, OSError):
            raise nospace_error(exc, target_dir) or BackupError(f"gzip failed: {exc}") from exc
        raise
    checker.join()
    problem = verdict[0] if verdict else "the verification thread died"
    if problem is not None:
        remove_quietly(tmp)
        os.makedirs(quarantine_dir, mode=0o700, exist_ok=True)
        bad = os.path.join(quarantine_dir, f"{snap.backup_id}.db.bad")
        os.replace(snap.path, bad)
        raise BackupVerificationError(f"backup {snap.backup_id} failed {problem}; kept as {bad}")
    os.replace(tmp, final)
    fsync_dir(target_dir)
    return Stored(final, db_bytes, gz_bytes, sha_db, sha_gz)


def _gzip_file(src: str, dst: str, progress: Progress | None) -> tuple[int, int, str, str]:
    with open(src, "rb", buffering=0) as fin:
        return gzip_chunks(iter(lambda: fin.read(CHUNK), b""), dst, progress)


def gzip_chunks(
    chunks: Iterable[bytes], dst: str, progress: Progress | None
) -> tuple[int, int, str, str]:
    """Stream ``chunks`` through SHA-256, gzip and SHA-256 into ``dst`` (0600, fsynced):
    ``(raw bytes, gz bytes, sha256 raw, sha256 gz)``. Every engine's snapshot ends here."""
    sha_db, sha_gz = hashlib.sha256(), hashlib.sha256()
    comp = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)  # 31 = gzip wrapper, mtime 0
    db_bytes = gz_bytes = 0
    with open(dst, "wb", buffering=0) as fout:
        os.fchmod(fout.fileno(), 0o600)

        def put(data: bytes) -> None:
            nonlocal gz_bytes
            if data:
                sha_gz.update(data)
                view = memoryview(data)
                while view:
                    view = view[fout.write(view) or 0 :]
                gz_bytes += len(data)

        for chunk in chunks:
            db_bytes += len(chunk)
            sha_db.update(chunk)
            put(comp.compress(chunk))
            if progress is not None:
                progress(db_bytes)
        put(comp.flush())
        os.fsync(fout.fileno())
    return db_bytes, gz_bytes, sha_db.hexdigest(), sha_gz.hexdigest()
