"""Restore by id only: verified first, swapped in through SQLite, safety backup, rollback."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import sqlite3
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import call, make_environ
from test_backup_support import backup_settings, cli, env_for, integrity, listed, make_db, rows
from voyagr_wsgi.admin import Admin
from voyagr_wsgi.backups import BackupManager
from voyagr_wsgi.backups import cli as backup_cli
from voyagr_wsgi.backups.endpoints import routes
from voyagr_wsgi.errors import BackupError, BackupVerificationError
from voyagr_wsgi.secret import Secret


class ItemsApp:
    """A running app: one connection opened at start and kept open, like a real app's pool."""

    def __init__(self, db: Path) -> None:
        self.conn = sqlite3.connect(db, check_same_thread=False)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        if environ["PATH_INFO"] != "/items":
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found"]
        tags = self.conn.execute("SELECT tag, count(*) FROM items GROUP BY tag").fetchall()
        body = json.dumps(dict(tags)).encode()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body]


@pytest.fixture
def app_and_manager(tmp_path: Path) -> Iterator[tuple[Admin, ItemsApp, BackupManager]]:
    make_db(tmp_path / "app.db", 100)
    manager = BackupManager(backup_settings(tmp_path))
    items = ItemsApp(tmp_path / "app.db")
    try:
        yield Admin(items, routes=routes(manager), token=Secret(TOKEN)), items, manager
    finally:
        items.conn.close()


TOKEN = "restore-token-" + "x" * 16  # state changes need the admin token
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def post(app: Admin, path: str) -> Any:
    return call(app, make_environ("/api/production/" + path, method="POST", headers=AUTH))


def run_job(app: Admin, manager: BackupManager, accepted: Any) -> dict[str, Any]:
    """Run the job ``accepted`` (a 202) as the services process would; its final document."""
    from voyagr_wsgi.backups.runner import JobRunner

    assert accepted.code == 202, accepted.body
    assert JobRunner(manager).run_next()
    status = call(app, make_environ(accepted.header("Location"), headers=AUTH))
    assert status.code == 200
    job: dict[str, Any] = json.loads(status.body)
    return job


def fingerprint(db: Path) -> tuple[int, int, int, str]:
    """Size, mtime and row count of the live DB plus a digest of its rows."""
    st = os.stat(db)
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        digest = hashlib.sha256(repr(conn.execute("SELECT * FROM items").fetchall()).encode())
    finally:
        conn.close()
    return st.st_size, st.st_mtime_ns, rows(db), digest.hexdigest()


def test_restore_through_the_endpoint_reaches_the_running_apps_open_connection(
    tmp_path: Path, app_and_manager: tuple[Admin, ItemsApp, BackupManager]
) -> None:
    app, items, manager = app_and_manager
    created = run_job(app, manager, post(app, "backup/create"))
    assert created["state"] == "succeeded", created
    backup_id = created["result"]["backup"]["id"]
    items.conn.execute("DELETE FROM items")
    items.conn.execute("INSERT INTO items(tag) VALUES ('after')")
    items.conn.commit()
    assert json.loads(call(app, make_environ("/items")).body) == {"after": 1}

    restored = run_job(app, manager, post(app, f"backup/restore/{backup_id}"))

    assert restored["state"] == "succeeded", restored
    assert json.loads(call(app, make_environ("/items")).body) == {"orig": 100}
    safety = manager.local.list().find(restored["result"]["safety_backup"])
    assert safety is not None and safety.pinned and safety.reason == "pre-restore"
    assert integrity(tmp_path / "app.db") == "ok"


JUNK = [
    pytest.param("../x", id="dot-dot slash"),
    pytest.param("..", id="dot-dot"),
    pytest.param("%2e%2e%2f", id="percent-encoded traversal"),
    pytest.param("..%2f..%2fapp.db", id="encoded traversal to the db"),
    pytest.param("/etc/passwd", id="absolute path"),
    pytest.param("20260101T000000Z-0000000\x00", id="NUL byte"),
    pytest.param("20260101T000000Z-00000000.json", id="id with extension"),
    pytest.param("20260101T000000Z-ABCDEF12", id="uppercase hex"),
    pytest.param("20260101T000000Z-00000000\n", id="trailing newline"),
    pytest.param("", id="empty"),
]


@pytest.mark.parametrize("name", JUNK)
def test_junk_names_are_refused_by_the_endpoint_and_the_db_is_untouched(
    tmp_path: Path, app_and_manager: tuple[Admin, ItemsApp, BackupManager], name: str
) -> None:
    app, _, manager = app_and_manager
    manager.create()
    before, backups = fingerprint(tmp_path / "app.db"), listed(tmp_path / "backups")
    result = post(app, f"backup/restore/{name}")
    assert result.code in (400, 404)
    if result.code == 400:
        assert b"not a backup id" in result.body
    assert fingerprint(tmp_path / "app.db") == before
    assert listed(tmp_path / "backups") == backups, "not even a safety backup was taken"


@pytest.mark.parametrize("name", JUNK)
def test_junk_names_are_refused_by_the_cli_and_the_db_is_untouched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    make_db(tmp_path / "app.db", 10)
    for key, value in env_for(backup_settings(tmp_path)).items():
        monkeypatch.setenv(key, value)
    before = fingerprint(tmp_path / "app.db")
    assert backup_cli.main(["restore", name]) == 1
    assert "not a backup id" in capsys.readouterr().err
    assert fingerprint(tmp_path / "app.db") == before
    assert not (tmp_path / "backups").exists() or listed(tmp_path / "backups") == []


def test_a_valid_but_unknown_id_is_not_found(
    app_and_manager: tuple[Admin, ItemsApp, BackupManager],
) -> None:
    app, _, _ = app_and_manager
    result = post(app, "backup/restore/20260101T000000Z-00000000")
    assert result.code == 404 and b"no committed backup" in result.body


def _flip_middle_byte(gz: Path, manifest: Path) -> None:
    data = bytearray(gz.read_bytes())
    data[len(data) // 2] ^= 0xFF
    gz.write_bytes(bytes(data))


def _truncate(gz: Path, manifest: Path) -> None:
    gz.write_bytes(gz.read_bytes()[:-100])


def _corrupt_with_matching_hash(gz: Path, manifest: Path) -> None:
    _flip_middle_byte(gz, manifest)
    doc = json.loads(manifest.read_text())
    doc["sha256_gz"] = hashlib.sha256(gz.read_bytes()).hexdigest()
    manifest.write_text(json.dumps(doc))


def _garbage_database(gz: Path, manifest: Path) -> None:
    raw = bytearray(gzip.decompress(gz.read_bytes()))
    raw[4096 + 100 : 4096 + 200] = b"\xff" * 100  # scribble over the first table page
    blob = gzip.compress(bytes(raw), mtime=0)
    gz.write_bytes(blob)
    doc = json.loads(manifest.read_text())
    doc.update(
        sha256_gz=hashlib.sha256(blob).hexdigest(),
        gz_bytes=len(blob),
        sha256_db=hashlib.sha256(raw).hexdigest(),
    )
    manifest.write_text(json.dumps(doc))


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        pytest.param(_flip_middle_byte, "SHA-256 of the .gz", id="flipped byte: hash mismatch"),
        pytest.param(_truncate, "stored size", id="truncated"),
        pytest.param(_corrupt_with_matching_hash, "gzip|decompressed", id="hash fixed, gzip bad"),
        pytest.param(_garbage_database, "integrity_check|not a readable", id="valid gzip, bad db"),
    ],
)
def test_a_damaged_backup_is_refused_before_the_live_db_is_touched(
    tmp_path: Path,
    app_and_manager: tuple[Admin, ItemsApp, BackupManager],
    damage: Any,
    message: str,
) -> None:
    app, _, manager = app_and_manager
    made = manager.create()
    damage(tmp_path / "backups" / made.data_name, tmp_path / "backups" / made.manifest_name)
    before = fingerprint(tmp_path / "app.db")
    with pytest.raises(BackupVerificationError, match=message):
        manager.restore(made.id)
    job = run_job(app, manager, post(app, f"backup/restore/{made.id}"))
    assert job["state"] == "failed" and job["problem"]["status"] == 422, job
    assert fingerprint(tmp_path / "app.db") == before
    assert listed(tmp_path / "backups") == [made.id], "no safety backup before verification"


def test_a_backup_with_another_page_size_is_restored_into_a_wal_database(tmp_path: Path) -> None:
    make_db(tmp_path / "app.db", 300, wal=False, page_size=8192)
    manager = BackupManager(backup_settings(tmp_path))
    made = manager.create()
    assert made.page_size == 8192
    os.unlink(tmp_path / "app.db")
    make_db(tmp_path / "app.db", 7, wal=True, page_size=4096, tag="new")
    live = sqlite3.connect(tmp_path / "app.db")
    try:
        manager.restore(made.id)
        assert live.execute("SELECT count(*) FROM items WHERE tag='orig'").fetchone()[0] == 300
        assert live.execute("PRAGMA page_size").fetchone()[0] == 4096
        assert live.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        live.close()


def test_a_failed_check_after_the_swap_rolls_back_to_the_safety_backup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_db(tmp_path / "app.db", 100)
    manager = BackupManager(backup_settings(tmp_path))
    made = manager.create()
    make_db(tmp_path / "app.db", 5, tag="since")
    before = fingerprint(tmp_path / "app.db")[2:]
    monkeypatch.setattr(
        "voyagr_wsgi.backups.restore.live_matches", lambda path, manifest: "injected fault"
    )
    with pytest.raises(BackupError, match="rolled back to the safety backup"):
        manager.restore(made.id)
    assert fingerprint(tmp_path / "app.db")[2:] == before
    assert integrity(tmp_path / "app.db") == "ok"


def test_offline_restore_moves_an_unreadable_database_aside(tmp_path: Path) -> None:
    make_db(tmp_path / "app.db", 100)
    settings = backup_settings(tmp_path)
    made = BackupManager(settings).create()
    (tmp_path / "app.db").write_bytes(b"this is not a database" * 1000)
    env = env_for(settings)
    online = cli(env, "restore", made.id)
    assert online.returncode == 1 and "error" in online.stderr
    done = cli(env, "restore", made.id, "--offline")
    assert done.returncode == 0, done.stderr
    assert rows(tmp_path / "app.db") == 100 and integrity(tmp_path / "app.db") == "ok"
    aside = list((tmp_path / "backups" / "quarantine").glob("*-app.db"))
    assert len(aside) == 1 and aside[0].read_bytes().startswith(b"this is not")


def test_offline_restore_of_a_healthy_database_takes_a_safety_backup(tmp_path: Path) -> None:
    make_db(tmp_path / "app.db", 100)
    settings = backup_settings(tmp_path)
    made = BackupManager(settings).create()
    make_db(tmp_path / "app.db", 1, tag="since")
    done = cli(env_for(settings), "restore", made.id, "--offline")
    assert done.returncode == 0, done.stderr
    assert rows(tmp_path / "app.db") == 100
    assert len(listed(tmp_path / "backups")) == 2


@pytest.mark.parametrize(
    "path",
    [pytest.param("backup/create", id="create"), pytest.param("backup/restore/{id}", id="restore")],
)
def test_endpoints_answer_409_while_another_process_holds_the_backup_lock(
    tmp_path: Path, app_and_manager: tuple[Admin, ItemsApp, BackupManager], path: str
) -> None:
    from voyagr_wsgi.services import FileLock

    app, _, manager = app_and_manager
    made = manager.create()
    before = fingerprint(tmp_path / "app.db")
    with FileLock(str(tmp_path / "backups" / ".voyagr-backup.lock")) as lock:
        assert lock.try_acquire()
        result = post(app, path.format(id=made.id))
    assert result.code == 409 and b"another process" in result.body
    assert fingerprint(tmp_path / "app.db") == before
    assert listed(tmp_path / "backups") == [made.id]


def test_offline_restore_is_refused_while_the_app_runs_its_services(tmp_path: Path) -> None:
    from voyagr_wsgi.services import FileLock

    make_db(tmp_path / "app.db", 100)
    settings = backup_settings(tmp_path)
    made = BackupManager(settings).create()
    make_db(tmp_path / "app.db", 1, tag="since")
    env = env_for(settings, VOYAGR_STATE_DIR=str(tmp_path / "state"))
    with FileLock(str(tmp_path / "state" / "services.lock")) as running_app:
        assert running_app.try_acquire()
        done = cli(env, "restore", made.id, "--offline")
    assert done.returncode == 1 and "needs the app stopped" in done.stderr
    assert rows(tmp_path / "app.db") == 101


def _migrate(db: Path) -> None:
    """What an app's next migration does: a new table and user_version 2."""
    conn = sqlite3.connect(db)
    try:
        conn.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, item INTEGER)")
        conn.execute("PRAGMA user_version = 2")
        conn.commit()
    finally:
        conn.close()


def test_a_backup_from_before_a_migration_needs_force(
    tmp_path: Path, app_and_manager: tuple[Admin, ItemsApp, BackupManager]
) -> None:
    app, _, manager = app_and_manager
    old = manager.create()  # user_version 0, no orders table
    _migrate(tmp_path / "app.db")
    before, backups = fingerprint(tmp_path / "app.db"), listed(tmp_path / "backups")

    with pytest.raises(BackupError, match=r"user_version 0 .* live database user_version 2"):
        manager.restore(old.id)
    refused = post(app, f"backup/restore/{old.id}")
    assert refused.code == 409 and b"force" in refused.body
    assert fingerprint(tmp_path / "app.db") == before
    assert listed(tmp_path / "backups") == backups, "refused before any safety backup"

    path = f"/api/production/backup/restore/{old.id}"
    accepted = call(app, make_environ(path, method="POST", headers=AUTH, query="force=1"))
    forced = run_job(app, manager, accepted)
    assert forced["state"] == "succeeded", forced
    conn = sqlite3.connect(tmp_path / "app.db")
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 0
        assert (
            conn.execute("SELECT count(*) FROM sqlite_master WHERE name='orders'").fetchone()[0]
            == 0
        )
    finally:
        conn.close()
    safety = manager.local.list().find(forced["result"]["safety_backup"])
    assert safety is not None and safety.user_version == 2  # the migrated state is kept


def test_cli_restore_refuses_another_schema_without_force(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    make_db(tmp_path / "app.db", 10)
    for key, value in env_for(backup_settings(tmp_path)).items():
        monkeypatch.setenv(key, value)
    old = BackupManager(backup_settings(tmp_path)).create()
    _migrate(tmp_path / "app.db")
    assert backup_cli.main(["restore", old.id]) == 1
    assert "--force" in capsys.readouterr().err
    assert backup_cli.main(["restore", old.id, "--force"]) == 0
    assert f"restored {old.id}" in capsys.readouterr().out


def gzip_bomb(size: int, expands_to: int) -> bytes:
    """A valid gzip member of exactly ``size`` bytes that inflates to ``expands_to`` zeros
    (the padding is a gzip FCOMMENT field, RFC 1952 section 2.3)."""
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    zeros, crc, parts = bytes(1 << 20), 0, []
    for _ in range(expands_to >> 20):
        parts.append(comp.compress(zeros))
        crc = zlib.crc32(zeros, crc)
    parts.append(comp.flush())
    deflate = b"".join(parts)
    header = b"\x1f\x8b\x08\x10\x00\x00\x00\x00\x00\xff"  # FLG.FCOMMENT
    trailer = struct.pack("<II", crc, expands_to & 0xFFFFFFFF)
    pad = size - len(header) - len(deflate) - len(trailer) - 1
    assert pad >= 0, "the bomb does not fit in the recorded size"
    bomb = header + b"x" * pad + b"\x00" + deflate + trailer
    assert len(bomb) == size
    return bomb


BOMB_EXPANDS_TO = 256 * 1024 * 1024


def test_a_gzip_bomb_of_the_recorded_size_is_refused_before_it_fills_the_disk(
    tmp_path: Path,
) -> None:
    import resource
    import subprocess
    import sys

    make_db(tmp_path / "app.db", 400, blob_bytes=1000)
    settings = backup_settings(tmp_path)
    manager = BackupManager(settings)
    made = manager.create()
    gz = tmp_path / "backups" / made.data_name
    gz.write_bytes(gzip_bomb(made.gz_bytes, BOMB_EXPANDS_TO))
    assert BOMB_EXPANDS_TO > 500 * made.db_bytes

    limit = 4 * made.db_bytes + (1 << 20)  # a "volume" far smaller than the bomb

    def small_volume() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    done = subprocess.run(
        [sys.executable, "-m", "voyagr_wsgi.cli", "backup", "verify", made.id],
        env=env_for(settings),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        preexec_fn=small_volume,
    )
    assert done.returncode == 1, (done.returncode, done.stderr)
    assert "expands beyond" in done.stderr
    before = fingerprint(tmp_path / "app.db")
    with pytest.raises(BackupVerificationError, match="expands beyond"):
        manager.restore(made.id)
    assert fingerprint(tmp_path / "app.db") == before
    assert listed(tmp_path / "backups") == [made.id], "refused before the safety backup"
    assert os.listdir(tmp_path / "backups" / ".staging") == []


def test_restore_checks_free_space_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    make_db(tmp_path / "app.db", 100, blob_bytes=1000)
    manager = BackupManager(backup_settings(tmp_path))
    made = manager.create()
    before = fingerprint(tmp_path / "app.db")
    real = shutil.disk_usage

    def nearly_full(path: Any) -> Any:  # a real full volume cannot be made in a test
        usage = real(path)
        return type(usage)(usage.total, usage.total - 1000, made.db_bytes // 2)

    monkeypatch.setattr(shutil, "disk_usage", nearly_full)
    with pytest.raises(BackupError, match="not enough free space") as caught:
        manager.restore(made.id)
    assert f"{made.db_bytes // 2} free" in str(caught.value)
    assert fingerprint(tmp_path / "app.db") == before
    assert listed(tmp_path / "backups") == [made.id], "nothing was taken or written"
