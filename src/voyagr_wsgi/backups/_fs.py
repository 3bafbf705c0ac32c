"""Durable file operations: temp file + fsync + atomic rename + fsync of the folder."""

from __future__ import annotations

import errno
import os
import shutil

from ..errors import BackupError

__all__ = ["atomic_write", "durable_copy", "fsync_dir", "nospace_error", "remove_quietly"]


def fsync_dir(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` so a reader sees the old file or the whole new one."""
    directory = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        remove_quietly(tmp)
        raise
    fsync_dir(directory)


def durable_copy(source: str, target: str, tmp: str) -> None:
    """Copy ``source`` to ``target`` through ``tmp`` (same folder): fsync, rename, fsync."""
    try:
        shutil.copyfile(source, tmp)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        remove_quietly(tmp)
        raise
    fsync_dir(os.path.dirname(os.path.abspath(target)))


def remove_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def nospace_error(exc: BaseException, where: str) -> BackupError | None:
    """A clear :class:`BackupError` when ``exc`` means the disk is full, else None."""
    text = str(exc).lower()
    if (isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)) or (
        "disk is full" in text or "file too large" in text
    ):
        return BackupError(f"no space left in {where}: {exc}; nothing was kept")
    return None
