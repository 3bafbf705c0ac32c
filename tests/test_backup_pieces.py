"""The backup area's pieces on their own: lock, create, catalogue, upload queue, restore.

Real SQLite files and real folders throughout; the "remote" is a second local folder (a
real store under another name), made to fail by putting a file where its folder should be.
"""

from __future__ import annotations

import ast
import logging
import shutil
from pathlib import Path

import pytest

from test_backup_support import ROOT, make_db, rows
from voyagr_wsgi.backups._fs import durable_copy
from voyagr_wsgi.backups.catalogue import Catalogue
from voyagr_wsgi.backups.create import Creator
from voyagr_wsgi.backups.local import LocalStore
from voyagr_wsgi.backups.lock import BackupBusy, BackupLock
from voyagr_wsgi.backups.manifest import Manifest
from voyagr_wsgi.backups.restore import Restorer
from voyagr_wsgi.backups.retention import Policy
from voyagr_wsgi.backups.status import StatusFile
from voyagr_wsgi.backups.uploads import UploadQueue
from voyagr_wsgi.errors import BackupError, BackupNotFound, InvalidBackupId

T0 = 1_767_322_800.0  # 2026-01-02T03:00:00Z
DAY = 86_400.0
PACKAGE = ROOT / "src" / "voyagr_wsgi" / "backups"


class Offsite(LocalStore):
    """A second folder standing in for S3: the same contract, another name."""

    name = "offsite"


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Area:
    """The pieces wired by hand the way the manager wires them."""

    def __init__(self, tmp_path: Path, *, remote: LocalStore | None = None) -> None:
        make_db(tmp_path / "app.db")
        self.clock = Clock()
        self.local = LocalStore(str(tmp_path / "backups"))
        self.local.ensure()
        self.status = StatusFile(str(tmp_path / "backups" / "status.json"), clock=self.clock)
        self.catalogue = Catalogue(
            self.local,
            remote,
            set_name="app",
            policy=Policy(daily=1, weekly=0, monthly=0, min_keep=1),
            status=self.status,
        )
        self.creator = Creator(
            str(tmp_path / "app.db"), self.local, set_name="app", status=self.status
        )
        self.uploads = UploadQueue(self.catalogue, retry_s=600.0)

    def backup(self, **options: object) -> Manifest:
        made = self.creator.take(now=self.clock(), **options)  # type: ignore[arg-type]
        self.clock.now += 60.0
        return made


def broken_offsite(tmp_path: Path) -> Offsite:
    (tmp_path / "offsite").write_bytes(b"a file where the folder should be")
    return Offsite(str(tmp_path / "offsite"))


def repair(store: LocalStore) -> None:
    Path(store.directory).unlink()
    store.ensure()


# -- lock ----------------------------------------------------------------------------------
def test_a_second_holder_in_the_same_process_is_busy_and_the_lock_is_released_after(
    tmp_path: Path,
) -> None:
    lock = BackupLock(LocalStore(str(tmp_path / "backups")))
    with lock.held():
        with pytest.raises(BackupBusy, match="in this process"):
            with lock.held():
                pass
    with pytest.raises(RuntimeError):
        with lock.held():
            raise RuntimeError("a failing run")
    with lock.held():  # released by the failure above
        pass


def test_taking_the_lock_removes_what_an_interrupted_run_left(tmp_path: Path) -> None:
    local = LocalStore(str(tmp_path / "backups"))
    local.ensure()
    partial = Path(local.staging) / "20260102T030405Z-0a1b2c3d.db.partial"
    unrelated = Path(local.directory) / "notes.txt"
    partial.write_bytes(b"x")
    unrelated.write_bytes(b"x")
    with BackupLock(local).held():
        assert not partial.exists()
    assert unrelated.exists()


# -- create --------------------------------------------------------------------------------
def test_create_commits_a_verified_backup_of_the_set_and_records_it(tmp_path: Path) -> None:
    area = Area(tmp_path)
    made = area.backup(reason="scheduled", pinned=True)
    assert (made.backup_set, made.reason, made.pinned, made.verified) == (
        "app",
        "scheduled",
        True,
        True,
    )
    assert area.local.list().manifests == (made,)
    status = area.status.read()
    assert (status.last_success_ts, status.last_backup_id) == (T0, made.id)


def test_a_failed_create_is_recorded_and_a_later_success_clears_it(tmp_path: Path) -> None:
    area = Area(tmp_path)
    shutil.move(tmp_path / "app.db", tmp_path / "elsewhere.db")
    with pytest.raises(BackupError, match="does not exist"):
        area.backup()
    failed = area.status.read()
    assert failed.last_failure_ts == T0 and "backup failed" in str(failed.last_error)
    assert area.local.list().manifests == ()
    shutil.move(tmp_path / "elsewhere.db", tmp_path / "app.db")
    area.backup()
    assert area.status.read().last_error is None


# -- catalogue -----------------------------------------------------------------------------
def test_pin_and_unpin_change_every_store_holding_the_backup(tmp_path: Path) -> None:
    offsite = Offsite(str(tmp_path / "offsite"))
    offsite.ensure()
    area = Area(tmp_path, remote=offsite)
    made = area.backup()
    offsite.put(made, area.local.data_path(made))
    assert area.catalogue.pin(made.id).pinned
    assert [m.pinned for m in area.local.list().manifests + offsite.list().manifests] == [
        True,
        True,
    ]
    assert not area.catalogue.pin(made.id, False).pinned
    assert [m.pinned for m in area.local.list().manifests + offsite.list().manifests] == [
        False,
        False,
    ]


def test_find_prefers_the_local_copy_and_names_what_it_cannot_find(tmp_path: Path) -> None:
    offsite = Offsite(str(tmp_path / "offsite"))
    offsite.ensure()
    area = Area(tmp_path, remote=offsite)
    made = area.backup()
    offsite.put(made, area.local.data_path(made))
    assert area.catalogue.find(made.id)[0] is area.local
    area.local.delete(made)
    assert area.catalogue.find(made.id)[0] is offsite
    with pytest.raises(BackupNotFound, match="of set 'app'"):
        area.catalogue.find("20990101T000000Z-00000000")
    with pytest.raises(InvalidBackupId):
        area.catalogue.find("../app.db")


def test_a_store_with_an_incomplete_listing_is_skipped_and_the_others_are_pruned(
    tmp_path: Path,
) -> None:
    offsite = Offsite(str(tmp_path / "offsite"))
    offsite.ensure()
    area = Area(tmp_path, remote=offsite)
    first, second = area.backup(), area.backup()
    for made in (first, second):
        offsite.put(made, area.local.data_path(made))
    (Path(offsite.directory) / "20260101T000000Z-0000000f.json").write_text("{not json")
    plans = area.catalogue.prune(now=area.clock())
    assert list(plans) == ["local"] and [m.id for m in plans["local"].delete] == [first.id]
    assert [m.id for m in area.local.list().manifests] == [second.id]
    assert [m.id for m in offsite.list().manifests] == [first.id, second.id]
    assert "retention on offsite failed" in str(area.status.read().last_error)


# -- uploads -------------------------------------------------------------------------------
def test_a_failed_upload_is_queued_and_sent_by_the_first_retry_that_is_due(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    offsite = broken_offsite(tmp_path)
    area = Area(tmp_path, remote=offsite)
    made = area.backup()
    with caplog.at_level(logging.ERROR, "voyagr_wsgi.backups"):
        assert area.uploads.upload(made) is False
    assert "upload raised" in caplog.text  # an unexpected error keeps its traceback
    status = area.status.read()
    assert status.pending_uploads == [made.id] and "will retry" in str(status.last_error)
    repair(offsite)
    failed_at = status.last_upload_failure_ts
    assert failed_at is not None
    assert area.uploads.retry(force=False, now=failed_at + 599.0) == []
    assert area.uploads.retry(force=False, now=failed_at + 600.0) == [made.id]
    status = area.status.read()
    assert status.pending_uploads == [] and status.last_error is None
    assert offsite.list().manifests[0].sha256_gz == made.sha256_gz


def test_a_retry_stops_at_the_first_failure_and_keeps_the_queue_in_order(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    area = Area(tmp_path, remote=broken_offsite(tmp_path))
    first, second = area.backup(), area.backup()
    assert not area.uploads.upload(first) and not area.uploads.upload(second)
    caplog.clear()
    with caplog.at_level(logging.ERROR, "voyagr_wsgi.backups"):
        assert area.uploads.retry(force=True, now=area.clock()) == []
    assert [r.getMessage() for r in caplog.records] == [
        f"backup {first.id} kept locally; upload raised"
    ]
    assert area.status.read().pending_uploads == [first.id, second.id]


def test_a_queued_backup_deleted_locally_leaves_the_queue_without_an_upload(
    tmp_path: Path,
) -> None:
    offsite = broken_offsite(tmp_path)
    area = Area(tmp_path, remote=offsite)
    made = area.backup()
    area.uploads.upload(made)
    area.local.delete(made)
    repair(offsite)
    assert area.uploads.retry(force=True, now=area.clock()) == []
    assert area.status.read().pending_uploads == []
    assert offsite.list().manifests == ()


def test_without_a_remote_every_upload_is_done_and_nothing_is_queued(tmp_path: Path) -> None:
    area = Area(tmp_path)
    assert area.uploads.upload(area.backup()) is True
    assert area.status.read().pending_uploads == []


# -- restore -------------------------------------------------------------------------------
def test_a_restore_whose_safety_backup_fails_changes_nothing(tmp_path: Path) -> None:
    area = Area(tmp_path)
    made = area.backup()
    make_db(tmp_path / "app.db", 5, tag="new")
    restorer = Restorer(str(tmp_path / "app.db"), area.local)

    def no_safety() -> Manifest:
        raise BackupError("disk full")

    with pytest.raises(BackupError, match="disk full"):
        restorer.restore(area.local, made, safety=no_safety, now=area.clock())
    assert rows(tmp_path / "app.db") == 105
    assert sorted(p.name for p in Path(area.local.staging).iterdir()) == []


def test_an_unreadable_live_database_is_not_compared_before_a_restore(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    area = Area(tmp_path)
    made = area.backup()
    (tmp_path / "app.db").write_bytes(b"not a database" * 100)
    with caplog.at_level(logging.WARNING, "voyagr_wsgi.backups"):
        Restorer(str(tmp_path / "app.db"), area.local).check_compatible(made)
    assert "schema not compared" in caplog.text


# -- primitives ----------------------------------------------------------------------------
def test_a_failed_durable_copy_leaves_no_temp_file(tmp_path: Path) -> None:
    source = tmp_path / "source"
    source.write_bytes(b"data")
    tmp = tmp_path / ".target.partial"
    with pytest.raises(FileNotFoundError):
        durable_copy(str(source), str(tmp_path / "missing" / "target"), str(tmp))
    assert not tmp.exists()


# -- dependencies --------------------------------------------------------------------------
# (exposition reads the manager's status per scrape, as health does)
USERS = {
    "__init__", "area", "manager", "scheduler", "runner", "health", "endpoints", "cli", "exposition"
}  # fmt: skip


def imported(module: Path) -> set[str]:
    """The backups-local modules and top-level packages ``module`` imports."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(module.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            names.add(node.module or "")
            names.update(alias.name for alias in node.names if node.module is None)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.partition(".")[0])
        elif isinstance(node, ast.Import):
            names.update(alias.name.partition(".")[0] for alias in node.names)
    return names


@pytest.mark.parametrize(
    "module",
    sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem not in USERS),
)
def test_the_pieces_never_import_the_manager_or_its_users(module: str) -> None:
    assert imported(PACKAGE / f"{module}.py") & USERS == set()


def test_only_the_s3_store_imports_boto3() -> None:
    importers = sorted(p.stem for p in PACKAGE.glob("*.py") if imported(p) & {"boto3", "botocore"})
    assert importers == ["s3"]
