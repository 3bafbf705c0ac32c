"""The demo under a real gunicorn on a loopback port: redirect, headers and probe over HTTP."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import free_port

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


def request(
    port: int,
    method: str,
    path: str,
    host: str,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
) -> tuple[int, http.client.HTTPMessage, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.putrequest(method, path, skip_host=True)
        conn.putheader("Host", host)
        for name, value in (headers or {}).items():
            conn.putheader(name, value)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        resp = conn.getresponse()
        return resp.status, resp.headers, resp.read()
    finally:
        conn.close()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    tmp = tmp_path_factory.mktemp("demo")
    port = free_port()
    env = {
        **os.environ,
        "PORT": str(port),
        "DATABASE_PATH": str(tmp / "demo.db"),
        "BACKUP_DIR": str(tmp / "backups"),
        "VOYAGR_STATE_DIR": str(tmp / "state"),
        "ALLOWED_HOSTS": "127.0.0.1,localhost,example.com",
        "ENFORCE_HTTPS": "true",
        "WEB_CONCURRENCY": "2",
    }
    log = open(tmp / "gunicorn.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "demo" / "run.py")],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                status, _, _ = request(port, "GET", "/api/production/livez", "127.0.0.1")
                if status == 200:
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((tmp / "gunicorn.log").read_text())
            time.sleep(0.1)
        yield port
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(20)
        log.close()


def test_plain_http_get_redirects_with_301_to_same_host(demo: int) -> None:
    status, headers, _ = request(demo, "GET", "/api/routes?x=1", "example.com")
    assert status == 301
    assert headers["Location"] == "https://example.com/api/routes?x=1"


def test_plain_http_post_redirects_with_308(demo: int) -> None:
    status, headers, _ = request(demo, "POST", "/api/routes", "example.com", body=b"{}")
    assert status == 308
    assert headers["Location"] == "https://example.com/api/routes"


def test_https_via_trusted_proxy_is_not_redirected_and_gets_hsts(demo: int) -> None:
    # 127.0.0.1 is not a trusted proxy here: X-Forwarded-Proto must be ignored.
    status, headers, _ = request(
        demo, "GET", "/", "example.com", headers={"X-Forwarded-Proto": "https"}
    )
    assert status == 301
    assert "Strict-Transport-Security" not in headers


def test_loopback_host_is_served_with_security_headers_and_no_hsts(demo: int) -> None:
    status, headers, body = request(demo, "GET", "/api/routes", f"127.0.0.1:{demo}")
    assert status == 200, body
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    assert "Content-Security-Policy" in headers
    assert "Strict-Transport-Security" not in headers
    assert headers.get_all("Server") == ["gunicorn"] or "Server" not in headers


def test_forged_host_gets_400(demo: int) -> None:
    status, _, _ = request(demo, "GET", "/api/routes", "evil.example.net")
    assert status == 400


def test_probe_answers_plain_http_with_internal_host(demo: int) -> None:
    status, headers, body = request(demo, "GET", "/api/production/health", "10.1.2.3:8000")
    assert status == 200
    assert headers["Content-Type"].startswith("application/")
    assert json.loads(body)["status"] in ("pass", "warn")


def test_cross_site_post_is_refused_with_403(demo: int) -> None:
    status, _, body = request(
        demo,
        "POST",
        "/api/routes",
        f"127.0.0.1:{demo}",
        headers={"Sec-Fetch-Site": "cross-site", "Content-Type": "application/json"},
        body=b'{"from": "A", "to": "B"}',
    )
    assert status == 403, body


def test_same_origin_post_plans_a_route(demo: int) -> None:
    status, _, body = request(
        demo,
        "POST",
        "/api/routes",
        f"127.0.0.1:{demo}",
        headers={"Origin": f"http://127.0.0.1:{demo}", "Content-Type": "application/json"},
        body=b'{"from": "Paris", "to": "Lyon"}',
    )
    assert status == 201, body
    assert json.loads(body)["to"] == "Lyon"
