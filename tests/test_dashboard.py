"""The live dashboard in a real headless Chromium against a real loopback server."""

from __future__ import annotations

import contextlib
import os
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from conftest import free_port, require_tool
from metrics_apps import demo_app, serve
from voyagr_wsgi import Secret, Settings, Stack, compose
from voyagr_wsgi.metrics.config import MetricsSettings
from voyagr_wsgi.ratelimit.config import RateLimitSettings

pytestmark = [pytest.mark.system, pytest.mark.slow]

ARTIFACT = os.path.join(os.path.dirname(__file__), "artifacts", "dashboard.png")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
CHARTS = ["chart-rate", "chart-latency", "chart-errors", "chart-cache",
          "chart-upstream-success", "chart-upstream-latency"]  # fmt: skip


def make_stack(tmp_path: Any, token: str | None = None) -> Stack:
    settings = Settings(
        state_dir=str(tmp_path),
        admin_token=Secret(token) if token else None,
        metrics=MetricsSettings(slow_query_threshold_s=0.0),  # every query shows as slow
        ratelimit=RateLimitSettings(enabled=False),  # the load comes from one loopback client
    )
    return compose(demo_app, settings)


@contextlib.contextmanager
def load(base: str) -> Iterator[threading.Event]:
    """Requests against the server until the test is done."""
    stop = threading.Event()

    def run() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            path = [f"/users/{n + 2}", f"/users/{n * 4}", "/report", "/error", "/boom"][n % 5]
            try:
                urllib.request.urlopen(base + path, timeout=5).close()
            except urllib.error.HTTPError as exc:
                exc.close()
            except OSError:
                pass
            stop.wait(0.01)

    thread = threading.Thread(target=run, name="dashboard-load")
    thread.start()
    try:
        yield stop
    finally:
        stop.set()
        thread.join(10)


@contextlib.contextmanager
def browser() -> Iterator[Any]:
    chromium = require_tool("chromium", "apt-get install chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def wait_for_data(page: Any, polls: int = 3) -> None:
    page.wait_for_function(
        """([charts, polls]) =>
           charts.every(id => Number(document.getElementById(id).dataset.points) >= 2)
           && Number(document.getElementById('chart-rate').dataset.points) >= polls
           && Number(document.getElementById('recent-errors').dataset.rows) >= 1
           && Number(document.getElementById('slow-queries').dataset.rows) >= 1""",
        arg=[CHARTS, polls],
        timeout=30_000,
    )


def test_dashboard_draws_live_charts_from_a_loaded_server(tmp_path: Any) -> None:
    stack = make_stack(tmp_path)
    port = free_port()
    problems: list[str] = []
    with serve(stack, port) as base, load(base), browser() as b:
        page = b.new_page(viewport={"width": 1400, "height": 1100})

        def console(m: Any) -> None:
            if m.type == "error" and "favicon" not in m.location.get("url", ""):
                problems.append(m.text)

        page.on("console", console)
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.on("request", lambda r: None if r.url.startswith(base) else problems.append(r.url))
        page.goto(f"{base}/api/production/dashboard#interval=500")
        wait_for_data(page, polls=12)  # a few seconds of history for the screenshot
        last = page.evaluate(
            "(ids) => Object.fromEntries(ids.map(id => "
            "[id, JSON.parse(document.getElementById(id).dataset.last)]))",
            CHARTS,
        )
        total = int(page.evaluate("document.body.dataset.total"))
        os.makedirs(os.path.dirname(ARTIFACT), exist_ok=True)
        page.screenshot(path=ARTIFACT, full_page=True)
    assert problems == []  # no CSP violation, no script error, no external request
    assert total > 10
    assert last["chart-rate"]["req/s"] > 0
    assert last["chart-latency"]["p95"] >= last["chart-latency"]["p50"] > 0
    assert 0 < last["chart-errors"]["errors % (60 s)"] < 100
    assert 0 < last["chart-cache"]["users"] < 100
    assert 0 < last["chart-upstream-success"]["osrm"] < 100
    assert last["chart-upstream-latency"]["osrm"] >= 0
    assert os.path.getsize(ARTIFACT) > 10_000


def test_dashboard_uses_the_token_from_the_url_fragment(tmp_path: Any) -> None:
    token = "dash-token-0123456789abcdef"
    stack = make_stack(tmp_path, token)
    port = free_port()
    seen: list[str | None] = []
    with serve(stack, port) as base, load(base), browser() as b:
        page = b.new_page()  # no proxy needed: the page is public, its polls carry the token
        page.on("request", lambda r: seen.append(r.headers.get("authorization"))
                if r.url.endswith("/metrics") else None)  # fmt: skip
        page.goto(f"{base}/api/production/dashboard#token={token}&interval=500")
        wait_for_data(page)
        assert "token" not in page.url  # removed from the address bar
    assert seen and set(seen) == {f"Bearer {token}"}
