"""The README's Quick start runs as written: each ```python block marked with a
``<!-- readme-test: PROJECT PATH [append] -->`` comment is written to PATH in PROJECT's folder
(or appended to the file there), then served by real gunicorn with the README's own
gunicorn.conf.py and asked for a page, as a new user would."""

from __future__ import annotations

import json
import os
import re
import runpy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gunicorn_apps.harness import free_port, get, gunicorn, wait_for

ROOT = Path(__file__).resolve().parent.parent
BLOCK = re.compile(
    r"```python\n(?P<code>.*?)```\s*\n<!-- readme-test: (?P<project>\S+) (?P<path>\S+)"
    r"(?P<append> append)? -->",
    re.S,
)


def blocks() -> dict[str, list[tuple[str, str, bool]]]:
    found: dict[str, list[tuple[str, str, bool]]] = {}
    for m in BLOCK.finditer((ROOT / "README.md").read_text()):
        found.setdefault(m["project"], []).append((m["path"], m["code"], bool(m["append"])))
    return found


def write(project: str, into: Path) -> None:
    for path, code, append in blocks()[project]:
        target = into / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if append:
            with target.open("a") as handle:
                handle.write("\n" + code)
        else:
            target.write_text(code)


def serve_readme(project: str, tmp_path: Path, *, workers: int = 1) -> Any:
    """gunicorn serving PROJECT's README blocks with the README's own gunicorn.conf.py."""
    write(project, tmp_path)
    write("gunicorn", tmp_path)
    env = {"VOYAGR_STATE_DIR": str(tmp_path / "state"), "PYTHONPATH": str(tmp_path)}
    return gunicorn(
        "", port=free_port(), env=env, workers=workers, log_dir=str(tmp_path),
        conf=str(tmp_path / "gunicorn.conf.py"), args=("--chdir", str(tmp_path)),
    )  # fmt: skip


def test_the_quick_start_marks_every_python_block() -> None:
    text = (ROOT / "README.md").read_text()
    quick = text[text.index("## Quick start") : text.index("## The layer order")]
    assert quick.count("```python") == len(BLOCK.findall(quick)) >= 7
    assert {"bare", "layers", "gunicorn", "flask", "django", "instrumentation"} <= set(blocks())


@pytest.mark.parametrize("project", ["bare", "layers"])
def test_a_wsgi_app_served_by_the_readme_gunicorn_config(project: str, tmp_path: Path) -> None:
    with serve_readme(project, tmp_path, workers=2) as server:
        port = server.port
        home = get(port, "/docs/intro")
        assert home.status == 200 and home.body == b"hello\n"
        assert home.headers["x-content-type-options"] == "nosniff"
        assert "server" not in home.headers
        if project == "layers":  # no Metrics layer there, so no access log
            assert home.headers["content-security-policy"].startswith("default-src 'self';")
            return
        log = wait_for(
            lambda: (text := server.log()) and "voyagr_wsgi.access" in text and text,
            what="the access log",
        )
    assert '"GET /docs/intro" 200' in log


def test_the_readme_gunicorn_config_binds_loopback_unless_a_paas_sets_port(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write("gunicorn", tmp_path)
    conf = str(tmp_path / "gunicorn.conf.py")
    monkeypatch.delenv("PORT", raising=False)
    assert runpy.run_path(conf)["bind"] == "127.0.0.1:8000"
    monkeypatch.setenv("PORT", "5123")
    assert runpy.run_path(conf)["bind"] == "0.0.0.0:5123"


def test_a_new_django_project_with_the_readme_blocks_under_gunicorn(tmp_path: Path) -> None:
    admin = Path(sys.executable).with_name("django-admin")
    subprocess.run([str(admin), "startproject", "mysite", str(tmp_path)], check=True, timeout=60)
    write("django", tmp_path)
    write("gunicorn", tmp_path)
    # what the new project's own manage.py and wsgi.py set (another test's settings module
    # may linger in this process's environment)
    clean = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    check = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy"], cwd=tmp_path, capture_output=True,
        text=True, timeout=60, env={**clean, "PYTHONPATH": str(tmp_path)},
    )  # fmt: skip
    assert "voyagr.W003" in check.stdout + check.stderr
    port = free_port()
    env = {
        "VOYAGR_STATE_DIR": str(tmp_path / "state"),
        "PYTHONPATH": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "mysite.settings",
    }
    with gunicorn(
        "mysite.wsgi:application", port=port, env=env, workers=1, log_dir=str(tmp_path),
        conf=str(tmp_path / "gunicorn.conf.py"), args=("--chdir", str(tmp_path)),
    ):  # fmt: skip
        login = get(port, "/admin/login/")
        forged = get(port, "/admin/login/", headers={"Host": "evil.example"})
    assert login.status == 200 and login.headers["x-content-type-options"] == "nosniff"
    cookie = login.headers["set-cookie"]
    assert cookie.startswith("csrftoken=") and "httponly" not in cookie.lower()
    assert forged.status == 400


def test_the_flask_quick_start_under_the_readme_gunicorn_config(tmp_path: Path) -> None:
    with serve_readme("flask", tmp_path) as server:
        port = server.port
        home = get(port, "/")
        logins = [get(port, "/login", method="POST").status for _ in range(6)]
        hook = get(port, "/hooks/stripe", method="POST", headers={"Origin": "https://evil.example"})
        other = get(port, "/login", method="POST", headers={"Origin": "https://evil.example"})
        wait_for(lambda: "holds" in server.log(), what="the services to start")
    assert home.status == 200 and home.body == b"hello\n"
    assert home.headers["x-content-type-options"] == "nosniff"
    assert logins == [200] * 5 + [429]
    assert hook.status == 200 and other.status == 403


def test_the_instrumentation_example_records_upstream_cache_and_queries(tmp_path: Path) -> None:
    with serve_readme("instrumentation", tmp_path) as server:
        port = server.port
        assert [get(port, "/").body for _ in range(3)] == [b"48.85,2.35\n"] * 3
        doc = json.loads(get(port, "/api/production/metrics").body)
    assert doc["upstreams"]["geocoder"]["calls"] == 1  # cached after the first
    assert (doc["caches"]["geocode"]["hits"], doc["caches"]["geocode"]["misses"]) == (2, 1)
    assert doc["database"]["systems"]["sqlite"]["queries"] >= 3
