"""Real gunicorn serving a Flask ``/login`` view with ``RATE_LIMIT_ROUTES=/login=5/60s``:
no spelling of the path reaches the view while escaping the rule.

Requests go out on raw sockets so the client normalises nothing: ``//login`` (curl
``--path-as-is``) and ``/%2Flogin`` (gunicorn decodes it to ``//login``) are served by
Flask's login view; ``/./login`` and ``/a/../login`` are not (werkzeug does not resolve dot
segments) but resolve to ``/login`` on servers that do, so they spend the same budget.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import free_port
from gunicorn_apps.harness import Gunicorn, gunicorn

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]


def send(port: int, path: str, client: str, method: str = "POST") -> tuple[int, bytes]:
    """One request with ``path`` exactly as given; (status, body)."""
    request = (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Forwarded-For: {client}\r\n"
        "Content-Length: 0\r\nConnection: close\r\n\r\n"
    ).encode("latin-1")
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(request)
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gunicorn]:
    tmp: Path = tmp_path_factory.mktemp("paths")
    env = {
        "VOYAGR_STATE_DIR": str(tmp / "state"),
        "ALLOWED_HOSTS": "127.0.0.1",
        "TRUSTED_PROXIES": "127.0.0.1",  # each test mix is its own client (X-Forwarded-For)
        "RATE_LIMIT_ROUTES": "/login=5/60s",
        "BACKUP_ENABLED": "false",
    }
    with gunicorn(
        "flask_login_app:application", port=free_port(), env=env, workers=1, log_dir=str(tmp)
    ) as running:
        yield running


@pytest.mark.parametrize(
    ("client", "spellings"),
    [
        pytest.param("198.51.100.1", ["/login"] * 6, id="plain"),
        pytest.param("198.51.100.2", ["//login"] * 6, id="double slash only"),
        pytest.param("198.51.100.3", ["/%2Flogin"] * 6, id="%2F only"),
        pytest.param(
            "198.51.100.4",
            ["/login", "//login", "/./login", "/%2Flogin", "/a/../login", "///login"],
            id="mixed, plain first",
        ),
        pytest.param(
            "198.51.100.5",
            ["//login", "/login/", "/../login", "/%2Flogin", "/login", "//login"],
            id="mixed, double slash first and last",
        ),
    ],
)
def test_sixth_request_in_any_spelling_is_limited(
    server: Gunicorn, client: str, spellings: list[str]
) -> None:
    answers = [send(server.port, path, client) for path in spellings]
    assert [code for code, _ in answers[:5]] == [
        200 if path in ("/login", "//login", "///login", "/%2Flogin") else 404
        for path in spellings[:5]
    ], "the first five reach the app (Flask serves // and %2F spellings by its login view)"
    for (code, body), path in zip(answers[:5], spellings, strict=False):
        if code == 200:
            assert body.startswith(b"login /"), f"{path} served by the login view"
    assert answers[5][0] == 429, f"the 6th ({spellings[5]}) is over /login's 5/60s"
    code, body = send(server.port, "/login", client)
    assert code == 429, "and /login stays limited"


def test_other_paths_keep_the_default_budget(server: Gunicorn) -> None:
    client = "198.51.100.9"
    for _ in range(6):
        send(server.port, "//login", client)
    assert send(server.port, "/elsewhere", client)[0] == 404, "Flask's 404, not a 429"
