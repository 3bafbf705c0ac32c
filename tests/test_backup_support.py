"""Helpers shared by the backup tests (no tests here): real SQLite files, settings, CLI runs."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

from voyagr_wsgi.backups import BackupSettings

ROOT = Path(__file__).resolve().parent.parent


def make_db(
    path: Path,
    rows: int = 100,
    *,
    wal: bool = True,
    page_size: int | None = None,
    blob_bytes: int = 0,
    tag: str = "orig",
) -> None:
    """A database with ``items(id, tag, blob)``; ``blob_bytes`` of random data per row."""
    conn = sqlite3.connect(path)
    try:
        if page_size:
            conn.execute(f"PRAGMA page_size={page_size}")
        if wal:
            conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS items(id INTEGER PRIMARY KEY, tag TEXT, blob BLOB)"
        )
        conn.executemany(
            "INSERT INTO items(tag, blob) VALUES (?, ?)",
            ((tag, os.urandom(blob_bytes)) for _ in range(rows)),
        )
        conn.commit()
    finally:
        conn.close()


def rows(path: Path | str, where: str = "") -> int:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return int(conn.execute(f"SELECT count(*) FROM items {where}").fetchone()[0])
    finally:
        conn.close()


def integrity(path: Path | str) -> str:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        conn.close()


def backup_settings(tmp_path: Path, **changes: Any) -> BackupSettings:
    values: dict[str, Any] = {
        "database_path": str(tmp_path / "app.db"),
        "backup_dir": str(tmp_path / "backups"),
    }
    values.update(changes)
    return BackupSettings(**values)


def env_for(settings: BackupSettings, **extra: str) -> dict[str, str]:
    """Environment variables that make ``Settings.from_env().backups`` equal ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("S3_", "BACKUP_"))}
    env.update(
        DATABASE_PATH=settings.database_path,
        BACKUP_DIR=settings.backup_dir,
        BACKUP_INTERVAL_HOURS=str(settings.interval_hours),
        VOYAGR_STATE_DIR=str(Path(settings.backup_dir).parent / "state"),
    )
    env.update(extra)
    return env


def cli(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``voyagr-wsgi backup ARGS`` in a subprocess, through the package's own dispatcher."""
    return subprocess.run(
        [sys.executable, "-m", "voyagr_wsgi.cli", "backup", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def listed(directory: Path | str) -> list[str]:
    """Committed backup ids in a local backup folder (manifests only, like the store)."""
    from voyagr_wsgi.backups.local import LocalStore

    return [m.id for m in LocalStore(str(directory)).list().manifests]
