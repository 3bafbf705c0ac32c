"""voyagr_wsgi.django under real gunicorn: the test project's wsgi.py (as the docs show it)
with the example gunicorn config, clients told apart by X-Forwarded-For from a trusted
loopback proxy."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from conftest import free_port
from gunicorn_apps.harness import APPS, get, gunicorn, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

TESTS = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(os.path.dirname(TESTS), "src")


def as_client(ip: str, **headers: str) -> dict[str, str]:
    return {"X-Forwarded-For": ip, "Host": "localhost", **headers}


def test_django_project_under_gunicorn(tmp_path: Path) -> None:
    env = {
        "PYTHONPATH": os.pathsep.join([TESTS, APPS, SRC]),
        "VOYAGR_STATE_DIR": str(tmp_path / "state"),
        "TRUSTED_PROXIES": "127.0.0.1/32",
        "RATE_LIMIT_REQUESTS": "5",
        "RATE_LIMIT_WINDOW_SECONDS": "3600",
    }
    with gunicorn(
        "django_project.wsgi:application",
        port=free_port(),
        env=env,
        workers=1,
        log_dir=str(tmp_path),
    ) as server:
        port = server.port

        # per-view limit: 3/minute on /login/, below the global 5
        a = as_client("203.0.113.1")
        assert [get(port, "/login/", headers=a).status for _ in range(3)] == [200] * 3
        status, headers, body = fetch(port, "/login/", a)
        assert status == 429
        assert headers["content-type"] == ["application/problem+json"]
        assert json.loads(body)["violated-policies"] == ["login"]
        assert int(headers["retry-after"][0]) >= 1
        assert any(v.startswith('"login";r=0;t=') for v in headers["ratelimit"])

        # exempt view: beyond the global budget; a plain view gets the layer's 429
        b = as_client("203.0.113.2")
        assert [get(port, f"/ping/{n}/", headers=b).status for n in range(6)] == [200] * 6
        assert [get(port, "/plain/", headers=b).status for _ in range(6)] == [200] * 5 + [429]

        # voyagr's CSRF exemption for a webhook
        c = as_client("203.0.113.3", **{"Sec-Fetch-Site": "cross-site"})
        assert get(port, "/webhook/", headers=c, method="POST").status == 200
        assert get(port, "/form/", headers=c, method="POST").status == 403

        # early middleware answer, Http404, no route, a view exception
        d = as_client("203.0.113.4")
        assert get(port, "/private/", headers=d).status == 401
        assert get(port, "/api/users/404/", headers=d).status == 404
        assert get(port, "/nowhere/", headers=d).status == 404
        assert get(port, "/boom/", headers=as_client("203.0.113.5")).status == 500

        # the CSRF cookie stays JS-readable, another cookie gets HttpOnly
        _, headers, _ = fetch(port, "/token/", as_client("203.0.113.6"))
        cookies = {c.split("=", 1)[0].strip(): c for c in headers["set-cookie"]}
        assert "httponly" not in cookies["csrftoken"].lower()
        assert "; HttpOnly" in cookies["prefs"]

        expected = {
            "/login/": {"200": 3, "429": 1},
            "/ping/<int:n>/": {"200": 6},
            "/plain/": {"200": 5, "429": 1},
            "/webhook/": {"200": 1},
            "/form/": {"403": 1},
            "/private/": {"401": 1},
            "/api/users/<int:user_id>/": {"404": 1},
            "__unmatched__": {"404": 1},
            "/boom/": {"500": 1},
            "/token/": {"200": 1},
        }
        seen: list[dict[str, Any]] = []

        def complete() -> dict[str, Any] | None:
            seen[:] = [_metrics(port)]
            return seen[0] if _routes(seen[0]) == expected else None

        try:
            doc = wait_for(complete, timeout=5.0, what="every request in the merged metrics")
        except TimeoutError:
            assert _routes(seen[0]) == expected  # shows the difference
            raise
        assert doc["errors"]["by_type"] == {"LookupError": 1}
        (recent,) = doc["errors"]["recent"]
        assert recent["route"] == "/boom/"
        assert recent["traceback"][-1].endswith(" in boom")


def _metrics(port: int) -> dict[str, Any]:
    answer = get(port, "/api/production/metrics", headers={"Host": "localhost"})
    assert answer.status == 200, answer.body
    return dict(json.loads(answer.body))


def _routes(doc: dict[str, Any]) -> dict[str, dict[str, int]]:
    found: dict[str, dict[str, int]] = {}
    for row in doc["routes"].values():
        found.setdefault(row["route"], {}).update(row["statuses"])
    return found


def fetch(port: int, path: str, headers: dict[str, str]) -> tuple[int, dict[str, list[str]], bytes]:
    """GET ``path``: status, every line of each header (lower-case names), body (the
    harness's get() keeps one value per name)."""
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path, headers=headers)
        answer = conn.getresponse()
        lines: dict[str, list[str]] = {}
        for name, value in answer.getheaders():
            lines.setdefault(name.lower(), []).append(value)
        return answer.status, lines, answer.read()
    finally:
        conn.close()
