"""Atomic JSON state files shared between the worker processes of one instance.

The per-worker metrics snapshots, the metrics archive and the alert state are small JSON
documents that one process writes and any process reads. :func:`write_json` writes a temp
file in the same folder and renames it into place, so a reader sees the old document or the
whole new one, and removes the temp file when the write fails (a full disk leaves nothing
behind). No fsync: these files are rebuilt within seconds after a crash. Backup manifests,
which must survive one, use ``backups._fs.atomic_write`` instead.
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any

__all__ = ["write_json"]


def write_json(path: str, doc: dict[str, Any]) -> None:
    """Replace ``path`` with ``doc`` as compact JSON, atomically (creates the folder)."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(doc, handle, separators=(",", ":"), default=str)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
