"""Admin routes of the backup area (the Admin layer enforces the token before these run).

- ``GET  /api/production/backups``: committed backups per store, listing problems, status;
- ``GET  /api/production/backups/retention``: the retention dry run (kept ids and reasons);
- ``POST /api/production/backup/create``: take one now (201; 409 while another runs);
- ``POST /api/production/backup/restore/{name}``: restore by id. ``name`` must match the id
  pattern (400 otherwise) and be found among listed manifests (404); it never becomes a path
  or a key. 409 while busy, 422 when the backup fails verification, 409 when its schema or
  ``user_version`` differs from the live database's (``?force=1`` restores it anyway; the
  live DB is untouched otherwise), 502 when S3 fails.

Errors are RFC 9457 problems (:mod:`voyagr_wsgi.problem`: ``invalid-backup-id``,
``backup-not-found``, ``backup-busy``, ``backup-incompatible``,
``backup-verification-failed``, ``backup-failed``, ``storage-failed``). None of these routes
reads a request body; the Admin layer refuses one over its cap with 413.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qs

from .._wsgi import Environ
from ..admin import AdminRoute
from ..errors import (
    BackupError,
    BackupIncompatible,
    BackupNotFound,
    BackupVerificationError,
    InvalidBackupId,
    StorageError,
)
from ..problem import Response, json_response, response
from .manager import BackupBusy, BackupManager

__all__ = ["routes"]

log = logging.getLogger("voyagr_wsgi.backups")


def _errors(call: Callable[[], Response]) -> Response:
    try:
        return call()
    except InvalidBackupId as exc:
        return response("invalid-backup-id", str(exc))
    except BackupNotFound as exc:
        return response("backup-not-found", str(exc))
    except BackupBusy as exc:
        return response("backup-busy", str(exc))
    except BackupIncompatible as exc:
        return response("backup-incompatible", str(exc))
    except BackupVerificationError as exc:
        return response("backup-verification-failed", str(exc))
    except BackupError as exc:
        log.error("backup endpoint failed: %s", exc)
        return response("backup-failed", str(exc))
    except StorageError as exc:
        log.error("backup store failed: %s", exc)
        return response("storage-failed", str(exc))
    except OSError as exc:
        log.error("backup endpoint failed: %s", exc)
        return response("backup-failed", f"{type(exc).__name__}: {exc}")


def routes(manager: BackupManager) -> list[AdminRoute]:
    def listing(environ: Environ, params: Mapping[str, str]) -> Response:
        doc: dict[str, Any] = {"status": manager.status(), "stores": {}}
        for name, found in manager.list().items():
            doc["stores"][name] = {
                "backups": [m.as_dict() for m in reversed(found.manifests)],
                "problems": list(found.problems),
            }
        return json_response("200 OK", doc)

    def retention(environ: Environ, params: Mapping[str, str]) -> Response:
        def run() -> Response:
            plans = manager.prune(dry_run=True)
            doc = {
                name: {"keep": p.keep, "delete": [m.id for m in p.delete]}
                for name, p in plans.items()
            }
            return json_response("200 OK", doc)

        return _errors(run)

    def create(environ: Environ, params: Mapping[str, str]) -> Response:
        return _errors(lambda: json_response("201 Created", {"backup": manager.create().as_dict()}))

    def restore(environ: Environ, params: Mapping[str, str]) -> Response:
        query = parse_qs(environ.get("QUERY_STRING", ""))
        force = query.get("force", [""])[-1].lower() in ("1", "true", "yes")
        name = params.get("name", "")
        return _errors(lambda: json_response("200 OK", manager.restore(name, force=force)))

    return [
        AdminRoute("GET", "backups", listing),
        AdminRoute("GET", "backups/retention", retention),
        AdminRoute("POST", "backup/create", create),
        AdminRoute("POST", "backup/restore/{name}", restore),
    ]
