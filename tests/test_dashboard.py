"""The live dashboard in a real headless Chromium against a real loopback server.

The page opens with the server's history (a registry seeded over 12 minutes with an injected
clock), draws a clock-time axis, shows the values under the pointer, and answers a 401 with an
in-page token form: a blocking dialog (``prompt``) would hang the browser and the worker
serving it, so every test fails on any ``dialog`` event. ``tests/artifacts/dashboard.png`` is
the seeded page with the pointer over the latency chart.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from conftest import free_port, require_tool
from metrics_apps import demo_app, serve
from voyagr_wsgi import Secret, Settings, Stack, compose
from voyagr_wsgi.admin import Admin
from voyagr_wsgi.metrics.config import MetricsSettings
from voyagr_wsgi.metrics.endpoints import admin_routes
from voyagr_wsgi.metrics.layer import Metrics
from voyagr_wsgi.metrics.registry import Registry
from voyagr_wsgi.ratelimit.config import RateLimitSettings

pytestmark = [pytest.mark.system, pytest.mark.slow]

ARTIFACT = os.path.join(os.path.dirname(__file__), "artifacts", "dashboard.png")
LOGIN_SHOT = os.path.join(os.path.dirname(__file__), "artifacts", "tmp", "dashboard-login.png")
TOKEN = "dash-token-0123456789abcdef"
LIVE = "() => document.body.dataset.state === 'live'"  # an answer drawn
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
          "chart-upstream-success", "chart-upstream-calls"]  # fmt: skip


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


def wait_for_data(page: Any, points: int = 2) -> None:
    """Until every chart has ``points`` values (one per 5 s slot) and the tables have rows."""
    page.wait_for_function(
        """([charts, points]) =>
           charts.every(id => Number(document.getElementById(id).dataset.points) >= points)
           && Number(document.getElementById('recent-errors').dataset.rows) >= 1
           && Number(document.getElementById('slow-queries').dataset.rows) >= 1""",
        arg=[CHARTS, points],
        timeout=45_000,
    )


class Clock:
    """The registry's wall clock: fixed while seeding, then the real time."""

    def __init__(self) -> None:
        self.fixed: float | None = None

    def __call__(self) -> float:
        return time.time() if self.fixed is None else self.fixed


def seeded_app(token: str | None = TOKEN, minutes: int = 12) -> tuple[Any, Registry]:
    """The demo app with a registry holding ``minutes`` of traffic, a request every slot."""
    clock = Clock()
    start = time.time() - minutes * 60
    clock.fixed = start
    registry = Registry(now=clock, slow_query_threshold_s=0.0)
    for k in range(minutes * 12):  # one burst per 5 s slot, a wave of 2..12 requests
        clock.fixed = start + k * 5
        n = 7 + round(5 * math.sin(k / 9))
        for i in range(n):
            error = i == 0 and k % 4 == 0
            duration = 0.002 + 0.0015 * i + 0.02 * (k % 24 == 0)
            registry.observe_request("GET", "/users/{id}", 503 if error else 200, duration,
                                     duration / 2, error)  # fmt: skip
        registry.cache_event("users", hits=n - 1, misses=1 + (k % 6 == 0))
        for j in range(3):
            registry.upstream_call("osrm", "error" if j == k % 7 else "success", 0.01 + j / 100)
    clock.fixed = None
    app = Admin(
        Metrics(demo_app, registry=registry),
        token=Secret(token) if token else None,
        routes=admin_routes(registry, None),
    )
    return app, registry


def watch(page: Any, problems: list[str], base: str) -> None:
    """Fail on any dialog, script error, CSP report or request to another origin."""

    def dialog(d: Any) -> None:  # recorded, then dismissed so that the page goes on
        problems.append(f"dialog {d.type}: {d.message}")
        d.dismiss()

    page.on("dialog", dialog)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("request", lambda r: None if r.url.startswith(base) else problems.append(r.url))

    def console(m: Any) -> None:
        if m.type == "error" and "favicon" not in m.location.get("url", "") \
                and "401" not in m.text:  # fmt: skip
            problems.append(m.text)

    page.on("console", console)


def chart(page: Any, id: str) -> dict[str, Any]:
    """What a chart drew: value count, seconds spanned, time-axis labels, last values."""
    data = page.evaluate("(id) => ({...document.getElementById(id).dataset})", id)
    return {
        "points": int(data["points"]),
        "span": float(data["span"]),
        "ticks": json.loads(data["ticks"]),
        "last": json.loads(data["last"]),
        "hovered": json.loads(data["hovered"]) if data.get("hovered") else None,
    }


def history(base: str, token: str = TOKEN) -> list[dict[str, Any]]:
    request = urllib.request.Request(
        base + "/api/production/metrics/history", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, timeout=10) as resp:
        points: list[dict[str, Any]] = json.load(resp)["points"]
    return points


def test_dashboard_opens_with_the_server_history_a_time_axis_and_hover_values(
) -> None:
    app, registry = seeded_app()
    port = free_port()
    problems: list[str] = []
    fetched: list[str] = []
    with serve(app, port) as base, browser() as b:
        page = b.new_page(viewport={"width": 1400, "height": 1250})
        watch(page, problems, base)
        page.on("request", lambda r: fetched.append(r.url) if "/metrics" in r.url else None)
        page.goto(f"{base}/api/production/dashboard#token={TOKEN}&interval=500")
        page.wait_for_function(LIVE, timeout=30_000)
        first = {id: chart(page, id) for id in CHARTS}  # drawn from the first answer
        # the first request asked for the whole retention, the polls only for the newest slots
        page.wait_for_timeout(1500)  # three more polls
        assert fetched[0].endswith("/metrics/history")
        assert any("/metrics/history?since=" in url for url in fetched[2:])
        for id in CHARTS:
            assert first[id]["span"] > 600, id  # 12 minutes of slots at first paint
            assert first[id]["points"] >= 120, id
            assert len(first[id]["ticks"]) >= 4, id  # 15 minutes, labelled every few minutes
            assert all(re.fullmatch(r"\d\d:\d\d", t) for t in first[id]["ticks"]), id
        assert set(first["chart-latency"]["last"]) == {"p50", "p95", "p99"}
        assert set(first["chart-cache"]["last"]) == {"users"}

        box = page.locator("#chart-rate").bounding_box()
        page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + box["height"] / 2)
        hovered = chart(page, "chart-rate")["hovered"]
        assert hovered is not None
        slot = next(p for p in history(base) if p["t"] + p["span_s"] / 2 == hovered["t"])
        assert hovered["values"]["req/s"] == slot["rate"] > 0  # the server's value for that slot
        readout = page.inner_text("#chart-rate-readout")
        clock = time.strftime("%H:%M:%S", time.localtime(hovered["t"]))
        assert readout.startswith(clock) and f"req/s {slot['rate']:.2f}" in readout

        box = page.locator("#chart-latency").bounding_box()
        page.mouse.move(box["x"] + box["width"] * 0.45, box["y"] + box["height"] / 2)
        latency = chart(page, "chart-latency")["hovered"]
        assert latency is not None and 0 < latency["values"]["p50"] <= latency["values"]["p99"]
        assert "p95" in page.inner_text("#chart-latency-readout")
        os.makedirs(os.path.dirname(ARTIFACT), exist_ok=True)
        page.screenshot(path=ARTIFACT, full_page=True)
        page.mouse.move(0, 0)
        assert chart(page, "chart-latency")["hovered"] is None
        assert page.inner_text("#chart-latency-readout").startswith("latest p50 ")
    assert problems == []  # no dialog, no CSP violation, no script error, no external request
    assert registry.retention_s == 900.0
    assert os.path.getsize(ARTIFACT) > 10_000


def test_a_401_shows_a_token_form_and_the_token_loads_the_data() -> None:
    app, _ = seeded_app()
    port = free_port()
    problems: list[str] = []
    polls: list[str | None] = []
    with serve(app, port) as base, browser() as b:
        page = b.new_page()
        watch(page, problems, base)
        page.on("request", lambda r: polls.append(r.headers.get("authorization"))
                if "/metrics" in r.url else None)  # fmt: skip
        page.goto(f"{base}/api/production/dashboard#interval=300")  # no token
        page.wait_for_selector("#token-input", state="visible", timeout=30_000)
        page.screenshot(path=LOGIN_SHOT)
        assert page.is_hidden("#main")
        asked = len(polls)
        page.wait_for_timeout(1500)  # five poll intervals: polling stopped at the 401
        assert len(polls) == asked and set(polls) == {None}

        page.fill("#token-input", "wrong-token")
        page.click("#token-submit")
        page.wait_for_function(
            "() => document.getElementById('login-error').textContent.includes('refused')",
            timeout=30_000,
        )
        assert page.is_visible("#token-input") and page.input_value("#token-input") == ""

        page.fill("#token-input", TOKEN)
        page.press("#token-input", "Enter")
        page.wait_for_function(LIVE, timeout=30_000)
        assert page.is_hidden("#login") and page.is_visible("#chart-rate")
        assert chart(page, "chart-rate")["span"] > 600  # the history, right after the token
        assert page.evaluate("sessionStorage.getItem('voyagr-token')") == TOKEN
        page.reload()  # the tab keeps the token
        page.wait_for_function(LIVE, timeout=30_000)
    assert problems == []  # above all: no dialog event
    assert f"Bearer {TOKEN}" in polls and "Bearer wrong-token" in polls


def test_the_page_has_no_blocking_dialog() -> None:
    from voyagr_wsgi.metrics.endpoints import dashboard_page

    html = dashboard_page()[0].decode()
    assert not re.search(r"\b(prompt|alert|confirm)\s*\(", html)


def test_dashboard_draws_live_charts_from_a_loaded_server(
    tmp_path: Any
) -> None:
    stack = make_stack(tmp_path)
    port = free_port()
    problems: list[str] = []
    with serve(stack, port) as base, load(base), browser() as b:
        page = b.new_page(viewport={"width": 1400, "height": 1100})
        watch(page, problems, base)
        page.goto(f"{base}/api/production/dashboard#interval=500")
        wait_for_data(page, points=2)  # two 5 s slots of the live load, appended by the polls
        last = {id: chart(page, id)["last"] for id in CHARTS}
        total = int(page.evaluate("document.body.dataset.total"))
    assert problems == []  # no CSP violation, no script error, no external request
    assert total > 10
    assert last["chart-rate"]["req/s"] > 0
    assert last["chart-latency"]["p99"] >= last["chart-latency"]["p95"]
    assert last["chart-latency"]["p95"] >= last["chart-latency"]["p50"] > 0
    assert 0 < last["chart-errors"]["errors"] < 100
    assert 0 <= last["chart-cache"]["users"] < 100
    assert 0 <= last["chart-upstream-success"]["osrm"] <= 100
    assert last["chart-upstream-calls"]["osrm"] > 0


def test_dashboard_uses_the_token_from_the_url_fragment(
    tmp_path: Any
) -> None:
    stack = make_stack(tmp_path, TOKEN)
    port = free_port()
    seen: list[str | None] = []
    with serve(stack, port) as base, load(base), browser() as b:
        page = b.new_page()  # no proxy needed: the page is public, its polls carry the token
        page.on("request", lambda r: seen.append(r.headers.get("authorization"))
                if "/metrics" in r.url else None)  # fmt: skip
        page.goto(f"{base}/api/production/dashboard#token={TOKEN}&interval=500")
        wait_for_data(page)
        assert "token" not in page.url  # removed from the address bar
        assert "interval=500" in page.url  # the rest of the fragment stays
    assert seen and set(seen) == {f"Bearer {TOKEN}"}
