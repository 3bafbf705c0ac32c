"""Backup ids: ``YYYYMMDDTHHMMSSZ-<8 hex>``, the only name a user can pass in.

An id is validated against :data:`ID_RE` (a full match, ASCII only) and then looked up among
the listed manifests; the file name or S3 key always comes from the store, never from the
request, so ``../x``, ``%2e%2e%2f``, absolute paths and NUL bytes cannot reach a path.
"""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime

from ..errors import InvalidBackupId

__all__ = ["ID_RE", "created_at", "new_id", "parse_id"]

ID_RE = re.compile(r"\A[0-9]{8}T[0-9]{6}Z-[0-9a-f]{8}\Z", re.ASCII)
_MAX_SHOWN = 40


def new_id(ts: float) -> str:
    """A fresh id for a backup taken at ``ts`` (epoch seconds, UTC)."""
    stamp = datetime.fromtimestamp(ts, UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{secrets.token_hex(4)}"


def parse_id(text: object) -> str:
    """``text`` if it is a backup id; else :class:`InvalidBackupId` (nothing looked up)."""
    if not isinstance(text, str) or ID_RE.match(text) is None:
        shown = repr(text)[:_MAX_SHOWN]
        raise InvalidBackupId(
            f"{shown} is not a backup id (expected YYYYMMDDTHHMMSSZ-<8 hex>, "
            "e.g. 20260102T030405Z-0a1b2c3d); list them with `voyagr-wsgi backup list`"
        )
    return text


def created_at(backup_id: str) -> datetime:
    """The UTC time encoded in an id (second precision)."""
    return datetime.strptime(parse_id(backup_id)[:16], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
