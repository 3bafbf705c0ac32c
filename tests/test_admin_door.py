"""Hostile input at the admin door: bodies, tokens, loopback spellings (issue 11, point 8)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

from conftest import call, hello_app, make_environ
from voyagr_wsgi import ConfigurationError, Secret, Settings
from voyagr_wsgi.admin import Admin, AdminRoute, is_authorized
from voyagr_wsgi.alerts import admin_routes
from voyagr_wsgi.layers import HTTPSRedirect
from voyagr_wsgi.request import is_loopback_host, is_loopback_ip
from voyagr_wsgi.request_body import read_json

TOKEN = "door-token-0123456789abcdef"


class FakeMute:
    """The two calls the mute routes make, recorded (not a mock of a real part: the alert
    service has its own tests; this isolates the parsing)."""

    def __init__(self) -> None:
        self.calls: list[tuple[float, str]] = []

    def mute(self, seconds: float, reason: str) -> None:
        self.calls.append((seconds, reason))

    def unmute(self) -> None:
        self.calls.clear()

    def snapshot(self) -> dict[str, Any]:
        return {"mute": self.calls[-1] if self.calls else None}


def mute_request(body: bytes, content_type: str | None = "application/json", **kw: Any) -> Any:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    if content_type is not None:
        headers["Content-Type"] = content_type
    return make_environ(
        "/api/production/alerts/mute", method="POST", body=body, headers=headers, **kw
    )


@pytest.fixture
def door() -> tuple[Admin, FakeMute]:
    service = FakeMute()
    admin = Admin(hello_app, token=Secret(TOKEN), routes=admin_routes(service))  # type: ignore[arg-type]
    return admin, service


@pytest.mark.parametrize(
    ("body", "content_type", "code", "kind"),
    [
        pytest.param(b"9" * 400, "application/json", 422, "invalid-body", id="400 digits"),
        pytest.param(
            b'{"seconds": ' + b"9" * 400 + b"}",
            "application/json",
            422,
            "invalid-body",
            id="400-digit seconds",
        ),
        pytest.param(
            b'{"seconds": 1e999}', "application/json", 422, "invalid-body", id="infinite seconds"
        ),
        pytest.param(
            b'{"seconds": NaN}', "application/json", 400, "malformed-body", id="NaN is not JSON"
        ),
        pytest.param(b"[" * 3000, "application/json", 400, "malformed-body", id="3000 ["),
        pytest.param(
            b'{"a":' * 100 + b"1" + b"}" * 100,
            "application/json",
            400,
            "malformed-body",
            id="100 nested objects",
        ),
        pytest.param(
            b'{"seconds": 60, "reason": "' + b"x" * 70_000 + b'"}',
            "application/json",
            413,
            "body-too-large",
            id="70 KB body",
        ),
        pytest.param(
            b'{"seconds": 60}', "text/plain", 415, "unsupported-media-type", id="text/plain"
        ),
        pytest.param(b'{"seconds": 60}', None, 415, "unsupported-media-type", id="no content type"),
        pytest.param(b"", "application/json", 400, "malformed-body", id="empty body"),
        pytest.param(b"\xff\xfe", "application/json", 400, "malformed-body", id="not utf-8"),
        pytest.param(
            b'{"seconds": "60"}', "application/json", 422, "invalid-body", id="seconds as a string"
        ),
        pytest.param(
            b'{"seconds": true}', "application/json", 422, "invalid-body", id="seconds as a boolean"
        ),
        pytest.param(
            b'{"seconds": 60, "reason": 5}',
            "application/json",
            422,
            "invalid-body",
            id="reason not a string",
        ),
        pytest.param(
            b'{"seconds": 60, "reason": "deploy"}',
            "application/json; charset=utf-8",
            200,
            None,
            id="valid, with a charset",
        ),
    ],
)
def test_mute_answers_bad_bodies_with_problems_never_500(
    door: tuple[Admin, FakeMute],
    body: bytes,
    content_type: str | None,
    code: int,
    kind: str | None,
) -> None:
    admin, service = door
    result = call(admin, mute_request(body, content_type))
    assert result.code == code, result.body[:200]
    if kind is None:
        assert service.calls == [(60.0, "deploy")]
        return
    assert service.calls == []
    assert result.header("Content-Type") == "application/problem+json"
    doc = json.loads(result.body)
    assert doc["type"].endswith("/" + kind) and doc["status"] == code


def test_a_declared_length_over_the_cap_is_413_before_any_handler_runs() -> None:
    ran: list[str] = []

    def handler(environ: Any, params: Any) -> Any:
        ran.append("x")
        return "200 OK", [("Content-Type", "text/plain")], [b""]

    admin = Admin(hello_app, token=Secret(TOKEN), routes=[AdminRoute("POST", "x", handler)])
    env = make_environ(
        "/api/production/x", method="POST", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    env["CONTENT_LENGTH"] = str(10**9)
    result = call(admin, env)
    assert result.code == 413 and ran == []


def test_read_json_reads_what_a_handler_needs() -> None:
    env = make_environ(
        "/",
        method="POST",
        body=b'{"a": [1, 2.5, "x"]}',
        headers={"Content-Type": "application/json"},
    )
    assert read_json(env) == {"a": [1, 2.5, "x"]}


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("tok€n-0123456789abcdef", id="non-latin-1"),
        pytest.param("tökén-0123456789abcdef", id="latin-1, not ascii"),
        pytest.param("token with space 0123456789", id="space"),
        pytest.param("token\t0123456789abcdef", id="tab"),
        pytest.param("short-token", id="11 characters"),
    ],
)
def test_a_bad_admin_token_is_a_configuration_error(value: str) -> None:
    with pytest.raises(ConfigurationError, match="VOYAGR_ADMIN_TOKEN"):
        Settings.from_env({"VOYAGR_ADMIN_TOKEN": value})
    with pytest.raises(ConfigurationError, match="VOYAGR_ADMIN_TOKEN"):
        Admin(hello_app, token=Secret(value))


def test_a_non_ascii_authorization_header_is_unauthorized_not_an_error() -> None:
    token = Secret(TOKEN)
    for header in ("Bearer x€", "Bearer ÿÿÿ", "Bearer \udcff", "Bearer " + TOKEN + "é"):
        env = make_environ("/api/production/x", headers={"Authorization": header})
        assert is_authorized(env, token) is False
    ok = make_environ("/api/production/x", headers={"Authorization": "Bearer " + TOKEN})
    assert is_authorized(ok, token) is True


@pytest.mark.parametrize(
    ("remote", "loopback"),
    [
        pytest.param("127.0.0.1", True, id="ipv4"),
        pytest.param("127.8.9.1", True, id="ipv4 /8"),
        pytest.param("::1", True, id="ipv6"),
        pytest.param("::ffff:127.0.0.1", True, id="ipv4-mapped, gunicorn on [::]"),
        pytest.param("::FFFF:7f00:1", True, id="ipv4-mapped, hex"),
        pytest.param("::ffff:203.0.113.9", False, id="ipv4-mapped public"),
        pytest.param("203.0.113.9", False, id="public"),
        pytest.param("not an ip", False, id="garbage"),
    ],
)
def test_loopback_clients_include_ipv4_mapped(remote: str, loopback: bool) -> None:
    assert is_loopback_ip(remote) is loopback
    admin = Admin(
        hello_app,
        routes=[
            AdminRoute(
                "GET",
                "x",
                lambda e, p: (
                    "200 OK",
                    [("Content-Type", "text/plain"), ("Content-Length", "0")],
                    [],
                ),
            )
        ],
    )
    result = call(admin, make_environ("/api/production/x", remote=remote))
    assert result.code == (200 if loopback else 404)


def test_https_redirect_skips_an_ipv4_mapped_loopback_host() -> None:
    assert is_loopback_host("[::ffff:127.0.0.1]:8000")
    result = call(HTTPSRedirect(hello_app), make_environ("/", host="[::ffff:127.0.0.1]:8000"))
    assert result.code == 200


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(
            b'{"reason": "' + b"[" * 100 + b'"}', {"reason": "[" * 100}, id="brackets in a string"
        ),
        pytest.param(
            b'["\\"[[[", "\\\\", [1]]', ['"[[[', "\\", [1]], id="escaped quotes and backslashes"
        ),
        pytest.param(b"[" * 32 + b"]" * 32, None, id="32 levels: the limit"),
    ],
)
def test_depth_counts_structure_not_string_content(body: bytes, expected: Any) -> None:
    env = make_environ("/", method="POST", body=body, headers={"Content-Type": "application/json"})
    doc = read_json(env)
    if expected is not None:
        assert doc == expected
    else:
        depth = 0
        while isinstance(doc, list) and doc:
            doc, depth = doc[0], depth + 1
        assert depth == 31  # 32 nested lists, the innermost empty


def test_one_level_over_the_depth_limit_is_refused() -> None:
    from voyagr_wsgi.problem import ProblemError

    body = b"[" * 33 + b"]" * 33
    env = make_environ("/", method="POST", body=body, headers={"Content-Type": "application/json"})
    with pytest.raises(ProblemError) as info:
        read_json(env)
    assert info.value.kind == "malformed-body"


def test_a_chunked_body_over_the_cap_is_413() -> None:
    from voyagr_wsgi.problem import ProblemError

    env = make_environ(
        "/",
        method="POST",
        body=b"[" + b"1," * 40_000 + b"1]",
        headers={"Content-Type": "application/json"},
    )
    del env["CONTENT_LENGTH"]
    env["wsgi.input_terminated"] = True
    with pytest.raises(ProblemError) as info:
        read_json(env)
    assert info.value.kind == "body-too-large"


@pytest.mark.slow
def test_under_gunicorn_an_ipv4_mapped_loopback_client_is_served_and_bad_bodies_are_problems(
    tmp_path: Any,
) -> None:
    import http.client

    from conftest import free_port
    from gunicorn_apps.harness import gunicorn

    def request(
        port: int, method: str, path: str, body: bytes = b"", token: str = ""
    ) -> tuple[int, str, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            headers = {"Content-Type": "application/json"} if body else {}
            if token:
                headers["Authorization"] = f"Bearer {token}"
            conn.request(method, path, body=body or None, headers=headers)
            answer = conn.getresponse()
            return answer.status, answer.getheader("Content-Type") or "", answer.read()
        finally:
            conn.close()

    def serve(token: str) -> Any:
        env = {"VOYAGR_STATE_DIR": str(tmp_path), "VOYAGR_ADMIN_TOKEN": token}
        return gunicorn(
            "stack_app:application", port=port, env=env, workers=1, log_dir=str(tmp_path),
            host="[::ffff:127.0.0.1]",
        )  # fmt: skip

    port = free_port()
    with serve(""):  # no token: the loopback rule, and no state change for anyone
        status, _, body = request(port, "GET", "/api/production/metrics")
        assert status == 200, body[:300]
        status, _, body = request(port, "POST", "/api/production/alerts/mute", b'{"seconds": 1}')
        assert status == 403 and b"admin-token-not-configured" in body, body[:300]
    port = free_port()
    with serve(TOKEN):
        for hostile, code in ((b'{"seconds": ' + b"9" * 400 + b"}", 422), (b"[" * 3000, 400)):
            answer = request(port, "POST", "/api/production/alerts/mute", hostile, TOKEN)
            assert answer[:2] == (code, "application/problem+json"), answer[2][:300]


def test_werkzeug_loads_only_when_an_admin_request_arrives(tmp_path: Any) -> None:
    script = f"""
import sys
from voyagr_wsgi import Settings, compose
from conftest import call, hello_app, make_environ
app = compose(hello_app, Settings(state_dir={str(tmp_path)!r}))
call(app, make_environ("/"))
call(app, make_environ("/api/production/health", remote="127.0.0.1"))
before = "werkzeug" in sys.modules
call(app, make_environ("/api/production/metrics", remote="127.0.0.1"))
print(before, "werkzeug.routing" in sys.modules)
"""
    here = os.path.dirname(os.path.abspath(__file__))
    path = os.pathsep.join([os.path.join(os.path.dirname(here), "src"), here])
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": path},
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "True"]
