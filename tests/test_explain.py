"""explain(): each layer's decision for one request, with nothing spent, recorded or called."""

from __future__ import annotations

from typing import Any

import pytest

from conftest import call, hello_app, make_environ
from voyagr_wsgi import ConfigurationError, Settings, compose
from voyagr_wsgi.explain import build_environ, explain, main
from voyagr_wsgi.layers import HostCheck, SecurityHeaders
from voyagr_wsgi.ratelimit import RateLimitSettings

SETTINGS = Settings(
    allowed_hosts=("example.com",),
    trusted_proxies=Settings.from_env({"TRUSTED_PROXIES": "10.0.0.0/8"}).trusted_proxies,
    ratelimit=RateLimitSettings(requests=3, window_s=60.0),
)


def never(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    raise AssertionError("the app was called")


def steps(result: Any) -> list[tuple[str, str]]:
    return [(s.layer, s.outcome) for s in result.steps]


def test_a_plain_request_passes_every_layer_and_nothing_is_changed() -> None:
    stack = compose(never, SETTINGS)
    environ = make_environ("/a", remote="203.0.113.9")
    before = dict(environ)
    result = explain(stack, environ)
    assert environ == before
    assert result.answered_by is None
    assert all(outcome == "passes" for _, outcome in steps(result))
    assert [name for name, _ in steps(result)][:2] == ["ProxyTrust", "Metrics"]
    assert result.environ["voyagr.client_ip"] == "203.0.113.9"
    assert str(result).endswith("-> passed to the app")


def test_spoofed_forwarded_for_from_an_untrusted_peer_is_shown_removed() -> None:
    environ = make_environ(remote="198.51.100.4", headers={"X-Forwarded-For": "1.2.3.4"})
    first = explain(compose(never, SETTINGS), environ).steps[0]
    assert first.detail["peer_trusted"] is False
    assert first.detail["client_ip"] == "198.51.100.4"
    assert first.detail["removed"] == ["HTTP_X_FORWARDED_FOR"]


def test_trusted_router_resolves_client_scheme_and_host() -> None:
    environ = make_environ(
        remote="10.1.2.3", headers={"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"}
    )
    result = explain(compose(never, SETTINGS), environ)
    proxy = result.steps[0].detail
    assert (proxy["peer_trusted"], proxy["client_ip"], proxy["scheme"]) == (
        True,
        "203.0.113.7",
        "https",
    )
    headers = dict(next(s for s in result.steps if s.layer == "SecurityHeaders").detail["adds"])
    assert headers["Strict-Transport-Security"].startswith("max-age=")  # HTTPS seen through


def test_forged_host_is_answered_by_host_check() -> None:
    result = explain(compose(never, SETTINGS), make_environ(host="evil.example"))
    assert result.answered_by is not None
    assert (result.answered_by.layer, result.answered_by.detail["status"]) == (
        "HostCheck",
        "400 Bad Request",
    )
    assert "answered by HostCheck: 400 Bad Request" in str(result)


def test_http_request_is_answered_by_the_redirect() -> None:
    stack = compose(never, SETTINGS.replace(enforce_https=True))
    answered = explain(stack, make_environ("/x", query="a=1", method="POST")).answered_by
    assert answered is not None and answered.layer == "HTTPSRedirect"
    assert answered.detail == {
        "status": "308 Permanent Redirect",
        "location": "https://example.com/x?a=1",
    }


@pytest.mark.parametrize(
    "origin, outcome",
    [
        pytest.param("https://evil.example", "answers", id="cross-origin POST"),
        pytest.param("http://example.com", "passes", id="same-origin POST"),
    ],
)
def test_cross_origin_decision_and_reason(origin: str, outcome: str) -> None:
    environ = make_environ(method="POST", headers={"Origin": origin})
    result = explain(compose(never, SETTINGS), environ)
    step = next(s for s in result.steps if s.layer == "CrossOriginProtection")
    assert step.outcome == outcome
    if outcome == "answers":
        assert step.detail["status"] == "403 Forbidden" and step.detail["reason"]


def test_rate_limit_is_peeked_never_spent() -> None:
    stack = compose(hello_app, SETTINGS)
    environ = make_environ(remote="203.0.113.50")
    for _ in range(10):
        explain(stack, environ)
    limit = next(s for s in explain(stack, environ).steps if s.layer == "RateLimit")
    assert limit.outcome == "passes"
    assert (limit.detail["remaining"], limit.detail["key"], limit.detail["rate"]) == (
        3,
        "203.0.113.50",
        "3/60s",
    )
    assert [call(stack, make_environ(remote="203.0.113.50")).code for _ in range(4)] == [
        200,
        200,
        200,
        429,
    ]
    limit = next(s for s in explain(stack, environ).steps if s.layer == "RateLimit")
    assert (limit.outcome, limit.detail["status"], limit.detail["remaining"]) == (
        "answers",
        "429 Too Many Requests",
        0,
    )
    assert limit.detail["retry_after"] >= 1


def test_nothing_is_recorded_by_metrics() -> None:
    stack = compose(hello_app, SETTINGS)
    registry = stack.layer("Metrics").registry
    before = registry.total
    explain(stack, make_environ(headers={"X-Request-ID": "abc-1"}))
    assert registry.total == before
    call(stack, make_environ())
    assert registry.total == before + 1
    metrics = explain(stack, make_environ(headers={"X-Request-ID": "abc-1"})).steps[1]
    assert metrics.detail["request_id"] == "kept from X-Request-ID: abc-1"


@pytest.mark.parametrize(
    "path, layer, endpoint",
    [
        pytest.param(
            "/api/production/health", "Probe", "/api/production/health", id="health probe"
        ),
        pytest.param("/api/production/metrics", "Admin", "/api/production/metrics", id="admin"),
    ],
)
def test_own_endpoints_are_named_not_run(path: str, layer: str, endpoint: str) -> None:
    result = explain(compose(never, SETTINGS), make_environ(path, remote="203.0.113.1"))
    assert result.answered_by is not None
    assert (result.answered_by.layer, result.answered_by.detail["endpoint"]) == (layer, endpoint)
    if layer == "Admin":
        assert result.answered_by.detail["authorized"] is False  # no token, not loopback


def test_security_header_rule_is_named() -> None:
    stack = compose(never, SETTINGS.replace(security_routes={"/docs/*": {"csp": False}}))
    step = next(
        s for s in explain(stack, make_environ("/docs/")).steps if s.layer == "SecurityHeaders"
    )
    assert step.detail["rule"] == "/docs/*"
    assert "Content-Security-Policy" not in dict(step.detail["adds"])


def test_third_party_middleware_is_reported_unknown() -> None:
    def middleware(app: Any) -> Any:
        def wrapped(environ: dict[str, Any], start_response: Any) -> Any:
            return app(environ, start_response)

        return wrapped

    stack = compose(never, HostCheck(allowed_hosts=["example.com"]), middleware, SecurityHeaders())
    assert steps(explain(stack, make_environ())) == [
        ("HostCheck", "passes"),
        ("wrapped", "unknown"),
        ("SecurityHeaders", "passes"),
    ]


def test_explain_needs_a_stack() -> None:
    with pytest.raises(ConfigurationError, match="not a voyagr_wsgi Stack"):
        explain(hello_app, make_environ())


def test_command_prints_the_walk(capsys: pytest.CaptureFixture[str]) -> None:
    env = {"ALLOWED_HOSTS": "example.com", "TRUSTED_PROXIES": "10.0.0.0/8", "BACKUP_ENABLED": "0"}
    argv = ["/login", "-X", "POST", "--remote", "10.0.0.2"]  # Host: from ALLOWED_HOSTS
    argv += ["-H", "X-Forwarded-For: 203.0.113.7", "-H", "Origin: https://evil.example"]
    assert main(argv, env) == 0
    out = capsys.readouterr().out
    assert out.startswith("POST /login Host: example.com from 10.0.0.2\n")
    assert "client_ip=203.0.113.7" in out
    assert "-> answered by CrossOriginProtection: 403 Forbidden" in out


@pytest.mark.parametrize(
    "argv, env, message",
    [
        pytest.param(["-H", "no colon"], {}, "is not 'Name: value'", id="bad header"),
        pytest.param([], {"RATE_LIMIT_REQUESTS": "many"}, "RATE_LIMIT_REQUESTS", id="bad env"),
    ],
)
def test_command_refuses_bad_input_clearly(
    argv: list[str], env: dict[str, str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv, env) == 1
    assert message in capsys.readouterr().err


def test_build_environ_is_pep_3333() -> None:
    environ = build_environ("/a?b=1", method="post", headers=["Content-Type: text/plain"])
    assert (environ["PATH_INFO"], environ["QUERY_STRING"], environ["REQUEST_METHOD"]) == (
        "/a",
        "b=1",
        "POST",
    )
    assert environ["CONTENT_TYPE"] == "text/plain" and "wsgi.input" in environ


def test_console_command_dispatches_explain(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from voyagr_wsgi.cli import main as cli

    monkeypatch.setenv("ALLOWED_HOSTS", "example.com")
    monkeypatch.setenv("BACKUP_ENABLED", "false")
    assert cli(["explain", "/", "--host", "evil.example"]) == 0
    assert "-> answered by HostCheck: 400 Bad Request" in capsys.readouterr().out


def test_stacked_rates_are_explained_together() -> None:
    stack = compose(
        never, SETTINGS.replace(ratelimit=RateLimitSettings(routes=(("/login", "1/1s;5/60s"),)))
    )
    step = next(s for s in explain(stack, make_environ("/login")).steps if s.layer == "RateLimit")
    assert (step.detail["policy"], step.detail["rate"], step.detail["remaining"]) == (
        "login, login-2",
        "1/1s;5/60s",
        1,
    )


def _rate_step(layer: Any, environ: dict[str, Any]) -> dict[str, Any]:
    info = layer.explain(dict(environ))
    assert info is not None
    return dict(info)


@pytest.mark.parametrize(
    "spec, cost",
    [
        pytest.param("3/60s", 1, id="one policy"),
        pytest.param("3/60s", 2, id="one policy, cost 2"),
        pytest.param("2/1s;4/60s", 1, id="stacked"),
    ],
)
def test_rate_limit_explain_predicts_the_next_real_request(spec: str, cost: int) -> None:
    from ratelimit_helpers import FakeClock
    from voyagr_wsgi.layers import RateLimit
    from voyagr_wsgi.ratelimit.memory import MemoryStore

    clock = FakeClock()
    layer = RateLimit(hello_app, spec, store=MemoryStore(now=clock), cost=cost)
    environ = make_environ(remote="203.0.113.60")
    for moment in range(8):
        predicted = _rate_step(layer, environ)
        predicted_again = _rate_step(layer, environ)
        assert predicted == predicted_again  # explaining spends nothing
        result = call(layer, make_environ(remote="203.0.113.60"))
        if predicted["outcome"] == "answers":
            assert predicted["status"] == result.status == "429 Too Many Requests"
            assert predicted["retry_after"] == int(str(result.header("Retry-After")))
        else:
            assert result.code == 200, moment
        clock.advance(0.7)


@pytest.mark.parametrize(
    "failure, outcome, reason",
    [
        pytest.param("open", "passes", "failure policy open", id="fail open"),
        pytest.param("closed", "answers", "failure policy closed", id="fail closed"),
        pytest.param("local", "passes", "deciding in this process", id="decide locally"),
    ],
)
def test_rate_limit_explain_follows_the_failure_policy(
    failure: str, outcome: str, reason: str
) -> None:
    from conftest import free_port
    from voyagr_wsgi.layers import RateLimit
    from voyagr_wsgi.ratelimit.redis_store import RedisStore

    store = RedisStore(f"redis://127.0.0.1:{free_port()}/0")
    layer = RateLimit(never, "3/60s", store=store, failure=failure)  # type: ignore[arg-type]
    try:
        info = _rate_step(layer, make_environ())
    finally:
        store.close()
    assert info["outcome"] == outcome
    assert info["reason"].startswith("store unavailable") and info["reason"].endswith(reason)
    assert info.get("status") == ("503 Service Unavailable" if failure == "closed" else None)
    assert ("remaining" in info) == (failure == "local")


def test_rate_limit_explain_a_cost_that_never_fits_has_no_retry_after() -> None:
    from voyagr_wsgi.layers import RateLimit

    layer = RateLimit(never, "3/60s", cost=lambda environ: 10)
    info = _rate_step(layer, make_environ())
    assert (info["outcome"], info["status"], info["retry_after"]) == (
        "answers",
        "429 Too Many Requests",
        None,
    )


def test_rate_limit_explain_reports_the_budget_without_fields() -> None:
    from voyagr_wsgi.layers import RateLimit

    layer = RateLimit(hello_app, "3/60s", headers=False)
    call(layer, make_environ())
    assert _rate_step(layer, make_environ())["remaining"] == 2


TOKEN = "explain-test-token-0123456789"
PREDICT = SETTINGS.replace(
    enforce_https=True,
    admin_token=Settings.from_env({"VOYAGR_ADMIN_TOKEN": TOKEN}).admin_token,
)
BEARER = {"Authorization": f"Bearer {TOKEN}"}


@pytest.mark.parametrize(
    "path, options, answered_by",
    [
        pytest.param("/", {"scheme": "https"}, None, id="plain https GET"),
        pytest.param("/", {}, "HTTPSRedirect", id="plain http GET"),
        pytest.param("/x", {"method": "POST"}, "HTTPSRedirect", id="http POST"),
        pytest.param("/", {"scheme": "https", "host": "evil.example"}, "HostCheck",
                     id="forged Host"),
        pytest.param("/", {"scheme": "https", "host": "exa mple.com"}, "HostCheck",
                     id="malformed Host"),
        pytest.param("/form", {"scheme": "https", "method": "POST",
                               "headers": {"Sec-Fetch-Site": "cross-site"}},
                     "CrossOriginProtection", id="cross-site POST"),
        pytest.param("/form", {"scheme": "https", "method": "POST",
                               "headers": {"Origin": "https://example.com"}}, None,
                     id="same-origin POST"),
        pytest.param("/api/production/livez", {}, "Probe", id="livez over http"),
        pytest.param("/api/production/livez", {"method": "POST"}, "Probe",
                     id="livez POST: 405"),
        pytest.param("/api/production/metrics", {"scheme": "https"}, "Admin",
                     id="admin without token: 401"),
        pytest.param("/api/production/metrics", {"scheme": "https", "method": "DELETE",
                                                 "headers": BEARER}, "Admin",
                     id="admin wrong method: 405"),
    ],
)  # fmt: skip
def test_explain_predicts_what_the_request_path_does(
    path: str, options: dict[str, Any], answered_by: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    stack = compose(hello_app, PREDICT)
    environ = make_environ(path, remote="203.0.113.70", **options)
    with caplog.at_level("DEBUG"):
        result = explain(stack, environ)
    assert caplog.records == []  # explaining logs nothing (a refusal is logged when real)
    step = result.answered_by
    assert (step.layer if step else None) == answered_by
    with caplog.at_level("DEBUG"):
        real = call(stack, make_environ(path, remote="203.0.113.70", **options))
    if answered_by in ("HostCheck", "CrossOriginProtection"):
        assert caplog.records, "the real refusal is logged"
    if step is None:
        assert real.code == 200
    else:
        assert step.detail["status"] == real.status


def test_explain_names_an_authorized_admin_call_without_running_its_handler() -> None:
    ran: list[bool] = []

    def handler(environ: dict[str, Any], params: dict[str, str]) -> Any:
        ran.append(True)
        return "200 OK", [("Content-Type", "text/plain")], [b"ran"]

    from voyagr_wsgi.admin import Admin, AdminRoute
    from voyagr_wsgi.secret import Secret

    admin = Admin(never, token=Secret(TOKEN), routes=(AdminRoute("POST", "reset", handler),))
    info = admin.explain(make_environ("/api/production/reset", method="POST", headers=BEARER))
    assert info is not None and ran == []
    assert (info["outcome"], info["authorized"], info["method_allowed"]) == (
        "answers",
        True,
        True,
    )


def test_explain_never_calls_a_deny_handler() -> None:
    from voyagr_wsgi.layers import CrossOriginProtection

    def deny_handler(environ: dict[str, Any], start_response: Any, reason: str) -> list[bytes]:
        raise AssertionError("the deny handler ran")

    layer = CrossOriginProtection(never, deny_handler=deny_handler)
    info = layer.explain(make_environ(method="POST", headers={"Sec-Fetch-Site": "cross-site"}))
    assert info["outcome"] == "answers" and info["reason"]


def test_explain_shows_the_metrics_route_label_without_counting() -> None:
    from voyagr_wsgi.layers import Metrics
    from voyagr_wsgi.metrics.registry import Registry

    registry = Registry()
    layer = Metrics(never, registry=registry, routes=["/users/{id}"])
    info = layer.explain(make_environ("/users/42"))
    assert (info["recorded"], info["route"], info["request_id"]) == (
        True,
        "/users/{id}",
        "generated",
    )
    assert registry.total == 0
    excluded = layer.explain(make_environ("/api/production/metrics"))
    assert excluded["recorded"] is False
