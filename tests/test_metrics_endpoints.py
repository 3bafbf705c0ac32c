"""Admin endpoints of the metrics area: the JSON document, protection, the dashboard page."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from conftest import call, make_environ
from metrics_apps import demo_app
from voyagr_wsgi import Secret, Settings, Stack, compose

TOKEN = "metrics-token-0123456789abcdef"


@pytest.fixture
def stack(tmp_path: Any) -> Iterator[Stack]:
    yield compose(demo_app, Settings(state_dir=str(tmp_path), admin_token=Secret(TOKEN)))


def admin(path: str, **kw: Any) -> dict[str, Any]:
    return make_environ(path, headers={"Authorization": f"Bearer {TOKEN}"}, **kw)


def test_metrics_json_has_the_seed_keys_and_figures(stack: Stack) -> None:
    for path in ["/users/4", "/users/5", "/users/17", "/report", "/error"] * 4:
        call(stack, make_environ(path))
    with pytest.raises(RuntimeError):
        call(stack, make_environ("/boom"))
    result = call(stack, admin("/api/production/metrics"))
    assert result.code == 200 and result.header("Content-Type") == "application/json"
    doc = json.loads(result.body)
    assert set(doc) >= {
        "uptime_seconds", "requests", "routes", "errors", "caches", "upstreams", "database",
        "health",
    }  # fmt: skip
    req = doc["requests"]
    assert set(req) >= {"total", "errors", "error_rate", "avg_response_time_ms", "p50_ms",
                        "p95_ms", "p99_ms"}  # fmt: skip
    assert (req["total"], req["errors"]) == (21, 5)
    assert req["error_rate"] == pytest.approx(5 / 21)
    assert 0 < req["p50_ms"] <= req["p95_ms"] <= req["p99_ms"]
    assert doc["routes"]["GET /users/{id}"]["count"] == 12
    assert doc["routes"]["GET /error"]["statuses"] == {"503": 4}
    assert doc["errors"]["by_type"] == {"RuntimeError": 1}
    (recent,) = doc["errors"]["recent"]
    assert (recent["type"], recent["route"]) == ("RuntimeError", "/boom")
    assert recent["message"] == "boom: demo exception" and recent["traceback"]
    assert doc["caches"]["users"]["hits"] == 4 and doc["caches"]["users"]["hit_rate"] == 1 / 3
    osrm = doc["upstreams"]["osrm"]
    assert (osrm["calls"], osrm["errors"], osrm["success_rate"]) == (12, 4, pytest.approx(2 / 3))
    assert doc["database"]["queries"] == 4
    assert doc["health"]["status"] in ("pass", "warn", "fail")
    assert doc["window"]["requests"]["total"] == 21


@pytest.mark.parametrize("path", ["metrics", "prometheus"])
@pytest.mark.parametrize(
    ("headers", "remote", "code"),
    [
        pytest.param({}, "127.0.0.1", 401, id="no token sent: 401 even from loopback"),
        pytest.param({"Authorization": "Bearer wrong"}, "203.0.113.9", 401, id="wrong token"),
        pytest.param({"Authorization": f"Bearer {TOKEN}"}, "203.0.113.9", 200, id="token"),
    ],
)
def test_admin_token_protects_every_metrics_endpoint(
    stack: Stack, path: str, headers: dict[str, str], remote: str, code: int
) -> None:
    result = call(stack, make_environ(f"/api/production/{path}", headers=headers, remote=remote))
    assert result.code == code


def test_dashboard_page_holds_no_data_and_is_served_without_the_token(stack: Stack) -> None:
    page = call(stack, make_environ("/api/production/dashboard", remote="203.0.113.9"))
    assert page.code == 200 and page.header("Content-Type").startswith("text/html")
    assert b'get("metrics")' in page.body  # it fetches the data, with the token
    data = call(stack, make_environ("/api/production/metrics", remote="203.0.113.9"))
    assert data.code == 401


@pytest.mark.parametrize(
    ("remote", "code"),
    [pytest.param("127.0.0.1", 200, id="loopback"), pytest.param("203.0.113.9", 404, id="other")],
)
def test_without_token_only_loopback_is_served(tmp_path: Any, remote: str, code: int) -> None:
    stack = compose(demo_app, Settings(state_dir=str(tmp_path)))
    result = call(stack, make_environ("/api/production/metrics", remote=remote))
    assert result.code == code


def test_dashboard_is_self_contained_with_its_own_csp(stack: Stack) -> None:
    result = call(stack, admin("/api/production/dashboard"))
    assert result.code == 200
    assert result.header("Content-Type") == "text/html; charset=utf-8"
    html = result.body.decode()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)  # no external resource
    assert "<canvas" in html and "fetch(" in html
    csp = result.all("Content-Security-Policy")
    assert len(csp) == 1  # the page's own policy won over the stack's default
    (script,) = re.findall(r"<script>(.*?)</script>", html, re.S)
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in csp[0]
    assert "connect-src 'self'" in csp[0] and "'unsafe-inline'" not in csp[0]


def test_head_on_metrics_answers_without_body(stack: Stack) -> None:
    result = call(stack, admin("/api/production/metrics", method="HEAD"))
    assert result.code == 200 and result.body == b""


def test_answers_of_inner_layers_are_counted_when_composed(tmp_path: Any) -> None:
    from voyagr_wsgi.ratelimit.config import RateLimitSettings

    settings = Settings(
        state_dir=str(tmp_path),
        allowed_hosts=("example.com",),
        enforce_https=True,
        ratelimit=RateLimitSettings(requests=2, window_s=60),
    )
    stack = compose(demo_app, settings)
    codes = [
        call(stack, make_environ("/users/1", host="evil.example")).code,  # HostCheck
        call(stack, make_environ("/users/1")).code,  # HTTPSRedirect
        *[call(stack, make_environ("/users/1", scheme="https")).code for _ in range(3)],
    ]
    assert codes == [400, 301, 200, 200, 429]
    statuses = {row.status: row.requests for row in stack.metrics.snapshot().series}
    assert statuses == {400: 1, 301: 1, 200: 2, 429: 1}


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_history_has_a_point_per_slot_over_the_retention_and_since_trims_it() -> None:
    from voyagr_wsgi.admin import Admin
    from voyagr_wsgi.metrics.endpoints import admin_routes
    from voyagr_wsgi.metrics.registry import Registry

    clock = Clock(1_000_000.0)  # a slot boundary (5 s slots)
    registry = Registry(now=clock, retention_s=600.0)
    for minute in range(12):  # 12 minutes: the first 2 fall out of the 10-minute retention
        clock.t = 1_000_000.0 + minute * 60
        for k in range(minute + 1):
            registry.observe_request("GET", "/a", 500 if k == 0 else 200, 0.002, 0.001, k == 0)
        registry.cache_event("users", hits=3, misses=1)
        registry.upstream_call("osrm", "timeout" if minute % 2 else "success", 0.01)
    clock.t += 2.5  # half-way through the current slot
    app = Admin(demo_app, token=Secret(TOKEN), routes=admin_routes(registry, None))
    result = call(app, admin("/api/production/metrics/history"))
    assert result.code == 200
    doc = json.loads(result.body)
    points = doc["points"]
    assert (doc["slot_s"], doc["retention_s"], doc["now"]) == (5.0, 600.0, clock.t)
    assert len(points) == 120  # every slot of the retention, idle ones included
    assert [p["t"] for p in points] == [1_000_660.0 - 595 + 5 * i for i in range(120)]
    busy = [p for p in points if p["requests"]]
    assert [p["requests"] for p in busy] == list(range(3, 13))  # minutes 2..11
    last = points[-1]
    assert (last["requests"], last["errors"], last["span_s"], last["rate"]) == (12, 1, 2.5, 4.8)
    assert last["error_rate"] == pytest.approx(1 / 12)
    assert 0 < last["p50_ms"] <= last["p95_ms"] <= last["p99_ms"] <= last["max_ms"] == 2.0
    assert last["caches"] == {"users": {"hits": 3, "misses": 1, "hit_rate": 0.75}}
    assert last["upstreams"]["osrm"]["timeouts"] == 1
    assert last["upstreams"]["osrm"]["success_rate"] == 0.0
    idle = points[1]
    assert (idle["requests"], idle["rate"], idle["p95_ms"]) == (0, 0, None)
    assert idle["error_rate"] is None
    recent = call(app, admin("/api/production/metrics/history", query="since=1000655"))
    assert [p["t"] for p in json.loads(recent.body)["points"]] == [1_000_655.0, 1_000_660.0]
    assert call(app, admin("/api/production/metrics/history", query="since=x")).code == 400
    assert call(app, make_environ("/api/production/metrics/history")).code == 401
