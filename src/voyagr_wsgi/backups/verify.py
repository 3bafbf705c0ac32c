"""Verify a stored backup completely: what ``backup verify ID`` and every restore run first.

:func:`fetch_verified` gets the data object from its store (S3 downloads it into
``.staging/``) and checks, in one streaming pass and before anything trusts it:

1. the object's size and SHA-256 match the manifest, the gzip stream is complete (CRC32
   and length trailer checked by zlib), the decompressed bytes match ``sha256_db``;
2. ``integrity_check`` and ``foreign_key_check`` pass on the decompressed copy.

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
import zlib

from ..errors import BackupError, BackupVerificationError
from ._fs import nospace_error, remove_quietly
from .manifest import Manifest
from .snapshot import CHUNK, check_database
from .store import BackupStore

__all__ = ["fetch_verified"]


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
