"""The manifest: the JSON commit marker written after a backup's data is durable.

Listing, retention and restore trust manifests only: a ``.db.gz`` without a manifest is an
orphan from an interrupted run and is never listed. A manifest is written last (temp file,
fsync, atomic rename, fsync of the folder) and deleted first.

Fields: ``id``, ``created_at`` (ISO 8601 UTC) and ``created_ts`` (epoch), ``db_bytes``,
``gz_bytes``, ``sha256_db`` (the raw snapshot), ``sha256_gz`` (the stored object),
``page_size``, ``user_version``, ``schema_sha256`` (SHA-256 of the ordered ``sqlite_schema``
SQL), ``sqlite_version``, ``verified`` (integrity + foreign-key checks passed), ``pinned``
(never deleted by retention), ``encryption`` (``none`` locally, the S3 SSE algorithm in S3),
``reason`` (``scheduled``, ``manual``, ``pre-restore``), ``format`` (1) and ``backup_set``
(the database it belongs to: ``BACKUP_SET``; absent in older manifests, read as "").

Engine fields (absent in older manifests, which are SQLite's): ``engine`` (``sqlite`` or
``postgresql``), ``server_version`` (PostgreSQL's ``server_version_num`` when dumped, "" for
SQLite) and ``row_counts`` (``{"schema.table": rows}`` from the scratch restore of
``BACKUP_VERIFY_RESTORE``, else null). For PostgreSQL the data object is the gzipped
``pg_dump --format=custom`` archive (same name, ``<id>.db.gz``), ``db_bytes``/``sha256_db``
describe the archive, ``schema_sha256`` hashes its normalised schema-only SQL, and
``page_size``, ``user_version`` are 0 and ``sqlite_version`` "".
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from ..errors import BackupError
from .ids import ID_RE

__all__ = ["FORMAT", "Manifest"]

FORMAT = 1
_HEX64 = frozenset("0123456789abcdef")


@dataclass(frozen=True, slots=True)
class Manifest:
    id: str
    created_ts: float
    db_bytes: int
    gz_bytes: int
    sha256_db: str
    sha256_gz: str
    page_size: int
    user_version: int
    schema_sha256: str
    sqlite_version: str
    verified: bool
    pinned: bool = False
    encryption: str = "none"
    reason: str = "manual"
    format: int = FORMAT
    backup_set: str = ""
    engine: str = "sqlite"
    server_version: str = ""
    row_counts: dict[str, int] | None = field(default=None, hash=False)

    @property
    def created_at(self) -> datetime:
        return datetime.fromtimestamp(self.created_ts, UTC)

    @property
    def data_name(self) -> str:
        return f"{self.id}.db.gz"

    @property
    def manifest_name(self) -> str:
        return f"{self.id}.json"

    def with_(self, **changes: Any) -> Manifest:
        return replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["created_at"] = self.created_at.strftime("%Y-%m-%dT%H:%M:%SZ")
        return doc

    def to_json(self) -> bytes:
        return json.dumps(self.as_dict(), indent=1, sort_keys=True).encode() + b"\n"

    @classmethod
    def from_json(cls, data: bytes | str, *, expected_id: str | None = None) -> Manifest:
        """Parse and validate; :class:`BackupError` on anything unexpected."""
        try:
            doc = json.loads(data)
        except ValueError as exc:
            raise BackupError(f"manifest {expected_id or '?'} is not valid JSON") from exc
        if not isinstance(doc, dict):
            raise BackupError(f"manifest {expected_id or '?'} is not a JSON object")
        try:
            manifest = cls(
                id=_typed(doc, "id", str),
                created_ts=float(_typed(doc, "created_ts", (int, float))),
                db_bytes=_typed(doc, "db_bytes", int),
                gz_bytes=_typed(doc, "gz_bytes", int),
                sha256_db=_typed(doc, "sha256_db", str),
                sha256_gz=_typed(doc, "sha256_gz", str),
                page_size=_typed(doc, "page_size", int),
                user_version=_typed(doc, "user_version", int),
                schema_sha256=_typed(doc, "schema_sha256", str),
                sqlite_version=_typed(doc, "sqlite_version", str),
                verified=_typed(doc, "verified", bool),
                pinned=_typed(doc, "pinned", bool),
                encryption=_typed(doc, "encryption", str),
                reason=_typed(doc, "reason", str),
                format=_typed(doc, "format", int),
                backup_set=_typed({"backup_set": "", **doc}, "backup_set", str),
                engine=_typed({"engine": "sqlite", **doc}, "engine", str),
                server_version=_typed({"server_version": "", **doc}, "server_version", str),
                row_counts=_counts(doc.get("row_counts")),
            )
        except (KeyError, TypeError) as exc:
            raise BackupError(f"manifest {expected_id or '?'}: {exc}") from exc
        if ID_RE.match(manifest.id) is None or (expected_id and manifest.id != expected_id):
            raise BackupError(f"manifest {expected_id or '?'} names another id {manifest.id!r}")
        for digest in (manifest.sha256_db, manifest.sha256_gz):
            if len(digest) != 64 or not set(digest) <= _HEX64:
                raise BackupError(f"manifest {manifest.id}: a sha256 is not 64 hex digits")
        if manifest.format != FORMAT:
            raise BackupError(f"manifest {manifest.id}: unknown format {manifest.format}")
        return manifest


def _typed(doc: dict[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    value = doc[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise TypeError(f"field {key!r} has the wrong type")
    return value


def _counts(value: Any) -> dict[str, int] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool)
        for k, v in value.items()
    ):
        raise TypeError("field 'row_counts' has the wrong type")
    return dict(value)
