"""``settings.backups``: where the database is, where backups go, how long they are kept.

Read by ``Settings.from_env()`` (every variable is documented in ``docs/env/50-backups.env``)::

    DATABASE_PATH=/data/app.db        # the app's SQLite database; empty = backups off
    DATABASE_URL=postgresql://app@db.internal:5432/app   # or: a PostgreSQL database
    PG_BIN_DIR=/usr/lib/postgresql/16/bin   # where pg_dump/pg_restore/psql are (default: found)
    BACKUP_VERIFY_RESTORE=false       # PostgreSQL: also restore each backup into a scratch DB
    BACKUP_DIR=/data/backups          # the local store (always on); holds the lock file too
    BACKUP_ENABLED=true               # the scheduler (endpoints and CLI work anyway)
    BACKUP_INTERVAL_HOURS=24
    BACKUP_RETENTION_DAILY=7  BACKUP_RETENTION_WEEKLY=4  BACKUP_RETENTION_MONTHLY=12
    S3_BACKUP_ENABLED=true  S3_BUCKET=...  S3_PREFIX=voyagr-backups/  S3_SSE=AES256
    S3_SSE=none                       # send no ServerSideEncryption (MinIO without KMS)

A bad value raises :class:`~voyagr_wsgi.ConfigurationError` naming the variable.

``DATABASE_PATH`` selects the SQLite engine, ``DATABASE_URL`` (a libpq URL,
``postgresql://`` or ``postgres://``) the PostgreSQL one (:mod:`.postgres`); setting both is
a ConfigurationError (which database the backups are of must not depend on a precedence
rule). The URL is kept as a :class:`~voyagr_wsgi.secret.Secret`: its password never shows in
a repr, a log line or an error.

``DATABASE_URL`` is also other software's variable (dj-database-url, Rails, Heroku): in the
environment, a value with another scheme (``sqlite:///app.db``, ``mysql://...``) is left to
that software and ignored here (``voyagr-wsgi check`` notes it, W506), so an app that already
sets it keeps starting. Given in code (``BackupSettings(database_url=...)``), any scheme but
PostgreSQL's is a ConfigurationError naming ``DATABASE_URL``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import UTC, tzinfo
from typing import Literal
from urllib.parse import unquote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .._env import Env
from ..errors import ConfigurationError
from ..secret import Secret

__all__ = ["BackupSettings"]

SSE = Literal["AES256", "aws:kms", "none"]
Engine = Literal["sqlite", "postgresql", ""]
PG_SCHEMES = ("postgresql", "postgres")
_MIB = 1024 * 1024
_SET_RE = re.compile(r"[A-Za-z0-9._-]{1,64}")


@dataclass(frozen=True, slots=True)
class BackupSettings:
    """Options of the backup area (see the module docstring for the variables)."""

    database_path: str = ""
    backup_dir: str = "backups"
    enabled: bool = True  # the scheduler service; needs database_path
    interval_hours: float = 24.0
    retention_daily: int = 7
    retention_weekly: int = 4
    retention_monthly: int = 12
    retention_min_keep: int = 3
    s3_enabled: bool = False
    s3_bucket: str = ""
    s3_prefix: str = "voyagr-backups/"
    s3_region: str = ""
    s3_endpoint_url: str = ""
    s3_sse: SSE = "AES256"
    s3_kms_key_id: str = ""
    s3_multipart_threshold: int = 64 * _MIB  # bytes
    s3_multipart_chunksize: int = 16 * _MIB  # bytes
    s3_checksum_when_required: bool = False  # for S3-compatible services (boto3 >= 1.36)
    s3_retry_s: float = 900.0  # seconds before a failed upload is retried
    #: the backups this instance lists, prunes and restores: "" = the database file's name
    #: without its extension (app.db -> app); give each database sharing a store its own
    backup_set: str = ""
    #: IANA zone the retention buckets follow (a day, an ISO week, a month); UTC by default
    retention_timezone: str = "UTC"
    #: a PostgreSQL database instead of DATABASE_PATH (libpq URL; its password stays secret)
    database_url: Secret | None = None
    pg_bin_dir: str = ""  # pg_dump, pg_restore, psql; "" = PATH, then /usr/lib/postgresql/*/bin
    verify_restore: bool = False  # PostgreSQL: restore each new backup into a scratch database

    def __post_init__(self) -> None:
        if self.database_url:
            scheme, sep, _ = self.database_url.reveal().partition("://")
            if not is_postgres_url(self.database_url.reveal()):
                got = f"scheme {scheme[:20]!r}" if sep else "no scheme"  # never the rest
                raise ConfigurationError(
                    "DATABASE_URL must be a libpq URL starting with postgresql:// or "
                    f"postgres:// (got {got}); SQLite is DATABASE_PATH"
                )
            if self.database_path:
                raise ConfigurationError(
                    "DATABASE_PATH and DATABASE_URL are both set: back up either a SQLite "
                    "file (DATABASE_PATH) or a PostgreSQL database (DATABASE_URL), not both"
                )
        if self.interval_hours <= 0:
            raise ConfigurationError(f"BACKUP_INTERVAL_HOURS={self.interval_hours!r} must be > 0")
        if self.retention_daily + self.retention_weekly + self.retention_monthly <= 0:
            raise ConfigurationError(
                "BACKUP_RETENTION_DAILY/_WEEKLY/_MONTHLY are all 0: an empty retention "
                "policy is refused (it would keep nothing but the minimum)"
            )
        if self.s3_enabled and not self.s3_bucket:
            raise ConfigurationError("S3_BACKUP_ENABLED is on but S3_BUCKET is empty")
        if self.s3_enabled and self.s3_sse == "aws:kms" and not self.s3_kms_key_id:
            raise ConfigurationError("S3_SSE=aws:kms needs S3_KMS_KEY_ID (a key id, ARN or alias)")
        if self.s3_prefix and not self.s3_prefix.endswith("/"):
            raise ConfigurationError(f"S3_PREFIX={self.s3_prefix!r} must end with '/'")
        if self.s3_prefix.startswith("/") or ".." in self.s3_prefix.split("/"):
            raise ConfigurationError(f"S3_PREFIX={self.s3_prefix!r}: no leading '/' or '..'")
        self.retention_tz()  # validated now: a typo must not wait for the first prune
        if self.backup_set and not _SET_RE.fullmatch(self.backup_set):
            raise ConfigurationError(
                f"BACKUP_SET={self.backup_set!r}: 1-64 letters, digits, '.', '_' or '-'"
            )
        if self.s3_multipart_chunksize < 5 * _MIB:
            raise ConfigurationError("S3_MULTIPART_CHUNKSIZE_MB must be >= 5 (the S3 minimum)")

    def retention_tz(self) -> tzinfo:
        """``retention_timezone`` as a tzinfo (ConfigurationError naming the variable)."""
        if self.retention_timezone.upper() == "UTC":
            return UTC
        try:
            return ZoneInfo(self.retention_timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ConfigurationError(
                f"BACKUP_RETENTION_TIMEZONE={self.retention_timezone!r} is not a known IANA "
                "zone (e.g. Europe/Paris; the system tz database or the tzdata package "
                "provides them)"
            ) from exc

    @property
    def engine(self) -> Engine:
        """``sqlite`` (DATABASE_PATH), ``postgresql`` (DATABASE_URL) or "" (backups off)."""
        if self.database_url:
            return "postgresql"
        return "sqlite" if self.database_path else ""

    @property
    def set_name(self) -> str:
        """``backup_set``, or the database file's name without its extension (SQLite) or
        the database name in the URL (PostgreSQL)."""
        if self.backup_set:
            return self.backup_set
        if self.database_url:
            path = self.database_url.reveal().partition("://")[2].partition("/")[2]
            stem = unquote(path.partition("?")[0])
        else:
            stem = os.path.splitext(os.path.basename(self.database_path))[0]
        cleaned = re.sub(r"[^A-Za-z0-9._-]", "-", stem)[:64]
        return cleaned or "default"

    @property
    def interval_s(self) -> float:
        return self.interval_hours * 3600.0

    @classmethod
    def from_env(cls, env: Env) -> BackupSettings:
        return cls(
            database_path=env.str("DATABASE_PATH"),
            backup_dir=env.str("BACKUP_DIR", "backups"),
            enabled=env.bool("BACKUP_ENABLED", True),
            interval_hours=env.float("BACKUP_INTERVAL_HOURS", 24.0, minimum=0.001),
            retention_daily=env.int("BACKUP_RETENTION_DAILY", 7, minimum=0),
            retention_weekly=env.int("BACKUP_RETENTION_WEEKLY", 4, minimum=0),
            retention_monthly=env.int("BACKUP_RETENTION_MONTHLY", 12, minimum=0),
            retention_min_keep=env.int("BACKUP_RETENTION_MIN_KEEP", 3, minimum=1),
            s3_enabled=env.bool("S3_BACKUP_ENABLED", False),
            s3_bucket=env.str("S3_BUCKET"),
            s3_prefix=env.str("S3_PREFIX", "voyagr-backups/"),
            s3_region=env.str("S3_REGION"),
            s3_endpoint_url=env.str("S3_ENDPOINT_URL"),
            s3_sse=_sse(env),
            s3_kms_key_id=env.str("S3_KMS_KEY_ID"),
            s3_multipart_threshold=env.int("S3_MULTIPART_THRESHOLD_MB", 64, minimum=5) * _MIB,
            s3_multipart_chunksize=env.int("S3_MULTIPART_CHUNKSIZE_MB", 16, minimum=5) * _MIB,
            s3_checksum_when_required=env.bool("S3_CHECKSUM_WHEN_REQUIRED", False),
            s3_retry_s=env.float("BACKUP_S3_RETRY_SECONDS", 900.0, minimum=1.0),
            backup_set=env.str("BACKUP_SET"),
            retention_timezone=env.str("BACKUP_RETENTION_TIMEZONE", "UTC"),
            database_url=postgres_url(env),
            pg_bin_dir=env.str("PG_BIN_DIR"),
            verify_restore=env.bool("BACKUP_VERIFY_RESTORE", False),
        )


def _sse(env: Env) -> SSE:
    value = env.str("S3_SSE", "AES256")
    if value.upper() == "AES256":
        return "AES256"
    if value.lower() == "aws:kms":
        return "aws:kms"
    if value.lower() == "none":
        return "none"
    raise ConfigurationError(f"S3_SSE={value!r} is not one of: AES256, aws:kms, none")


def postgres_url(env: Env) -> Secret | None:
    """``DATABASE_URL`` when it names a PostgreSQL database; None otherwise (unset, or
    another scheme: other software's database, see the module docstring)."""
    url = env.secret("DATABASE_URL")
    if url is None or not is_postgres_url(url.reveal()):
        return None
    return url


def is_postgres_url(url: str) -> bool:
    scheme, sep, _ = url.partition("://")
    return bool(sep) and scheme.lower() in PG_SCHEMES
