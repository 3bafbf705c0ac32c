"""The Prometheus alerting rules shipped with the package: promtool accepts them, promtool's
unit tests fire them on the seed's thresholds, and a real Prometheus loads and evaluates them
against a voyagr app it scrapes."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from conftest import call, free_port, make_environ, require_tool
from gunicorn_apps.harness import stop_process
from metrics_apps import demo_app, serve
from voyagr_wsgi import Settings, compose

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "src" / "voyagr_wsgi" / "static" / "prometheus-rules.yml"


def test_the_rules_ship_inside_the_package() -> None:
    from importlib import resources

    shipped = resources.files("voyagr_wsgi") / "static" / "prometheus-rules.yml"
    assert shipped.read_text() == RULES.read_text()


@pytest.mark.system
def test_promtool_accepts_the_rules() -> None:
    promtool = require_tool("promtool", "apt-get install prometheus")
    done = subprocess.run(
        [promtool, "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 8 rules found" in done.stdout


@pytest.mark.system
def test_promtool_unit_tests_fire_each_rule_and_respect_min_traffic() -> None:
    promtool = require_tool("promtool", "apt-get install prometheus")
    done = subprocess.run(
        [promtool, "test", "rules", "prometheus-rules.test.yml"],
        cwd=ROOT / "tests" / "prometheus", capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as answer:
        return json.loads(answer.read())


@pytest.mark.system
@pytest.mark.slow
def test_a_real_prometheus_loads_and_evaluates_the_rules(tmp_path: Path) -> None:
    prometheus = require_tool("prometheus", "apt-get install prometheus")
    from test_backup_support import backup_settings
    from voyagr_wsgi.errors import BackupError

    settings = Settings(state_dir=str(tmp_path), backups=backup_settings(tmp_path))
    stack = compose(demo_app, settings)
    for path in ["/users/1", "/error"] * 10:
        call(stack, make_environ(path))
    with pytest.raises(BackupError):  # DATABASE_PATH names no file: the backup fails
        stack.components["backups"].create()
    app_port, prom_port = free_port(), free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        f"rule_files: ['{RULES}']\n"
        "scrape_configs:\n  - job_name: voyagr\n    metrics_path: /api/production/prometheus\n"
        f"    static_configs:\n      - targets: ['127.0.0.1:{app_port}']\n"
    )
    log = open(tmp_path / "prometheus.log", "wb")
    with serve(stack, app_port):
        proc = subprocess.Popen(
            [prometheus, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{prom_port}", "--log.level=warn"],
            stdout=subprocess.DEVNULL, stderr=log,
        )  # fmt: skip
        try:
            url = f"http://127.0.0.1:{prom_port}/api/v1/rules"
            rules: list[dict[str, Any]] = []
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                assert proc.poll() is None, (tmp_path / "prometheus.log").read_text()
                try:
                    groups = _get_json(url)["data"]["groups"]
                    rules = [r for g in groups for r in g["rules"]]
                except OSError:
                    rules = []
                firing = {r["name"] for r in rules if r.get("state") == "firing"}
                if rules and all(r.get("lastEvaluation", "").startswith("20") for r in rules):
                    if all(r["health"] == "ok" for r in rules) and firing:
                        break
                time.sleep(0.3)  # polling a real process until it has evaluated every rule
        finally:
            stop_process(proc, grace=10)
            log.close()
    assert sorted(r["name"] for r in rules) == [
        "VoyagrBackupFailed", "VoyagrBackupNeverSucceeded", "VoyagrBackupOverdue",
        "VoyagrHighErrorRate", "VoyagrLowCacheHitRate", "VoyagrSlowQueryBurst",
        "VoyagrSlowResponses", "VoyagrUpstreamFailureRate",
    ]  # fmt: skip
    assert {r["health"] for r in rules} == {"ok"}, rules
    # the failed backup, read from the backup status at scrape time, fires at once
    assert {r["name"] for r in rules if r.get("state") == "firing"} == {"VoyagrBackupFailed"}
