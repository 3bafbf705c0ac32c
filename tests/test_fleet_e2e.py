"""Two gunicorn masters as two machines: one redis-server, one database, one S3 server (moto).

Each "machine" has its own state dir and local backup folder; both point SERVICES_LEASE_URL at
the same Redis. Scheduled backups: one per interval slot across the fleet, also across a
SIGKILL of the holder's whole machine (master and workers), which the other machine replaces
within the lease TTL plus a retry. Alerts: one Slack message for a condition both see.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from conftest import free_port
from gunicorn_apps.harness import Gunicorn, get, gunicorn, wait_for
from ratelimit_helpers import RedisServer
from test_alert_support import Receiver, serve
from test_backup_support import listed, make_db
from voyagr_wsgi.backups.ids import created_at
from voyagr_wsgi.lease import redis_client

pytestmark = [pytest.mark.slow, pytest.mark.system, pytest.mark.timeout(180)]

INTERVAL_S = 3.6  # BACKUP_INTERVAL_HOURS=0.001
LEASE_S = 2.0
TAKEOVER_BUDGET_S = LEASE_S + 2.0 * 1.5 + 1.0  # TTL + the longest jittered retry + slack


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    yield from serve()


def slots(*folders: Path) -> list[int]:
    """The schedule slot of every committed backup in the folders (second precision ids)."""
    return sorted(
        int(created_at(i).replace(tzinfo=UTC).timestamp() // INTERVAL_S)
        for f in folders
        for i in listed(f)
    )


def s3_slots(url: str) -> list[int]:
    s3 = boto3.client(
        "s3",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    listing = s3.list_objects_v2(Bucket="fleet", Prefix="voyagr-backups/")
    names = [o["Key"].split("/")[-1] for o in listing.get("Contents", [])]
    ids = [n[: -len(".db.gz")] for n in names if n.endswith(".db.gz")]
    return sorted(int(created_at(i).replace(tzinfo=UTC).timestamp() // INTERVAL_S) for i in ids)


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
        for name in ("a", "b"):
            (tmp_path / name).mkdir()
            env = {
                "VOYAGR_STATE_DIR": str(tmp_path / name / "state"),
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
            machines[name] = stack.enter_context(
                gunicorn(
                    "stack_app:application",
                    port=free_port(),
                    env=env,
                    workers=2,
                    log_dir=str(tmp_path / name),
                )
            )
        folders = [tmp_path / "a" / "backups", tmp_path / "b" / "backups"]

        # one holder per lease, in one worker of one machine
        wait_for(lambda: holder_pid(client, "backups:main"), timeout=15, what="a backup holder")
        wait_for(lambda: holder_pid(client, "alerts"), timeout=15, what="an alert holder")

        # a condition both machines see: errors on both
        for server in machines.values():
            for _ in range(20):
                get(server.port, "/fail")
        receiver.wait_for(1, timeout=20)

        # several intervals: every slot at most once across both machines
        wait_for(lambda: len(slots(*folders)) >= 3, timeout=30, what="3 scheduled backups")
        taken = slots(*folders)
        assert len(taken) == len(set(taken)), f"a slot ran twice: {taken}"

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

        before = len(slots(tmp_path / survivor / "backups"))
        wait_for(
            lambda: len(slots(tmp_path / survivor / "backups")) >= before + 2,
            timeout=30,
            what="the survivor's scheduled backups",
        )
        taken = slots(*folders)
        assert len(taken) == len(set(taken)), f"a slot ran twice: {taken}"
        in_s3 = s3_slots(s3_url)
        assert len(in_s3) >= 4 and len(in_s3) == len(set(in_s3)), in_s3
        time.sleep(1.0)  # evaluations after the takeover: still the one message
    firing = [r for r in receiver.requests if b"FIRING" in r.body]
    assert len(firing) == 1, [r.body[:200] for r in receiver.requests]
