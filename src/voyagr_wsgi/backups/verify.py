"""Verify a stored backup completely: what ``backup verify ID`` and every restore run first.

:func:`fetch_verified` gets the data object from its store (S3 downloads it into
``.staging/``) and checks, in one streaming pass and before anything trusts it:

1. the object's size and SHA-256 match the manifest, the gzip stream is complete (CRC32
   and length trailer checked by zlib), the decompressed bytes match ``sha256_db``;
2. ``integrity_check`` and ``foreign_key_check`` pass on the decompressed copy.

Decompression is bounded: the output may never exceed the manifest's ``db_bytes`` (each
``decompress`` call is capped at the bytes still allowed, plus one to notice an excess), so a
``.gz`` replaced by a gzip bomb of the recorded compressed size is refused after writing at
most the recorded size, not when the volume is full. Before anything is fetched,
:func:`check_free_space` compares the folder's free space (``shutil.disk_usage``) with what
the copy needs (the decompressed size, plus the download for a remote store, plus a margin
of 5 % + 1 MiB) and refuses with a clear :class:`~voyagr_wsgi.errors.BackupError`.
``progress(done)`` (optional) is called with the decompressed bytes written so far.

It returns the path of that decompressed copy (the caller removes it) or raises
:class:`~voyagr_wsgi.errors.BackupVerificationError` naming the first check that failed.
A full disk is reported as such. The backup taken by ``create`` was checked the same way
before it was kept (``snapshot.compress_and_verify``); this is the check of what a store
gives back, possibly months later.

Usage::

    copy = fetch_verified(store, manifest, "/data/backups/.staging")
"""

from __future__ import annotations

import hashlib
import os
import shutil
import zlib
from collections.abc import Callable

from ..errors import BackupError, BackupVerificationError
from ._fs import nospace_error, remove_quietly
from .manifest import Manifest
from .snapshot import CHUNK, check_database
from .store import BackupStore

__all__ = ["check_free_space", "fetch_verified", "gunzip_checked", "space_needed"]

MARGIN_BYTES = 1024 * 1024
MARGIN_RATIO = 0.05


def space_needed(nbytes: int) -> int:
    """``nbytes`` plus the safety margin (5 % + 1 MiB)."""
    return nbytes + int(nbytes * MARGIN_RATIO) + MARGIN_BYTES


def check_free_space(folder: str, nbytes: int, what: str) -> None:
    """:class:`BackupError` unless ``folder``'s volume has ``space_needed(nbytes)`` free."""
    need = space_needed(nbytes)
    free = shutil.disk_usage(folder).free
    if free < need:
        raise BackupError(
            f"not enough free space in {folder} for {what}: {nbytes} bytes needed "
            f"(+ margin: {need}), {free} free; nothing was changed"
        )


def fetch_verified(
    store: BackupStore,
    manifest: Manifest,
    staging_dir: str,
    *,
    progress: Callable[[int], None] | None = None,
) -> str:
    """A verified, decompressed copy of ``manifest`` in ``staging_dir`` (caller removes it)."""
    os.makedirs(staging_dir, mode=0o700, exist_ok=True)
    remote = getattr(store, "name", "") != "local"
    check_free_space(
        staging_dir,
        manifest.db_bytes + (manifest.gz_bytes if remote else 0),
        f"the decompressed copy of backup {manifest.id}",
    )
    download = os.path.join(staging_dir, f"{manifest.id}.db.gz.download")
    target = os.path.join(staging_dir, f"{manifest.id}.restore.db")
    remove_quietly(target)
    try:
        source = store.fetch(manifest, download)
        _gunzip_checked(source, target, manifest, progress)
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


def _gunzip_checked(
    source: str, target: str, manifest: Manifest, progress: Callable[[int], None] | None
) -> None:
    with open(target, "wb") as fout:
        gunzip_checked(source, manifest, fout.write, progress)
        fout.flush()
        os.fsync(fout.fileno())


def gunzip_checked(
    source: str,
    manifest: Manifest,
    write: Callable[[bytes], object],
    progress: Callable[[int], None] | None = None,
) -> None:
    """Stream ``source`` decompressed into ``write``, checking size, both SHA-256s and the
    gzip stream against ``manifest``; :class:`BackupVerificationError` at the end if any
    failed (``write`` may have had the bytes by then: consumers must wait for the verdict)."""
    size = os.path.getsize(source)
    if size != manifest.gz_bytes:
        raise BackupVerificationError(
            f"backup {manifest.id}: stored size {size} != manifest {manifest.gz_bytes}"
        )
    sha_gz, sha_db = hashlib.sha256(), hashlib.sha256()
    inflate = zlib.decompressobj(31)
    raw = 0
    broken: zlib.error | None = None
    overflow = False  # the output went past the recorded size: stopped there
    with open(source, "rb", buffering=0) as fin:
        while chunk := fin.read(CHUNK):
            sha_gz.update(chunk)
            if broken is not None or overflow:
                continue  # keep hashing (compressed bytes only): the clearer report
            try:
                data = inflate.decompress(chunk, min(CHUNK, manifest.db_bytes - raw + 1))
                while data:
                    raw += len(data)
                    if raw > manifest.db_bytes:
                        overflow = True  # nothing more is written
                        break
                    sha_db.update(data)
                    write(data)
                    limit = min(CHUNK, manifest.db_bytes - raw + 1)
                    data = inflate.decompress(inflate.unconsumed_tail, limit)
                if progress is not None:
                    progress(min(raw, manifest.db_bytes))
            except zlib.error as exc:
                broken = exc
    expands = (
        f"the decompressed data expands beyond the recorded {manifest.db_bytes} bytes "
        "(refused there, nothing more written)"
    )
    if sha_gz.hexdigest() != manifest.sha256_gz:
        also = f"; {expands}" if overflow else ""
        raise BackupVerificationError(
            f"backup {manifest.id}: SHA-256 of the .gz does not match{also}"
        )
    if overflow:
        raise BackupVerificationError(f"backup {manifest.id}: {expands}")
    if broken is not None:
        raise BackupVerificationError(f"backup {manifest.id}: corrupt gzip stream: {broken}")
    if not inflate.eof or inflate.unused_data:
        raise BackupVerificationError(f"backup {manifest.id}: truncated or trailing gzip data")
    if raw != manifest.db_bytes or sha_db.hexdigest() != manifest.sha256_db:
        raise BackupVerificationError(f"backup {manifest.id}: decompressed data does not match")
