"""Exceptions raised by voyagr_wsgi.

The hierarchy (catch the narrowest one that fits)::

    VoyagrError                       base of everything raised on purpose
    ├── ConfigurationError(ValueError) an operator mistake, raised at construction or by
    │                                  ``Settings.from_env``; the message names the setting
    │                                  (or environment variable) and what it accepts
    ├── BackupError                    a backup could not be taken, stored, listed or restored
    │   ├── BackupNotFound             no committed backup has that id
    │   ├── InvalidBackupId(ValueError) the id is not of the form YYYYMMDDTHHMMSSZ-<8 hex>
    │   └── BackupVerificationError    a backup failed its size, hash, gzip or integrity check
    ├── StorageError                   a backend (Redis, S3, SMTP, HTTP) failed; raised
    │                                  ``from`` the backend's own exception
    └── ChannelError(StorageError)     an alert channel could not deliver

Client mistakes (a forged Host, a bad header) never raise: layers turn them into 400/403/429
responses. Soft misconfiguration warns with :class:`VoyagrWarning`.
"""

from __future__ import annotations

__all__ = [
    "BackupError",
    "BackupNotFound",
    "BackupVerificationError",
    "ChannelError",
    "ConfigurationError",
    "InvalidBackupId",
    "StorageError",
    "VoyagrError",
    "VoyagrWarning",
]


class VoyagrError(Exception):
    """Base class of every exception voyagr_wsgi raises on purpose."""


class ConfigurationError(VoyagrError, ValueError):
    """A setting has a value it does not accept; the message names the setting."""


class BackupError(VoyagrError):
    """A backup could not be taken, stored, listed, verified or restored."""


class BackupNotFound(BackupError, LookupError):
    """No committed backup (one with a manifest) has the requested id."""


class InvalidBackupId(BackupError, ValueError):
    """The given name is not a backup id; nothing was looked up."""


class BackupVerificationError(BackupError):
    """A backup failed its size, SHA-256, gzip or SQLite integrity check."""


class BackupIncompatible(BackupError):
    """The backup's schema or ``user_version`` differs from the live database's: restoring
    it under the running code needs ``force``; nothing was touched."""

    #: how every engine's schema refusal ends (one wording for SQLite and PostgreSQL)
    FORCE_HINT = (
        "(a migration between them?); nothing was changed. Restore it anyway with force "
        "(--force, ?force=1) if the code that will run expects the backup's schema"
    )


class StorageError(VoyagrError):
    """A backend (Redis, S3, SMTP, an HTTP endpoint) failed."""


class ChannelError(StorageError):
    """An alert channel could not deliver a notification."""


class VoyagrWarning(UserWarning):
    """Soft misconfiguration: the stack works, but probably not as intended."""
