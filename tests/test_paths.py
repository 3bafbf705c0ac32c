"""One path grammar (exact, or a prefix ending in ``/*``) and one normalised request path,
through every layer that matches paths: no spelling of a path escapes its rule."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import call, hello_app, make_environ
from ratelimit_helpers import FakeClock
from voyagr_wsgi import ConfigurationError, Secret, Settings
from voyagr_wsgi.admin import Admin, AdminRoute
from voyagr_wsgi.layers import (
    CrossOriginProtection,
    HTTPSRedirect,
    Metrics,
    Probe,
    RateLimit,
    SecurityHeaders,
)
from voyagr_wsgi.layers._paths import PathPatterns
from voyagr_wsgi.metrics.registry import Registry
from voyagr_wsgi.problem import json_response
from voyagr_wsgi.ratelimit import MemoryStore, Rule
from voyagr_wsgi.request import PATH, app_path, normalize_path, prefix_needle, request_path

#: spellings of /login a client can send; what a server delivers in PATH_INFO
LOGIN_SPELLINGS = [
    pytest.param("/login", id="plain"),
    pytest.param("//login", id="double slash (curl --path-as-is)"),
    pytest.param("///login", id="triple slash"),
    pytest.param("/./login", id="dot segment"),
    pytest.param("/a/../login", id="dot-dot segment"),
    pytest.param("/../login", id="dot-dot above root"),
    pytest.param("/../../a/../login", id="dot-dots above root, then back"),
    pytest.param("/login/", id="trailing slash"),
    pytest.param("/login//", id="trailing double slash"),
    pytest.param("/login/.", id="trailing dot"),
    # gunicorn decodes %2F in the request target: "/%2Flogin" arrives as "//login"
    pytest.param("//login", id="%2F spelling as gunicorn delivers it"),
]


# -- the normalised path ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("script_name", "path_info", "expected"),
    [
        pytest.param("", "/login", "/login", id="plain"),
        pytest.param("", "//login", "/login", id="double slash"),
        pytest.param("", "/./login", "/login", id="dot"),
        pytest.param("", "/a/../login", "/login", id="dot-dot"),
        pytest.param("", "/../login", "/login", id="dot-dot above root"),
        pytest.param("", "/login/", "/login/", id="trailing slash kept"),
        pytest.param("", "/login//", "/login/", id="trailing slashes collapsed"),
        pytest.param("", "/a/b/..", "/a/", id="dot-dot last"),
        pytest.param("", "/a/..", "/", id="dot-dot to root"),
        pytest.param("", "", "/", id="empty"),
        pytest.param("", "/", "/", id="root"),
        pytest.param("", "/.well-known/acme", "/.well-known/acme", id="dot file kept"),
        pytest.param("", "/a..b/c.", "/a..b/c.", id="dots inside names kept"),
        pytest.param("/app", "/login", "/app/login", id="mounted"),
        pytest.param("/app", "", "/app", id="mount root"),
        pytest.param("/app", "//login", "/app/login", id="mounted, double slash"),
        pytest.param("/app", "/../login", "/app/login", id="dot-dot stays inside the mount"),
        pytest.param("/app/", "/login", "/app/login", id="script name with a trailing slash"),
        pytest.param("//app", "/./login", "/app/login", id="odd script name"),
    ],
)
def test_request_path_is_normalised_once_and_path_info_is_untouched(
    script_name: str, path_info: str, expected: str
) -> None:
    environ = make_environ(path_info, SCRIPT_NAME=script_name)
    assert request_path(environ) == expected
    assert environ[PATH] == expected, "cached in the environ"
    assert environ["PATH_INFO"] == path_info and environ["SCRIPT_NAME"] == script_name
    environ["PATH_INFO"] = "/changed"  # the cache answers: computed once per request
    assert request_path(environ) == expected


def test_ordinary_paths_are_returned_as_they_are() -> None:
    path = "/users/42/edit"
    assert normalize_path(path) == path
    environ = make_environ(path)
    assert request_path(environ) is environ["PATH_INFO"]


@pytest.mark.parametrize("spelling", LOGIN_SPELLINGS)
def test_app_path_normalises_path_info_below_the_mount(spelling: str) -> None:
    environ = make_environ(spelling, SCRIPT_NAME="/app")
    assert app_path(environ).rstrip("/") == "/login"
    assert request_path(environ).rstrip("/") == "/app/login"


# -- the grammar ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        pytest.param("/login", "/login", True, id="exact"),
        pytest.param("/login", "/login/", True, id="exact covers its trailing slash"),
        pytest.param("/login", "/loginx", False, id="exact is not a prefix"),
        pytest.param("/login", "/login/x", False, id="exact does not cover below"),
        pytest.param("/static/*", "/static/", True, id="prefix: the directory"),
        pytest.param("/static/*", "/static/a/b.css", True, id="prefix: below"),
        pytest.param("/static/*", "/static", False, id="prefix does not cover the bare name"),
        pytest.param("/static/*", "/staticx/a", False, id="prefix is per segment"),
        pytest.param("/", "/", True, id="root exact"),
        pytest.param("/", "/x", False, id="root exact only"),
        pytest.param("/*", "/anything/at/all", True, id="everything"),
        pytest.param("/caf\u00e9", "/caf\u00c3\u00a9", True, id="non-ASCII as WSGI delivers it"),
    ],
)
def test_pattern_grammar(pattern: str, path: str, matches: bool) -> None:
    assert PathPatterns([pattern], setting="X")(path) is matches


@pytest.mark.parametrize(
    ("pattern", "hint"),
    [
        pytest.param("static", "start with '/'", id="no leading slash"),
        pytest.param("", "start with '/'", id="empty"),
        pytest.param("/static/", "'/static/*'", id="trailing slash meaning a prefix"),
        pytest.param("/static*", "'/static/*'", id="star not after a slash"),
        pytest.param("/a/*/b", "only as the last segment", id="star in the middle"),
        pytest.param("/a/**", "only as the last segment", id="double star"),
        pytest.param("/static/.*", "only as the last segment", id="regex dot-star"),
        pytest.param("^/login$", "start with '/'", id="regex anchors"),
        pytest.param("/login$", "not accepted in a path rule", id="dollar"),
        pytest.param("/(a|b)/*", "not accepted in a path rule", id="regex group"),
        pytest.param("/users/{id}", "not accepted in a path rule", id="template"),
        pytest.param("/a?b=1", "not accepted in a path rule", id="query"),
        pytest.param("/a b", "not accepted in a path rule", id="space"),
        pytest.param("/a%20b", "decoded", id="percent-encoded"),
        pytest.param("//login", "'/login'", id="double slash"),
        pytest.param("/a/./b", "'/a/b'", id="dot segment"),
        pytest.param("/a/../b", "'/b'", id="dot-dot segment"),
    ],
)
def test_other_syntax_is_a_configuration_error_naming_the_option(pattern: str, hint: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        PathPatterns([pattern], setting="SOME_PATHS")
    message = str(info.value)
    assert message.startswith("SOME_PATHS: ")
    assert hint in message
    assert "exact paths" in message and "'/static/*'" in message, "names the accepted syntax"


# -- settings: every variable validated when it is read ---------------------------------
@pytest.mark.parametrize(
    ("name", "value"),
    [
        pytest.param("HTTPS_REDIRECT_EXEMPT", "/static/", id="https exempt, trailing slash"),
        pytest.param("HTTPS_REDIRECT_EXEMPT", "/up,static/*", id="https exempt, no slash"),
        pytest.param("CSRF_EXEMPT_PATHS", "/hooks*", id="csrf exempt, bare star"),
        pytest.param("CSRF_EXEMPT_PATHS", "/a/*/b", id="csrf exempt, inner star"),
        pytest.param("RATE_LIMIT_EXEMPT_PATHS", "/static/", id="ratelimit exempt, old prefix"),
        pytest.param("RATE_LIMIT_EXEMPT_PATHS", "/static/.*", id="ratelimit exempt, regex"),
        pytest.param("RATE_LIMIT_ROUTES", "/api/=10/1m", id="route, old prefix"),
        pytest.param("RATE_LIMIT_ROUTES", "/login$=5/60s", id="route, regex"),
        pytest.param("RATE_LIMIT_ROUTES", "//login=5/60s", id="route, double slash"),
        pytest.param("METRICS_ROUTE_PATTERNS", "/users/*", id="metrics template with a star"),
        pytest.param("METRICS_ROUTE_PATTERNS", "/users/{id", id="metrics template unclosed"),
        pytest.param("METRICS_ROUTE_PATTERNS", "users/{id}", id="metrics template relative"),
    ],
)
def test_bad_path_variable_is_an_error_naming_it(name: str, value: str) -> None:
    with pytest.raises(ConfigurationError, match=name):
        Settings.from_env({name: value})


def test_old_prefix_spelling_gets_a_hint_not_a_new_meaning() -> None:
    with pytest.raises(ConfigurationError) as info:
        Settings.from_env({"HTTPS_REDIRECT_EXEMPT": "/static/"})
    assert "HTTPS_REDIRECT_EXEMPT" in str(info.value)
    assert "write '/static/*' for everything under /static/" in str(info.value)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        pytest.param("HTTPS_REDIRECT_EXEMPT", "/up,/static/*,/", id="https exempt"),
        pytest.param("CSRF_EXEMPT_PATHS", "/webhooks/stripe,/hooks/*", id="csrf exempt"),
        pytest.param("RATE_LIMIT_EXEMPT_PATHS", "/static/*,/favicon.ico", id="ratelimit exempt"),
        pytest.param("RATE_LIMIT_ROUTES", "/login=5/60s,/api/*=10/1m", id="routes"),
        pytest.param("METRICS_ROUTE_PATTERNS", "/users/{id},/files/<path:p>", id="templates"),
    ],
)
def test_good_path_variables_are_accepted(name: str, value: str) -> None:
    Settings.from_env({name: value})


# -- every layer matches the normalised path --------------------------------------------
def _limited(**options: Any) -> RateLimit:
    return RateLimit(hello_app, "100/60s", store=MemoryStore(now=FakeClock()), **options)


@pytest.mark.parametrize("spelling", LOGIN_SPELLINGS)
def test_ratelimit_rule_covers_every_spelling(spelling: str) -> None:
    layer = _limited(rules=[Rule("/login", "2/60s", methods=("POST",))])
    assert call(layer, make_environ("/login", method="POST")).code == 200
    assert call(layer, make_environ(spelling, method="POST")).code == 200
    assert call(layer, make_environ("/login", method="POST")).code == 429
    denied = call(layer, make_environ(spelling, method="POST"))
    assert denied.code == 429 and denied.environ["PATH_INFO"] == spelling


def test_ratelimit_rule_under_a_mount_is_written_with_the_mount() -> None:
    layer = _limited(rules=[Rule("/app/login", "1/60s")])
    assert call(layer, make_environ("/login", SCRIPT_NAME="/app")).code == 200
    assert call(layer, make_environ("/../login", SCRIPT_NAME="/app")).code == 429


@pytest.mark.parametrize(
    ("path", "exempt"),
    [
        pytest.param("/static/app.js", True, id="under the prefix"),
        pytest.param("//static/app.js", True, id="double slash"),
        pytest.param("/x/../static/app.js", True, id="dot-dot"),
        pytest.param("/static", False, id="the bare name is not under it"),
        pytest.param("/staticx/app.js", False, id="another name"),
    ],
)
def test_ratelimit_exempt_prefix_with_star(path: str, exempt: bool) -> None:
    layer = RateLimit(hello_app, "1/60s", store=MemoryStore(now=FakeClock()), exempt=["/static/*"])
    codes = [call(layer, make_environ(path)).code for _ in range(3)]
    assert codes == ([200, 200, 200] if exempt else [200, 429, 429])


def test_ratelimit_exempt_static_star_from_the_environment() -> None:
    from voyagr_wsgi import compose

    settings = Settings.from_env(
        {"RATE_LIMIT_REQUESTS": "1", "RATE_LIMIT_EXEMPT_PATHS": "/static/*"}
    )
    stack = compose(hello_app, settings)
    assert [call(stack, make_environ("/static/app.js")).code for _ in range(3)] == [200] * 3


@pytest.mark.parametrize(
    ("path", "redirected"),
    [
        pytest.param("/up", False, id="exact"),
        pytest.param("//up", False, id="double slash"),
        pytest.param("/./up", False, id="dot"),
        pytest.param("/up/", False, id="trailing slash"),
        pytest.param("/upx", True, id="another path"),
        pytest.param("/static/a.css", False, id="prefix"),
        pytest.param("/a/..//static/a.css", False, id="prefix, odd spelling"),
        pytest.param("/static", True, id="bare prefix name"),
    ],
)
def test_https_redirect_exempt_matches_the_normalised_path(path: str, redirected: bool) -> None:
    layer = HTTPSRedirect(hello_app, exempt=["/up", "/static/*"])
    result = call(layer, make_environ(path))
    assert result.code == (301 if redirected else 200)
    if redirected:  # the Location keeps the path as sent
        assert result.header("Location") == f"https://example.com{path}"


@pytest.mark.parametrize(
    ("path", "code"),
    [
        pytest.param("/webhooks/stripe", 200, id="exact"),
        pytest.param("//webhooks/stripe", 200, id="double slash"),
        pytest.param("/webhooks/./stripe/", 200, id="dot and trailing slash"),
        pytest.param("/webhooks/stripe/x", 403, id="not below an exact path"),
        pytest.param("/form", 403, id="not exempt"),
    ],
)
def test_csrf_exempt_matches_the_normalised_path(path: str, code: int) -> None:
    layer = CrossOriginProtection(hello_app, exempt_paths=["/webhooks/stripe"])
    environ = make_environ(path, method="POST", headers={"Sec-Fetch-Site": "cross-site"})
    assert call(layer, environ).code == code


@pytest.mark.parametrize(
    ("path", "csp"),
    [
        pytest.param("/docs/a", False, id="rule"),
        pytest.param("//docs/a", False, id="double slash"),
        pytest.param("/x/../docs/a", False, id="dot-dot"),
        pytest.param("/doc", True, id="outside the rule"),
    ],
)
def test_security_header_routes_match_the_normalised_path(path: str, csp: bool) -> None:
    layer = SecurityHeaders(hello_app, routes={"/docs/*": {"csp": False}})
    has_csp = call(layer, make_environ(path)).header("Content-Security-Policy") is not None
    assert has_csp is csp


def test_security_header_route_pattern_is_validated() -> None:
    with pytest.raises(ConfigurationError, match=r"routes=\) '/docs/'.*'/docs/\*'"):
        SecurityHeaders(hello_app, routes={"/docs/": {"csp": False}})


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("/api/production/livez", id="plain"),
        pytest.param("//api/production/livez", id="double slash"),
        pytest.param("/api/./production/livez", id="dot"),
        pytest.param("/api/production/x/../livez", id="dot-dot"),
        pytest.param("/x/../api//production/./livez", id="every oddity at once"),
    ],
)
def test_probe_answers_every_spelling(path: str) -> None:
    result = call(Probe(hello_app), make_environ(path))
    assert result.code == 200 and result.body == b'{"status":"pass"}'


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("/api/production/livez/", id="trailing slash"),
        pytest.param("/api/production/livez/.", id="trailing dot"),
        pytest.param("/api/production/livez/x/..", id="trailing dot-dot"),
        pytest.param("/api/production/livezz", id="longer name"),
    ],
)
def test_probe_still_answers_only_its_exact_paths(path: str) -> None:
    assert call(Probe(hello_app), make_environ(path)).body == b"hello"


def test_admin_with_a_renamed_prefix_answers_every_spelling() -> None:
    route = AdminRoute("GET", "echo", lambda environ, params: json_response("200 OK", {"ok": 1}))
    layer = Admin(hello_app, token=Secret("t" * 32), routes=[route], prefix="/ops/")
    auth = {"Authorization": "Bearer " + "t" * 32}
    assert call(layer, make_environ("//ops/./echo", headers=auth)).code == 200
    assert call(layer, make_environ("/opsx/echo", headers=auth)).body == b"hello"


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("/api/production/echo", id="plain"),
        pytest.param("//api/production/echo", id="double slash"),
        pytest.param("/api/production/x/../echo", id="dot-dot"),
        pytest.param("/x/../api//production/./echo", id="every oddity at once"),
        pytest.param("/api/production//echo", id="double slash below the prefix"),
    ],
)
def test_admin_answers_every_spelling(path: str) -> None:
    route = AdminRoute("GET", "echo", lambda environ, params: json_response("200 OK", {"ok": 1}))
    layer = Admin(hello_app, token=Secret("t" * 32), routes=[route])
    unauthorized = call(layer, make_environ(path))
    assert unauthorized.code == 401
    ok = call(layer, make_environ(path, headers={"Authorization": "Bearer " + "t" * 32}))
    assert ok.code == 200


@pytest.mark.parametrize(
    ("path", "route"),
    [
        pytest.param("/users/1", "/users/{id}", id="plain"),
        pytest.param("//users/1", "/users/{id}", id="double slash"),
        pytest.param("/x/../users/1", "/users/{id}", id="dot-dot"),
        pytest.param("/users/1/x", "__unmatched__", id="deeper"),
    ],
)
def test_metrics_route_templates_match_the_normalised_path(path: str, route: str) -> None:
    layer = Metrics(hello_app, registry=Registry(), routes=["/users/{id}"])
    assert layer.route_of(make_environ(path)) == route
    call(layer, make_environ(path))


@given(st.lists(st.sampled_from(["", ".", "..", "a", "b.c", "..d", "%2F"]), max_size=8))
def test_normalised_paths_have_no_empty_or_dot_segments_and_are_stable(parts: list[str]) -> None:
    path = "/" + "/".join(parts)
    once = normalize_path(path)
    assert once.startswith("/") and normalize_path(once) == once
    assert all(s not in ("", ".", "..") for s in once.strip("/").split("/")) or once == "/"
    assert PathPatterns(["/*"], setting="X")(once)


@pytest.mark.parametrize("path", ["/livez", "//livez", "/x/../livez", "/./livez"])
def test_probe_at_the_root_answers_every_spelling(path: str) -> None:
    result = call(Probe(hello_app, prefix="/"), make_environ(path))
    assert result.code == 200 and result.body == b'{"status":"pass"}'


@pytest.mark.parametrize(
    ("prefix", "needle"),
    [("/api/production/", "production"), ("/ops/", "ops"), ("/", ""), ("/a/b", "b")],
)
def test_prefix_needle_is_the_last_segment(prefix: str, needle: str) -> None:
    assert prefix_needle(prefix) == needle
    for spelling in (prefix + "x", "/" + prefix + "x", "/q/.." + prefix + "./x"):
        assert needle in spelling
