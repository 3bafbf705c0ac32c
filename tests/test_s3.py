"""The S3 store against moto's server mode over HTTP on loopback (a real boto3 client)."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import pytest
from boto3.s3.transfer import TransferConfig
from moto.server import ThreadedMotoServer

from conftest import free_port
from test_backup_support import backup_settings, listed, make_db, rows
from voyagr_wsgi.backups import BackupManager, BackupScheduler, BackupSettings
from voyagr_wsgi.backups.health import health_source
from voyagr_wsgi.backups.s3 import S3Store
from voyagr_wsgi.errors import BackupVerificationError

MIB = 1024 * 1024
_buckets = itertools.count()


@pytest.fixture(autouse=True)
def fake_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_CONFIG_FILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")


def start_moto(port: int = 0) -> tuple[ThreadedMotoServer, str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    host, bound = server.get_host_and_port()
    return server, f"http://{host}:{bound}"


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    server, url = start_moto()
    try:
        yield url
    finally:
        server.stop()


def client(url: str) -> Any:
    return boto3.client("s3", endpoint_url=url, region_name="us-east-1")


@pytest.fixture
def bucket(moto_url: str) -> str:
    name = f"voyagr-test-{next(_buckets)}"
    client(moto_url).create_bucket(Bucket=name)
    return name


def s3_settings(tmp_path: Path, url: str, bucket: str, **changes: Any) -> BackupSettings:
    return backup_settings(
        tmp_path,
        s3_enabled=True,
        s3_bucket=bucket,
        s3_endpoint_url=url,
        s3_region="us-east-1",
        **changes,
    )


@pytest.mark.parametrize(
    ("sse", "key_id"),
    [
        pytest.param("AES256", "", id="SSE-S3"),
        pytest.param("aws:kms", "alias/voyagr-backups", id="SSE-KMS"),
    ],
)
def test_backup_is_uploaded_encrypted_and_checked(
    tmp_path: Path, moto_url: str, bucket: str, sse: str, key_id: str
) -> None:
    make_db(tmp_path / "app.db", 300)
    settings = s3_settings(tmp_path, moto_url, bucket, s3_sse=sse, s3_kms_key_id=key_id)
    made = BackupManager(settings).create()
    s3 = client(moto_url)
    head = s3.head_object(Bucket=bucket, Key=f"voyagr-backups/{made.id}.db.gz")
    assert head["ServerSideEncryption"] == sse
    assert head["ContentLength"] == made.gz_bytes
    assert head["Metadata"]["sha256-gz"] == made.sha256_gz
    if key_id:
        assert key_id in head["SSEKMSKeyId"]
    doc = json.loads(
        s3.get_object(Bucket=bucket, Key=f"voyagr-backups/{made.id}.json")["Body"].read()
    )
    assert doc["encryption"] == sse and doc["sha256_gz"] == made.sha256_gz
    assert made.encryption == "none", "the local copy is not encrypted at rest"
    manifest_head = s3.head_object(Bucket=bucket, Key=f"voyagr-backups/{made.id}.json")
    assert manifest_head["ServerSideEncryption"] == sse


def test_a_large_backup_is_uploaded_in_parts(tmp_path: Path, moto_url: str, bucket: str) -> None:
    make_db(tmp_path / "app.db", 12, blob_bytes=MIB)  # ~12 MiB, incompressible
    store = S3Store(
        client(moto_url),
        bucket=bucket,
        config=TransferConfig(multipart_threshold=5 * MIB, multipart_chunksize=5 * MIB),
    )
    manager = BackupManager(s3_settings(tmp_path, moto_url, bucket), remote=store)
    made = manager.create()
    head = client(moto_url).head_object(Bucket=bucket, Key=f"voyagr-backups/{made.id}.db.gz")
    assert head["ETag"].strip('"').endswith("-3"), head["ETag"]
    assert head["ContentLength"] == made.gz_bytes
    (tmp_path / "backups" / made.data_name).unlink()  # restore must come from S3
    (tmp_path / "backups" / made.manifest_name).unlink()
    make_db(tmp_path / "app.db", 1, tag="since")
    manager.restore(made.id)
    assert rows(tmp_path / "app.db") == 12


def test_listing_pages_past_1000_objects_and_leaves_unknown_keys_alone(
    tmp_path: Path, moto_url: str, bucket: str
) -> None:
    s3 = client(moto_url)
    junk = [f"voyagr-backups/0-other-{i:05d}" for i in range(1100)]  # sort before the backups
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda key: s3.put_object(Bucket=bucket, Key=key, Body=b"x"), junk))
    make_db(tmp_path / "app.db", 10)
    clock = [1_767_322_800.0]
    settings = s3_settings(
        tmp_path,
        moto_url,
        bucket,
        retention_daily=1,
        retention_weekly=0,
        retention_monthly=0,
        retention_min_keep=1,
    )
    manager = BackupManager(settings, now=lambda: clock[0])
    first = manager.create()
    one_call = s3.list_objects_v2(Bucket=bucket, Prefix="voyagr-backups/")
    assert one_call["IsTruncated"] and all("other" in o["Key"] for o in one_call["Contents"])
    assert [m.id for m in manager.list()["s3"].manifests] == [first.id]
    clock[0] += 86_400
    second = manager.create()  # retention deletes `first` from both stores
    assert [m.id for m in manager.list()["s3"].manifests] == [second.id]
    keys = [
        o["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        for o in page.get("Contents", ())
    ]
    assert sorted(k for k in keys if "other" in k) == junk
    assert not any(first.id in k for k in keys)


def test_unreachable_s3_keeps_the_local_backup_and_a_later_retry_uploads_it(
    tmp_path: Path,
) -> None:
    port = free_port()  # nothing listens here yet
    url = f"http://127.0.0.1:{port}"
    make_db(tmp_path / "app.db", 50)
    clock = [1_767_322_800.0]
    settings = s3_settings(tmp_path, url, "voyagr-late", s3_retry_s=600.0)
    manager = BackupManager(settings, now=lambda: clock[0])
    made = manager.create()
    assert listed(tmp_path / "backups") == [made.id]
    status = manager.status()
    assert status["pending_uploads"] == [made.id]
    assert "upload failed" in status["last_error"]
    check = next(iter(health_source(manager)()))
    assert check.status == "warn" and "upload failed" in (check.output or "")

    server, _ = start_moto(port)
    try:
        client(url).create_bucket(Bucket="voyagr-late")
        clock[0] += 60
        assert manager.run_scheduled() is None  # retry not due yet, backup not due
        assert manager.status()["pending_uploads"] == [made.id]
        clock[0] += 600
        assert manager.run_scheduled() is None
        assert manager.status()["pending_uploads"] == []
        assert manager.status()["last_error"] is None
        assert next(iter(health_source(manager)())).status == "pass"
        assert [m.id for m in manager.list()["s3"].manifests] == [made.id]
    finally:
        server.stop()


def test_a_tampered_s3_object_is_refused_at_restore(
    tmp_path: Path, moto_url: str, bucket: str
) -> None:
    make_db(tmp_path / "app.db", 100)
    manager = BackupManager(s3_settings(tmp_path, moto_url, bucket))
    made = manager.create()
    (tmp_path / "backups" / made.data_name).unlink()
    (tmp_path / "backups" / made.manifest_name).unlink()
    key = f"voyagr-backups/{made.id}.db.gz"
    s3 = client(moto_url)
    data = bytearray(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    data[len(data) // 2] ^= 0x01
    s3.put_object(Bucket=bucket, Key=key, Body=bytes(data))
    make_db(tmp_path / "app.db", 3, tag="since")
    with pytest.raises(BackupVerificationError, match="SHA-256"):
        manager.restore(made.id)
    assert rows(tmp_path / "app.db") == 103


def test_garbage_left_by_killed_processes_is_removed_after_a_day(
    tmp_path: Path, moto_url: str, bucket: str
) -> None:
    import time

    s3 = client(moto_url)
    key = "voyagr-backups/20250101T000000Z-0badc0de.db.gz"
    upload = s3.create_multipart_upload(Bucket=bucket, Key=key, ServerSideEncryption="AES256")
    other = s3.create_multipart_upload(Bucket=bucket, Key="elsewhere/x")
    orphan = "voyagr-backups/20250101T000000Z-0badf00d.db.gz"  # data without a manifest
    s3.put_object(Bucket=bucket, Key=orphan, Body=b"partial")
    s3.put_object(Bucket=bucket, Key="voyagr-backups/notes.txt", Body=b"not ours")
    make_db(tmp_path / "app.db", 10)
    day_later = time.time() + 86_400 + 60
    manager = BackupManager(s3_settings(tmp_path, moto_url, bucket), now=lambda: day_later)
    manager.create()
    remaining = s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    assert [u["UploadId"] for u in remaining] == [other["UploadId"]]
    assert upload["UploadId"] not in {u["UploadId"] for u in remaining}
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]}
    assert orphan not in keys and "voyagr-backups/notes.txt" in keys
    assert len([k for k in keys if k.endswith(".json")]) == 1


def _sent_sse(s3_client: Any) -> list[Any]:
    """Record the ServerSideEncryption of every PutObject / CreateMultipartUpload sent."""
    seen: list[Any] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        seen.append(params.get("ServerSideEncryption", "<absent>"))

    for op in ("PutObject", "CreateMultipartUpload"):
        s3_client.meta.events.register(f"before-parameter-build.s3.{op}", record)
    return seen


@pytest.mark.parametrize(
    ("bucket_default", "recorded"),
    [
        pytest.param(None, "none", id="store applies nothing (MinIO without KMS)"),
        pytest.param("AES256", "AES256", id="store encrypts by default (AWS)"),
    ],
)
def test_sse_none_sends_no_encryption_and_the_manifest_records_what_s3_applied(
    tmp_path: Path, moto_url: str, bucket: str, bucket_default: str | None, recorded: str
) -> None:
    s3 = client(moto_url)
    if bucket_default:
        s3.put_bucket_encryption(
            Bucket=bucket,
            ServerSideEncryptionConfiguration={
                "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": bucket_default}}]
            },
        )
    make_db(tmp_path / "app.db", 50)
    settings = s3_settings(tmp_path, moto_url, bucket, s3_sse="none")
    store = S3Store.from_settings(settings)
    sent = _sent_sse(store.client)
    manager = BackupManager(settings, remote=store)
    made = manager.create()
    assert sent and set(sent) == {"<absent>"}, sent
    assert manager.status()["pending_uploads"] == []
    doc = json.loads(
        s3.get_object(Bucket=bucket, Key=f"voyagr-backups/{made.id}.json")["Body"].read()
    )
    assert doc["encryption"] == recorded
    assert [m.encryption for m in manager.list()["s3"].manifests] == [recorded]


def test_s3_sse_none_is_read_from_the_environment() -> None:
    from voyagr_wsgi._env import Env

    assert BackupSettings.from_env(Env({"S3_SSE": "none"})).s3_sse == "none"
    assert BackupSettings.from_env(Env({"S3_SSE": "NONE"})).s3_sse == "none"


def test_a_process_killed_mid_upload_leaves_a_pending_upload_that_health_reports_and_a_retry_sends(
    tmp_path: Path, moto_url: str, bucket: str
) -> None:
    make_db(tmp_path / "app.db", 50)
    clock = [1_767_322_800.0]
    settings = s3_settings(tmp_path, moto_url, bucket, s3_retry_s=600.0)
    store = S3Store.from_settings(settings)

    def killed(**_: Any) -> None:  # the process dies once the data is sent, before the check
        raise KeyboardInterrupt

    store.client.meta.events.register("before-send.s3.HeadObject", killed)
    manager = BackupManager(settings, remote=store, now=lambda: clock[0])
    with pytest.raises(KeyboardInterrupt):
        manager.create()
    made = manager.local.list().manifests[-1]
    assert [m.id for m in manager.list()["s3"].manifests] == []

    # a new process: the status file on disk is all that is left of the interrupted upload
    store.client.meta.events.unregister("before-send.s3.HeadObject", killed)
    restarted = BackupManager(settings, remote=store, now=lambda: clock[0])
    assert restarted.status()["pending_uploads"] == [made.id]
    assert BackupScheduler(restarted).delay() == 0, "the interrupted upload is due at once"
    health = health_source(restarted)
    assert next(iter(health())).status == "pass", "inside the retry interval: not yet lost"
    clock[0] += 601
    check = next(iter(health()))
    assert check.status == "warn", check
    assert made.id in (check.output or "") and "not in S3" in (check.output or "")

    assert restarted.run_scheduled() is None  # the next tick retries the interrupted upload
    assert restarted.status()["pending_uploads"] == []
    assert [m.id for m in restarted.list()["s3"].manifests] == [made.id]
    assert next(iter(health())).status == "pass"


def test_an_upload_is_pending_while_it_runs(tmp_path: Path, moto_url: str, bucket: str) -> None:
    make_db(tmp_path / "app.db", 20)
    settings = s3_settings(tmp_path, moto_url, bucket)
    store = S3Store.from_settings(settings)
    manager = BackupManager(settings, remote=store)
    seen: list[list[str]] = []

    def observe(**_: Any) -> None:
        seen.append(list(manager.status_file.read().pending_uploads))

    store.client.meta.events.register("before-send.s3.PutObject", observe)
    made = manager.create()
    assert seen and seen[0] == [made.id], "recorded as pending before the data is sent"
    assert manager.status()["pending_uploads"] == []


def test_sigkill_mid_upload_is_detected_within_the_retry_interval_and_retried(
    tmp_path: Path, moto_url: str, bucket: str
) -> None:
    """A real kill: the CLI uploads to an S3 endpoint that accepts and never answers, is
    SIGKILLed mid-upload; health warns one retry interval later, the next tick uploads it."""
    import os
    import signal
    import socket
    import subprocess
    import sys
    import threading
    import time

    from test_backup_support import env_for
    from voyagr_wsgi.backups.status import StatusFile

    hanging = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []

    def accept_and_never_answer() -> None:
        try:
            while True:
                held.append(hanging.accept()[0])
        except OSError:  # closed by the test
            return

    threading.Thread(target=accept_and_never_answer, daemon=True).start()
    make_db(tmp_path / "app.db", 50)
    retry_s = 1.0
    settings = s3_settings(tmp_path, moto_url, bucket, s3_retry_s=retry_s)
    env = env_for(
        settings,
        S3_BACKUP_ENABLED="true",
        S3_BUCKET=bucket,
        S3_REGION="us-east-1",
        S3_ENDPOINT_URL=f"http://127.0.0.1:{hanging.getsockname()[1]}",
        BACKUP_S3_RETRY_SECONDS=str(retry_s),
    )
    status = StatusFile(str(tmp_path / "backups" / ".voyagr-backup-status.json"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "voyagr_wsgi.cli", "backup", "create"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        end = time.monotonic() + 60
        while not status.read().pending_uploads and time.monotonic() < end:
            assert proc.poll() is None, "the CLI ended before its upload"
            time.sleep(0.02)
        assert status.read().pending_uploads, "the upload never started"
        time.sleep(0.2)  # on the wire: the endpoint holds the request
        os.kill(proc.pid, signal.SIGKILL)
        killed_at = time.time()
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        hanging.shutdown(socket.SHUT_RDWR)  # wakes the accept() (Linux)
        hanging.close()
        for conn in held:
            conn.close()

    (backup_id,) = status.read().pending_uploads
    started = status.read().pending_since[backup_id]
    manager = BackupManager(settings)  # the restarted app, with a working S3
    health = health_source(manager)
    while next(iter(health())).status == "pass":
        assert time.time() - started < retry_s + 5, "health never warned"
        time.sleep(0.05)
    detected_s = time.time() - started
    check = next(iter(health()))
    assert check.status == "warn" and backup_id in (check.output or "")
    assert retry_s <= detected_s < retry_s + 2, detected_s
    print(
        f"lost upload detected {detected_s:.2f} s after it started "
        f"({time.time() - killed_at:.2f} s after the kill; retry interval {retry_s} s)"
    )

    assert manager.run_scheduled() is None  # the next tick uploads it
    assert manager.status()["pending_uploads"] == []
    assert [m.id for m in manager.list()["s3"].manifests] == [backup_id]
    assert next(iter(health())).status == "pass"
