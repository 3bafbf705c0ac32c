"""PostgreSQL backups on a real cluster (initdb + pg_ctl on loopback, ``pg_helpers``).

Create, list, verify, restore, retention, pins, S3, the admin endpoints and the CLI, with
the same shared pipeline as SQLite; the engine's own checks (client version, full archive
read, scratch restore, schema comparison) and where the password may never appear.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
import secrets
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import call, free_port, hello_app, make_environ, require_tool
from pg_helpers import PASSWORD, Cluster
from test_backup_support import listed
from voyagr_wsgi import ConfigurationError
from voyagr_wsgi._env import Env
from voyagr_wsgi.admin import Admin
from voyagr_wsgi.backups import BackupManager, BackupScheduler, BackupSettings
from voyagr_wsgi.backups.endpoints import routes
from voyagr_wsgi.errors import BackupError, BackupIncompatible, BackupVerificationError
from voyagr_wsgi.secret import Secret

pytestmark = pytest.mark.timeout(180)

TOKEN = "pg-backups-token-" + "p" * 16
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ROWS_SQL = "SELECT id, tag, n FROM items ORDER BY id"


@pytest.fixture
def db(pg_cluster: Cluster) -> Iterator[str]:
    """A fresh database with ``items(id, tag, n)`` and 2000 rows; dropped afterwards."""
    name = f"t_{secrets.token_hex(4)}"
    pg_cluster.sql(f'CREATE DATABASE "{name}"')
    pg_cluster.sql(
        "CREATE TABLE items (id serial PRIMARY KEY, tag text NOT NULL, n int);"
        "INSERT INTO items (tag, n) SELECT md5(g::text), g FROM generate_series(1, 2000) g",
        name,
    )
    try:
        yield name
    finally:
        pg_cluster.sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def pg_settings(cluster: Cluster, db: str, tmp_path: Path, **changes: Any) -> BackupSettings:
    values: dict[str, Any] = {
        "database_url": Secret(cluster.url(db)),
        "backup_dir": str(tmp_path / "backups"),
    }
    values.update(changes)
    return BackupSettings(**values)


def pg_env(cluster: Cluster, db: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("S3_", "BACKUP_", "DATABASE_", "PG"))
    }
    env.update(
        DATABASE_URL=cluster.url(db),
        BACKUP_DIR=str(tmp_path / "backups"),
        VOYAGR_STATE_DIR=str(tmp_path / "state"),
    )
    env.update(extra)
    return env


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "voyagr_wsgi.cli", "backup", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def leftovers(tmp_path: Path) -> list[str]:
    """Files in the backup folder other than the status/lock files and empty folders."""
    folder = tmp_path / "backups"
    return sorted(
        p.name for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".voyagr-backup")
    )


# -- settings ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("values", "match"),
    [
        pytest.param(
            {"database_url": Secret("mysql://u:hunter2@h/db")}, "DATABASE_URL", id="not postgresql"
        ),
        pytest.param({"database_url": Secret("hunter2")}, "DATABASE_URL", id="no scheme"),
        pytest.param(
            {"database_url": Secret("postgresql://u:hunter2@h/db"), "database_path": "/d/app.db"},
            "DATABASE_PATH and DATABASE_URL are both set",
            id="both engines",
        ),
    ],
)
def test_a_bad_database_url_is_a_configuration_error_without_the_password(
    values: dict[str, Any], match: str
) -> None:
    with pytest.raises(ConfigurationError, match=match) as caught:
        BackupSettings(**values)
    assert "hunter2" not in str(caught.value)


def test_both_engines_in_the_environment_is_a_configuration_error() -> None:
    env = {"DATABASE_URL": "postgresql://u:hunter2@h/db", "DATABASE_PATH": "/data/app.db"}
    with pytest.raises(ConfigurationError, match="both set") as caught:
        BackupSettings.from_env(Env(env))
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize(
    "url", ["sqlite:///app.db", "mysql://u:hunter2@h/db", "hunter2"], ids=["sqlite", "mysql", "x"]
)
def test_another_softwares_database_url_is_left_alone_with_a_check_warning(url: str) -> None:
    from voyagr_wsgi.backups import deploy_checks
    from voyagr_wsgi.settings import Settings

    env = {"DATABASE_URL": url, "DATABASE_PATH": "/data/app.db"}
    settings = BackupSettings.from_env(Env(env))
    assert settings.engine == "sqlite" and settings.database_url is None
    found = deploy_checks(Settings(backups=settings), environ=env)
    [note] = [f for f in found if f.code == "voyagr.W506"]
    assert "ignore" in note.message and "hunter2" not in note.message


def test_database_url_selects_postgresql_and_never_shows_its_password() -> None:
    settings = BackupSettings.from_env(
        Env({"DATABASE_URL": "postgres://app:hunter2@db.internal:5432/shop?sslmode=require"})
    )
    assert settings.engine == "postgresql" and settings.set_name == "shop"
    assert "hunter2" not in repr(settings)
    assert BackupSettings.from_env(Env({"DATABASE_PATH": "/d/app.db"})).engine == "sqlite"


def test_a_password_goes_to_a_private_passfile_removed_afterwards(tmp_path: Path) -> None:
    from voyagr_wsgi.backups.pg_client import PgClient

    staging = tmp_path / "staging"
    staging.mkdir()
    stale = staging / ".pgpass-0123456789abcdef"
    stale.write_text("*:*:*:*:old\n")
    os.utime(stale, (time.time() - 7200, time.time() - 7200))  # left by a killed process
    client = PgClient(Secret("postgresql://app:p%3Aw%5Cd@db:5432/app"), staging=str(staging))
    assert client.url == "postgresql://app@db:5432/app" and "p:w" not in repr(client)
    with client.env() as env:
        path = Path(env["PGPASSFILE"])
        assert stat.S_IMODE(path.stat().st_mode) == 0o600 and "PGPASSWORD" not in env
        assert path.read_text() == "*:*:*:*:p\\:w\\\\d\n"  # libpq's escapes
        assert not stale.exists()
    assert not path.exists()


def test_missing_client_tools_are_a_deploy_warning(tmp_path: Path) -> None:
    from voyagr_wsgi.backups import deploy_checks
    from voyagr_wsgi.settings import Settings

    config = BackupSettings(
        database_url=Secret("postgresql://app@db/app"), pg_bin_dir=str(tmp_path)
    )
    found = deploy_checks(Settings(backups=config))
    assert [f.code for f in found if f.code.endswith("W505")] == ["voyagr.W505"] * 3
    assert not [f for f in found if f.code.endswith(("W501", "W502"))]


def test_a_sqlite_manager_never_loads_the_postgresql_engine(tmp_path: Path) -> None:
    code = (
        "import sys, sqlite3; sqlite3.connect(sys.argv[1]).close();"
        "from voyagr_wsgi.backups import BackupManager, BackupSettings;"
        "BackupManager(BackupSettings(database_path=sys.argv[1], backup_dir=sys.argv[2]));"
        "print(sorted(m for m in sys.modules if 'pg_' in m or m.endswith('postgres')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "a.db"), str(tmp_path / "b")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == "[]", done.stdout


# -- create, list, verify, restore through the CLI -----------------------------------------
def test_cli_creates_lists_verifies_and_restores_the_rows_as_they_were(
    pg_cluster: Cluster, db: str, tmp_path: Path
) -> None:
    env = pg_env(pg_cluster, db, tmp_path)
    made = cli(env, "create")
    assert made.returncode == 0, made.stderr
    backup_id = made.stdout.split()[1]
    listing = json.loads(cli(env, "list", "--json").stdout)
    [doc] = listing["local"]["backups"]
    assert doc["id"] == backup_id and doc["engine"] == "postgresql" and doc["verified"]
    assert doc["server_version"].isdigit() and doc["backup_set"] == db
    data = (tmp_path / "backups" / f"{backup_id}.db.gz").read_bytes()
    raw = gzip.decompress(data)
    assert raw[:5] == b"PGDMP", "the object is a gzipped custom-format archive"
    assert hashlib.sha256(raw).hexdigest() == doc["sha256_db"] and len(raw) == doc["db_bytes"]
    assert hashlib.sha256(data).hexdigest() == doc["sha256_gz"]
    assert stat.S_IMODE((tmp_path / "backups" / f"{backup_id}.db.gz").stat().st_mode) == 0o600

    checked = cli(env, "verify", backup_id)
    assert checked.returncode == 0, checked.stderr

    before = pg_cluster.sql(ROWS_SQL, db)
    pg_cluster.sql(
        "UPDATE items SET tag = 'changed' WHERE id % 3 = 0; DELETE FROM items WHERE id > 1500;"
        "INSERT INTO items (tag, n) VALUES ('new', -1)",
        db,
    )
    assert pg_cluster.sql(ROWS_SQL, db) != before
    restored = cli(env, "restore", backup_id)
    assert restored.returncode == 0, restored.stderr
    assert pg_cluster.sql(ROWS_SQL, db) == before
    assert "pre-restore safety backup" in restored.stdout
    manifests = json.loads(cli(env, "list", "--json").stdout)["local"]["backups"]
    safety = [m for m in manifests if m["reason"] == "pre-restore"]
    assert len(safety) == 1 and safety[0]["pinned"] is True
    # the sequence is restored too: the next insert continues after the backup's last id
    pg_cluster.sql("INSERT INTO items (tag) VALUES ('after')", db)
    assert pg_cluster.sql("SELECT max(id) FROM items", db).strip() == "2001"

    unpinned = cli(env, "unpin", safety[0]["id"])
    assert unpinned.returncode == 0 and "unpinned" in unpinned.stdout, unpinned.stderr
    pinned = cli(env, "pin", backup_id)
    assert pinned.returncode == 0 and "pinned" in pinned.stdout, pinned.stderr
    plan = cli(env, "prune", "--dry-run")
    assert plan.returncode == 0 and "[local] keep 2, would delete 0" in plan.stdout, plan.stdout
    assert cli(env, "verify", "20260101T000000Z-00000000").returncode == 1
    assert cli(env, "restore", "../../etc/passwd").returncode == 1


def test_a_schema_change_refuses_the_restore_unless_forced(
    pg_cluster: Cluster, db: str, tmp_path: Path
) -> None:
    manager = BackupManager(pg_settings(pg_cluster, db, tmp_path))
    made = manager.create()
    pg_cluster.sql("ALTER TABLE items ADD COLUMN extra int DEFAULT 7", db)
    with pytest.raises(BackupIncompatible, match="schema"):
        manager.restore(made.id)
    assert "extra" in pg_cluster.sql("SELECT column_name FROM information_schema.columns", db)
    result = manager.restore(made.id, force=True)
    assert result["restored"] == made.id
    columns = pg_cluster.sql(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'items'", db
    )
    assert "extra" not in columns


def test_a_forced_restore_that_fails_in_pg_restore_changes_nothing(
    pg_cluster: Cluster, db: str, tmp_path: Path
) -> None:
    manager = BackupManager(pg_settings(pg_cluster, db, tmp_path))
    made = manager.create()
    # a view created since depends on the table: --clean cannot drop it, pg_restore fails
    pg_cluster.sql("CREATE VIEW big AS SELECT * FROM items WHERE n > 1000", db)
    pg_cluster.sql("DELETE FROM items WHERE id <= 10", db)
    before = pg_cluster.sql(ROWS_SQL, db)
    with pytest.raises(BackupError, match="nothing was changed") as caught:
        manager.restore(made.id, force=True)
    assert "depend" in str(caught.value)
    assert pg_cluster.sql(ROWS_SQL, db) == before
    assert pg_cluster.sql("SELECT count(*) FROM big", db).strip() == "1000"


def test_retention_and_pins_apply_per_backup_set(
    pg_cluster: Cluster, db: str, tmp_path: Path
) -> None:
    clock = [1_767_225_600.0]  # 2026-01-01
    settings = pg_settings(
        pg_cluster,
        db,
        tmp_path,
        retention_daily=2,
        retention_weekly=0,
        retention_monthly=0,
        retention_min_keep=1,
    )
    manager = BackupManager(settings, now=lambda: clock[0])
    made = []
    for _ in range(4):
        made.append(manager.create(pinned=not made))  # the first one pinned
        clock[0] += 86_400.0
    assert listed(tmp_path / "backups") == [made[0].id, made[2].id, made[3].id]
    manager.unpin(made[0].id)
    manager.prune()
    assert listed(tmp_path / "backups") == [made[2].id, made[3].id]


# -- the admin endpoints -------------------------------------------------------------------
def post(app: Admin, path: str, query: str = "") -> Any:
    return call(
        app, make_environ("/api/production/" + path, method="POST", headers=AUTH, query=query)
    )


def finished(app: Admin, location: str) -> dict[str, Any]:
    end = time.monotonic() + 120
    while time.monotonic() < end:
        job: dict[str, Any] = json.loads(call(app, make_environ(location, headers=AUTH)).body)
        if job["state"] in ("succeeded", "failed"):
            return job
        time.sleep(0.05)
    raise AssertionError("the job never finished")


def test_endpoints_create_list_and_restore_with_409_on_a_schema_change(
    pg_cluster: Cluster, db: str, tmp_path: Path
) -> None:
    manager = BackupManager(pg_settings(pg_cluster, db, tmp_path))
    first = manager.create()  # the scheduled backup is not due: the service only runs jobs
    scheduler = BackupScheduler(manager, poll_s=0.05)
    scheduler.start()
    try:
        app = Admin(hello_app, routes=routes(manager), token=Secret(TOKEN))
        accepted = post(app, "backup/create")
        assert accepted.code == 202, accepted.body
        job = finished(app, accepted.header("Location") or "")
        assert job["state"] == "succeeded", job
        backup_id = job["result"]["backup"]["id"]
        listing = json.loads(call(app, make_environ("/api/production/backups", headers=AUTH)).body)
        ids = [b["id"] for b in listing["stores"]["local"]["backups"]]
        assert ids == [backup_id, first.id]  # newest first

        before = pg_cluster.sql(ROWS_SQL, db)
        pg_cluster.sql("DELETE FROM items WHERE id < 100", db)
        job = finished(app, post(app, f"backup/restore/{backup_id}").header("Location") or "")
        assert job["state"] == "succeeded", job
        assert job["result"]["restored"] == backup_id
        assert pg_cluster.sql(ROWS_SQL, db) == before

        pg_cluster.sql("CREATE INDEX items_tag ON items (tag)", db)
        refused = post(app, f"backup/restore/{backup_id}")
        assert refused.code == 409, refused.body
        assert json.loads(refused.body)["type"].endswith("backup-incompatible")
        forced = post(app, f"backup/restore/{backup_id}", "force=1")
        assert forced.code == 202
        assert finished(app, forced.header("Location") or "")["state"] == "succeeded"
        assert "items_tag" not in pg_cluster.sql("SELECT indexname FROM pg_indexes", db)
        assert post(app, "backup/restore/..%2F..%2Fetc").code in (400, 404)
        kept = json.loads(
            call(app, make_environ("/api/production/backups/retention", headers=AUTH)).body
        )
        assert backup_id in kept["local"]["keep"] and kept["local"]["delete"] == []
    finally:
        scheduler.stop(30)


# -- S3 ------------------------------------------------------------------------------------
def test_s3_upload_verify_and_restore_from_s3(
    pg_cluster: Cluster, db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from test_s3 import client, start_moto

    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_CONFIG_FILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    server, url = start_moto()
    try:
        client(url).create_bucket(Bucket="pg-backups")
        settings = pg_settings(
            pg_cluster,
            db,
            tmp_path,
            s3_enabled=True,
            s3_bucket="pg-backups",
            s3_endpoint_url=url,
            s3_region="us-east-1",
        )
        manager = BackupManager(settings)
        made = manager.create()
        stores = manager.list()
        assert [m.id for m in stores["s3"].manifests] == [made.id]
        assert stores["s3"].manifests[0].engine == "postgresql"
        for suffix in (".db.gz", ".json"):  # only S3 has it now
            os.unlink(tmp_path / "backups" / f"{made.id}{suffix}")
        assert manager.verify(made.id).id == made.id
        before = pg_cluster.sql(ROWS_SQL, db)
        pg_cluster.sql("TRUNCATE items", db)
        manager.restore(made.id)
        assert pg_cluster.sql(ROWS_SQL, db) == before
    finally:
        server.stop()


# -- the engine's own checks ---------------------------------------------------------------
def fake_bin(tmp_path: Path, cluster: Cluster, **scripts: str) -> Path:
    """A PG_BIN_DIR: the real client tools, except ``scripts`` (name -> shell body)."""
    folder = tmp_path / "pgbin"
    folder.mkdir(exist_ok=True)
    for tool in ("pg_dump", "pg_restore", "psql"):
        target = folder / tool
        if tool in scripts:
            real = os.path.join(cluster.bin_dir, tool)
            target.write_text(f"#!/bin/sh\nREAL={real}\n{scripts[tool]}\n")
            target.chmod(0o755)
        else:
            target.symlink_to(os.path.join(cluster.bin_dir, tool))
    return folder


def test_an_older_pg_dump_is_refused_naming_both_versions(
    pg_cluster: Cluster, db: str, tmp_path: Path
) -> None:
    old = 'if [ "$1" = --version ]; then echo "pg_dump (PostgreSQL) 12.9"; exit 0; fi\nexit 99'
    folder = fake_bin(tmp_path, pg_cluster, pg_dump=old)
    manager = BackupManager(pg_settings(pg_cluster, db, tmp_path, pg_bin_dir=str(folder)))
    server = int(pg_cluster.sql("SHOW server_version_num")) // 10000
    with pytest.raises(BackupError, match=f"pg_dump 12 .* PostgreSQL {server} server"):
        manager.create()
    assert leftovers(tmp_path) == []
    assert "pg_dump 12" in (manager.status()["last_error"] or "")


def test_a_truncated_archive_fails_verification_and_nothing_is_kept(
    pg_cluster: Cluster, db: str, tmp_path: Path
) -> None:
    # pg_restore --list would accept it (it reads only the table of contents)
    truncating = '[ "$1" = --version ] && exec $REAL "$@"\n$REAL "$@" | head -c 30000'
    folder = fake_bin(tmp_path, pg_cluster, pg_dump=truncating)
    manager = BackupManager(pg_settings(pg_cluster, db, tmp_path, pg_bin_dir=str(folder)))
    with pytest.raises(BackupVerificationError, match="full read"):
        manager.create()
    assert leftovers(tmp_path) == []
    assert listed(tmp_path / "backups") == []


def test_a_stored_archive_with_a_damaged_data_section_fails_verify(
    pg_cluster: Cluster, db: str, tmp_path: Path
) -> None:
    manager = BackupManager(pg_settings(pg_cluster, db, tmp_path))
    made = manager.create()
    path = tmp_path / "backups" / made.data_name
    raw = gzip.decompress(path.read_bytes())[:-2000]  # the last data block cut short
    blob = gzip.compress(raw, mtime=0)
    path.write_bytes(blob)
    consistent = made.with_(
        db_bytes=len(raw),
        sha256_db=hashlib.sha256(raw).hexdigest(),
        gz_bytes=len(blob),
        sha256_gz=hashlib.sha256(blob).hexdigest(),
    )
    manager.local.write_manifest(consistent)  # the hashes match: only pg_restore can tell
    with pytest.raises(BackupVerificationError, match="full read"):
        manager.verify(made.id)


def test_pg_dump_errors_are_reported_and_nothing_is_kept(
    pg_cluster: Cluster, db: str, tmp_path: Path
) -> None:
    failing = '[ "$1" = --version ] && exec $REAL "$@"\necho "pg_dump: error: boom" >&2\nexit 1'
    folder = fake_bin(tmp_path, pg_cluster, pg_dump=failing)
    manager = BackupManager(pg_settings(pg_cluster, db, tmp_path, pg_bin_dir=str(folder)))
    with pytest.raises(BackupError, match=r"pg_dump failed \(exit 1\): pg_dump: error: boom"):
        manager.create()
    assert leftovers(tmp_path) == []


def test_the_password_is_never_on_a_command_line_nor_in_logs_or_errors(
    pg_cluster: Cluster, db: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    record = tmp_path / "argv.log"
    spy = (
        f'printf "%s\\n" "$0 $*" >> {record}\n'
        f'[ -n "$PGPASSWORD" ] && echo PGPASSWORD-SET >> {record}\n'
        f'[ -n "$PGPASSFILE" ] && stat -c "passfile %a" "$PGPASSFILE" >> {record}\n'
        'exec $REAL "$@"'
    )
    folder = fake_bin(tmp_path, pg_cluster, pg_dump=spy, pg_restore=spy, psql=spy)
    settings = pg_settings(pg_cluster, db, tmp_path, pg_bin_dir=str(folder))
    manager = BackupManager(settings)
    with caplog.at_level(logging.DEBUG):
        made = manager.create()
        manager.verify(made.id)
        manager.restore(made.id)
        pg_cluster.sql("ALTER TABLE items ADD COLUMN x int", db)
        with pytest.raises(BackupIncompatible) as refused:
            manager.restore(made.id)
    calls = record.read_text()
    assert "pg_dump --format=custom" in calls and "--single-transaction" in calls
    assert PASSWORD not in calls and "s3cr" not in calls
    assert "PGPASSWORD-SET" not in calls
    assert "passfile 600" in calls
    assert PASSWORD not in caplog.text and PASSWORD not in str(refused.value)
    assert PASSWORD not in repr(manager.engine) and PASSWORD not in repr(settings)
    assert not [p for p in (tmp_path / "backups").rglob(".pgpass-*")], "passfiles removed"


def test_a_wrong_password_is_reported_without_it(
    pg_cluster: Cluster, db: str, tmp_path: Path
) -> None:
    url = pg_cluster.url(db).replace("s3cr", "Zq9bad")
    manager = BackupManager(pg_settings(pg_cluster, db, tmp_path, database_url=Secret(url)))
    with pytest.raises(BackupError, match="password authentication failed") as caught:
        manager.create()
    assert "Zq9bad" not in str(caught.value)


def test_an_unreachable_server_is_a_clear_error_and_the_app_keeps_serving(
    tmp_path: Path,
) -> None:
    require_tool("psql", "apt-get install postgresql-client (make test does)")
    url = f"postgresql://app:{PASSWORD}@127.0.0.1:{free_port()}/app"
    settings = BackupSettings(database_url=Secret(url), backup_dir=str(tmp_path / "backups"))
    manager = BackupManager(settings)
    with pytest.raises(BackupError, match=r"connecting to postgresql://app@127\.0\.0\.1") as caught:
        manager.create()
    assert PASSWORD not in str(caught.value)
    assert "connecting to" in (manager.status()["last_error"] or "")
    app = Admin(hello_app, routes=routes(manager), token=Secret(TOKEN))
    assert call(app, make_environ("/")).body == b"hello"
    from voyagr_wsgi.backups.health import health_source

    [check] = health_source(manager)()
    assert check.status == "warn" and "last backup failed" in (check.output or "")
    listing = call(app, make_environ("/api/production/backups", headers=AUTH))
    assert listing.code == 200 and "connecting to" in listing.body.decode()


def test_verify_restore_records_row_counts_and_drops_the_scratch_database(
    pg_cluster: Cluster, db: str, tmp_path: Path
) -> None:
    pg_cluster.sql("CREATE TABLE other (k text); INSERT INTO other VALUES ('a'), ('b')", db)
    manager = BackupManager(pg_settings(pg_cluster, db, tmp_path, verify_restore=True))
    made = manager.create()
    assert made.row_counts == {"public.items": 2000, "public.other": 2}
    doc = json.loads((tmp_path / "backups" / made.manifest_name).read_text())
    assert doc["row_counts"] == {"public.items": 2000, "public.other": 2}
    assert "voyagr_verify" not in pg_cluster.sql("SELECT datname FROM pg_database")


def test_a_failing_scratch_restore_keeps_nothing_and_still_drops_the_scratch_database(
    pg_cluster: Cluster, db: str, tmp_path: Path
) -> None:
    # a CHECK that holds in the live database and fails in any other: the scratch restore
    # of its rows fails for real
    pg_cluster.sql(
        "CREATE FUNCTION not_scratch() RETURNS boolean LANGUAGE sql "
        "AS $$ SELECT current_database() NOT LIKE 'voyagr_verify%' $$;"
        "CREATE TABLE guarded (k int CHECK (not_scratch())); INSERT INTO guarded VALUES (1)",
        db,
    )
    manager = BackupManager(pg_settings(pg_cluster, db, tmp_path, verify_restore=True))
    with pytest.raises(BackupVerificationError, match="scratch restore"):
        manager.create()
    assert leftovers(tmp_path) == []
    assert "voyagr_verify" not in pg_cluster.sql("SELECT datname FROM pg_database")


def test_pg_bin_dir_without_the_tool_names_the_setting(
    pg_cluster: Cluster, db: str, tmp_path: Path
) -> None:
    manager = BackupManager(pg_settings(pg_cluster, db, tmp_path, pg_bin_dir=str(tmp_path)))
    with pytest.raises(BackupError, match=r"PG_BIN_DIR=.* has no executable pg_dump"):
        manager.create()
