"""CLI conventions: --env-file everywhere (python-dotenv: quotes, comments, export), unknown
variables named with the closest known one, help without markup, --json output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from test_backup_support import make_db
from voyagr_wsgi import _cli
from voyagr_wsgi.check import main as check_main
from voyagr_wsgi.cli import main as cli_main
from voyagr_wsgi.errors import ConfigurationError


def test_env_file_keeps_quotes_drops_comments_and_reads_export(tmp_path: Path) -> None:
    env_file = tmp_path / "prod.env"
    env_file.write_text(
        "# a comment line\n"
        "CSP_POLICY=\"default-src 'self'\"\n"
        "ALLOWED_HOSTS=example.com   # the public name\n"
        "export RATE_LIMIT_REQUESTS=7\n"
        "VOYAGR_ADMIN_TOKEN='" + "t" * 32 + "'\n"
    )
    settings, env = _cli.settings_from(str(env_file), {})
    assert settings.csp == "default-src 'self'"
    assert settings.allowed_hosts == ("example.com",)
    assert settings.ratelimit.requests == 7
    assert "export RATE_LIMIT_REQUESTS" not in env
    assert settings.admin_token is not None and settings.admin_token.reveal() == "t" * 32


def test_env_file_line_without_a_value_is_an_error_naming_it(tmp_path: Path) -> None:
    env_file = tmp_path / "bad.env"
    env_file.write_text("ALLOWED_HOSTS=example.com\nENFORCE_HTTPS\n")
    with pytest.raises(ConfigurationError, match="ENFORCE_HTTPS"):
        _cli.read_env_file(str(env_file))


def test_missing_env_file_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert check_main(["--env-file", str(tmp_path / "nope.env")], environ={}) == 1
    assert "no such file" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("name", "closest"),
    [
        pytest.param("RATE_LIMIT_REQUEST", "RATE_LIMIT_REQUESTS", id="missing letter"),
        pytest.param("ALLOWD_HOSTS", "ALLOWED_HOSTS", id="typo in the first word"),
        pytest.param("SMTP_HOSTNAME", "SMTP_HOST", id="our prefix, another word"),
        pytest.param("HSTS_QQQQQQQQ", None, id="our prefix, nothing close"),
    ],
)
def test_check_warns_on_a_misspelled_variable_with_the_closest_name(
    name: str, closest: str | None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert check_main([], environ={name: "1"}) == 0
    out = capsys.readouterr().out
    line = next(ln for ln in out.splitlines() if "voyagr.W009" in ln)
    assert name in line
    if closest:
        assert f"did you mean {closest}?" in line
    else:
        assert "did you mean" not in line


@pytest.mark.parametrize(
    "name", ["HOME", "PATH", "AWS_PROFILE", "DATABASE_URL", "HTTPS_PROXY", "SECRET_KEY"]
)
def test_check_leaves_other_software_variables_alone(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert check_main([], environ={name: "x"}) == 0
    assert "voyagr.W009" not in capsys.readouterr().out


def test_every_documented_variable_is_known() -> None:
    root = Path(__file__).resolve().parent.parent
    names = {
        line.split("=", 1)[0]
        for line in (root / ".env.production").read_text().splitlines()
        if line and line[0].isupper() and "=" in line
    }
    assert names and names <= _cli.known_variables()


def test_check_json_lists_findings_and_errors(capsys: pytest.CaptureFixture[str]) -> None:
    env = {"HSTS_PRELOAD": "true", "HSTS_INCLUDE_SUBDOMAINS": "false"}
    assert check_main(["--json"], environ=env) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["errors"] == 1
    assert {"level": "ERROR", "code": "voyagr.E001"}.items() <= next(
        f for f in doc["findings"] if f["code"] == "voyagr.E001"
    ).items()
    assert check_main(["--json"], environ={"ENFORCE_HTTPS": "sometimes"}) == 1
    bad = json.loads(capsys.readouterr().out)
    assert bad["findings"][0]["code"] == "voyagr.E000"
    assert "ENFORCE_HTTPS" in bad["findings"][0]["message"]


def run_cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("voyagr-wsgi")
    base = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    return subprocess.run(
        [str(exe), *args], capture_output=True, text=True, env={**base, **env}, cwd=cwd,
        timeout=120,
    )


def test_backup_reads_the_env_file_and_lists_as_json(tmp_path: Path) -> None:
    make_db(tmp_path / "app.db")
    env_file = tmp_path / "prod.env"
    env_file.write_text(
        f"export DATABASE_PATH={tmp_path / 'app.db'}  # the live database\n"
        f'BACKUP_DIR="{tmp_path / "backups"}"\n'
    )
    made = run_cli("backup", "create", "--env-file", str(env_file), env={}, cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    listed = run_cli("backup", "list", "--json", "--env-file", str(env_file), env={}, cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    doc = json.loads(listed.stdout)
    assert len(doc["local"]["backups"]) == 1 and doc["local"]["problems"] == []
    assert doc["local"]["backups"][0]["id"] in made.stdout


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["--help"], id="voyagr-wsgi"),
        pytest.param(["check", "--help"], id="check"),
        pytest.param(["backup", "--help"], id="backup"),
        pytest.param(["backup", "list", "--help"], id="backup list"),
        pytest.param(["explain", "--help"], id="explain"),
        pytest.param(["alert", "--help"], id="alert"),
    ],
)
def test_help_has_no_markup(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as ended:
        code = cli_main(args)
        raise SystemExit(code)
    assert ended.value.code == 0
    out = capsys.readouterr().out
    assert "usage:" in out
    assert "``" not in out and ":mod:" not in out and ":class:" not in out and "`" not in out


@pytest.mark.parametrize("command", ["check", "explain"])
def test_every_subcommand_takes_env_file(command: str, tmp_path: Path) -> None:
    env_file = tmp_path / "prod.env"
    env_file.write_text("ENFORCE_HTTPS=sometimes\n")
    proc = run_cli(command, "--env-file", str(env_file), env={}, cwd=tmp_path)
    assert proc.returncode == 1 and "ENFORCE_HTTPS" in proc.stderr
