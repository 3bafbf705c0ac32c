"""Two gunicorn masters as two machines: one redis-server, one database, one S3 server (moto).

Each "machine" has its own state dir and local backup folder; both point SERVICES_LEASE_URL at
the same Redis. Scheduled backups: one per interval slot across the fleet, also across a
SIGKILL of the holder's whole machine (master and workers), which the other machine replaces
within the lease TTL plus a retry, and across a restart of redis-server (empty: the lease is
re-established with a higher epoch). Alerts: one Slack message for a condition both see.
Rate limits: one client alternating between the machines gets one budget.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import boto3
import pytest
import redis
from moto.server import ThreadedMotoServer

from conftest import free_port
from gunicorn_apps.harness import Gunicorn, get, gunicorn, wait_for
from ratelimit_helpers import RedisServer
from test_alert_support import Receiver, serve
from test_backup_support import listed, make_db
from voyagr_wsgi.lease import redis_client
from voyagr_wsgi.ratelimit import Policy, Rate

pytestmark = [pytest.mark.slow, pytest.mark.system, pytest.mark.timeout(180)]

LEASE_S = 2.0
TAKEOVER_BUDGET_S = LEASE_S + 2.0 * 1.5 + 1.0  # TTL + the longest jittered retry + slack


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    yield from serve()


def machine(stack: ExitStack, tmp_path: Path, name: str, env: dict[str, str]) -> Gunicorn:
    """One "machine": a gunicorn master with 2 workers, its own folder (state, logs) under
    ``tmp_path / name``, stopped when ``stack`` closes."""
    (tmp_path / name).mkdir()
    env = {"VOYAGR_STATE_DIR": str(tmp_path / name / "state"), **env}
    server = gunicorn(
        "stack_app:application", port=free_port(), env=env, workers=2, log_dir=str(tmp_path / name)
    )
    return stack.enter_context(server)


def backups(*folders: Path) -> list[str]:
    """The ids of every committed backup in the local folders."""
    return sorted(i for f in folders for i in listed(f))


class Seen:
    """Every backup id seen so far per local folder. Retention deletes a folder's oldest
    backups (about four stay at this interval), so what is in a folder *now* stops growing:
    count what was ever seen (the tests poll every 50 ms; a backup lives seconds)."""

    def __init__(self) -> None:
        self.ids: dict[Path, set[str]] = {}

    def __call__(self, *folders: Path) -> set[str]:
        for folder in folders:
            self.ids.setdefault(folder, set()).update(listed(folder))
        return {i for folder in folders for i in self.ids[folder]}


class ClaimWatcher:
    """Records every slot claim while it exists in Redis (they expire after 3 intervals)."""

    def __init__(self, url: str) -> None:
        self.client = redis_client(url)
        self.slots: set[int] = set()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        while not self.stop.wait(0.2):
            try:
                keys = self.client.keys("voyagr:claim:backups:main:*")
            except redis.ConnectionError:  # while the test restarts redis-server
                continue
            self.slots.update(int(k.decode().rsplit(":", 1)[1]) for k in keys)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.client.close()


def s3_ids(url: str) -> list[str]:
    s3 = boto3.client(
        "s3",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    listing = s3.list_objects_v2(Bucket="fleet", Prefix="voyagr-backups/")
    names = [o["Key"].split("/")[-1] for o in listing.get("Contents", [])]
    return sorted(n[: -len(".db.gz")] for n in names if n.endswith(".db.gz"))


def holder_pid(client: Any, name: str) -> int | None:
    value = client.get(f"voyagr:lease:{name}")
    return None if value is None else int(value.decode().split(":")[1])


def test_two_machines_one_backup_per_slot_one_message_and_failover(
    tmp_path: Path, receiver: Receiver
) -> None:
    make_db(tmp_path / "app.db")
    redis_srv = RedisServer(free_port())
    redis_srv.start()
    client = redis_client(redis_srv.url)
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    s3_url = f"http://{host}:{port}"
    boto3.client(
        "s3",
        endpoint_url=s3_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    ).create_bucket(Bucket="fleet")
    machines: dict[str, Gunicorn] = {}
    with ExitStack() as stack:
        stack.callback(redis_srv.stop)
        stack.callback(client.close)
        stack.callback(moto.stop)
        claims = ClaimWatcher(redis_srv.url)
        stack.callback(claims.close)
        for name in ("a", "b"):
            env = {
                "SERVICES_LEASE_URL": redis_srv.url,
                "SERVICES_LEASE_SECONDS": str(LEASE_S),
                "DATABASE_PATH": str(tmp_path / "app.db"),
                "BACKUP_DIR": str(tmp_path / name / "backups"),
                "BACKUP_SET": "main",
                "BACKUP_INTERVAL_HOURS": "0.001",
                "RATE_LIMIT_ENABLED": "false",
                "ALERT_INSTANCE": f"machine-{name}",
                "ALERT_EVALUATION_INTERVAL_SECONDS": "0.5",
                "ALERT_MIN_REQUESTS": "5",
                "ALERT_KEEP_FIRING_SECONDS": "0",
                "ALERT_SLACK_ENABLED": "true",
                "SLACK_WEBHOOK_URL": receiver.url("/slack"),
                "ALERT_LOG_ENABLED": "false",
                "S3_BACKUP_ENABLED": "true",
                "S3_BUCKET": "fleet",
                "S3_ENDPOINT_URL": s3_url,
                "S3_REGION": "us-east-1",
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
                "AWS_CONFIG_FILE": "/nonexistent",
            }
            machines[name] = machine(stack, tmp_path, name, env)
        folders = [tmp_path / "a" / "backups", tmp_path / "b" / "backups"]

        # one holder per lease, in one worker of one machine
        wait_for(lambda: holder_pid(client, "backups:main"), timeout=15, what="a backup holder")
        wait_for(lambda: holder_pid(client, "alerts"), timeout=15, what="an alert holder")

        # a condition both machines see: errors on both
        for server in machines.values():
            for _ in range(20):
                get(server.port, "/fail")
        receiver.wait_for(1, timeout=20)

        # several intervals: every backup ran in a slot of its own (each claimed once)
        seen = Seen()
        wait_for(lambda: len(seen(*folders)) >= 3, timeout=30, what="3 scheduled backups")
        time.sleep(0.5)  # each claim precedes its backup: the watcher has seen it by now
        assert len(seen(*folders)) <= len(claims.slots), (seen(*folders), claims.slots)

        # SIGKILL the backup holder's whole machine
        pid = holder_pid(client, "backups:main")
        victim = next(n for n, m in machines.items() if pid in m.workers())
        survivor = "b" if victim == "a" else "a"
        for worker in machines[victim].workers():
            os.kill(worker, signal.SIGKILL)
        os.kill(machines[victim].pid, signal.SIGKILL)
        killed = time.monotonic()
        wait_for(
            lambda: holder_pid(client, "backups:main") in machines[survivor].workers(),
            timeout=TAKEOVER_BUDGET_S + 5,
            what="the survivor to take the backup lease",
        )
        assert time.monotonic() - killed <= TAKEOVER_BUDGET_S
        assert int(client.get("voyagr:lease:backups:main:epoch")) >= 2

        before = len(seen(tmp_path / survivor / "backups"))
        wait_for(
            lambda: len(seen(tmp_path / survivor / "backups")) >= before + 2,
            timeout=30,
            what="the survivor's scheduled backups",
        )
        time.sleep(0.5)  # the watcher has seen the last claim
        taken = seen(*folders)
        assert len(taken) <= len(claims.slots), (taken, sorted(claims.slots))
        in_s3 = s3_ids(s3_url)
        assert 4 <= len(in_s3) <= len(claims.slots), (in_s3, sorted(claims.slots))

        # redis-server restarted empty: the lease is re-established, no slot runs twice
        redis_srv.kill()
        time.sleep(LEASE_S)
        redis_srv.start()
        restarted = len(seen(*folders))
        wait_for(lambda: holder_pid(client, "backups:main"), timeout=15, what="a new holder")
        assert int(client.get("voyagr:lease:backups:main:epoch")) >= 3  # the epoch floor
        wait_for(
            lambda: len(seen(*folders)) >= restarted + 2,
            timeout=30,
            what="backups after the redis restart",
        )
        time.sleep(0.5)
        taken = seen(*folders)
        assert len(taken) <= len(claims.slots), (sorted(taken), sorted(claims.slots))
        time.sleep(1.0)  # evaluations after the takeover: still the one message
    firing = [r for r in receiver.requests if b"FIRING" in r.body]
    assert len(firing) == 1, [r.body[:200] for r in receiver.requests]


def test_two_machines_share_one_rate_limit_on_redis(tmp_path: Path) -> None:
    """One client alternating between two machines (2 workers each) gets one budget: 20/60s
    is exact (cold keys reserve one unit), 200/1h reserves in batches and still never admits
    more than GCRA allows on Redis's clock, nor strands more than workers x cap units."""
    redis_srv = RedisServer(free_port())
    redis_srv.start()
    client = redis_client(redis_srv.url)
    with ExitStack() as stack:
        stack.callback(redis_srv.stop)
        stack.callback(client.close)
        ports = []
        for name in ("a", "b"):
            env = {
                "RATE_LIMIT_STORAGE": redis_srv.url,
                "RATE_LIMIT_REQUESTS": "20",
                "RATE_LIMIT_WINDOW_SECONDS": "60",
                "RATE_LIMIT_ROUTES": "/batched=200/3600s",
                "BACKUP_ENABLED": "false",
                "ALERTS_ENABLED": "false",
            }
            ports.append(machine(stack, tmp_path, name, env).port)

        def redis_us() -> int:
            seconds, micros = client.time()
            return int(seconds) * 1_000_000 + int(micros)

        def script_calls() -> int:
            return int(client.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0))

        def hammer(path: str, n: int, rate: Rate) -> tuple[list[int], int]:
            """Alternate machines: the codes, and the most GCRA admits between two readings of
            Redis's clock (the burst plus one unit per interval elapsed)."""
            policy = Policy.build("p", rate)
            t0 = redis_us()
            codes = [get(ports[i % 2], path).status for i in range(n)]
            elapsed = (redis_us() - t0) / 1e6
            return codes, int((elapsed + policy.tolerance) / policy.interval)

        codes, most = hammer("/", 30, Rate(20, 60.0))
        assert codes.count(200) <= most
        assert codes[:20] == [200] * 20  # exact: a burst of 20 reserves one unit per call
        # then only what refilled meanwhile (one unit per 3 s), never a unit held back
        assert codes[20:].count(200) <= most - 20, (codes, most)
        limited = get(ports[0], "/")
        assert limited.status == 429 and int(limited.headers["retry-after"]) >= 1

        calls = script_calls()
        batched = redis_us()
        codes, most = hammer("/batched", 280, Rate(200, 3600.0))
        admitted = codes.count(200)
        assert admitted <= most, (admitted, most)
        assert admitted >= 200 - 4 * (200 // 16)  # at most workers x cap units stranded
        assert script_calls() - calls < admitted / 2  # reservations: fewer calls than requests
        assert 429 in codes[-20:]
        # a worker spends the units it still holds within a lease (0.5 s), so a few 200s may
        # come between the 429s at the end; past the lease the bucket on Redis is empty and
        # only what refills passes (one unit per 18 s since the bucket emptied, at the latest)
        time.sleep(0.6)
        tail, _ = hammer("/batched", 10, Rate(200, 3600.0))
        refilled = 1 + int((redis_us() - batched) / 1e6 / (3600 / 200))
        assert tail.count(200) <= refilled, (tail, codes)
