"""The catalogue: which backups of this set exist in which store, pins, and retention.

The stores are the local folder (always) and S3 when ``S3_BACKUP_ENABLED`` is on. The S3
store's module (and boto3 with it) is imported when the catalogue is built, so a missing
extra is a :class:`~voyagr_wsgi.ConfigurationError` at build time; the boto3 client itself
is made on first use (:func:`s3_opener`).

Every listing here is the set's own (``BACKUP_SET``, by default the database file's name):
another database's backups sharing the folder or S3 prefix are never pruned, restored,
pinned or counted. Retention applies :func:`~voyagr_wsgi.backups.retention.plan` (pure) to
each store's listing and refuses an incomplete one; a store that fails is recorded in the
status and the others still run.

Usage (the manager holds the backup lock around what changes a store)::

    catalogue = Catalogue(local, open_remote=s3_opener(settings), set_name="app",
                          policy=policy_of(settings), status=status_file)
    catalogue.list()                      # {"local": Listing, "s3": Listing}
    store, manifest = catalogue.find("20260102T030405Z-0a1b2c3d")
    catalogue.pin("20260102T030405Z-0a1b2c3d", True)
    catalogue.prune()                     # {"local": Plan, "s3": Plan}
"""

from __future__ import annotations

import builtins
import logging
from collections.abc import Callable

from ..errors import BackupError, BackupNotFound, ConfigurationError, StorageError
from .config import BackupSettings
from .ids import parse_id
from .local import LocalStore
from .manifest import Manifest
from .retention import Plan, Policy, RetentionError, plan
from .status import StatusFile
from .store import BackupStore, Listing

__all__ = ["Catalogue", "policy_of", "s3_opener"]

log = logging.getLogger("voyagr_wsgi.backups")

S3_EXTRA = "S3_BACKUP_ENABLED=true needs: pip install 'voyagr-wsgi[s3]'"
_BOTO = ("boto3", "botocore", "s3transfer")

Opener = Callable[[], BackupStore]


def s3_opener(settings: BackupSettings) -> Opener | None:
    """None when S3 is off; else a function making the S3 store (boto3 imported now)."""
    if not settings.s3_enabled:
        return None
    try:
        from .s3 import S3Store
    except ImportError as exc:
        if (exc.name or "").partition(".")[0] not in _BOTO:
            raise
        raise ConfigurationError(S3_EXTRA) from exc
    return lambda: S3Store.from_settings(settings)


def policy_of(settings: BackupSettings) -> Policy:
    return Policy(
        settings.retention_daily,
        settings.retention_weekly,
        settings.retention_monthly,
        settings.retention_min_keep,
        settings.retention_tz(),
    )


class Catalogue:
    def __init__(
        self,
        local: LocalStore,
        remote: BackupStore | None = None,
        *,
        open_remote: Opener | None = None,
        set_name: str,
        policy: Policy,
        status: StatusFile,
    ) -> None:
        self.local = local
        self._remote = remote
        self._open = open_remote  # used when ``remote`` is None
        self.set_name = set_name
        self.policy = policy
        self.status = status

    @property
    def remote(self) -> BackupStore | None:
        """The S3 store (made on first use), or None when there is none."""
        if self._remote is None and self._open is not None:
            self._remote = self._open()
        return self._remote

    def stores(self) -> list[BackupStore]:
        remote = self.remote
        return [self.local] if remote is None else [self.local, remote]

    # -- listing -------------------------------------------------------------------------
    def listing(self, store: BackupStore) -> Listing:
        """``store``'s listing, this set's backups only."""
        listing = store.list()
        own = tuple(m for m in listing.manifests if m.backup_set in ("", self.set_name))
        return Listing(own, listing.problems)

    def list(self) -> dict[str, Listing]:
        return {store.name: self.listing(store) for store in self.stores()}

    def holders(self, name: object) -> builtins.list[tuple[BackupStore, Manifest]]:
        """Every store holding backup ``name`` (validated first), local first.

        :class:`~voyagr_wsgi.errors.InvalidBackupId` for a malformed name,
        :class:`~voyagr_wsgi.errors.BackupNotFound` when no store has it.
        """
        backup_id = parse_id(name)
        found = []
        for store in self.stores():
            manifest = self.listing(store).find(backup_id)
            if manifest is not None:
                found.append((store, manifest))
        if not found:
            raise BackupNotFound(f"no committed backup of set {self.set_name!r} has id {backup_id}")
        return found

    def find(self, name: object) -> tuple[BackupStore, Manifest]:
        """The first store holding backup ``name`` and its manifest there."""
        return self.holders(name)[0]

    def pin(self, name: object, pinned: bool = True) -> Manifest:
        """Pin (retention never deletes it) or unpin backup ``name`` in every store."""
        held = self.holders(name)
        for store, manifest in held:
            if manifest.pinned != pinned:
                store.write_manifest(manifest.with_(pinned=pinned))
        changed = held[-1][1].with_(pinned=pinned)
        log.info("backup %s %s", changed.id, "pinned" if pinned else "unpinned")
        return changed

    # -- retention -----------------------------------------------------------------------
    def plan(self, store: BackupStore, *, now: float) -> Plan[Manifest]:
        """What retention keeps and deletes in ``store`` (RetentionError if incomplete)."""
        listing = self.listing(store)
        if not listing.complete:
            raise RetentionError(
                f"{store.name}: incomplete listing, retention aborted: {listing.problems[0]}"
            )
        return plan(listing.manifests, self.policy, now=now)

    def plans(self, *, now: float) -> dict[str, Plan[Manifest]]:
        """The dry run: every store's plan, nothing deleted."""
        return {store.name: self.plan(store, now=now) for store in self.stores()}

    def prune(self, *, now: float, remote: bool = True) -> dict[str, Plan[Manifest]]:
        """Apply retention to each store (the local one only unless ``remote``)."""
        done: dict[str, Plan[Manifest]] = {}
        for store in self.stores() if remote else [self.local]:
            try:
                done[store.name] = result = self.plan(store, now=now)
                for manifest in result.delete:
                    store.delete(manifest)
                    log.info("retention: deleted %s from %s", manifest.id, store.name)
                collect = getattr(store, "collect_garbage", None)
                if collect is not None:
                    for key in collect(now=now):
                        log.info("removed %s left by an interrupted run", key)
            except (BackupError, StorageError) as exc:
                self.status.record(error=f"retention on {store.name} failed: {exc}")
                log.warning("retention on %s skipped: %s", store.name, exc)
        return done
