"""What a user of ``pip install voyagr-wsgi`` (no extras) gets.

``make smoke`` installs the package, not editable and with no extras, into a fresh venv with
pytest as the only other package, and runs this folder there with ``VOYAGR_SMOKE_NO_EXTRAS=1``;
the tests that only hold in such a venv fail (they do not skip) when that variable is set.
``make test`` runs the folder too, in the development venv, where those tests skip.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from wsgiref.util import setup_testing_defaults
from wsgiref.validate import validator

import pytest

import voyagr_wsgi
import voyagr_wsgi.layers
from voyagr_wsgi import ConfigurationError, Settings, compose

NO_EXTRAS = os.environ.get("VOYAGR_SMOKE_NO_EXTRAS") == "1"
no_extras_only = pytest.mark.skipif(
    not NO_EXTRAS, reason="holds only in the no-extras venv of `make smoke`"
)
EXTRAS = ["redis", "hiredis", "boto3", "botocore", "gunicorn", "flask", "django"]
EXTRAS += ["prometheus_client"]
# what importing one layer must not load
HEAVY = [
    "sqlite3",
    "smtplib",
    "boto3",
    "redis",
    "voyagr_wsgi.backups.manager",
    "voyagr_wsgi.alerts.dispatcher",
    "voyagr_wsgi.settings",
    "voyagr_wsgi.areas",
    "voyagr_wsgi.services",
    "voyagr_wsgi.health",
]


def run(*args: str, executable: str = sys.executable) -> subprocess.CompletedProcess[str]:
    """A fresh interpreter importing the same voyagr_wsgi as this one."""
    where = str(Path(voyagr_wsgi.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([where, os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(
        [executable, *args], capture_output=True, text=True, env=env, timeout=60, check=False
    )


def hello(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8")])
    return [b"hello"]


def test_default_stack_composes_and_serves(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # the default state dir is ./.voyagr
    stack = compose(hello, Settings.from_env({}))
    environ: dict[str, Any] = {"QUERY_STRING": ""}
    setup_testing_defaults(environ)
    seen: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        seen["status"], seen["headers"] = status, dict(headers)
        return lambda data: None

    body = validator(stack)(environ, start_response)
    try:
        payload = b"".join(body)
    finally:
        close = getattr(body, "close", None)
        if close is not None:
            close()
    assert seen["status"] == "200 OK"
    assert payload == b"hello"
    headers = seen["headers"]
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
    assert "Content-Security-Policy" in headers
    assert "X-Frame-Options" in headers


@pytest.mark.parametrize("name", voyagr_wsgi.layers.__all__)
def test_each_layer_imports_alone(name: str) -> None:
    result = run("-c", f"from voyagr_wsgi.layers import {name}; print({name}.__name__)")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{name}\n"


def test_importing_one_layer_loads_that_layer_not_the_areas(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = (
        "import sys\n"
        "import voyagr_wsgi.layers\n"
        "from voyagr_wsgi.layers import HostCheck\n"
        f"loaded = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "ours = sorted(m for m in sys.modules if m.split('.')[0] == 'voyagr_wsgi')\n"
        "print(len(ours), ' '.join(ours))\n"
        "print(' '.join(loaded))\n"
    )
    result = run("-c", code)
    assert result.returncode == 0, result.stderr
    ours, loaded = result.stdout.splitlines()
    count, _, modules = ours.partition(" ")
    with capsys.disabled():  # the count is worth seeing in every run
        print(f"\nimporting HostCheck loads {count} voyagr_wsgi modules: {modules}")
    assert loaded == "", f"importing HostCheck loaded {loaded} ({count} voyagr_wsgi modules)"
    # the package root, the light compose function, the layer and what it needs
    assert modules.split() == [
        "voyagr_wsgi",
        "voyagr_wsgi._layer",
        "voyagr_wsgi._lazy",
        "voyagr_wsgi._version",
        "voyagr_wsgi._wsgi",
        "voyagr_wsgi.compose",
        "voyagr_wsgi.counters",  # stdlib only: the layer's rejection counts
        "voyagr_wsgi.errors",
        "voyagr_wsgi.layers",
        "voyagr_wsgi.layers.host_check",
        "voyagr_wsgi.problem",
        "voyagr_wsgi.request",
    ]


def test_console_script_prints_the_version() -> None:
    script = Path(sys.executable).parent / "voyagr-wsgi"
    assert script.exists(), f"{script}: the package is not installed in this venv"
    result = run("--version", executable=str(script))
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"voyagr-wsgi {voyagr_wsgi.__version__}\n"


def test_python_dash_m_prints_help() -> None:
    result = run("-m", "voyagr_wsgi", "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: voyagr-wsgi")


@no_extras_only
def test_the_package_under_test_is_the_installed_one() -> None:
    assert "site-packages" in Path(voyagr_wsgi.__file__).parts


@no_extras_only
@pytest.mark.parametrize("module", EXTRAS)
def test_no_extra_is_installed(module: str) -> None:
    assert importlib.util.find_spec(module) is None, f"{module} is importable"


@no_extras_only
@pytest.mark.parametrize(
    ("env", "setting", "extra"),
    [
        pytest.param(
            {"RATE_LIMIT_STORAGE": "redis://127.0.0.1:6379/0"},
            "RATE_LIMIT_STORAGE",
            "redis",
            id="redis rate-limit storage",
        ),
        pytest.param(
            {"S3_BACKUP_ENABLED": "true", "S3_BUCKET": "backups", "S3_REGION": "eu-west-1"},
            "S3_BACKUP_ENABLED",
            "s3",
            id="S3 backup upload",
        ),
    ],
)
def test_a_setting_needing_a_missing_extra_names_it(
    env: dict[str, str], setting: str, extra: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigurationError) as caught:
        compose(hello, Settings.from_env(env))
    message = str(caught.value)
    assert setting in message
    assert f"pip install 'voyagr-wsgi[{extra}]'" in message


@no_extras_only
def test_prometheus_bridge_names_its_extra() -> None:
    from voyagr_wsgi.metrics.prometheus_bridge import PrometheusBridge
    from voyagr_wsgi.metrics.registry import Registry

    with pytest.raises(ConfigurationError, match=r"pip install 'voyagr-wsgi\[prometheus\]'"):
        PrometheusBridge(Registry())
