"""Logs that show up: the gunicorn star import's logconfig_dict, under real gunicorn."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from gunicorn_apps.harness import free_port, get, gunicorn, wait_for

STAMP = r"\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4}\] \[\d+\] \[INFO\]"


def log_with(server: Any, needle: str) -> str:
    text: str = server.log()
    return text if needle in text else ""


def write_conf(tmp_path: Path, extra: str = "") -> str:
    conf = tmp_path / "gunicorn.conf.py"
    conf.write_text(
        "from voyagr_wsgi.gunicorn import *  # noqa: F403\n"
        "wsgi_app = 'stack_app:application'\n" + extra
    )
    return str(conf)


def test_star_import_shows_access_log_and_service_lines_with_timestamps(tmp_path: Path) -> None:
    port = free_port()
    env = {"VOYAGR_STATE_DIR": str(tmp_path / "state"), "ALLOWED_HOSTS": "127.0.0.1"}
    with gunicorn(
        "", port=port, env=env, workers=2, log_dir=str(tmp_path), conf=write_conf(tmp_path)
    ) as server:
        assert get(port, "/", headers={"User-Agent": "probe/1"}).status == 200
        assert get(port, "/api/production/health").status == 200
        log = wait_for(lambda: log_with(server, "/api/production/health"), what="access lines")
    assert re.search(STAMP + r' voyagr_wsgi\.access: 127\.0\.0\.1 "GET /" 200 \d+B [\d.]+ms', log)
    admin = r' voyagr_wsgi\.access: 127\.0\.0\.1 "GET /api/production/health"'
    assert re.search(STAMP + admin, log)
    assert re.search(STAMP + r" voyagr_wsgi\.services: pid \d+ holds .*services\.lock", log)
    assert "Booting worker" in log  # gunicorn's own lines are kept


def test_a_logconfig_file_the_user_sets_wins_over_ours(tmp_path: Path) -> None:
    ini = tmp_path / "logging.ini"
    ini.write_text(
        "[loggers]\nkeys=root\n[handlers]\nkeys=out\n[formatters]\nkeys=mine\n"
        "[logger_root]\nlevel=INFO\nhandlers=out\n"
        "[handler_out]\nclass=StreamHandler\nformatter=mine\nargs=(sys.stdout,)\n"
        "[formatter_mine]\nformat=MINE %(name)s %(message)s\n"
    )
    port = free_port()
    env = {"VOYAGR_STATE_DIR": str(tmp_path / "state"), "ALLOWED_HOSTS": "127.0.0.1"}
    conf = write_conf(tmp_path, f"logconfig = {str(ini)!r}\n")
    with gunicorn("", port=port, env=env, workers=1, log_dir=str(tmp_path), conf=conf) as server:
        assert get(port, "/").status == 200
        log = wait_for(lambda: log_with(server, "MINE voyagr_wsgi.access"), what="their format")
    assert not re.search(STAMP + " voyagr_wsgi.access", log)


def test_gunicorns_server_header_is_removed_or_renamed(tmp_path: Path) -> None:
    env = {"VOYAGR_STATE_DIR": str(tmp_path / "state"), "ALLOWED_HOSTS": "127.0.0.1"}
    port = free_port()
    with gunicorn(
        "", port=port, env=env, workers=1, log_dir=str(tmp_path), conf=write_conf(tmp_path)
    ):
        answer = get(port, "/")
    assert answer.status == 200 and "server" not in answer.headers
    port = free_port()
    env["VOYAGR_SERVER_HEADER"] = "web"
    with gunicorn(
        "", port=port, env=env, workers=1, log_dir=str(tmp_path), conf=write_conf(tmp_path)
    ):
        answer = get(port, "/")
    assert answer.headers["server"] == "web"
