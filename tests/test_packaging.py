"""Packaging: one version, PEP 621 metadata, published extras that are really optional, the
command line (``python -m voyagr_wsgi``, ``--version``), and a repository that documents
itself (no citation of notes that are not in it)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import voyagr_wsgi
from voyagr_wsgi import _version

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def run(*args: str) -> subprocess.CompletedProcess[str]:
    """``python -m ...`` with the package the tests import (this tree's src/) first."""
    src = str(Path(voyagr_wsgi.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, env=env, timeout=60, check=False
    )


def test_version_flag_prints_the_command_and_the_version() -> None:
    result = run("-m", "voyagr_wsgi", "--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"voyagr-wsgi {voyagr_wsgi.__version__}\n"


def test_python_dash_m_runs_the_command_line() -> None:
    result = run("-m", "voyagr_wsgi", "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: voyagr-wsgi")
    for command in ("check", "backup", "explain", "--version"):
        assert command in result.stdout


def test_python_dash_m_passes_the_exit_status_through() -> None:
    result = run("-m", "voyagr_wsgi", "no-such-command")
    assert result.returncode == 2
    assert "unknown command 'no-such-command'" in result.stderr


def test_version_lives_in_one_file_read_statically_by_the_build() -> None:
    assert voyagr_wsgi.__version__ == _version.__version__
    assert re.fullmatch(r"\d+\.\d+\.\d+(\.dev\d+|rc\d+)?", _version.__version__)
    project = PYPROJECT["project"]
    assert "version" not in project
    assert project["dynamic"] == ["version"]
    dynamic = PYPROJECT["tool"]["setuptools"]["dynamic"]["version"]
    assert dynamic == {"attr": "voyagr_wsgi._version.__version__"}
    # a plain assignment: setuptools reads it without importing the package
    source = (ROOT / "src/voyagr_wsgi/_version.py").read_text()
    assert re.search(r'^__version__ = "[^"]+"$', source, re.M)
    hits = [
        str(p.relative_to(ROOT))
        for p in (ROOT / "src").rglob("*.py")
        if re.search(r"^__version__\s*=", p.read_text(), re.M)
    ]
    assert hits == ["src/voyagr_wsgi/_version.py"]


def test_metadata_is_pep_621_only_with_a_license_file() -> None:
    assert not (ROOT / "setup.cfg").exists()
    assert not (ROOT / "setup.py").exists()
    project = PYPROJECT["project"]
    assert project["license"] == "MIT"
    assert project["license-files"] == ["LICENSE"]
    license_text = (ROOT / "LICENSE").read_text()
    assert license_text.startswith("MIT License\n")
    assert "Copyright (c) 2026 the voyagr_wsgi authors" in license_text
    assert project["scripts"] == {"voyagr-wsgi": "voyagr_wsgi.cli:main"}
    classifiers = set(project["classifiers"])
    for wanted in (
        "Operating System :: POSIX",
        "Framework :: Flask",
        "Framework :: Django",
        "Typing :: Typed",
        "Programming Language :: Python :: 3.11",
        "Topic :: Internet :: WWW/HTTP :: WSGI :: Middleware",
    ):
        assert wanted in classifiers
    data = PYPROJECT["tool"]["setuptools"]["package-data"]["voyagr_wsgi"]
    assert set(data) == {"py.typed", "static/*"}


def _names(requirements: list[str]) -> set[str]:
    return {re.split(r"[\s<>=!~;\[]", r, maxsplit=1)[0].lower() for r in requirements}


def test_runtime_dependencies_are_only_what_the_default_stack_needs() -> None:
    # werkzeug: the admin endpoints; python-dotenv: the CLI's --env-file (README's table)
    assert _names(PYPROJECT["project"]["dependencies"]) == {"werkzeug", "python-dotenv"}


def test_published_extras_are_features_and_tools_are_dependency_groups() -> None:
    extras = PYPROJECT["project"]["optional-dependencies"]
    assert {name: _names(reqs) for name, reqs in extras.items()} == {
        "redis": {"redis", "hiredis"},
        "s3": {"boto3"},
        "prometheus": {"prometheus-client"},
        "gunicorn": {"gunicorn"},
        "flask": {"flask"},
        "django": {"django"},
    }
    groups = PYPROJECT["dependency-groups"]
    assert set(groups) == {"test", "lint", "bench"}
    assert {"pytest", "hypothesis"} <= _names(groups["test"])
    assert {"mypy", "ruff", "import-linter"} <= _names(groups["lint"])
    assert {"pytest-benchmark", "limits", "secure", "prometheus-client"} <= _names(groups["bench"])


def test_makefile_installs_the_extras_and_groups_the_tests_use() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert "$(STAMP): pyproject.toml\n" in makefile
    assert "EXTRAS  := redis,s3,gunicorn,flask,django,prometheus\n" in makefile
    assert "--group test --group lint --group bench" in makefile
    assert "setup.cfg" not in makefile
    assert "make smoke" in (ROOT / ".ci/run").read_text()


def _documentation_files() -> list[Path]:
    files = [ROOT / "README.md"]
    for folder, pattern in (("src", "*.py"), ("docs", "*"), ("benchmarks", "*")):
        files += [p for p in (ROOT / folder).rglob(pattern) if p.is_file()]
    return [p for p in files if p.suffix not in (".pyc",)]


def test_repository_cites_no_notes_outside_it() -> None:
    """Everything a user or maintainer needs is written in the repository itself."""
    cited = [
        f"{path.relative_to(ROOT)}:{n}"
        for path in _documentation_files()
        for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1)
        if "reference/" in line
    ]
    assert cited == []
