"""Scheduled backups under the fleet lease: each schedule slot runs once (real redis-server)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import free_port
from ratelimit_helpers import RedisServer
from test_backup_support import backup_settings, listed, make_db
from test_lease import FAST, wait_until
from voyagr_wsgi.backups import BackupManager, BackupScheduler
from voyagr_wsgi.lease import RedisLease, redis_client
from voyagr_wsgi.services import Supervisor

pytestmark = pytest.mark.system

HOUR = 3600.0
T0 = 1_767_322_800.0  # 2026-01-02T03:00:00Z, the start of an hour slot


@pytest.fixture
def client() -> Iterator[Any]:
    srv = RedisServer(free_port())
    srv.start()
    c = redis_client(srv.url)
    try:
        yield c
    finally:
        c.close()
        srv.stop()


def machine(tmp_path: Path, name: str, clock: list[float]) -> BackupScheduler:
    """One machine: the shared database, its own local backup folder."""
    settings = backup_settings(tmp_path, backup_dir=str(tmp_path / name), interval_hours=1)
    return BackupScheduler(BackupManager(settings, now=lambda: clock[0]))


def test_a_slot_run_by_one_holder_is_skipped_by_the_next(tmp_path: Path, client: Any) -> None:
    make_db(tmp_path / "app.db")
    clock = [T0 + 5]
    a, b = machine(tmp_path, "a", clock), machine(tmp_path, "b", clock)
    assert a.lease_name == b.lease_name == f"backups:{a.manager.set_name}"
    lease_a = RedisLease(client, a.lease_name, **FAST)
    lease_b = RedisLease(client, b.lease_name, **FAST)
    try:
        assert lease_a.try_acquire() == 1
        a.claim = lease_a.claim
        a.tick()
        assert len(listed(tmp_path / "a")) == 1
        lease_a.release()  # failover: b holds now; its own folder has no backup yet
        assert lease_b.try_acquire() == 2
        b.claim = lease_b.claim
        clock[0] += 60
        assert b.delay() == 0
        b.tick()
        assert listed(tmp_path / "b") == []  # slot T0 ran on a: skipped
        assert b.delay() == HOUR - 65  # waits for the next slot instead of spinning
        clock[0] = T0 + HOUR + 1
        b.tick()
        assert len(listed(tmp_path / "b")) == 1
        slot = int(T0 // HOUR)
        assert client.get(f"voyagr:claim:{a.lease_name}:{slot}") == b"1"
        assert client.get(f"voyagr:claim:{a.lease_name}:{slot + 1}") == b"2"
        assert 2 * HOUR < client.pttl(f"voyagr:claim:{a.lease_name}:{slot}") / 1000 <= 3 * HOUR
    finally:
        lease_a.release()
        lease_b.release()


def test_a_failed_backup_is_retried_within_the_holders_own_slot(
    tmp_path: Path, client: Any
) -> None:
    clock = [T0 + 5]
    settings = backup_settings(tmp_path, backup_dir=str(tmp_path / "a"), interval_hours=1)
    scheduler = BackupScheduler(BackupManager(settings, now=lambda: clock[0]))
    lease = RedisLease(client, scheduler.lease_name, **FAST)
    try:
        lease.try_acquire()
        scheduler.claim = lease.claim
        scheduler.tick()  # the database does not exist yet: fails
        assert listed(tmp_path / "a") == []
        make_db(tmp_path / "app.db")
        clock[0] += 600
        scheduler.tick()  # same slot, claimed by this scheduler: the retry runs
        assert len(listed(tmp_path / "a")) == 1
    finally:
        lease.release()


def test_supervisor_hands_the_scheduler_its_lease_claim(tmp_path: Path, client: Any) -> None:
    make_db(tmp_path / "app.db")
    scheduler = machine(tmp_path, "a", [T0])
    conn = client.connection_pool.connection_kwargs
    url = f"redis://{conn['host']}:{conn['port']}/0"
    leases: dict[str, RedisLease] = {}

    def build(name: str, on_lost: Any) -> RedisLease:
        leases[name] = RedisLease(redis_client(url), name, on_lost=on_lost, **FAST)
        return leases[name]

    sup = Supervisor([scheduler], lock_path=str(tmp_path / "services.lock"), lease=build)
    sup.start()
    try:
        wait_until(lambda: scheduler.ran.is_set(), 30, "the first scheduled backup")
        assert list(leases) == [scheduler.lease_name]
        assert scheduler.claim == leases[scheduler.lease_name].claim
        assert client.exists(f"voyagr:claim:{scheduler.lease_name}:{int(T0 // HOUR)}") == 1
    finally:
        sup.stop(10)
    assert len(listed(tmp_path / "a")) == 1


def test_a_slot_that_produced_a_backup_never_runs_again(tmp_path: Path, client: Any) -> None:
    make_db(tmp_path / "app.db")
    clock = [T0 + 5]
    scheduler = machine(tmp_path, "a", clock)
    lease = RedisLease(client, scheduler.lease_name, **FAST)
    try:
        lease.try_acquire()
        scheduler.claim = lease.claim
        scheduler.tick()
        assert len(listed(tmp_path / "a")) == 1
        # the local status is lost (folder wiped): a backup looks due, in the same slot
        shutil.rmtree(tmp_path / "a")
        clock[0] += 60
        assert scheduler.delay() == 0
        scheduler.tick()
        assert listed(tmp_path / "a") == []
        assert scheduler.delay() == HOUR - 65
    finally:
        lease.release()
