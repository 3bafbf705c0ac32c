"""Shared fixtures: a validated in-process WSGI client and system-tool requirements."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any
from wsgiref.util import setup_testing_defaults
from wsgiref.validate import validator

import pytest

from voyagr_wsgi.request import environ_key

sys.path.insert(0, os.path.dirname(__file__))

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

try:  # CI explores a fixed set of examples (reproducible); local runs explore new ones
    from hypothesis import settings as _hypothesis_settings

    _hypothesis_settings.register_profile("ci", derandomize=True, database=None)
    if IN_CI:
        _hypothesis_settings.load_profile("ci")
except ImportError:  # pragma: no cover - hypothesis is in the test extra
    pass


def require_tool(name: str, install_hint: str) -> str:
    """Path of a system tool; missing: fail under CI=true, skip (with the install hint) locally.

    Looked up on PATH, in /usr/sbin and /usr/bin, then in Debian's versioned PostgreSQL
    folders (/usr/lib/postgresql/<major>/bin: initdb and pg_ctl are never on PATH there)."""
    versioned = sorted(
        glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
        key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0,
    )
    path = (
        shutil.which(name)
        or next((p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if os.path.exists(p)), None)
        or (versioned[-1] if versioned else None)
    )
    if path is None:
        message = f"{name} is not installed: {install_hint}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_environ(
    path: str = "/",
    *,
    method: str = "GET",
    host: str = "example.com",
    scheme: str = "http",
    remote: str = "203.0.113.7",
    headers: dict[str, str] | None = None,
    query: str = "",
    body: bytes = b"",
    **extra: Any,
) -> dict[str, Any]:
    """A complete PEP 3333 environ; ``headers`` uses HTTP names (``X-Forwarded-For``)."""
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "SCRIPT_NAME": "",
        "QUERY_STRING": query,
        "HTTP_HOST": host,
        "REMOTE_ADDR": remote,
        "wsgi.url_scheme": scheme,
        "SERVER_PORT": "443" if scheme == "https" else "80",
    }
    import io

    environ["wsgi.input"] = io.BytesIO(body)
    if body:
        environ["CONTENT_LENGTH"] = str(len(body))
    for name, value in (headers or {}).items():
        environ[environ_key(name)] = value
    environ.update(extra)
    setup_testing_defaults(environ)
    return environ


@dataclass
class Result:
    status: str
    headers: list[tuple[str, str]]
    body: bytes
    environ: dict[str, Any] = field(default_factory=dict)

    @property
    def code(self) -> int:
        return int(self.status.split(" ", 1)[0])

    def header(self, name: str) -> str | None:
        values = self.all(name)
        return values[0] if values else None

    def all(self, name: str) -> list[str]:
        low = name.lower()
        return [v for k, v in self.headers if k.lower() == low]


def call(
    app: Callable[..., Iterable[bytes]], environ: dict[str, Any] | None = None, **kw: Any
) -> Result:
    """Call ``app`` through ``wsgiref.validate.validator``, read and close the body."""
    env = environ if environ is not None else make_environ(**kw)
    captured: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        captured["status"] = status
        captured["headers"] = headers
        return lambda data: None

    body_iter = validator(app)(env, start_response)
    try:
        body = b"".join(body_iter)
    finally:
        body_iter.close()
    return Result(captured["status"], list(captured["headers"]), body, env)


def hello_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    """The plain app most tests wrap: 200, text/plain, echoes nothing."""
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
    return [b"hello"]


@pytest.fixture
def app() -> Callable[..., list[bytes]]:
    return hello_app


def settings_layer(settings: Any, name: str) -> Any:
    """The unbound layer called ``name`` that ``compose(app, settings)`` builds, or None."""
    from voyagr_wsgi.areas import build_context

    for layer in build_context(settings).layers:
        if type(layer).__name__ == name:
            return layer
    return None


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Any]:
    """A throwaway PostgreSQL cluster on loopback for the whole session (``pg_helpers``)."""
    require_tool("initdb", "apt-get install postgresql (make test does)")
    require_tool("pg_dump", "apt-get install postgresql-client (make test does)")
    from pg_helpers import cluster

    with cluster() as running:
        yield running
