"""RedisLease and the Supervisor's fleet lease against a real redis-server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from conftest import call, free_port, hello_app, make_environ
from ratelimit_helpers import RedisServer, redis_server
from voyagr_wsgi import Settings, compose
from voyagr_wsgi.errors import ConfigurationError
from voyagr_wsgi.lease import RedisLease, lease_factory, redis_client
from voyagr_wsgi.services import Supervisor

pytestmark = pytest.mark.system

FAST = {"ttl_s": 1.5, "renew_s": 0.25, "deadline_s": 1.0}


def wait_until(predicate: Any, timeout: float, what: str) -> float:
    """Seconds it took ``predicate`` to become true (fails after ``timeout``)."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            pytest.fail(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.02)
    return time.monotonic() - start


@pytest.fixture
def server() -> Iterator[RedisServer]:
    with redis_server(free_port()) as srv:
        yield srv


@pytest.fixture
def client(server: RedisServer) -> Iterator[Any]:
    c = redis_client(server.url)
    try:
        yield c
    finally:
        c.close()


class Recorder:
    """A singleton service that records when it runs."""

    singleton = True

    def __init__(self, name: str = "job") -> None:
        self.name = name
        self.running = False
        self.starts = 0
        self.stops = 0

    def start(self) -> None:
        self.running = True
        self.starts += 1

    def stop(self, timeout: float | None = None) -> None:
        self.running = False
        self.stops += 1

    def state(self) -> dict[str, Any]:
        return {"running": self.running}


def supervisor(tmp_path: Any, machine: str, url: str, service: Recorder) -> Supervisor:
    client = redis_client(url)

    def build(name: str, on_lost: Any) -> RedisLease:
        return RedisLease(client, name, on_lost=on_lost, **FAST)

    return Supervisor(
        [service], lock_path=str(tmp_path / machine / "services.lock"), retry_s=0.2, lease=build
    )


def test_acquire_renew_and_release(client: Any) -> None:
    lease = RedisLease(client, "backups:main", **FAST)
    try:
        assert lease.try_acquire() == 1
        assert lease.held
        token = client.get("voyagr:lease:backups:main").decode()
        assert token.startswith(f"{os.uname().nodename}:{os.getpid()}:")
        assert 1000 < client.pttl("voyagr:lease:backups:main") <= 1500
        time.sleep(2.0)  # longer than the TTL: only renewals keep the key
        assert lease.held
        assert client.get("voyagr:lease:backups:main").decode() == token
        assert lease.state()["last_renewal_age_s"] < 0.5
        assert any(t.name == "voyagr-lease-backups:main" for t in threading.enumerate())
    finally:
        lease.release()
    assert not lease.held
    assert client.exists("voyagr:lease:backups:main") == 0
    assert client.get("voyagr:lease:backups:main:epoch") == b"1"


def test_second_contender_waits_until_release_and_gets_a_higher_epoch(client: Any) -> None:
    first = RedisLease(client, "alerts", **FAST)
    second = RedisLease(client, "alerts", **FAST)
    try:
        assert first.try_acquire() == 1
        assert second.try_acquire() is None
        assert second.holder == client.get("voyagr:lease:alerts").decode()
        time.sleep(1.8)
        assert second.try_acquire() is None  # first keeps renewing
        first.release()
        assert second.try_acquire() == 2
        assert second.held and not first.held
    finally:
        first.release()
        second.release()


def test_a_renewal_that_returns_after_the_deadline_counts_as_failed(server: RedisServer) -> None:
    class SlowRedis(redis.Redis):  # type: ignore[type-arg]
        delay = 0.0

        def eval(self, script: str, numkeys: int, *args: Any) -> Any:
            if "PEXPIRE" in script and self.delay:
                time.sleep(self.delay)
            return super().eval(script, numkeys, *args)

    slow = SlowRedis.from_url(server.url, socket_timeout=5)
    lost = threading.Event()
    lease = RedisLease(slow, "alerts", on_lost=lost.set, ttl_s=5.0, renew_s=0.2, deadline_s=1.0)
    try:
        assert lease.try_acquire() == 1
        slow.delay = 1.3  # Redis answers 1 (renewed) but only after the deadline
        assert lost.wait(5.0)
        assert not lease.held
        assert lease.state()["last_error"] == "renewal returned after the deadline"
        assert slow.pttl("voyagr:lease:alerts") > 0  # Redis renewed it: we still do not trust it
    finally:
        slow.delay = 0.0
        lease.release()
        slow.close()


def test_a_renewal_of_a_key_taken_over_fails_at_once(client: Any) -> None:
    lost = threading.Event()
    lease = RedisLease(client, "alerts", on_lost=lost.set, **FAST)
    try:
        assert lease.try_acquire() == 1
        client.set("voyagr:lease:alerts", "someone-else")
        assert lost.wait(1.0)
        assert not lease.held
        lease.release()  # token-checked: the successor's key stays
        assert client.get("voyagr:lease:alerts") == b"someone-else"
    finally:
        lease.release()


def test_killed_holder_is_replaced_within_lease_plus_retry(
    server: RedisServer, client: Any
) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import sys, time
                from voyagr_wsgi.lease import RedisLease, redis_client
                lease = RedisLease(redis_client({server.url!r}), "backups:main",
                                   ttl_s=1.5, renew_s=0.25, deadline_s=1.0)
                assert lease.try_acquire() == 1
                print("held", flush=True)
                time.sleep(60)
                """
            ),
        ],
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    standby = RedisLease(client, "backups:main", **FAST)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"held\n"
        assert standby.try_acquire() is None
        holder.kill()
        holder.wait(5)
        killed = time.monotonic()
        wait_until(lambda: standby.try_acquire() is not None, 5.0, "takeover")
        assert time.monotonic() - killed <= 1.5 + 0.25 + 0.3  # TTL + renew + slack
        assert standby.epoch == 2
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(5)
        if holder.stdout is not None:
            holder.stdout.close()
        standby.release()


def test_supervisors_on_two_machines_run_the_singleton_once_and_fail_over(
    tmp_path: Any, server: RedisServer
) -> None:
    a, b = Recorder(), Recorder()
    sup_a = supervisor(tmp_path, "a", server.url, a)
    sup_b = supervisor(tmp_path, "b", server.url, b)
    sup_a.start()
    try:
        wait_until(lambda: a.running, 3.0, "machine a to run the singleton")
        sup_b.start()
        time.sleep(1.0)
        assert a.running and not b.running
        assert sup_a.state()["lease"]["job"]["held"] is True
        assert sup_b.state()["lease"]["job"]["held"] is False
        checks = sup_b.health_checks()
        assert [(c.name, c.status, c.observed_value) for c in checks] == [
            ("services:lease", "pass", 1)
        ]
        assert "standby; holder" in (checks[0].output or "")
        sup_a.stop(5)  # clean shutdown releases: the standby takes over within a retry
        took = wait_until(lambda: b.running, 3.0, "machine b to take over")
        assert took < 1.0
        assert sup_b.state()["lease"]["job"]["epoch"] == 2
    finally:
        sup_a.stop(5)
        sup_b.stop(5)
    assert not b.running


def test_redis_restart_stops_the_work_then_re_establishes_with_a_higher_epoch(
    tmp_path: Any, server: RedisServer
) -> None:
    job = Recorder()
    sup = supervisor(tmp_path, "a", server.url, job)
    sup.start()
    try:
        wait_until(lambda: job.running, 3.0, "the singleton to start")
        assert sup.state()["lease"]["job"]["epoch"] == 1
        server.kill()
        wait_until(lambda: not job.running, 2.0, "the holder to stop on a lost lease")
        assert sup.health_checks()[0].status == "warn"
        server.start()  # empty: no persistence, the epoch key is gone too
        wait_until(lambda: job.running, 3.0, "the lease to be re-established")
        assert sup.state()["lease"]["job"]["epoch"] == 2  # the floor: never back to 1
        assert job.starts == 2 and job.stops == 1
    finally:
        sup.stop(5)


def test_slot_claims_let_each_slot_run_once(client: Any) -> None:
    first = RedisLease(client, "backups:main", **FAST)
    second = RedisLease(client, "backups:main", **FAST)
    try:
        assert not first.claim(7, 60)  # not held: no claim
        first.try_acquire()
        assert first.claim(7, 60)
        assert not first.claim(7, 60)
        first.release()
        second.try_acquire()
        assert not second.claim(7, 60)  # the new holder does not run slot 7 again
        assert second.claim(8, 60)
        assert client.get("voyagr:claim:backups:main:7") == b"1"
        assert client.get("voyagr:claim:backups:main:8") == b"2"  # the epoch that ran it
    finally:
        first.release()
        second.release()


def test_without_a_lease_url_the_flock_alone_elects(tmp_path: Any) -> None:
    job = Recorder()
    sup = Supervisor([job], lock_path=str(tmp_path / "services.lock"), retry_s=0.2)
    sup.start()
    try:
        wait_until(lambda: job.running, 3.0, "the singleton")
        assert "lease" not in sup.state()
        assert sup.health_checks() == []
    finally:
        sup.stop(5)


def test_missing_redis_extra_names_the_pip_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "redis", None)
    with pytest.raises(ConfigurationError, match=r"pip install 'voyagr-wsgi\[redis\]'"):
        lease_factory("redis://127.0.0.1:1/0")


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        pytest.param({}, ("", 15.0, ""), id="default: per-machine flock only"),
        pytest.param(
            {"SERVICES_LEASE_URL": "redis://r:6379/0", "SERVICES_LEASE_SECONDS": "30"},
            ("redis://r:6379/0", 30.0, ""),
            id="lease on",
        ),
    ],
)
def test_settings_read_the_lease(env: dict[str, str], expected: tuple[Any, ...]) -> None:
    s = Settings.from_env(env)
    assert (s.services_lease_url, s.services_lease_s, s.alert_dedup_url) == expected


def test_settings_refuse_a_lease_url_that_is_not_redis() -> None:
    with pytest.raises(ConfigurationError, match="SERVICES_LEASE_URL"):
        Settings.from_env({"SERVICES_LEASE_URL": "http://r:6379"})


def test_a_composed_stack_shows_the_lease_in_health_and_metrics(
    tmp_path: Any, server: RedisServer
) -> None:
    env = {
        "SERVICES_LEASE_URL": server.url,
        "VOYAGR_STATE_DIR": str(tmp_path / "state"),
        "DATABASE_PATH": str(tmp_path / "app.db"),
        "BACKUP_DIR": str(tmp_path / "backups"),
        "BACKUP_SET": "main",
    }
    stack = compose(hello_app, Settings.from_env(env))
    stack.start()
    try:
        wait_until(
            lambda: (
                len(stack.state().get("lease", {})) == 2
                and all(s["held"] for s in stack.state()["lease"].values())
            ),
            10.0,
            "both leases held",
        )
        assert sorted(stack.state()["lease"]) == ["alerts", "backups:main"]
        health = call(stack, make_environ("/api/production/health", remote="127.0.0.1"))
        lease_checks = json.loads(health.body)["checks"]["services:lease"]
        assert [(c["componentId"], c["status"], c["observedValue"]) for c in lease_checks] == [
            ("alerts", "pass", 1),
            ("backups:main", "pass", 1),
        ]
        text = call(stack, make_environ("/api/production/prometheus", remote="127.0.0.1"))
        body = text.body.decode()
        assert 'voyagr_services_lease_held{lease="backups:main"} 1\n' in body
        assert 'voyagr_services_lease_epoch{lease="alerts"} 1\n' in body
        assert 'voyagr_services_lease_last_renewal_timestamp_seconds{lease="alerts"} 1' in body
        doc = json.loads(
            call(stack, make_environ("/api/production/metrics", remote="127.0.0.1")).body
        )
        assert doc["lease"]["alerts"]["epoch"] == 1
    finally:
        stack.stop(10)
    client = redis_client(server.url)
    try:
        assert client.keys("voyagr:lease:*:epoch") and not client.exists(
            "voyagr:lease:alerts", "voyagr:lease:backups:main"
        )  # released on a clean stop
    finally:
        client.close()
