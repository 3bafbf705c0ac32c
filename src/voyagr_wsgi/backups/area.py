"""The backups area: what ``DATABASE_PATH``/``DATABASE_URL``, ``BACKUP_*`` and ``S3_*``
contribute to a stack.

With ``DATABASE_PATH`` (SQLite) or ``DATABASE_URL`` (PostgreSQL) set: the
:class:`~.manager.BackupManager` (``context.backups``), the admin routes, the ``backup:age``
health check, the backup families of the metrics endpoints (:mod:`.exposition`) and, with
``BACKUP_ENABLED``, the scheduler service. ``S3_BACKUP_ENABLED=true`` needs boto3 (the ``s3``
extra): without it the build is a :class:`~voyagr_wsgi.errors.ConfigurationError` naming
``pip install 'voyagr-wsgi[s3]'``. The PostgreSQL engine (:mod:`.postgres`) is imported only
when ``DATABASE_URL`` is set.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from .._extras import require

if TYPE_CHECKING:
    from .._build import BuildContext, Finding
    from ..settings import Settings

__all__ = ["contribute", "deploy_checks"]


def contribute(settings: Settings, context: BuildContext) -> None:
    """Register the manager, admin routes, the health check and the scheduler service."""
    config = settings.backups
    if config.s3_enabled:  # even before DATABASE_PATH is set: the setting asks for boto3
        require("boto3", "S3_BACKUP_ENABLED=true", extra="s3")
    if not config.engine:
        return
    from .endpoints import routes
    from .health import health_source
    from .manager import BackupManager
    from .scheduler import BackupScheduler

    manager = BackupManager(config)
    context.backups = manager
    context.admin_routes.extend(routes(manager))
    context.health.add(health_source(manager))
    from .exposition import section

    context.metrics_sections.append(section(manager))  # read per scrape, never per request
    if config.enabled:
        context.services.append(BackupScheduler(manager))


def deploy_checks(settings: Settings, environ: Mapping[str, str] | None = None) -> list[Finding]:
    from .._build import Finding

    config = settings.backups
    found: list[Finding] = []
    url = (os.environ if environ is None else environ).get("DATABASE_URL", "")
    if url and not config.database_url:
        from .config import is_postgres_url

        if not is_postgres_url(url):
            scheme = url.partition("://")[0][:20] if "://" in url else "no scheme"
            found.append(
                Finding(
                    "WARNING",
                    "voyagr.W506",
                    f"DATABASE_URL ({scheme}) is not a postgresql:// URL: the backups ignore "
                    "it (SQLite backups use DATABASE_PATH)",
                )
            )
    if not config.engine:
        if config.s3_enabled:
            found.append(
                Finding(
                    "ERROR", "voyagr.E501", "S3_BACKUP_ENABLED is on but DATABASE_PATH is empty"
                )
            )
        return found
    if config.engine == "postgresql":
        from ..errors import BackupError
        from .pg_client import find_binary

        for tool in ("pg_dump", "pg_restore", "psql"):
            try:
                find_binary(tool, config.pg_bin_dir)
            except BackupError as exc:
                found.append(Finding("WARNING", "voyagr.W505", str(exc)))
    else:
        found.extend(_sqlite_checks(config.database_path, config.backup_dir))
    if not config.s3_enabled:
        found.append(
            Finding(
                "WARNING",
                "voyagr.W503",
                "S3_BACKUP_ENABLED is off: backups exist only on this machine's disk "
                "(on a PaaS with an ephemeral disk they vanish with the instance)",
            )
        )
    if not config.enabled:
        found.append(
            Finding("WARNING", "voyagr.W504", "BACKUP_ENABLED is off: no scheduled backups")
        )
    return found


def _sqlite_checks(database_path: str, backup_dir: str) -> list[Finding]:
    from .._build import Finding

    found: list[Finding] = []
    if not os.path.exists(database_path):
        found.append(
            Finding("WARNING", "voyagr.W501", f"DATABASE_PATH={database_path!r} does not exist yet")
        )
    if os.path.abspath(backup_dir) == os.path.dirname(os.path.abspath(database_path)):
        found.append(
            Finding(
                "WARNING",
                "voyagr.W502",
                "BACKUP_DIR is the database's own folder; use a separate one",
            )
        )
    return found
