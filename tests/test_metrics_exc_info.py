"""The Metrics layer records an exception a framework answered with its own 500 page, when
the framework hands it over as environ["voyagr.exc_info"] (Flask's and Django's
got_request_exception)."""

from __future__ import annotations

import sys
from typing import Any

import pytest

from conftest import call, make_environ
from voyagr_wsgi.layers import Metrics
from voyagr_wsgi.metrics.layer import EXC_INFO
from voyagr_wsgi.metrics.registry import Registry


def framework_app(status: str) -> Any:
    """Catches its view's exception, hands it over, answers ``status`` itself."""

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        try:
            raise KeyError("missing")
        except KeyError:
            environ[EXC_INFO] = sys.exc_info()
        start_response(status, [("Content-Type", "text/plain"), ("Content-Length", "2")])
        return [b"no"]

    return app


@pytest.mark.parametrize(
    ("status", "recorded"),
    [
        pytest.param("500 Internal Server Error", {"KeyError": 1}, id="500 page: recorded"),
        pytest.param("200 OK", {}, id="handled into a 2xx: not an error"),
    ],
)
def test_handed_over_exception_is_recorded_on_a_5xx(status: str, recorded: dict[str, int]) -> None:
    registry = Registry()
    call(Metrics(framework_app(status), registry=registry), make_environ("/x"))
    snapshot = registry.snapshot()
    assert snapshot.exceptions == recorded
    if recorded:
        (entry,) = snapshot.recent_errors
        assert entry["type"] == "KeyError"
        assert entry["traceback"][-1].endswith(" in app")
