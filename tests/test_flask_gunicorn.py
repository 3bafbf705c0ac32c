"""``voyagr_wsgi.flask.Voyagr`` under real gunicorn (``tests/gunicorn_apps/flask_app.py``,
served as ``flask_app:create_app()`` with the voyagr gunicorn hooks, settings from the
environment): per-view limit, exempt view, CSRF-exempt webhook, route labels and a view's
KeyError in the metrics JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from conftest import free_port
from gunicorn_apps.harness import Response, get, gunicorn

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]


def metrics(port: int) -> dict[str, Any]:
    answer = get(port, "/api/production/metrics")
    assert answer.status == 200, answer.body
    return dict(json.loads(answer.body))


def post(port: int, path: str, headers: dict[str, str] | None = None) -> Response:
    return get(port, path, method="POST", headers={"Content-Length": "0", **(headers or {})})


def test_flask_app_under_gunicorn(tmp_path: Path) -> None:
    env = {
        "VOYAGR_STATE_DIR": str(tmp_path / "state"),
        "ALLOWED_HOSTS": "127.0.0.1",
        # tight layer rules on three paths (the admin endpoints share the default budget)
        "RATE_LIMIT_ROUTES": "/users/2=1/60s,/nope=1/60s,/assets/x.css=1/60s",
        "METRICS_FLUSH_INTERVAL_SECONDS": "0.2",
    }
    # one worker: the memory store's budgets are per worker
    with gunicorn(
        "flask_app:create_app()", port=free_port(), env=env, workers=1, log_dir=str(tmp_path)
    ) as server:
        port = server.port
        # per-view limit: the 6th POST /login is a 429 problem, other views unaffected
        logins = [post(port, "/login") for _ in range(6)]
        assert [a.status for a in logins] == [200] * 5 + [429]
        denied = logins[5]
        assert denied.headers["content-type"] == "application/problem+json"
        assert int(denied.headers["retry-after"]) >= 1
        assert "ratelimit" in denied.headers  # both policies' lines (the dict keeps one)
        assert json.loads(denied.body)["violated-policies"] == ["login"]
        assert get(port, "/users/1").status == 200
        # exempt view: never limited by the layer (its rule allows 1 a minute)
        assert {get(port, "/assets/x.css").status for _ in range(20)} == {200}
        # CSRF: the webhook takes a cross-site POST, another view does not
        cross = {"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}
        assert post(port, "/hooks/3", cross).status == 200
        assert post(port, "/form", cross).status == 403
        # labels: a hook's 401, a view's KeyError, the layer's 429s, a 404
        assert get(port, "/private/9").status == 401
        assert get(port, "/boom").status == 500
        assert [get(port, "/users/2").status for _ in range(2)] == [200, 429]
        assert [get(port, "/nope").status for _ in range(2)] == [404, 429]
        doc = metrics(port)
        routes = {(g["method"], g["route"]): g["statuses"] for g in doc["routes"].values()}
        assert routes[("POST", "/login")] == {"200": 5, "429": 1}
        assert routes[("GET", "/private/<int:item>")] == {"401": 1}
        assert routes[("GET", "/users/<int:user_id>")] == {"200": 2, "429": 1}
        assert routes[("POST", "/hooks/<int:hook_id>")] == {"200": 1}
        assert routes[("GET", "__unmatched__")] == {"404": 1, "429": 1}
        assert doc["errors"]["by_type"] == {"KeyError": 1}
        (recent,) = doc["errors"]["recent"]
        assert recent["route"] == "/boom"
        assert any("in boom" in frame for frame in recent["traceback"])
    assert "not a voyagr_wsgi Stack" not in server.log()


def test_the_documented_gunicorn_command_starts_the_services(tmp_path: Path) -> None:
    env = {"VOYAGR_STATE_DIR": str(tmp_path / "state"), "ALLOWED_HOSTS": "127.0.0.1"}
    with gunicorn(
        "flask_app:create_app()",
        port=free_port(),
        env=env,
        workers=1,
        log_dir=str(tmp_path),
        conf="python:voyagr_wsgi.gunicorn",
    ) as server:
        assert get(server.port, "/users/5").body == b"5"
        lock = tmp_path / "state" / "services.lock"
        assert lock.exists()  # the hooks found voyagr.stack and started its supervisor
    assert "not a voyagr_wsgi Stack" not in server.log()
