"""The store contract every backup destination implements (local folder, S3).

A store holds ``<id>.db.gz`` data objects and ``<id>.json`` manifests. Its listing trusts
manifests only and reports, rather than hides, anything it could not read: retention refuses
to delete from an incomplete listing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from .manifest import Manifest

__all__ = ["BackupStore", "Listing"]


@dataclass(frozen=True, slots=True)
class Listing:
    manifests: tuple[Manifest, ...] = ()
    problems: tuple[str, ...] = field(default=())  # unreadable manifests, listing errors

    @property
    def complete(self) -> bool:
        return not self.problems

    def find(self, backup_id: str) -> Manifest | None:
        for manifest in self.manifests:
            if manifest.id == backup_id:
                return manifest
        return None


class BackupStore(Protocol):
    """Where committed backups live."""

    name: str

    def list(self) -> Listing:
        """Every committed backup (sorted oldest first) and the problems met while listing."""
        ...

    def put(self, manifest: Manifest, gz_path: str) -> Manifest:
        """Store the data then the manifest (the commit marker); the manifest as stored."""
        ...

    def write_manifest(self, manifest: Manifest) -> None:
        """Replace a committed backup's manifest (to pin or unpin it); the data is untouched."""
        ...

    def fetch(self, manifest: Manifest, dest_path: str) -> str:
        """A local path holding the data object (``dest_path`` if it had to be downloaded)."""
        ...

    def delete(self, manifest: Manifest) -> None:
        """Delete the manifest first, then the data."""
        ...
