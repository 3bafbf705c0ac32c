"""The scheduler service, health check, settings and compose wiring of the backup area."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from conftest import call, hello_app, make_environ
from test_backup_support import backup_settings, listed, make_db
from voyagr_wsgi import Settings, compose
from voyagr_wsgi._build import BuildContext
from voyagr_wsgi._env import Env
from voyagr_wsgi.backups import (
    BackupManager,
    BackupScheduler,
    BackupSettings,
    deploy_checks,
)
from voyagr_wsgi.backups.area import contribute
from voyagr_wsgi.backups.health import health_source
from voyagr_wsgi.errors import ConfigurationError
from voyagr_wsgi.services import Supervisor

T0 = 1_767_322_800.0  # 2026-01-02T03:00:00Z
DAY = 86_400.0


def test_scheduler_runs_a_first_backup_once_started_by_the_supervisor(tmp_path: Path) -> None:
    make_db(tmp_path / "app.db")
    scheduler = BackupScheduler(BackupManager(backup_settings(tmp_path)))
    assert scheduler.singleton is True
    supervisor = Supervisor([scheduler], lock_path=str(tmp_path / "services.lock"))
    supervisor.start()
    try:
        assert scheduler.ran.wait(30)
    finally:
        supervisor.stop(10)
    assert len(listed(tmp_path / "backups")) == 1
    assert scheduler.state()["running"] is False


def test_stop_waits_for_a_running_backup_to_finish(tmp_path: Path) -> None:
    make_db(tmp_path / "app.db", 50, blob_bytes=32 * 1024)
    started, release = threading.Event(), threading.Event()

    def progress(done: int) -> None:
        started.set()
        release.wait(30)

    scheduler = BackupScheduler(BackupManager(backup_settings(tmp_path), progress=progress))
    scheduler.start()
    assert started.wait(30)
    stopper = threading.Thread(target=scheduler.stop, args=(30,))
    stopper.start()
    stopper.join(0.2)
    assert stopper.is_alive(), "stop() returned while the backup was still running"
    release.set()
    stopper.join(30)
    assert not stopper.is_alive()
    assert len(listed(tmp_path / "backups")) == 1


def test_next_run_is_due_one_interval_after_the_newest_backup(tmp_path: Path) -> None:
    make_db(tmp_path / "app.db")
    clock = [T0]
    manager = BackupManager(backup_settings(tmp_path, interval_hours=24), now=lambda: clock[0])
    scheduler = BackupScheduler(manager)
    assert scheduler.delay() == 0
    scheduler.tick()
    assert scheduler.delay() == DAY
    clock[0] += DAY / 2
    scheduler.tick()  # not due: nothing taken
    assert len(listed(tmp_path / "backups")) == 1 and scheduler.delay() == DAY / 2
    clock[0] += DAY / 2
    assert scheduler.delay() == 0
    scheduler.tick()
    assert len(listed(tmp_path / "backups")) == 2


def test_a_failed_run_is_retried_sooner_than_the_interval(tmp_path: Path) -> None:
    clock = [T0]
    settings = backup_settings(tmp_path, interval_hours=24, s3_retry_s=600.0)
    scheduler = BackupScheduler(BackupManager(settings, now=lambda: clock[0]))
    scheduler.tick()  # the database does not exist yet
    assert scheduler.delay() == 600.0
    make_db(tmp_path / "app.db")
    clock[0] += 600
    scheduler.tick()
    assert len(listed(tmp_path / "backups")) == 1 and scheduler.delay() == DAY


@pytest.mark.parametrize(
    ("prepare", "age_s", "status", "output"),
    [
        pytest.param("none", 0, "warn", "no verified backup yet", id="no backup yet"),
        pytest.param("backup", 3600, "pass", None, id="fresh"),
        pytest.param(
            "backup", 2 * DAY + 3 * 3600, "warn", "51.0 h old", id="older than 2x interval"
        ),
        pytest.param(
            "fail", 0, "warn", "last backup failed", id="last attempt failed: warn, never 503"
        ),
        pytest.param("fail-then-ok", 60, "pass", None, id="failure cleared by a success"),
    ],
)
def test_health_reports_the_age_of_the_last_verified_backup(
    tmp_path: Path, prepare: str, age_s: float, status: str, output: str | None
) -> None:
    clock = [T0]
    manager = BackupManager(backup_settings(tmp_path), now=lambda: clock[0])
    if prepare in ("fail", "fail-then-ok"):
        with pytest.raises(Exception, match="does not exist"):
            manager.create()
    if prepare in ("backup", "fail-then-ok"):
        make_db(tmp_path / "app.db")
        manager.create()
    clock[0] += age_s
    (check,) = health_source(manager)()
    assert check.name == "backup:age" and check.status == status
    if output is None:
        assert check.observed_value == age_s
    else:
        assert output in (check.output or "")


def test_status_has_the_fields_the_alerts_rule_reads(tmp_path: Path) -> None:
    make_db(tmp_path / "app.db")
    manager = BackupManager(backup_settings(tmp_path, interval_hours=6), now=lambda: T0)
    assert manager.status()["last_success_ts"] is None
    manager.create()
    status = manager.status()
    assert status["last_success_ts"] == T0 and status["interval_s"] == 6 * 3600
    assert status["last_failure_ts"] is None and status["last_error"] is None
    # another process (a fresh manager) reads the same status
    assert BackupManager(backup_settings(tmp_path)).status()["last_success_ts"] == T0


def test_setup_registers_manager_routes_health_and_a_singleton_service(tmp_path: Path) -> None:
    settings = Settings(backups=backup_settings(tmp_path))
    context = BuildContext(settings)
    contribute(settings, context)
    assert isinstance(context.backups, BackupManager)
    assert sorted((r.method, r.path) for r in context.admin_routes) == [
        ("GET", "backup/jobs/{id}"),
        ("GET", "backups"),
        ("GET", "backups/retention"),
        ("POST", "backup/create"),
        ("POST", "backup/restore/{name}"),
    ]
    assert len(context.health.sources) == 1
    (service,) = context.services
    assert service.singleton and service.name == "backups"
    assert not (tmp_path / "backups").exists(), "nothing is created before start()"


@pytest.mark.parametrize(
    ("changes", "services", "routes"),
    [
        pytest.param({"database_path": ""}, 0, 0, id="no DATABASE_PATH: area off"),
        pytest.param({"enabled": False}, 0, 5, id="BACKUP_ENABLED off: no scheduler"),
    ],
)
def test_setup_respects_the_switches(
    tmp_path: Path, changes: dict[str, Any], services: int, routes: int
) -> None:
    settings = Settings(backups=backup_settings(tmp_path, **changes))
    context = BuildContext(settings)
    contribute(settings, context)
    assert len(context.services) == services and len(context.admin_routes) == routes


def test_composed_stack_serves_the_backup_list_to_loopback(tmp_path: Path) -> None:
    make_db(tmp_path / "app.db")
    settings = Settings(backups=backup_settings(tmp_path, enabled=False))
    stack = compose(hello_app, settings)
    made = stack.components["backups"].create()
    result = call(
        stack, make_environ("/api/production/backups", remote="127.0.0.1", host="localhost")
    )
    assert result.code == 200
    doc = json.loads(result.body)
    assert [b["id"] for b in doc["stores"]["local"]["backups"]] == [made.id]
    assert doc["status"]["last_success_ts"] == made.created_ts
    outsider = call(stack, make_environ("/api/production/backups", remote="203.0.113.9"))
    assert outsider.code == 404


@pytest.mark.parametrize(
    ("env", "message"),
    [
        pytest.param({"BACKUP_INTERVAL_HOURS": "0"}, "BACKUP_INTERVAL_HOURS", id="zero interval"),
        pytest.param({"BACKUP_RETENTION_DAILY": "-1"}, "BACKUP_RETENTION_DAILY", id="negative"),
        pytest.param(
            {
                "BACKUP_RETENTION_DAILY": "0",
                "BACKUP_RETENTION_WEEKLY": "0",
                "BACKUP_RETENTION_MONTHLY": "0",
            },
            "empty retention policy",
            id="empty policy",
        ),
        pytest.param({"S3_BACKUP_ENABLED": "true"}, "S3_BUCKET", id="s3 without bucket"),
        pytest.param({"S3_SSE": "des"}, "S3_SSE", id="unknown sse"),
        pytest.param(
            {"S3_BACKUP_ENABLED": "1", "S3_BUCKET": "b", "S3_SSE": "aws:kms"},
            "S3_KMS_KEY_ID",
            id="kms without key",
        ),
        pytest.param({"S3_PREFIX": "backups"}, "S3_PREFIX", id="prefix without slash"),
        pytest.param({"S3_PREFIX": "../x/"}, "S3_PREFIX", id="prefix with dot-dot"),
        pytest.param(
            {"S3_MULTIPART_CHUNKSIZE_MB": "1"}, "S3_MULTIPART_CHUNKSIZE_MB", id="tiny part"
        ),
        pytest.param({"BACKUP_ENABLED": "maybe"}, "BACKUP_ENABLED", id="not a boolean"),
    ],
)
def test_bad_settings_raise_naming_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        BackupSettings.from_env(Env(env))


def test_settings_read_every_variable() -> None:
    env = Env(
        {
            "DATABASE_PATH": "/data/app.db",
            "BACKUP_DIR": "/data/backups",
            "BACKUP_INTERVAL_HOURS": "6",
            "BACKUP_RETENTION_DAILY": "3",
            "S3_BACKUP_ENABLED": "yes",
            "S3_BUCKET": "bk-1",
            "S3_SSE": "aws:kms",
            "S3_KMS_KEY_ID": "alias/x",
            "S3_MULTIPART_CHUNKSIZE_MB": "8",
        }
    )
    got = BackupSettings.from_env(env)
    assert (got.database_path, got.backup_dir, got.interval_s) == (
        "/data/app.db",
        "/data/backups",
        21600,
    )
    assert (got.retention_daily, got.retention_weekly, got.retention_monthly) == (3, 4, 12)
    assert (got.s3_enabled, got.s3_bucket, got.s3_sse, got.s3_kms_key_id) == (
        True,
        "bk-1",
        "aws:kms",
        "alias/x",
    )
    assert got.s3_multipart_chunksize == 8 * 1024 * 1024


def test_documented_env_fragment_lists_every_variable_read() -> None:
    root = Path(__file__).resolve().parent.parent
    documented = {
        line.split("=", 1)[0]
        for line in (root / "docs/env/50-backups.env").read_text().splitlines()
        if line and not line.startswith("#")
    }
    source = (root / "src/voyagr_wsgi/backups/config.py").read_text()
    import re

    read = set(re.findall(r'env\.\w+\(\s*"([A-Z0-9_]+)"', source)) | {"S3_SSE"}
    assert read == documented


@pytest.mark.parametrize(
    ("changes", "codes"),
    [
        pytest.param({"database_path": ""}, [], id="area off"),
        pytest.param(
            {"database_path": "", "s3_enabled": True, "s3_bucket": "b"}, ["E501"], id="s3 no db"
        ),
        pytest.param({}, ["W501", "W503"], id="missing db, local only"),
        pytest.param({"backup_dir": "."}, ["W501", "W502", "W503"], id="backups beside the db"),
        pytest.param(
            {"s3_enabled": True, "s3_bucket": "b", "enabled": False},
            ["W501", "W504"],
            id="no schedule",
        ),
    ],
)
def test_deploy_checks(changes: dict[str, Any], codes: list[str]) -> None:
    values: dict[str, Any] = {"database_path": "./missing.db", "backup_dir": "/srv/backups"}
    values.update(changes)
    found = deploy_checks(Settings(backups=BackupSettings(**values)))
    assert [f.code.split(".")[1] for f in found] == codes
