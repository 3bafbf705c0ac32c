"""``voyagr-wsgi backup``: the backup commands, reading the same settings as the app.

::

    voyagr-wsgi backup create                 take, verify and commit one backup now
    voyagr-wsgi backup list [--json]          committed backups in every store
    voyagr-wsgi backup verify ID              download/decompress/check one backup fully
    voyagr-wsgi backup restore ID [--offline] [--force]
                                              restore by id (--offline: the app is stopped,
                                              checked through STATE_DIR/services.lock; an
                                              unreadable live DB is moved to quarantine/;
                                              --force: even if the backup's schema or
                                              user_version differs from the live DB's)
    voyagr-wsgi backup prune [--dry-run]      apply retention (or show what it would do)
    voyagr-wsgi backup pin ID | unpin ID      keep one backup out of retention, or give it
                                              back (pre-restore safety backups are pinned)

``create`` and ``restore`` run here, in this process, whether or not the app runs (the admin
endpoints queue jobs for the app's services process instead); on a terminal they show their
progress on stderr (``backup: 42% (12.0/28.6 MiB)``, one line rewritten in place), and
nothing when stderr is not a TTY (logs and cron mails stay clean).

Every action takes ``--env-file FILE`` (a dotenv file read over the environment, as
``voyagr-wsgi check`` does). Exit status 0 on success, 1 on failure (with the reason on
stderr), 2 on bad usage, 75 (EX_TEMPFAIL) when another backup or restore holds the lock.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from .. import _cli
from ..errors import BackupError, ConfigurationError, StorageError
from ..services import FileLock
from .manager import BackupBusy, BackupManager

__all__ = ["main"]

EX_TEMPFAIL = 75


def _parser() -> argparse.ArgumentParser:
    parser = _cli.parser("voyagr-wsgi backup", __doc__)
    common = argparse.ArgumentParser(add_help=False)
    _cli.add_env_file(common)
    sub = parser.add_subparsers(dest="action", required=True)

    def action(name: str, text: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=text, description=text, parents=[common])

    action("create", "take a backup now")
    action("list", "list committed backups").add_argument(
        "--json", action="store_true", help="print the listing as JSON"
    )
    action("verify", "check one backup completely").add_argument("id")
    restore = action("restore", "restore a backup by id")
    restore.add_argument("id")
    restore.add_argument("--offline", action="store_true", help="the app is stopped")
    restore.add_argument(
        "--force", action="store_true", help="even if its schema differs from the live DB's"
    )
    for name, text in (("pin", "never delete this backup"), ("unpin", "let retention decide")):
        action(name, text).add_argument("id")
    action("prune", "apply the retention policy").add_argument(
        "--dry-run", action="store_true", help="only show the plan"
    )
    return parser


def _listing_json(manager: BackupManager) -> dict[str, Any]:
    return {
        store: {
            "backups": [m.as_dict() for m in reversed(listing.manifests)],
            "problems": list(listing.problems),
        }
        for store, listing in manager.list().items()
    }


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


class _Meter:
    """A percentage line on stderr while a backup or restore runs (TTY only)."""

    def __init__(self, label: str, total: int) -> None:
        self.label, self.total, self.shown = label, max(total, 1), False

    def __call__(self, done: int) -> None:
        pct = min(100, done * 100 // self.total)
        mib = 1024 * 1024
        sys.stderr.write(f"\r{self.label}: {pct:3d}% ({done / mib:.1f}/{self.total / mib:.1f} MiB)")
        sys.stderr.flush()
        self.shown = True

    def end(self) -> None:
        if self.shown:
            sys.stderr.write("\n")
            sys.stderr.flush()


def _meter(label: str, total: Callable[[], int]) -> _Meter | None:
    return _Meter(label, total()) if sys.stderr.isatty() else None


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings, _ = _cli.settings_from(args.env_file)
        manager = BackupManager(settings.backups)
        if args.action == "create":
            meter = _meter("backup", manager.engine.size)
            try:
                made = manager.create(progress=meter)
            finally:
                if meter is not None:
                    meter.end()
            print(f"created {made.id} ({made.gz_bytes} bytes gz, sha256 {made.sha256_gz})")
        elif args.action == "list" and args.json:
            print(json.dumps(_listing_json(manager), indent=2))
        elif args.action == "list":
            for store, listing in manager.list().items():
                print(f"[{store}] {len(listing.manifests)} backup(s)")
                for m in reversed(listing.manifests):
                    flags = " pinned" if m.pinned else ""
                    print(f"  {m.id}  {_when(m.created_ts)}  {m.gz_bytes:>12}  {m.reason}{flags}")
                for problem in listing.problems:
                    print(f"  PROBLEM {problem}")
        elif args.action in ("pin", "unpin"):
            changed = manager.pin(args.id, args.action == "pin")
            print(f"{changed.id}: {'pinned' if changed.pinned else 'unpinned'}")
        elif args.action == "verify":
            checked = manager.verify(args.id)
            print(f"{checked.id}: size, SHA-256, gzip stream and integrity checks passed")
        elif args.action == "restore":
            app_lock = FileLock(os.path.join(settings.state_dir, "services.lock"))
            if args.offline and not app_lock.try_acquire():
                raise BackupError(
                    f"--offline needs the app stopped, but a process holds {app_lock.path} "
                    "(its background services are running); stop it or restore without --offline"
                )
            meter = _meter("restore (verify)", lambda: manager.find(args.id)[1].db_bytes)
            try:
                result = manager.restore(
                    args.id, offline=args.offline, force=args.force, progress=meter
                )
            finally:
                app_lock.release()
                if meter is not None:
                    meter.end()
            print(
                f"restored {result['restored']}; "
                f"pre-restore safety backup: {result['safety_backup']}"
            )
        else:
            plans = manager.prune(dry_run=args.dry_run)
            verb = "would delete" if args.dry_run else "deleted"
            for store, plan in plans.items():
                print(f"[{store}] keep {len(plan.keep)}, {verb} {len(plan.delete)}")
                for backup_id, reasons in sorted(plan.keep.items(), reverse=True):
                    print(f"  keep {backup_id}  {', '.join(reasons)}")
                for m in plan.delete:
                    print(f"  {verb} {m.id}")
    except BackupBusy as exc:
        print(f"voyagr-wsgi backup {args.action}: busy: {exc}", file=sys.stderr)
        return EX_TEMPFAIL
    except (BackupError, StorageError, ConfigurationError, OSError) as exc:
        print(f"voyagr-wsgi backup {args.action}: error: {exc}", file=sys.stderr)
        return 1
    return 0
