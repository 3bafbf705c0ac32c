"""One contract, every store: the local folder and S3 (moto server on loopback)."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from test_backup_support import backup_settings, make_db
from voyagr_wsgi.backups import BackupManager
from voyagr_wsgi.backups.local import LocalStore
from voyagr_wsgi.backups.manifest import Manifest
from voyagr_wsgi.backups.s3 import S3Store

_buckets = itertools.count()


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


class Raw:
    """Write/read raw objects of a store, to damage it the way a crash or a person would."""

    def __init__(self, put: Any, keys: Any) -> None:
        self.put, self.keys = put, keys


@pytest.fixture(params=["local", "s3"])
def store(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[Any, Raw]:
    if request.param == "local":
        local = LocalStore(str(tmp_path / "store"))
        local.ensure()

        def put_local(name: str, data: bytes) -> None:
            (tmp_path / "store" / name).write_bytes(data)

        return local, Raw(put_local, lambda: sorted(p.name for p in (tmp_path / "store").iterdir()))
    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing")):
        monkeypatch.setenv(name, value)
    url = request.getfixturevalue("moto_url")
    client = boto3.client("s3", endpoint_url=url, region_name="us-east-1")
    bucket = f"contract-{next(_buckets)}"
    client.create_bucket(Bucket=bucket)

    def put_s3(name: str, data: bytes) -> None:
        client.put_object(Bucket=bucket, Key=f"voyagr-backups/{name}", Body=data)

    def keys() -> list[str]:
        found = client.list_objects_v2(Bucket=bucket).get("Contents", [])
        return sorted(o["Key"].removeprefix("voyagr-backups/") for o in found)

    return S3Store(client, bucket=bucket), Raw(put_s3, keys)


@pytest.fixture
def backup(tmp_path: Path) -> tuple[Manifest, Path]:
    make_db(tmp_path / "app.db", 50)
    manager = BackupManager(backup_settings(tmp_path, backup_dir=str(tmp_path / "source")))
    made = manager.create()
    return made, tmp_path / "source" / made.data_name


def test_put_then_list_and_fetch_give_back_the_same_bytes(
    store: tuple[Any, Raw], backup: tuple[Manifest, Path], tmp_path: Path
) -> None:
    target, _ = store
    made, data = backup
    stored = target.put(made, str(data))
    assert stored.sha256_gz == made.sha256_gz and stored.id == made.id
    assert [m.id for m in target.list().manifests] == [made.id]
    assert target.list().complete
    fetched = target.fetch(stored, str(tmp_path / "download.gz"))
    assert hashlib.sha256(Path(fetched).read_bytes()).hexdigest() == made.sha256_gz


def test_delete_removes_manifest_and_data(
    store: tuple[Any, Raw], backup: tuple[Manifest, Path]
) -> None:
    target, raw = store
    made, data = backup
    target.put(made, str(data))
    target.delete(made)
    assert target.list().manifests == ()
    assert not [k for k in raw.keys() if made.id in k]


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        pytest.param(
            "20250101T000000Z-00000001.json", b"{not json", "not valid JSON", id="bad json"
        ),
        pytest.param("20250101T000000Z-00000002.json", b"[]", "not a JSON object", id="not object"),
        pytest.param("notes.txt", b"hello", None, id="unknown file ignored"),
        pytest.param("20250101T000000Z-00000003.db.gz", b"x", None, id="orphan data not listed"),
    ],
)
def test_listing_reports_what_it_cannot_trust_and_ignores_the_rest(
    store: tuple[Any, Raw],
    backup: tuple[Manifest, Path],
    name: str,
    content: bytes,
    problem: str | None,
) -> None:
    target, raw = store
    made, data = backup
    target.put(made, str(data))
    raw.put(name, content)
    listing = target.list()
    assert [m.id for m in listing.manifests] == [made.id]
    if problem is None:
        assert listing.complete
    else:
        assert not listing.complete and problem in listing.problems[0]


def test_a_manifest_whose_data_is_missing_is_a_problem_not_a_backup(
    store: tuple[Any, Raw], backup: tuple[Manifest, Path]
) -> None:
    target, raw = store
    made, _ = backup
    raw.put(made.manifest_name, made.to_json())
    listing = target.list()
    assert listing.manifests == () and "missing" in listing.problems[0]


def test_a_manifest_naming_another_id_is_refused(
    store: tuple[Any, Raw], backup: tuple[Manifest, Path]
) -> None:
    target, raw = store
    made, data = backup
    target.put(made, str(data))
    raw.put("20250101T000000Z-0000000a.json", made.to_json())  # copied under another name
    listing = target.list()
    assert [m.id for m in listing.manifests] == [made.id]
    assert "names another id" in listing.problems[0]


def test_write_manifest_replaces_the_manifest_and_leaves_the_data(
    store: tuple[Any, Raw], backup: tuple[Manifest, Path], tmp_path: Path
) -> None:
    target, _ = store
    made, data = backup
    stored = target.put(made, str(data))
    target.write_manifest(stored.with_(pinned=True))
    (listed_one,) = target.list().manifests
    assert listed_one.pinned and listed_one.sha256_gz == made.sha256_gz
    fetched = target.fetch(listed_one, str(tmp_path / "download.gz"))
    assert hashlib.sha256(Path(fetched).read_bytes()).hexdigest() == made.sha256_gz
