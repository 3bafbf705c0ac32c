"""One answer style: every response the library makes itself is an RFC 9457 problem."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from conftest import Result, call, free_port, hello_app, make_environ
from test_backup_support import backup_settings, make_db
from voyagr_wsgi import Secret
from voyagr_wsgi.admin import Admin, AdminRoute
from voyagr_wsgi.alerts import admin_routes as alert_routes
from voyagr_wsgi.backups import BackupManager
from voyagr_wsgi.backups.endpoints import _errors
from voyagr_wsgi.backups.endpoints import routes as backup_routes
from voyagr_wsgi.errors import BackupError, BackupVerificationError, StorageError
from voyagr_wsgi.layers import CrossOriginProtection, HostCheck, HTTPSRedirect, Probe, RateLimit
from voyagr_wsgi.problem import BASE, KINDS, ProblemError, json_response, prepare, response

TOKEN = "problem-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class Mute:
    def mute(self, seconds: float, reason: str) -> None: ...
    def unmute(self) -> None: ...
    def snapshot(self) -> dict[str, Any]:
        return {}


def admin() -> Admin:
    return Admin(hello_app, token=Secret(TOKEN), routes=alert_routes(Mute()))  # type: ignore[arg-type]


def mute(body: bytes, content_type: str = "application/json") -> Result:
    env = make_environ(
        "/api/production/alerts/mute",
        method="POST",
        body=body,
        headers={**AUTH, "Content-Type": content_type},
    )
    return call(admin(), env)


def rate_limited() -> Result:
    layer = RateLimit(hello_app, "1/60s")
    call(layer, make_environ())
    return call(layer, make_environ())


def store_down() -> Result:
    from voyagr_wsgi.ratelimit.redis_store import RedisStore

    store = RedisStore(f"redis://127.0.0.1:{free_port()}/0", socket_timeout=0.5)
    try:
        return call(RateLimit(hello_app, "5/60s", store=store, failure="closed"), make_environ())
    finally:
        store.close()


def history(query: str) -> Result:
    from voyagr_wsgi.health import Health
    from voyagr_wsgi.metrics.config import MetricsSettings
    from voyagr_wsgi.metrics.endpoints import admin_routes as metrics_routes
    from voyagr_wsgi.metrics.registry import Registry

    routes = metrics_routes(Registry(), Health(), MetricsSettings())
    env = make_environ("/api/production/metrics/history", query=query, headers=AUTH)
    return call(Admin(hello_app, token=Secret(TOKEN), routes=routes), env)


def backup_app(tmp_path: Path) -> tuple[Admin, BackupManager]:
    make_db(tmp_path / "app.db", 10)
    manager = BackupManager(backup_settings(tmp_path))
    return Admin(hello_app, routes=backup_routes(manager), token=Secret(TOKEN)), manager


def restore(app: Admin, name: str) -> Result:
    path = "/api/production/backup/restore/" + name
    return call(app, make_environ(path, method="POST", headers=AUTH))


def backup_busy(tmp_path: Path) -> Result:
    from voyagr_wsgi.services import FileLock

    app, manager = backup_app(tmp_path)
    made = manager.create()
    with FileLock(str(tmp_path / "backups" / ".voyagr-backup.lock")) as lock:
        assert lock.try_acquire()
        return restore(app, made.id)


def backup_incompatible(tmp_path: Path) -> Result:
    app, manager = backup_app(tmp_path)
    made = manager.create()
    conn = sqlite3.connect(tmp_path / "app.db")
    conn.execute("PRAGMA user_version = 2")
    conn.commit()
    conn.close()
    return restore(app, made.id)


def job_status(tmp_path: Path, job_id: str) -> Result:
    app, _ = backup_app(tmp_path)
    path = "/api/production/backup/jobs/" + job_id
    return call(app, make_environ(path, headers=AUTH))


def raised(exc: Exception) -> Callable[[Path], Result]:
    """The backup routes' answer when the manager raises ``exc`` (failures that need a broken
    disk or S3 to happen for real)."""

    def run(tmp_path: Path) -> Result:
        def fail(environ: Any, params: Any) -> Any:
            def boom() -> Any:
                raise exc

            return _errors(boom)

        app = Admin(hello_app, routes=[AdminRoute("POST", "x", fail)], token=Secret(TOKEN))
        return call(app, make_environ("/api/production/x", method="POST", headers=AUTH))

    return run


def _redirect(**kw: Any) -> HTTPSRedirect:
    return HTTPSRedirect(hello_app, **kw)


CASES: list[Any] = [
    pytest.param(
        "host-not-allowed",
        lambda p: call(HostCheck(hello_app, allowed_hosts=["example.com"]), host="evil.example"),
        id="host check",
    ),
    pytest.param("malformed-host", lambda p: call(_redirect(), host=".."), id="redirect, no host"),
    pytest.param(
        "https-required",
        lambda p: call(_redirect(unsafe="reject"), method="POST"),
        id="redirect, unsafe=reject",
    ),
    pytest.param(
        "cross-origin-blocked",
        lambda p: call(
            CrossOriginProtection(hello_app),
            make_environ(method="POST", headers={"Sec-Fetch-Site": "cross-site"}),
        ),
        id="csrf",
    ),
    pytest.param("quota-exceeded", lambda p: rate_limited(), id="429"),
    pytest.param("temporary-reduced-capacity", lambda p: store_down(), id="503 store down"),
    pytest.param(
        "admin-token-required",
        lambda p: call(admin(), make_environ("/api/production/alerts")),
        id="admin 401",
    ),
    pytest.param(
        "not-found",
        lambda p: call(
            Admin(hello_app, routes=alert_routes(Mute())),  # type: ignore[arg-type]
            make_environ("/api/production/alerts", remote="203.0.113.9"),
        ),
        id="admin 404, no token",
    ),
    pytest.param(
        "method-not-allowed",
        lambda p: call(admin(), make_environ("/api/production/alerts", method="PUT", headers=AUTH)),
        id="admin 405",
    ),
    pytest.param(
        "method-not-allowed",
        lambda p: call(Probe(hello_app), make_environ("/api/production/livez", method="POST")),
        id="probe 405",
    ),
    pytest.param(
        "admin-token-not-configured",
        lambda p: call(
            Admin(hello_app, routes=alert_routes(Mute())),  # type: ignore[arg-type]
            make_environ("/api/production/alerts/mute", method="POST", remote="127.0.0.1"),
        ),
        id="admin 403, a state change without a configured token",
    ),
    pytest.param("body-too-large", lambda p: mute(b" " * 5000), id="413"),
    pytest.param("unsupported-media-type", lambda p: mute(b"{}", "text/plain"), id="415"),
    pytest.param("malformed-body", lambda p: mute(b"[" * 3000), id="400 too deep"),
    pytest.param("invalid-body", lambda p: mute(b'{"seconds": 1e400}'), id="422"),
    pytest.param("invalid-query", lambda p: history("since=yesterday"), id="400 query"),
    pytest.param(
        "invalid-backup-id",
        lambda p: restore(backup_app(p)[0], "..%2fapp.db"),
        id="restore, bad id",
    ),
    pytest.param(
        "backup-not-found",
        lambda p: restore(backup_app(p)[0], "20260101T000000Z-00000000"),
        id="restore, unknown id",
    ),
    pytest.param("backup-busy", backup_busy, id="restore while locked"),
    pytest.param("backup-incompatible", backup_incompatible, id="restore, newer schema"),
    pytest.param(
        "backup-verification-failed",
        raised(BackupVerificationError("SHA-256 of the .gz does not match")),
        id="restore, damaged",
    ),
    pytest.param("backup-failed", raised(BackupError("disk full")), id="backup failed"),
    pytest.param("storage-failed", raised(StorageError("S3 said 500")), id="S3 failed"),
    pytest.param("invalid-job-id", lambda p: job_status(p, "..%2f..%2fapp"), id="bad job id"),
    pytest.param("job-not-found", lambda p: job_status(p, "0123456789abcdef"), id="unknown job"),
]


@pytest.mark.parametrize(("kind", "make"), CASES)
def test_every_library_answer_is_a_problem_of_its_kind(
    tmp_path: Path, kind: str, make: Callable[[Path], Result]
) -> None:
    result = make(tmp_path)
    expected = KINDS[kind]
    assert result.status == expected.status
    assert result.header("Content-Type") == "application/problem+json"
    assert result.header("Cache-Control") == "no-store"
    assert result.header("Content-Length") == str(len(result.body))
    doc = json.loads(result.body)
    assert doc["type"] == expected.type and doc["title"] == expected.title
    assert doc["status"] == expected.code
    assert isinstance(doc.get("detail", ""), str)


def test_the_table_covers_every_kind() -> None:
    covered = {case.values[0] for case in CASES}
    assert covered == set(KINDS)


def test_type_uris_are_stable() -> None:
    """Clients key on these: changing one is a breaking change."""
    assert BASE == "https://voyagr-wsgi.dev/problems/"
    iana = "https://iana.org/assignments/http-problem-types#"
    for name, kind in KINDS.items():
        base = iana if name in ("quota-exceeded", "temporary-reduced-capacity") else BASE
        assert kind.type == base + name
        assert int(kind.status[:3]) == kind.code


def test_extension_members_and_extra_headers() -> None:
    status, headers, body = response(
        "invalid-body", "x out of range", headers=[("X-A", "1")], extensions={"field": "x"}
    )
    assert status == "422 Unprocessable Content"
    assert ("X-A", "1") in headers
    assert json.loads(b"".join(body))["field"] == "x"
    assert ProblemError("backup-busy", "busy").response()[0] == "409 Conflict"
    with pytest.raises(ValueError, match="unknown problem kind"):
        ProblemError("no-such-kind")


def test_a_prepared_answer_is_copied_per_request() -> None:
    prepared = prepare("host-not-allowed")
    seen: list[list[tuple[str, str]]] = []
    layer = HostCheck(hello_app, allowed_hosts=["example.com"])

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        headers.append(("X-Mutated", "1"))
        seen.append(headers)
        return lambda data: None

    layer(make_environ(host="evil.example"), start_response)
    layer(make_environ(host="evil.example"), start_response)
    assert seen[1].count(("X-Mutated", "1")) == 1
    assert ("X-Mutated", "1") not in prepared.headers


def test_head_to_an_admin_error_has_the_length_but_no_body() -> None:
    result = call(admin(), make_environ("/api/production/alerts", method="HEAD"))
    assert result.code == 401 and result.body == b""
    assert int(result.header("Content-Length") or 0) > 0


def test_successful_json_stays_application_json() -> None:
    status, headers, body = json_response("200 OK", {"a": 1})
    assert status == "200 OK"
    assert dict(headers)["Content-Type"] == "application/json"
    assert b"".join(body) == b'{"a":1}'
    assert dict(headers)["Content-Length"] == "7"
