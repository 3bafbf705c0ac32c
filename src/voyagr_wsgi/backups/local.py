"""The local backup folder (``BACKUP_DIR``): always on, the first store every backup reaches.

Layout::

    BACKUP_DIR/
      20260102T030405Z-0a1b2c3d.db.gz     data (committed by an atomic rename)
      20260102T030405Z-0a1b2c3d.json      manifest, written last = the commit marker
      .voyagr-backup.lock                 flock held by whoever backs up or restores
      .voyagr-backup-status.json          last success / failure, pending S3 uploads
      .staging/                           raw snapshots and downloads in progress
      quarantine/                         copies that failed verification, moved-aside DBs

Only names matching the id pattern are ever listed or deleted; other files are left alone.
"""

from __future__ import annotations

import builtins
import os
import re
import time

from ..errors import BackupError
from ._fs import atomic_write, durable_copy, fsync_dir, remove_quietly
from .ids import ID_RE
from .manifest import Manifest
from .store import Listing

__all__ = ["LocalStore"]

_DATA = re.compile(r"\A([0-9]{8}T[0-9]{6}Z-[0-9a-f]{8})\.db\.gz\Z", re.ASCII)
_TEMP = re.compile(
    r"\A\.?[0-9]{8}T[0-9]{6}Z-[0-9a-f]{8}\.(db\.gz\.partial|db\.partial|db\.partial-journal"
    r"|restore\.db|restore\.db-journal|db\.gz\.download|json\.\d+\.tmp)\Z"
    r"|\A\.[0-9]{8}T[0-9]{6}Z-[0-9a-f]{8}\.json\.\d+\.tmp\Z",
    re.ASCII,
)


class LocalStore:
    """Backups in a folder on this machine."""

    name = "local"

    def __init__(self, directory: str) -> None:
        self.directory = os.path.abspath(directory)
        self.staging = os.path.join(self.directory, ".staging")
        self.quarantine = os.path.join(self.directory, "quarantine")

    def ensure(self) -> None:
        os.makedirs(self.directory, mode=0o700, exist_ok=True)
        os.makedirs(self.staging, mode=0o700, exist_ok=True)

    def data_path(self, manifest: Manifest) -> str:
        return os.path.join(self.directory, manifest.data_name)

    def list(self) -> Listing:
        try:
            names = sorted(os.listdir(self.directory))
        except FileNotFoundError:
            return Listing()
        except OSError as exc:
            return Listing((), (f"local: cannot list {self.directory}: {exc}",))
        found: list[Manifest] = []
        problems: list[str] = []
        for name in names:
            stem, ext = name[:-5], name[-5:]
            if ext != ".json" or ID_RE.match(stem) is None:
                continue
            try:
                with open(os.path.join(self.directory, name), "rb") as handle:
                    manifest = Manifest.from_json(handle.read(), expected_id=stem)
            except (OSError, BackupError) as exc:
                problems.append(f"local: {name}: {exc}")
                continue
            if not os.path.exists(self.data_path(manifest)):
                problems.append(f"local: {name}: data file {manifest.data_name} is missing")
                continue
            found.append(manifest)
        found.sort(key=lambda m: (m.created_ts, m.id))
        return Listing(tuple(found), tuple(problems))

    def put(self, manifest: Manifest, gz_path: str) -> Manifest:
        target = self.data_path(manifest)
        if os.path.abspath(gz_path) != target:
            tmp = os.path.join(self.directory, f".{manifest.id}.db.gz.partial")
            durable_copy(gz_path, target, tmp)
        stored = manifest.with_(encryption="none")
        atomic_write(os.path.join(self.directory, manifest.manifest_name), stored.to_json())
        return stored

    def write_manifest(self, manifest: Manifest) -> None:
        atomic_write(os.path.join(self.directory, manifest.manifest_name), manifest.to_json())

    def fetch(self, manifest: Manifest, dest_path: str) -> str:
        return self.data_path(manifest)

    def delete(self, manifest: Manifest) -> None:
        remove_quietly(os.path.join(self.directory, manifest.manifest_name))
        fsync_dir(self.directory)
        remove_quietly(self.data_path(manifest))

    def clean_leftovers(
        self, *, orphan_age_s: float = 0.0, now: float | None = None
    ) -> builtins.list[str]:
        """Remove temp files of interrupted runs and data files that never got a manifest.

        Call only while holding the backup lock (no run of this host is in progress).
        """
        removed: builtins.list[str] = []
        now = time.time() if now is None else now
        for folder in (self.directory, self.staging):
            try:
                names = os.listdir(folder)
            except FileNotFoundError:
                continue
            for name in names:
                path = os.path.join(folder, name)
                orphan = _DATA.match(name)
                if orphan and folder == self.directory:
                    manifest = os.path.join(folder, f"{orphan.group(1)}.json")
                    old = now - os.path.getmtime(path) >= orphan_age_s
                    if os.path.exists(manifest) or not old:
                        continue
                elif not _TEMP.match(name):
                    continue
                remove_quietly(path)
                removed.append(path)
        return removed
