"""PEP 3333 through the whole default stack: streaming, lazy start_response, exc_info, close()."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from wsgiref.util import FileWrapper

import pytest

from conftest import call, make_environ
from voyagr_wsgi import Settings, compose
from wsgi_apps import CloseCounter, exc_info_app, lazy_streaming_app


@pytest.fixture
def settings(tmp_path: Path) -> Any:
    yield Settings.from_env(
        {
            "ALLOWED_HOSTS": "example.com",
            "ENFORCE_HTTPS": "true",
            "TRUSTED_PROXIES": "10.0.0.0/8",
            "VOYAGR_STATE_DIR": str(tmp_path),
            "CSP_NONCE": "true",
        }
    )


def test_every_layer_is_in_the_default_stack(settings: Settings) -> None:
    stack = compose(lambda e, s: [], settings)
    names = [type(layer).__name__ for layer in stack.layers]
    assert names == [
        "ProxyTrust",
        "Metrics",
        "Probe",
        "HostCheck",
        "HTTPSRedirect",
        "SecurityHeaders",
        "CrossOriginProtection",
        "RateLimit",
        "Admin",
    ]


def test_streaming_body_with_lazy_start_response_stays_streaming(settings: Settings) -> None:
    bodies: list[CloseCounter] = []
    stack = compose(lazy_streaming_app(bodies), settings)
    environ = make_environ("/stream", scheme="https", remote="198.51.100.7")
    result = call(stack, environ)
    assert result.code == 200
    assert result.body == b"onetwothree"
    assert bodies[0].closed == 1, "close() reaches the app's body exactly once"
    assert result.header("Strict-Transport-Security")
    assert result.header("RateLimit-Policy")


def test_chunks_arrive_one_by_one_not_buffered(settings: Settings) -> None:
    bodies: list[CloseCounter] = []
    stack = compose(lazy_streaming_app(bodies), settings)
    seen: list[str] = []
    body = stack(
        make_environ("/stream", scheme="https"),
        lambda status, headers, exc_info=None: seen.append(status),
    )
    iterator = iter(body)
    assert next(iterator) == b"one"
    assert bodies[0].yielded == 1, "the stack pulled one chunk for one chunk sent"
    assert seen == ["200 OK"]
    body.close()  # type: ignore[attr-defined]
    assert bodies[0].closed == 1


def test_second_start_response_with_exc_info_reaches_the_server(settings: Settings) -> None:
    stack = compose(exc_info_app, settings)
    result = call(stack, make_environ("/boom", scheme="https"))
    assert result.code == 500
    assert result.body == b"error"
    assert result.header("X-Content-Type-Options") == "nosniff"


def test_file_wrapper_survives_the_stack(settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"x" * 10_000)

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return environ["wsgi.file_wrapper"](open(path, "rb"), 4096)

    stack = compose(app, settings)
    environ = make_environ("/file", scheme="https")
    environ["wsgi.file_wrapper"] = FileWrapper
    body = stack(environ, lambda status, headers, exc_info=None: None)
    assert isinstance(body, FileWrapper), "servers use sendfile only on their own wrapper"
    assert b"".join(body) == b"x" * 10_000
    body.close()


def test_app_exception_propagates_and_is_counted(settings: Settings) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> Any:
        raise KeyError("missing")

    stack = compose(app, settings)
    with pytest.raises(KeyError):
        stack(make_environ("/", scheme="https"), lambda *a: None)
    assert "KeyError" in stack.metrics.snapshot().exceptions
