from __future__ import annotations

from typing import Any

import pytest

from conftest import call, hello_app, make_environ
from voyagr_wsgi import ConfigurationError, Secret
from voyagr_wsgi.admin import Admin, AdminRoute
from voyagr_wsgi.problem import json_response


def echo(environ: Any, params: Any) -> Any:
    return json_response("200 OK", {"params": dict(params)})


ROUTES = [
    AdminRoute("GET", "metrics", echo),
    AdminRoute("POST", "backup/restore/{name}", echo),
]


@pytest.mark.parametrize(
    ("token", "remote", "auth", "expected"),
    [
        pytest.param(None, "127.0.0.1", None, 200, id="no token, loopback"),
        pytest.param(None, "::1", None, 200, id="no token, ipv6 loopback"),
        pytest.param(None, "203.0.113.9", None, 404, id="no token, remote hidden"),
        pytest.param("t0ken-0123456789abcdef", "127.0.0.1", None, 401, id="token set, none sent"),
        pytest.param(
            "t0ken-0123456789abcdef",
            "203.0.113.9",
            "Bearer t0ken-0123456789abcdef",
            200,
            id="right token",
        ),
        pytest.param(
            "t0ken-0123456789abcdef", "203.0.113.9", "Bearer t0ke", 401, id="prefix of token"
        ),
        pytest.param(
            "t0ken-0123456789abcdef",
            "203.0.113.9",
            "Basic t0ken-0123456789abcdef",
            401,
            id="wrong scheme",
        ),
        pytest.param(
            "t0ken-0123456789abcdef",
            "203.0.113.9",
            "bearer   t0ken-0123456789abcdef",
            200,
            id="scheme case, spaces",
        ),
    ],
)
def test_access_rule(token: str | None, remote: str, auth: str | None, expected: int) -> None:
    app = Admin(hello_app, token=Secret(token) if token else None, routes=ROUTES)
    headers = {"Authorization": auth} if auth else {}
    result = call(app, make_environ("/api/production/metrics", remote=remote, headers=headers))
    assert result.code == expected
    if expected == 401:
        assert result.header("WWW-Authenticate") == 'Bearer realm="voyagr"'


def test_path_parameters_never_span_segments() -> None:
    app = Admin(hello_app, routes=ROUTES, token=Secret("k" * 24))
    auth = {"Authorization": "Bearer " + "k" * 24}
    ok = call(app, make_environ("/api/production/backup/restore/abc", method="POST", headers=auth))
    assert ok.code == 200 and b'"name":"abc"' in ok.body
    slash = call(
        app, make_environ("/api/production/backup/restore/../x", method="POST", headers=auth)
    )
    assert slash.body == b"hello", "an unmatched path passes through to the app"


def test_wrong_method_is_405_with_allow() -> None:
    app = Admin(hello_app, routes=ROUTES)
    result = call(app, make_environ("/api/production/metrics", method="DELETE", remote="127.0.0.1"))
    assert result.code == 405 and result.header("Allow") == "GET, HEAD"
    assert result.header("Content-Type") == "application/problem+json"


def test_a_state_change_without_a_configured_token_is_refused_even_to_loopback() -> None:
    # behind nginx on the same host every request is loopback: restore must not be open
    app = Admin(hello_app, routes=ROUTES)
    env = make_environ("/api/production/backup/restore/abc", method="POST", remote="127.0.0.1")
    result = call(app, env)
    assert result.code == 403
    assert result.header("Content-Type") == "application/problem+json"
    assert b"admin-token-not-configured" in result.body
    assert call(app, make_environ("/api/production/metrics", remote="127.0.0.1")).code == 200


def test_head_gets_headers_without_body() -> None:
    app = Admin(hello_app, routes=ROUTES)
    result = call(app, make_environ("/api/production/metrics", method="HEAD", remote="127.0.0.1"))
    assert result.code == 200 and result.body == b""


def test_other_paths_pass_through() -> None:
    app = Admin(hello_app, routes=ROUTES)
    assert call(app, make_environ("/api/productionx", remote="203.0.113.9")).body == b"hello"
    assert call(app, make_environ("/api/production/other")).body == b"hello"


def test_bad_prefix_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="prefix"):
        Admin(hello_app, prefix="api")


def page(environ: Any, params: Any) -> Any:
    return "200 OK", [("Content-Type", "text/html")], [b"<html>no data</html>"]


def test_shell_route_is_served_without_the_token_but_data_routes_are_not() -> None:
    routes = [*ROUTES, AdminRoute("GET", "dashboard", page, public_page=True)]
    app = Admin(hello_app, token=Secret("t0ken-0123456789abcdef"), routes=routes)
    assert call(app, make_environ("/api/production/dashboard")).code == 200
    assert call(app, make_environ("/api/production/metrics")).code == 401


def test_shell_route_without_a_token_configured_still_needs_loopback() -> None:
    app = Admin(hello_app, routes=[AdminRoute("GET", "dashboard", page, public_page=True)])
    assert call(app, make_environ("/api/production/dashboard", remote="203.0.113.9")).code == 404
    assert call(app, make_environ("/api/production/dashboard", remote="127.0.0.1")).code == 200


@pytest.mark.parametrize(
    ("path", "served"),
    [
        pytest.param("/api/production/metrics", True, id="exact"),
        pytest.param("/api/production//metrics", True, id="repeated slash: same endpoint"),
        pytest.param("/api/production/metrics/", False, id="trailing slash passes on"),
        pytest.param("/api/production/Metrics", False, id="case matters"),
    ],
)
def test_route_spellings(path: str, served: bool) -> None:
    app = Admin(hello_app, routes=ROUTES)
    result = call(app, make_environ(path, remote="127.0.0.1"))
    assert (result.body != b"hello") is served
