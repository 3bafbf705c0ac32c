from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from voyagr_wsgi.check import main


def codes(capsys: pytest.CaptureFixture[str]) -> str:
    return capsys.readouterr().out


def test_empty_environment_warns_but_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([], environ={}) == 0
    out = codes(capsys)
    for code in ("voyagr.W001", "voyagr.W003", "voyagr.W006"):
        assert code in out


def test_https_without_proxies_warns_about_redirect_loop(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main([], environ={"ENFORCE_HTTPS": "1", "ALLOWED_HOSTS": "a.com"}) == 0
    out = codes(capsys)
    assert "voyagr.W004" in out and "voyagr.W001" not in out


def test_preload_without_subdomains_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    env = {"HSTS_PRELOAD": "true", "HSTS_INCLUDE_SUBDOMAINS": "false"}
    assert main([], environ=env) == 1
    assert "voyagr.E001" in codes(capsys)


def test_bad_value_is_an_error_naming_the_variable(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([], environ={"ENFORCE_HTTPS": "sometimes"}) == 1
    assert "ENFORCE_HTTPS" in capsys.readouterr().err


def test_env_file_is_read(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    env_file = tmp_path / "prod.env"
    env_file.write_text(
        "# comment\nALLOWED_HOSTS=example.com\nVOYAGR_ADMIN_TOKEN='" + "x" * 32 + "'\n"
    )
    assert main(["--env-file", str(env_file)], environ={}) == 0
    out = codes(capsys)
    assert "voyagr.W001" not in out and "voyagr.W006" not in out


def test_console_command_runs() -> None:
    exe = Path(sys.executable).with_name("voyagr-wsgi")
    proc = subprocess.run(
        [str(exe), "check"], capture_output=True, text=True, env={"ENFORCE_HTTPS": "x"}, timeout=60
    )
    assert proc.returncode == 1
    assert "ENFORCE_HTTPS" in proc.stderr


def test_workers_from_the_env_file_are_seen(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env_file = tmp_path / "prod.env"
    env_file.write_text("WEB_CONCURRENCY=4\nRATE_LIMIT_STORAGE=memory\n")
    assert main(["--env-file", str(env_file)], environ={}) == 0
    assert "voyagr.W302" in codes(capsys)
    env_file.write_text("WEB_CONCURRENCY=4\nRATE_LIMIT_STORAGE=redis://127.0.0.1:6379/0\n")
    assert main(["--env-file", str(env_file)], environ={}) == 0
    assert "voyagr.W302" not in codes(capsys)
