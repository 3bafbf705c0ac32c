"""Taking backups: through SQLite, verified, streamed, committed by the manifest."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import zlib
from pathlib import Path
from typing import Any

import pytest

from test_backup_support import backup_settings, cli, env_for, integrity, listed, make_db, rows
from voyagr_wsgi.backups import BackupManager
from voyagr_wsgi.backups.restore import fetch_verified
from voyagr_wsgi.errors import BackupError, BackupVerificationError


def test_backup_is_committed_with_a_manifest_matching_its_bytes(tmp_path: Path) -> None:
    make_db(tmp_path / "app.db", 500)
    with sqlite3.connect(tmp_path / "app.db") as conn:
        conn.execute("PRAGMA user_version=7")
    manager = BackupManager(backup_settings(tmp_path))
    made = manager.create()
    data = tmp_path / "backups" / f"{made.id}.db.gz"
    doc = json.loads((tmp_path / "backups" / f"{made.id}.json").read_text())
    assert doc["id"] == made.id and doc["verified"] is True and doc["pinned"] is False
    assert doc["user_version"] == 7 and doc["page_size"] == 4096
    assert doc["sqlite_version"] == sqlite3.sqlite_version and doc["encryption"] == "none"
    blob = data.read_bytes()
    assert hashlib.sha256(blob).hexdigest() == made.sha256_gz and len(blob) == made.gz_bytes
    raw = gzip.decompress(blob)
    assert hashlib.sha256(raw).hexdigest() == made.sha256_db and len(raw) == made.db_bytes
    assert blob[4:8] == b"\0\0\0\0", "gzip mtime must be 0 (reproducible bytes)"
    assert raw[18:20] == b"\x01\x01", "the copy is in journal_mode=DELETE, not WAL"
    assert listed(tmp_path / "backups") == [made.id]
    assert manager.status()["last_success_ts"] == made.created_ts


def test_rows_committed_before_the_backup_started_are_in_it_while_a_writer_runs(
    tmp_path: Path,
) -> None:
    make_db(tmp_path / "app.db", 20_000, blob_bytes=200)
    committed = [0]
    stop = threading.Event()
    enough = threading.Event()

    def writer() -> None:
        conn = sqlite3.connect(tmp_path / "app.db", timeout=30)
        while not stop.is_set():
            cur = conn.execute("INSERT INTO items(tag) VALUES ('live')")
            conn.commit()
            committed[0] = int(cur.lastrowid or 0)
            if committed[0] > 20_200:
                enough.set()
        conn.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert enough.wait(30)
        before = committed[0]
        manager = BackupManager(backup_settings(tmp_path))
        made = manager.create()
    finally:
        stop.set()
        thread.join()
    copy = fetch_verified(manager.local, made, str(tmp_path / "check"))
    with sqlite3.connect(copy) as conn:
        ids = {r[0] for r in conn.execute("SELECT id FROM items WHERE id <= ?", (before,))}
    assert ids == set(range(1, before + 1))
    assert committed[0] > before, "the writer kept committing during the backup"


def test_a_copy_failing_foreign_key_check_is_quarantined_and_reported(tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "app.db") as conn:
        conn.execute("CREATE TABLE parent(id INTEGER PRIMARY KEY)")
        conn.execute("CREATE TABLE child(id INTEGER PRIMARY KEY, p REFERENCES parent(id))")
        conn.execute("INSERT INTO child(p) VALUES (42)")  # foreign_keys is off by default
    manager = BackupManager(backup_settings(tmp_path))
    with pytest.raises(BackupVerificationError, match="foreign_key_check"):
        manager.create()
    assert listed(tmp_path / "backups") == []
    assert len(list((tmp_path / "backups" / "quarantine").glob("*.db.bad"))) == 1
    assert list((tmp_path / "backups").glob("*.gz")) == []
    status = manager.status()
    assert status["last_success_ts"] is None and "foreign_key_check" in status["last_error"]


def test_a_missing_database_is_an_error_and_is_never_created(tmp_path: Path) -> None:
    manager = BackupManager(backup_settings(tmp_path))
    with pytest.raises(BackupError, match="does not exist"):
        manager.create()
    assert not (tmp_path / "app.db").exists()


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Any:
    mount = tmp_path / "tiny"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.mark.parametrize(
    ("blob_kib", "detail"),
    [
        pytest.param(3072, "the snapshot needs", id="snapshot larger than the disk: preflight"),
        pytest.param(1400, "No space left on device", id="snapshot fits, gzip runs out"),
    ],
)
def test_a_full_disk_gives_a_clear_error_and_keeps_nothing(
    tmp_path: Path, tiny_disk: Path, blob_kib: int, detail: str
) -> None:
    make_db(tmp_path / "app.db", blob_kib // 64, blob_bytes=64 * 1024)
    before = rows(tmp_path / "app.db")
    manager = BackupManager(backup_settings(tmp_path, backup_dir=str(tiny_disk)))
    with pytest.raises(BackupError, match="no space left") as caught:
        manager.create()
    assert detail in str(caught.value)
    assert listed(tiny_disk) == []
    assert sorted(p.name for p in tiny_disk.rglob("*") if p.is_file() and "lock" not in p.name) in (
        [],
        [".voyagr-backup-status.json"],
    )
    assert rows(tmp_path / "app.db") == before and integrity(tmp_path / "app.db") == "ok"


KILLED = """
import sys, time
from voyagr_wsgi.backups import BackupManager, BackupSettings
def progress(done):
    print("writing", done, flush=True)
    time.sleep(120)  # parked here until the test kills us
settings = BackupSettings(database_path=sys.argv[1], backup_dir=sys.argv[2])
BackupManager(settings, progress=progress).create()
"""


def test_a_backup_killed_mid_way_leaves_nothing_listed_and_the_next_run_cleans_up(
    tmp_path: Path,
) -> None:
    make_db(tmp_path / "app.db", 200, blob_bytes=32 * 1024)  # ~6 MiB: several chunks
    backups = tmp_path / "backups"
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED, str(tmp_path / "app.db"), str(backups)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith("writing")
        leftovers = sorted(p.name for p in backups.rglob("*partial*"))
        assert leftovers, "the killed run had started writing"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()
    assert listed(backups) == []
    made = BackupManager(backup_settings(tmp_path)).create()
    assert listed(backups) == [made.id]
    assert list(backups.rglob("*partial*")) == []


RACER = """
import sys
from voyagr_wsgi.backups import BackupBusy, BackupManager, BackupSettings
settings = BackupSettings(database_path=sys.argv[1], backup_dir=sys.argv[2])
try:
    made = BackupManager(settings).run_scheduled()
    print("made" if made else "fresh")
except BackupBusy:
    print("busy")
"""


def test_two_processes_started_together_take_one_backup(tmp_path: Path) -> None:
    make_db(tmp_path / "app.db", 100, blob_bytes=16 * 1024)
    args = [sys.executable, "-c", RACER, str(tmp_path / "app.db"), str(tmp_path / "backups")]
    procs = [subprocess.Popen(args, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = sorted(p.communicate(timeout=60)[0].strip() for p in procs)
    assert len(listed(tmp_path / "backups")) == 1
    assert outputs in (["busy", "made"], ["fresh", "made"])


def test_cli_create_while_another_run_holds_the_lock_exits_busy(tmp_path: Path) -> None:
    from voyagr_wsgi.services import FileLock

    make_db(tmp_path / "app.db")
    (tmp_path / "backups").mkdir()
    with FileLock(str(tmp_path / "backups" / ".voyagr-backup.lock")) as lock:
        assert lock.try_acquire()
        done = cli(env_for(backup_settings(tmp_path)), "create")
    assert done.returncode == 75 and "busy" in done.stderr
    assert listed(tmp_path / "backups") == []


def test_cli_create_list_verify_and_prune(tmp_path: Path) -> None:
    make_db(tmp_path / "app.db")
    env = env_for(backup_settings(tmp_path))
    made = cli(env, "create")
    assert made.returncode == 0, made.stderr
    backup_id = made.stdout.split()[1]
    assert backup_id in cli(env, "list").stdout
    verified = cli(env, "verify", backup_id)
    assert verified.returncode == 0 and "passed" in verified.stdout
    pruned = cli(env, "prune", "--dry-run")
    assert pruned.returncode == 0 and f"keep {backup_id}  daily, weekly, monthly" in pruned.stdout


@pytest.mark.parametrize(
    ("env_changes", "args", "message"),
    [
        pytest.param({"DATABASE_PATH": ""}, ["create"], "DATABASE_PATH is not set", id="no db"),
        pytest.param(
            {"BACKUP_INTERVAL_HOURS": "x"}, ["list"], "BACKUP_INTERVAL_HOURS", id="bad env"
        ),
        pytest.param({}, ["verify", "nope"], "not a backup id", id="bad id"),
        pytest.param(
            {}, ["verify", "20260101T000000Z-00000000"], "no committed backup", id="unknown"
        ),
    ],
)
def test_cli_failures_exit_non_zero_with_a_clear_message(
    tmp_path: Path, env_changes: dict[str, str], args: list[str], message: str
) -> None:
    make_db(tmp_path / "app.db")
    done = cli(env_for(backup_settings(tmp_path), **env_changes), *args)
    assert done.returncode == 1 and message in done.stderr


def test_retention_runs_after_each_commit_on_the_local_store(tmp_path: Path) -> None:
    make_db(tmp_path / "app.db")
    clock = [1_767_322_800.0]  # 2026-01-02T03:00:00Z
    settings = backup_settings(
        tmp_path, retention_daily=2, retention_weekly=0, retention_monthly=0, retention_min_keep=1
    )
    manager = BackupManager(settings, now=lambda: clock[0])
    made = []
    for _ in range(5):
        made.append(manager.create().id)
        clock[0] += 86_400
    assert listed(tmp_path / "backups") == made[-2:]


def test_retention_is_aborted_by_an_unreadable_manifest(tmp_path: Path) -> None:
    make_db(tmp_path / "app.db")
    clock = [1_767_322_800.0]
    settings = backup_settings(
        tmp_path, retention_daily=1, retention_weekly=0, retention_monthly=0, retention_min_keep=1
    )
    manager = BackupManager(settings, now=lambda: clock[0])
    first = manager.create()
    (tmp_path / "backups" / "20250101T000000Z-deadbeef.json").write_text("{broken")
    clock[0] += 86_400
    manager.create()
    assert first.id in listed(tmp_path / "backups"), "nothing deleted from an incomplete listing"
    assert "incomplete listing" in manager.status()["last_error"]


def test_gzip_stream_is_standard_and_reproducible(tmp_path: Path) -> None:
    make_db(tmp_path / "app.db", 50, wal=False)
    manager = BackupManager(backup_settings(tmp_path))
    one, two = manager.create(), manager.create()
    assert one.sha256_db == two.sha256_db and one.sha256_gz == two.sha256_gz
    data = (tmp_path / "backups" / one.data_name).read_bytes()
    assert zlib.decompress(data, 31) == gzip.decompress(data)
    assert os.stat(tmp_path / "backups" / one.data_name).st_mode & 0o077 == 0


def test_cli_verify_reports_a_damaged_backup(tmp_path: Path) -> None:
    make_db(tmp_path / "app.db", 100)
    env = env_for(backup_settings(tmp_path))
    backup_id = cli(env, "create").stdout.split()[1]
    data = tmp_path / "backups" / f"{backup_id}.db.gz"
    blob = bytearray(data.read_bytes())
    blob[-12] ^= 0x40
    data.write_bytes(bytes(blob))
    done = cli(env, "verify", backup_id)
    assert done.returncode == 1 and "SHA-256 of the .gz does not match" in done.stderr


def test_pin_keeps_a_backup_out_of_retention_and_unpin_gives_it_back(tmp_path: Path) -> None:
    make_db(tmp_path / "app.db")
    clock = [1_767_322_800.0]  # 2026-01-02T03:00:00Z
    settings = backup_settings(
        tmp_path, retention_daily=1, retention_weekly=0, retention_monthly=0, retention_min_keep=1
    )
    manager = BackupManager(settings, now=lambda: clock[0])
    first = manager.create().id
    assert manager.pin(first).pinned
    clock[0] += 86_400
    second = manager.create().id  # retention runs: daily=1 keeps the newest, pinned stays
    assert listed(tmp_path / "backups") == [first, second]
    env = env_for(settings)
    unpinned = cli(env, "unpin", first)
    assert unpinned.returncode == 0 and f"{first}: unpinned" in unpinned.stdout
    assert " pinned" not in cli(env, "list").stdout
    manager.prune()  # this test's retention (the CLI reads the default one from the env)
    assert listed(tmp_path / "backups") == [second]
    pinned = cli(env, "pin", second)
    assert pinned.returncode == 0 and f"{second}: pinned" in pinned.stdout
    assert f"{second}" in cli(env, "list").stdout and " pinned" in cli(env, "list").stdout


@pytest.mark.parametrize(
    ("name", "message"),
    [
        pytest.param("../x", "not a backup id", id="traversal"),
        pytest.param("20260101T000000Z-00000000", "no committed backup", id="unknown"),
    ],
)
def test_pin_refuses_bad_and_unknown_ids(tmp_path: Path, name: str, message: str) -> None:
    make_db(tmp_path / "app.db")
    env = env_for(backup_settings(tmp_path))
    assert cli(env, "create").returncode == 0
    before = listed(tmp_path / "backups")
    done = cli(env, "pin", name)
    assert done.returncode == 1 and message in done.stderr
    assert listed(tmp_path / "backups") == before


def test_two_databases_sharing_a_store_never_prune_or_restore_each_other(tmp_path: Path) -> None:
    # the reference's "backup set": retention and restore work on one database's backups;
    # before sets, an instance sharing the folder or S3 prefix pruned the other's history
    make_db(tmp_path / "app.db")
    make_db(tmp_path / "shop.db")
    clock = [1_767_322_800.0]
    shared = str(tmp_path / "shared")

    def manager(db: str) -> BackupManager:
        settings = backup_settings(
            tmp_path, database_path=str(tmp_path / db), backup_dir=shared,
            retention_daily=2, retention_weekly=0, retention_monthly=0, retention_min_keep=1,
        )  # fmt: skip
        return BackupManager(settings, now=lambda: clock[0])

    app, shop = manager("app.db"), manager("shop.db")
    assert (app.set_name, shop.set_name) == ("app", "shop")
    made: dict[str, list[str]] = {"app": [], "shop": []}
    for _ in range(4):
        made["app"].append(app.create().id)
        made["shop"].append(shop.create().id)
        clock[0] += 86_400
    assert [m.id for m in app.list()["local"].manifests] == made["app"][-2:]
    assert [m.id for m in shop.list()["local"].manifests] == made["shop"][-2:]
    assert sorted(listed(shared)) == sorted(made["app"][-2:] + made["shop"][-2:])
    with pytest.raises(BackupError, match="no committed backup of set 'app'"):
        app.restore(made["shop"][-1])
    assert app.pin(made["app"][-1]).pinned
    with pytest.raises(BackupError, match="of set 'shop'"):
        shop.pin(made["app"][-1])


@pytest.mark.parametrize(
    ("database", "backup_set", "expected"),
    [
        pytest.param("data/app.db", "", "app", id="the database file's name"),
        pytest.param("data/my app.sqlite3", "", "my-app", id="unsafe characters replaced"),
        pytest.param("data/app.db", "eu-west.primary", "eu-west.primary", id="BACKUP_SET"),
    ],
)
def test_backup_set_name(database: str, backup_set: str, expected: str, tmp_path: Path) -> None:
    from voyagr_wsgi import Settings

    env = {"DATABASE_PATH": database, "BACKUP_SET": backup_set}
    assert Settings.from_env(env).backups.set_name == expected


@pytest.mark.parametrize("bad", ["../x", "a/b", "x" * 65, "white space"])
def test_backup_set_is_validated(bad: str) -> None:
    from voyagr_wsgi import ConfigurationError, Settings

    with pytest.raises(ConfigurationError, match="BACKUP_SET"):
        Settings.from_env({"DATABASE_PATH": "app.db", "BACKUP_SET": bad})
