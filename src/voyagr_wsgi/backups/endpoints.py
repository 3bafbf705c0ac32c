"""Admin routes of the backup area (the Admin layer enforces the token before these run).

- ``GET  /api/production/backups``: committed backups per store, listing problems, status;
- ``GET  /api/production/backups/retention``: the retention dry run (kept ids and reasons);
- ``POST /api/production/backup/create``: take one now (201; 409 while another runs);
- ``POST /api/production/backup/restore/{name}``: restore by id. ``name`` must match the id
  pattern (400 otherwise) and be found among listed manifests (404); it never becomes a path
  or a key. 409 while busy, 422 when the backup fails verification, 409 when its schema or
  ``user_version`` differs from the live database's (``?force=1`` restores it anyway; the
  live DB is untouched otherwise), 502 when S3 fails.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qs

from .._wsgi import Environ
from ..admin import AdminRoute, Response, json_body
from ..errors import (
    BackupError,
    BackupIncompatible,
    BackupNotFound,
    BackupVerificationError,
    InvalidBackupId,
    StorageError,
)
from .manager import BackupBusy, BackupManager

__all__ = ["routes"]

log = logging.getLogger("voyagr_wsgi.backups")


def _errors(call: Callable[[], Response]) -> Response:
    try:
        return call()
    except InvalidBackupId as exc:
        return json_body("400 Bad Request", {"error": str(exc)})
    except BackupNotFound as exc:
        return json_body("404 Not Found", {"error": str(exc)})
    except (BackupBusy, BackupIncompatible) as exc:
        return json_body("409 Conflict", {"error": str(exc)})
    except BackupVerificationError as exc:
        return json_body("422 Unprocessable Content", {"error": str(exc)})
    except BackupError as exc:
        log.error("backup endpoint failed: %s", exc)
        return json_body("500 Internal Server Error", {"error": str(exc)})
    except StorageError as exc:
        log.error("backup store failed: %s", exc)
        return json_body("502 Bad Gateway", {"error": str(exc)})
    except OSError as exc:
        log.error("backup endpoint failed: %s", exc)
        return json_body("500 Internal Server Error", {"error": f"{type(exc).__name__}: {exc}"})


def routes(manager: BackupManager) -> list[AdminRoute]:
    def listing(environ: Environ, params: Mapping[str, str]) -> Response:
        doc: dict[str, Any] = {"status": manager.status(), "stores": {}}
        for name, found in manager.list().items():
            doc["stores"][name] = {
                "backups": [m.as_dict() for m in reversed(found.manifests)],
                "problems": list(found.problems),
            }
        return json_body("200 OK", doc)

    def retention(environ: Environ, params: Mapping[str, str]) -> Response:
        def run() -> Response:
            plans = manager.prune(dry_run=True)
            doc = {
                name: {"keep": p.keep, "delete": [m.id for m in p.delete]}
                for name, p in plans.items()
            }
            return json_body("200 OK", doc)

        return _errors(run)

    def create(environ: Environ, params: Mapping[str, str]) -> Response:
        return _errors(lambda: json_body("201 Created", {"backup": manager.create().as_dict()}))

    def restore(environ: Environ, params: Mapping[str, str]) -> Response:
        query = parse_qs(environ.get("QUERY_STRING", ""))
        force = query.get("force", [""])[-1].lower() in ("1", "true", "yes")
        name = params.get("name", "")
        return _errors(lambda: json_body("200 OK", manager.restore(name, force=force)))

    return [
        AdminRoute("GET", "backups", listing),
        AdminRoute("GET", "backups/retention", retention),
        AdminRoute("POST", "backup/create", create),
        AdminRoute("POST", "backup/restore/{name}", restore),
    ]
