"""Restore: verify a stored backup completely, then swap it in through SQLite itself.

Nothing touches the live database until the candidate passed every check:

1. the data object's size and SHA-256 match the manifest, the gzip stream is complete (CRC32
   and length trailer checked by zlib), the decompressed bytes match ``sha256_db``;
2. ``integrity_check`` and ``foreign_key_check`` pass on the decompressed copy.

The swap (:func:`swap_in`) uses the backup API *into* the live database (what the sqlite3
shell's ``.restore`` does): SQLite takes the write lock, stays WAL-aware, and every connection
the running app holds sees the restored content on its next read transaction. Replacing the
file instead would be silently reverted by a stale ``-wal`` (reference P2). A WAL database
cannot take pages of another size, so a candidate whose page size differs is first rebuilt
with the live page size (``PRAGMA page_size`` + ``VACUUM`` on the staging copy).

:func:`replace_offline` is for a stopped app whose database cannot be opened any more: the old
files (with their ``-wal``/``-shm``/``-journal``) are moved into ``quarantine/``, never deleted.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import zlib
from collections.abc import Callable

from ..errors import BackupError, BackupVerificationError
from ._fs import fsync_dir, nospace_error, remove_quietly
from .manifest import Manifest
from .snapshot import CHUNK, check_database, connect_existing, db_facts, deadline
from .store import BackupStore

__all__ = ["fetch_verified", "replace_offline", "schema_of", "swap_in"]

SWAP_DEADLINE_S = 120.0


def fetch_verified(store: BackupStore, manifest: Manifest, staging_dir: str) -> str:
    """A verified, decompressed copy of ``manifest`` in ``staging_dir`` (caller removes it)."""
    os.makedirs(staging_dir, mode=0o700, exist_ok=True)
    download = os.path.join(staging_dir, f"{manifest.id}.db.gz.download")
    target = os.path.join(staging_dir, f"{manifest.id}.restore.db")
    remove_quietly(target)
    try:
        source = store.fetch(manifest, download)
        _gunzip_checked(source, target, manifest)
        problem = check_database(target)
        if problem is not None:
            raise BackupVerificationError(f"backup {manifest.id} failed {problem}")
    except BaseException as exc:
        remove_quietly(target)
        if isinstance(exc, OSError):
            raise nospace_error(exc, staging_dir) or BackupError(
                f"could not read backup {manifest.id}: {exc}"
            ) from exc
        raise
    finally:
        remove_quietly(download)
    return target


def _gunzip_checked(source: str, target: str, manifest: Manifest) -> None:
    size = os.path.getsize(source)
    if size != manifest.gz_bytes:
        raise BackupVerificationError(
            f"backup {manifest.id}: stored size {size} != manifest {manifest.gz_bytes}"
        )
    sha_gz, sha_db = hashlib.sha256(), hashlib.sha256()
    inflate = zlib.decompressobj(31)
    raw = 0
    broken: zlib.error | None = None
    with open(source, "rb", buffering=0) as fin, open(target, "wb") as fout:
        while chunk := fin.read(CHUNK):
            sha_gz.update(chunk)
            if broken is not None:
                continue  # keep hashing: a hash mismatch is the clearer report
            try:
                data = inflate.decompress(chunk, CHUNK)
                while data:
                    sha_db.update(data)
                    raw += len(data)
                    fout.write(data)
                    data = inflate.decompress(inflate.unconsumed_tail, CHUNK)
            except zlib.error as exc:
                broken = exc
        fout.flush()
        os.fsync(fout.fileno())
    if sha_gz.hexdigest() != manifest.sha256_gz:
        raise BackupVerificationError(f"backup {manifest.id}: SHA-256 of the .gz does not match")
    if broken is not None:
        raise BackupVerificationError(f"backup {manifest.id}: corrupt gzip stream: {broken}")
    if not inflate.eof or inflate.unused_data:
        raise BackupVerificationError(f"backup {manifest.id}: truncated or trailing gzip data")
    if raw != manifest.db_bytes or sha_db.hexdigest() != manifest.sha256_db:
        raise BackupVerificationError(f"backup {manifest.id}: decompressed data does not match")


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
    tmp = f"{live_path}.voyagr-restore"
    shutil.copyfile(candidate, tmp)
    with open(tmp, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, live_path)
    fsync_dir(os.path.dirname(os.path.abspath(live_path)))
    return moved
