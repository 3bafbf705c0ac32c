"""A layer calls the app inside it through ``direct_call``: same app, same results."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from conftest import call, hello_app, make_environ
from voyagr_wsgi import compose
from voyagr_wsgi._layer import direct_call
from voyagr_wsgi.layers import HostCheck, HTTPSRedirect, ProxyTrust


class CountingApp:
    """A WSGI app that is an instance with a Python ``__call__``."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        self.calls += 1
        return hello_app(environ, start_response)


def test_direct_call_binds_an_instance_app_to_its_own_call() -> None:
    app = CountingApp()
    bound: Any = direct_call(app)
    assert bound.__self__ is app and bound.__func__ is CountingApp.__call__


@pytest.mark.parametrize(
    "app",
    [
        pytest.param(hello_app, id="a function"),
        pytest.param(print, id="a builtin"),
        pytest.param(CountingApp().__call__, id="a bound method"),
        pytest.param(42, id="not callable at all"),
    ],
)
def test_direct_call_leaves_other_apps_as_they_are(app: Any) -> None:
    assert direct_call(app) is app


def test_an_instance_app_under_a_stack_is_called_once_per_request() -> None:
    app = CountingApp()
    stack = compose(app, ProxyTrust(), HostCheck(allowed_hosts=["example.com"]), HTTPSRedirect())
    result = call(stack, make_environ("/", host="example.com", scheme="https"))
    assert result.code == 200
    assert app.calls == 1
    assert stack.layer("HostCheck").app is stack.layer("HTTPSRedirect")
