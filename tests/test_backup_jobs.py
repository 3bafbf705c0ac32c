"""Backups and restores as jobs: 202 + Location at once, run by the scheduler service."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import Result, call, hello_app, make_environ
from test_backup_support import backup_settings, listed, make_db, rows
from voyagr_wsgi.admin import Admin
from voyagr_wsgi.backups import BackupManager, BackupScheduler
from voyagr_wsgi.backups.endpoints import routes
from voyagr_wsgi.backups.jobs import KEEP_FINISHED, JobQueue
from voyagr_wsgi.secret import Secret

MIB = 1024 * 1024


TOKEN = "jobs-token-" + "j" * 16  # state changes need the admin token
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def post(app: Admin, path: str, query: str = "") -> Result:
    env = make_environ("/api/production/" + path, method="POST", headers=AUTH, query=query)
    return call(app, env)


def get(app: Admin, location: str) -> Result:
    return call(app, make_environ(location, headers=AUTH))


def wait_for(app: Admin, location: str, *states: str, timeout_s: float = 60.0) -> dict[str, Any]:
    end = time.monotonic() + timeout_s
    while True:
        answer = get(app, location)
        assert answer.code == 200, answer.body
        job: dict[str, Any] = json.loads(answer.body)
        if job["state"] in states or time.monotonic() > end:
            return job
        time.sleep(0.05)


class Gate:
    """A progress callback that holds the backup after its first chunk until released."""

    def __init__(self) -> None:
        self.armed = False
        self.reached = threading.Event()
        self.release = threading.Event()

    def __call__(self, done: int) -> None:
        if self.armed:
            self.reached.set()
            assert self.release.wait(60), "the test never released the backup"


@pytest.fixture
def service(tmp_path: Path) -> Iterator[tuple[Admin, BackupManager, Gate]]:
    make_db(tmp_path / "app.db", 6, blob_bytes=MIB)  # ~6 MiB: several 1 MiB progress steps
    gate = Gate()
    manager = BackupManager(backup_settings(tmp_path), progress=gate)
    manager.create()  # the scheduled backup is not due: the service only runs jobs
    gate.armed = True
    scheduler = BackupScheduler(manager, poll_s=0.05)
    scheduler.start()
    try:
        yield Admin(hello_app, routes=routes(manager), token=Secret(TOKEN)), manager, gate
    finally:
        gate.release.set()
        scheduler.stop(30)


def test_create_answers_202_with_a_location_at_once_while_the_service_runs_the_backup(
    service: tuple[Admin, BackupManager, Gate],
) -> None:
    app, manager, gate = service
    started = time.perf_counter()
    accepted = post(app, "backup/create")
    answered_s = time.perf_counter() - started
    assert accepted.code == 202, accepted.body
    assert answered_s < 1.0, answered_s
    location = accepted.header("Location")
    job = json.loads(accepted.body)
    assert location == f"/api/production/backup/jobs/{job['id']}"
    assert job["state"] == "queued" and job["kind"] == "create"

    assert gate.reached.wait(30), "the service never picked the job up"
    running = wait_for(app, location or "", "running")
    assert running["state"] == "running"
    progress = running["progress"]
    assert progress["phase"] == "compress"
    assert progress["bytes_total"] >= 6 * MIB
    assert 0 < progress["bytes_done"] < progress["bytes_total"]
    busy = post(app, "backup/create")  # the backup lock is held by the running job
    assert busy.code == 409 and busy.header("Content-Type") == "application/problem+json"

    gate.release.set()
    done = wait_for(app, location or "", "succeeded", "failed")
    assert done["state"] == "succeeded", done
    made = done["result"]["backup"]
    assert made["id"] in listed(manager.local.directory)
    assert done["finished_ts"] >= done["started_ts"] >= done["submitted_ts"]


def test_restore_runs_as_a_job_and_restores(
    tmp_path: Path, service: tuple[Admin, BackupManager, Gate]
) -> None:
    app, manager, gate = service
    gate.armed = False
    made = manager.local.list().manifests[-1]
    make_db(tmp_path / "app.db", 3, tag="since")
    accepted = post(app, f"backup/restore/{made.id}")
    assert accepted.code == 202, accepted.body
    done = wait_for(app, accepted.header("Location") or "", "succeeded", "failed")
    assert done["state"] == "succeeded", done
    assert done["result"]["restored"] == made.id
    assert done["progress"]["phase"] == "verify"
    assert done["progress"]["bytes_total"] == made.db_bytes
    assert rows(tmp_path / "app.db") == 6 and rows(tmp_path / "app.db", "WHERE tag='since'") == 0


def test_a_failing_job_ends_failed_with_a_problem(
    tmp_path: Path, service: tuple[Admin, BackupManager, Gate]
) -> None:
    app, manager, gate = service
    gate.armed = False
    made = manager.local.list().manifests[-1]
    gz = tmp_path / "backups" / made.data_name
    data = bytearray(gz.read_bytes())
    data[len(data) // 2] ^= 0xFF
    gz.write_bytes(bytes(data))
    accepted = post(app, f"backup/restore/{made.id}")
    assert accepted.code == 202  # found locally, same schema: the damage shows in the job
    done = wait_for(app, accepted.header("Location") or "", "succeeded", "failed")
    assert done["state"] == "failed"
    problem = done["problem"]
    assert problem["type"].endswith("/backup-verification-failed") and problem["status"] == 422
    assert "SHA-256" in problem["detail"]
    assert rows(tmp_path / "app.db") == 6


@pytest.mark.parametrize(
    ("job_id", "code"),
    [
        pytest.param("0123456789abcdef", 404, id="unknown id"),
        pytest.param("..%2f..%2fapp", 400, id="encoded traversal"),
        pytest.param("%2e%2e", 400, id="encoded dot-dot"),
        pytest.param("0123456789ABCDEF", 400, id="uppercase"),
        pytest.param("0123456789abcdef.json", 400, id="with extension"),
    ],
)
def test_job_status_refuses_unknown_and_malformed_ids(
    tmp_path: Path, job_id: str, code: int
) -> None:
    make_db(tmp_path / "app.db", 3)
    manager = BackupManager(backup_settings(tmp_path))
    (tmp_path / "backups").mkdir()
    (tmp_path / "app.json").write_text('{"id": "leak"}')
    app = Admin(hello_app, routes=routes(manager), token=Secret(TOKEN))
    answer = get(app, f"/api/production/backup/jobs/{job_id}")
    assert answer.code == code
    assert answer.header("Content-Type") == "application/problem+json"
    assert b"leak" not in answer.body


def test_without_a_services_process_a_job_stays_queued(tmp_path: Path) -> None:
    make_db(tmp_path / "app.db", 3)
    manager = BackupManager(backup_settings(tmp_path))
    app = Admin(hello_app, routes=routes(manager), token=Secret(TOKEN))
    accepted = post(app, "backup/create")
    assert accepted.code == 202
    job = json.loads(get(app, accepted.header("Location") or "").body)
    assert job["state"] == "queued" and "services" in job["note"]
    assert listed(tmp_path / "backups") == []


def test_a_job_left_running_by_a_killed_process_is_failed_when_the_runner_starts(
    tmp_path: Path,
) -> None:
    make_db(tmp_path / "app.db", 3)
    manager = BackupManager(backup_settings(tmp_path))
    job = manager.jobs.submit("create")
    manager.jobs.update(job, state="running")
    scheduler = BackupScheduler(manager, poll_s=0.05)
    scheduler.start()
    try:
        end = time.monotonic() + 30
        while manager.jobs.get(job["id"])["state"] == "running" and time.monotonic() < end:
            time.sleep(0.05)
    finally:
        scheduler.stop(30)
    failed = manager.jobs.get(job["id"])
    assert failed["state"] == "failed" and "interrupted" in failed["problem"]["detail"]


def test_finished_jobs_are_pruned_by_age_and_count(tmp_path: Path) -> None:
    clock = [1_767_322_800.0]
    queue = JobQueue(str(tmp_path / "jobs"), clock=lambda: clock[0])
    old = queue.update(queue.submit("create"), state="succeeded", finished_ts=clock[0])
    waiting = queue.submit("create")
    clock[0] += 8 * 86_400
    assert queue.prune() == [old["id"]]
    for _ in range(KEEP_FINISHED + 5):
        queue.update(queue.submit("create"), state="failed", finished_ts=clock[0])
    queue.prune()
    states = [j["state"] for j in queue.all()]
    assert states.count("failed") == KEEP_FINISHED and states.count("queued") == 1
    assert queue.get(waiting["id"])["state"] == "queued", "a waiting job is never pruned"
    assert len(os.listdir(tmp_path / "jobs")) == KEEP_FINISHED + 1


def _run_on_a_tty(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    """``voyagr-wsgi backup ARGS`` with stderr on a pseudo-terminal; (status, stdout, tty)."""
    import pty
    import subprocess
    import sys

    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "voyagr_wsgi.cli", "backup", *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=slave,
            text=True,
        )
        os.close(slave)
        seen = b""
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            seen += data
        out = proc.stdout.read() if proc.stdout else ""
        status = proc.wait(60)
        if proc.stdout:
            proc.stdout.close()
    finally:
        os.close(master)
    return status, out, seen.decode(errors="replace")


def test_cli_shows_progress_on_a_tty_and_nothing_otherwise(tmp_path: Path) -> None:
    from test_backup_support import cli, env_for

    make_db(tmp_path / "app.db", 3, blob_bytes=MIB)
    settings = backup_settings(tmp_path)
    env = env_for(settings)
    status, out, tty = _run_on_a_tty(env, "create")
    assert status == 0 and "created" in out, (out, tty)
    assert "backup: " in tty and "100% (" in tty and "\r" in tty, tty
    made = listed(tmp_path / "backups")[-1]
    status, out, tty = _run_on_a_tty(env, "restore", made)
    assert status == 0 and f"restored {made}" in out, (out, tty)
    assert "restore (verify): 100%" in tty, tty
    piped = cli(env, "create")
    assert piped.returncode == 0 and "%" not in piped.stderr
