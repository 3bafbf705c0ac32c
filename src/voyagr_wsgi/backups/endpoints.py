"""Admin routes of the backup area (the Admin layer enforces the token before these run).

- ``GET  /api/production/backups``: committed backups per store, listing problems, status;
- ``GET  /api/production/backups/retention``: the retention dry run (kept ids and reasons);
- ``POST /api/production/backup/create``: queue a backup job: ``202 Accepted``, the job
  document as the body and ``Location: .../backup/jobs/{id}`` (409 while another backup or
  restore holds the lock or 10 jobs already wait);
- ``POST /api/production/backup/restore/{name}``: queue a restore job (202 + ``Location``).
  ``name`` must match the id pattern (400 otherwise); it never becomes a path or a key. What
  can be told at once is answered at once: a backup of the local store whose schema or
  ``user_version`` differs from the live database's is 409 (``?force=1`` queues it anyway;
  for PostgreSQL the comparison runs ``pg_dump --schema-only``, see :mod:`.postgres`),
  an id not in the local store is 404 when there is no S3 store; 409 while busy. Everything
  else (an S3 lookup, the download, verification, the swap) runs in the job;
- ``GET  /api/production/backup/jobs/{id}``: the job: ``queued``, ``running`` (with
  ``progress``: ``phase``, ``bytes_done``, ``bytes_total``), ``succeeded`` (``result``: the
  backup's manifest, or ``restored`` + ``safety_backup``) or ``failed`` (``problem``: the
  RFC 9457 object, e.g. ``backup-verification-failed`` with status 422). 400 for something
  that is not a job id, 404 for an unknown one. Poll it (every second or two).

Nothing long runs in the request: jobs run in the process that runs the background services
(the :class:`~voyagr_wsgi.backups.scheduler.BackupScheduler`); without one (``stack.start()``
never called, ``BACKUP_ENABLED=false``) a job stays ``queued``: use the CLI then
(:mod:`.jobs` tells the details).

Errors are RFC 9457 problems (:mod:`voyagr_wsgi.problem`: ``invalid-backup-id``,
``backup-not-found``, ``backup-busy``, ``backup-incompatible``,
``backup-verification-failed``, ``backup-failed``, ``storage-failed``, ``invalid-job-id``,
``job-not-found``). None of these routes reads a request body; the Admin layer refuses one
over its cap with 413.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qs, quote

from .._wsgi import Environ
from ..admin import AdminRoute
from ..errors import BackupNotFound
from ..problem import Response, json_response, response
from .ids import parse_id
from .jobs import problem_of
from .manager import BackupManager

__all__ = ["routes"]

log = logging.getLogger("voyagr_wsgi.backups")


def _errors(call: Callable[[], Response]) -> Response:
    try:
        return call()
    except Exception as exc:
        found = problem_of(exc)
        if found is None:
            raise
        kind, detail = found
        if kind in ("backup-failed", "storage-failed"):
            log.error("backup endpoint failed: %s", detail)
        return response(kind, detail)


def _accepted(environ: Environ, job: dict[str, Any]) -> Response:
    path = environ.get("PATH_INFO", "")
    base = path[: path.rfind("backup/")]  # the Admin prefix, whatever it is
    location = f"{environ.get('SCRIPT_NAME', '')}{base}backup/jobs/{job['id']}"
    status, headers, body = json_response("202 Accepted", job)
    return status, [*headers, ("Location", quote(location, safe="/"))], body


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
        def run() -> Response:
            manager.lock.check_free()
            return _accepted(environ, manager.jobs.submit("create"))

        return _errors(run)

    def restore(environ: Environ, params: Mapping[str, str]) -> Response:
        query = parse_qs(environ.get("QUERY_STRING", ""))
        force = query.get("force", [""])[-1].lower() in ("1", "true", "yes")

        def run() -> Response:
            backup_id = parse_id(params.get("name", ""))
            local = manager.catalogue.listing(manager.local).find(backup_id)  # a folder read
            if local is None and manager.remote is None:
                raise BackupNotFound(
                    f"no committed backup of set {manager.set_name!r} has id {backup_id}"
                )
            if local is not None and not force:
                manager.restorer.check_compatible(local)
            manager.lock.check_free()
            job = manager.jobs.submit("restore", {"name": backup_id, "force": force})
            return _accepted(environ, job)

        return _errors(run)

    def job_status(environ: Environ, params: Mapping[str, str]) -> Response:
        return json_response("200 OK", manager.jobs.get(params.get("id", "")))

    return [
        AdminRoute("GET", "backups", listing),
        AdminRoute("GET", "backups/retention", retention),
        AdminRoute("POST", "backup/create", create),
        AdminRoute("POST", "backup/restore/{name}", restore),
        AdminRoute("GET", "backup/jobs/{id}", job_status),
    ]
