"""What the backup area loads, and when: boto3 is an extra, the manager and its pieces load
only when a backup stack is built, and a missing extra is named at build time."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from test_backup_support import ROOT, cli, env_for
from voyagr_wsgi.backups import BackupSettings

#: make ``import boto3`` (and botocore) fail in the child as if the extra were not installed
BLOCK_BOTO3 = "import sys; sys.modules['boto3'] = None; sys.modules['botocore'] = None\n"


def run_child(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-W", "error", "-c", BLOCK_BOTO3 + textwrap.dedent(code)],
        env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_importing_the_package_loads_neither_boto3_nor_the_manager() -> None:
    child = run_child(
        """
        import sys
        import voyagr_wsgi.backups
        import voyagr_wsgi.backups.config
        from voyagr_wsgi.backups import BackupSettings
        loaded = sorted(m for m in sys.modules if m.startswith("voyagr_wsgi.backups."))
        print(loaded)
        print(sys.modules.get("boto3") is None)
        """
    )
    assert child.returncode == 0, child.stderr
    loaded, boto3_absent = child.stdout.splitlines()
    assert loaded == "['voyagr_wsgi.backups.config']"
    assert boto3_absent == "True"


def test_names_exported_lazily_load_on_first_use() -> None:
    child = run_child(
        """
        import sys
        import voyagr_wsgi.backups as backups
        assert "voyagr_wsgi.backups.manager" not in sys.modules
        for name in backups.__all__:
            getattr(backups, name)
        assert "voyagr_wsgi.backups.manager" in sys.modules
        assert sys.modules.get("boto3") is None  # S3 is off: still not imported
        print(sorted(set(backups.__all__) - set(dir(backups))))
        """
    )
    assert child.returncode == 0, child.stderr
    assert child.stdout.strip() == "[]"


@pytest.mark.parametrize(
    "build",
    [
        pytest.param("BackupManager(config)", id="the manager"),
        pytest.param(
            "contribute(Settings(backups=config), BuildContext(Settings(backups=config)))",
            id="the area's contribute(settings, context)",
        ),
        pytest.param("compose(hello, Settings(backups=config))", id="compose"),
    ],
)
def test_s3_enabled_without_boto3_is_a_configuration_error_at_build_time(
    tmp_path: Path, build: str
) -> None:
    child = run_child(
        f"""
        from voyagr_wsgi import Settings, compose
        from voyagr_wsgi._build import BuildContext
        from voyagr_wsgi.backups import BackupManager, BackupSettings
        from voyagr_wsgi.backups.area import contribute
        from voyagr_wsgi.errors import ConfigurationError

        def hello(environ, start_response):
            start_response("200 OK", [])
            return [b""]

        config = BackupSettings(
            database_path={str(tmp_path / "app.db")!r},
            backup_dir={str(tmp_path / "backups")!r},
            s3_enabled=True,
            s3_bucket="b",
        )
        try:
            {build}
        except ConfigurationError as exc:
            print(exc)
        else:
            print("built")
        """
    )
    assert child.returncode == 0, child.stderr
    assert child.stdout.strip() == "S3_BACKUP_ENABLED=true needs: pip install 'voyagr-wsgi[s3]'"


def test_s3_off_builds_without_boto3(tmp_path: Path) -> None:
    child = run_child(
        f"""
        import sqlite3, sys
        from voyagr_wsgi.backups import BackupManager, BackupSettings
        sqlite3.connect({str(tmp_path / "app.db")!r}).execute("CREATE TABLE t(x)").close()
        config = BackupSettings(
            database_path={str(tmp_path / "app.db")!r}, backup_dir={str(tmp_path / "b")!r}
        )
        made = BackupManager(config).create()
        print(sorted(BackupManager(config).list()), sys.modules.get("boto3") is None)
        """
    )
    assert child.returncode == 0, child.stderr
    assert child.stdout.strip() == "['local'] True"


def test_cli_names_the_missing_extra(tmp_path: Path) -> None:
    blocker = tmp_path / "site"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(BLOCK_BOTO3)
    config = BackupSettings(
        database_path=str(tmp_path / "app.db"),
        backup_dir=str(tmp_path / "backups"),
        s3_enabled=True,
        s3_bucket="b",
    )
    env = env_for(config, S3_BACKUP_ENABLED="true", S3_BUCKET="b")
    env["PYTHONPATH"] = os.pathsep.join([str(blocker), str(ROOT / "src")])
    done = cli(env, "list")
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "voyagr-wsgi backup list: error: S3_BACKUP_ENABLED=true needs: "
        "pip install 'voyagr-wsgi[s3]'"
    )
