"""docs/deployment.md's Prometheus and Alertmanager wiring, checked with the real tools.

The YAML blocks of the guide are extracted as written; only the target, scheme and token
file are pointed at this test's gunicorn. A real Prometheus then scrapes
``/api/production/prometheus`` with the bearer token and sees the merged request count.
"""

from __future__ import annotations

import json
import re
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from conftest import free_port, require_tool
from gunicorn_apps.harness import ROOT, gunicorn, spread, stop_process, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.system, pytest.mark.timeout(60)]

GUIDE = Path(ROOT) / "docs" / "deployment.md"
TOKEN = "docs-test-token-0123456789abcdef"


def yaml_blocks() -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", GUIDE.read_text(), re.S)


def yaml_block(first_line: str) -> str:
    """The guide's YAML block that starts with ``first_line`` (a ``# file`` comment)."""
    return next(b for b in yaml_blocks() if b.startswith(first_line))


def scrape_config(port: int, token_file: Path) -> str:
    text = yaml_block("# prometheus.yml\nscrape_configs:")
    assert "metrics_path: /api/production/prometheus" in text
    assert "type: Bearer" in text
    text = text.replace("scheme: https", "scheme: http")
    text = text.replace('["app.example.com"]', f'["127.0.0.1:{port}"]')
    text = text.replace("/etc/prometheus/voyagr_token", str(token_file))
    return "global: {scrape_interval: 1s, scrape_timeout: 1s}\n" + text


def test_guide_scrape_config_passes_promtool(tmp_path: Path) -> None:
    promtool = require_tool("promtool", "apt-get install prometheus")
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    config = tmp_path / "prometheus.yml"
    config.write_text(scrape_config(8000, token_file))
    checked = subprocess.run(
        [promtool, "check", "config", str(config)], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_guide_alertmanager_config_passes_amtool(tmp_path: Path) -> None:
    amtool = require_tool("amtool", "apt-get install prometheus-alertmanager")
    url_file = tmp_path / "slack_url"
    url_file.write_text("https://hooks.slack.com/services/T000/B000/XXXX")
    config = tmp_path / "alertmanager.yml"
    block = yaml_block("# alertmanager.yml")
    config.write_text(block.replace("/etc/alertmanager/slack_url", str(url_file)))
    checked = subprocess.run([amtool, "check-config", str(config)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def query(prom_port: int, path: str) -> Any:
    with urllib.request.urlopen(f"http://127.0.0.1:{prom_port}{path}", timeout=2) as answer:
        return json.load(answer)


def test_prometheus_scrapes_merged_metrics_with_the_bearer_token(tmp_path: Path) -> None:
    prometheus = require_tool("prometheus", "apt-get install prometheus")
    env = {
        "VOYAGR_STATE_DIR": str(tmp_path / "state"),
        "ALLOWED_HOSTS": "127.0.0.1",
        "RATE_LIMIT_ENABLED": "false",
        "VOYAGR_ADMIN_TOKEN": TOKEN,
        "METRICS_FLUSH_INTERVAL_SECONDS": "0.2",
    }
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    with gunicorn(
        "stack_app:application", port=free_port(), env=env, log_dir=str(tmp_path)
    ) as server:
        served = {int(a.body) for a in spread(server.port, "/", 24)}
        assert len(served) >= 2
        config = tmp_path / "prometheus.yml"
        config.write_text(scrape_config(server.port, token_file))
        prom_port = free_port()
        with open(tmp_path / "prometheus.log", "wb") as log:
            prom = subprocess.Popen(
                [
                    prometheus,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{prom_port}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            expr = "sum(http_server_request_duration_seconds_count)"

            def scraped_total() -> float | None:
                try:
                    result = query(prom_port, f"/api/v1/query?query={expr}")["data"]["result"]
                except OSError:
                    return None
                return float(result[0]["value"][1]) if result else None

            total = wait_for(scraped_total, timeout=20, every=0.5, what="a scrape")
            targets = query(prom_port, "/api/v1/targets")["data"]["activeTargets"]
        finally:
            stop_process(prom)
    assert [t["health"] for t in targets] == ["up"]
    assert total == 24, "Prometheus sees every worker's requests, once"
