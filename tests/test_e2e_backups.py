"""Real gunicorn (3 workers): exactly one scheduled backup per interval, and the schedule
moves to another worker within seconds when the worker running it is SIGKILLed."""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import free_port
from gunicorn_apps.harness import get, gunicorn, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(60)]

INTERVAL_H = 0.001  # the smallest BACKUP_INTERVAL_HOURS accepted: 3.6 s
INTERVAL_S = INTERVAL_H * 3600
TAKEOVER_S = 2.0  # the Supervisor's retry period


TOKEN = "e2e-backups-" + "t" * 16
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def make_db(path: Path) -> None:
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE trips (id INTEGER PRIMARY KEY, name TEXT)")
        db.executemany("INSERT INTO trips (name) VALUES (?)", [(f"t{i}",) for i in range(100)])
    db.close()


def scheduled(port: int) -> list[dict[str, Any]]:
    answer = get(port, "/api/production/backups")
    assert answer.status == 200, answer.body
    doc = json.loads(answer.body)
    backups = doc["stores"]["local"]["backups"]
    return sorted((b for b in backups if b["reason"] == "scheduled"), key=lambda b: b["created_ts"])


def committed_by(log_path: Path) -> dict[str, int]:
    """backup id -> pid of the process that committed it, from the app's log."""
    try:
        text = log_path.read_text()
    except FileNotFoundError:
        return {}
    found = re.findall(r"^(\d+) voyagr_wsgi.backups backup (\S+) committed ", text, re.M)
    return {backup_id: int(pid) for pid, backup_id in found}


def lock_pid(state: Path) -> int | None:
    path = state / "services.lock"
    text = path.read_text().strip() if path.exists() else ""
    return int(text) if text.isdigit() else None


def logged_commits(log: Path, backups: list[dict[str, Any]]) -> dict[str, int]:
    """``committed_by`` once the log has a line for every listed backup (the manifest, which
    lists a backup, is written just before the worker logs the commit)."""
    wait_for(
        lambda: all(b["id"] in committed_by(log) for b in backups),
        timeout=5,
        what="a commit log line for every listed backup",
    )
    return committed_by(log)


def test_one_scheduled_backup_per_interval_and_failover_after_sigkill(tmp_path: Path) -> None:
    db = tmp_path / "app.db"
    make_db(db)
    state, log = tmp_path / "state", tmp_path / "app.log"
    env = {
        "VOYAGR_STATE_DIR": str(state),
        "VOYAGR_TEST_LOG": str(log),
        "DATABASE_PATH": str(db),
        "BACKUP_DIR": str(tmp_path / "backups"),
        "BACKUP_INTERVAL_HOURS": str(INTERVAL_H),
        "BACKUP_RETENTION_MIN_KEEP": "1000",  # keep every backup so the test can count them
        "ALLOWED_HOSTS": "127.0.0.1",
        "RATE_LIMIT_ENABLED": "false",
    }
    with gunicorn(
        "stack_app:application", port=free_port(), env=env, log_dir=str(tmp_path)
    ) as server:
        port = server.port
        wait_for(lambda: len(scheduled(port)) >= 3, timeout=3 * INTERVAL_S + 5, what="3 backups")
        leader = lock_pid(state)
        assert leader in server.workers()
        before = scheduled(port)
        by_pid = logged_commits(log, before)
        assert {by_pid[b["id"]] for b in before} == {leader}, "only the elected worker backs up"

        os.kill(leader, signal.SIGKILL)
        killed_at = time.time()
        wait_for(
            lambda: lock_pid(state) not in (None, leader),
            timeout=TAKEOVER_S + 3,
            what="a new leader",
        )
        successor = lock_pid(state)
        wait_for(
            lambda: len([b for b in scheduled(port) if b["created_ts"] > killed_at]) >= 2,
            timeout=2 * INTERVAL_S + TAKEOVER_S + 5,
            what="2 backups after the takeover",
        )
        backups = scheduled(port)
        by_pid = logged_commits(log, backups)

    after = [b for b in backups if b["created_ts"] > killed_at]
    assert {by_pid[b["id"]] for b in after} == {successor}
    assert successor != leader and successor != server.pid
    times = [b["created_ts"] for b in backups]
    gaps = [round(b - a, 2) for a, b in itertools.pairwise(times)]
    # never two backups within one interval (the successor reads the newest backup's time),
    # and never a missed interval: at most the takeover delay and a loop tick late
    assert all(gap >= INTERVAL_S - 0.1 for gap in gaps), gaps
    assert all(gap <= INTERVAL_S + TAKEOVER_S + 1.5 for gap in gaps), gaps


def test_backup_and_restore_jobs_are_accepted_by_any_worker_and_run_by_the_elected_one(
    tmp_path: Path,
) -> None:
    db = tmp_path / "app.db"
    make_db(db)
    state, log = tmp_path / "state", tmp_path / "app.log"
    env = {
        "VOYAGR_STATE_DIR": str(state),
        "VOYAGR_TEST_LOG": str(log),
        "DATABASE_PATH": str(db),
        "BACKUP_DIR": str(tmp_path / "backups"),
        "ALLOWED_HOSTS": "127.0.0.1",
        "RATE_LIMIT_ENABLED": "false",
        "VOYAGR_ADMIN_TOKEN": TOKEN,  # state changes need it
    }
    with gunicorn(
        "stack_app:application", port=free_port(), env=env, log_dir=str(tmp_path)
    ) as server:
        port = server.port
        wait_for(lambda: lock_pid(state) is not None, timeout=10, what="an elected worker")
        jobs = []
        for path in ("/api/production/backup/create",) * 2:
            started = time.perf_counter()
            answer = get(port, path, method="POST", headers=AUTH)
            assert time.perf_counter() - started < 1.0
            if answer.status == 409:  # the first scheduled backup holds the lock
                time.sleep(0.5)
                answer = get(port, path, method="POST", headers=AUTH)
            assert answer.status == 202, answer.body
            jobs.append(answer.headers["location"])

        def finished(location: str) -> dict[str, Any] | None:
            job: dict[str, Any] = json.loads(get(port, location, headers=AUTH).body)  # any worker
            return job if job["state"] in ("succeeded", "failed") else None

        for location in jobs:
            wait_for(lambda loc=location: finished(loc), timeout=20, what="the job to finish")
        done = [finished(location) for location in jobs]
        assert all(j and j["state"] == "succeeded" for j in done), done
        made = [j["result"]["backup"]["id"] for j in done if j]
        by_pid = logged_commits(log, [{"id": i} for i in made])
        assert {by_pid[i] for i in made} == {lock_pid(state)}, "run by the elected worker"

        with sqlite3.connect(db) as conn:
            conn.execute("DELETE FROM trips")
        conn.close()
        answer = get(port, f"/api/production/backup/restore/{made[0]}", method="POST", headers=AUTH)
        assert answer.status == 202, answer.body
        location = answer.headers["location"]
        wait_for(lambda: finished(location), timeout=20, what="the restore job")
        restored = finished(location)
        assert restored and restored["state"] == "succeeded", restored
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM trips").fetchone()[0] == 100
    conn.close()
