from __future__ import annotations

import json
from typing import Any

import pytest

from conftest import call, hello_app, make_environ
from voyagr_wsgi import ConfigurationError, Settings, compose
from voyagr_wsgi.health import Check, Health, Status
from voyagr_wsgi.layers import Probe, ProxyTrust
from voyagr_wsgi.secret import Secret
from wsgi_apps import exc_info_app, lazy_streaming_app

P = "/api/production/"
TOKEN = Secret("s3cret-token-for-tests-0123456789")


def health_with(status: Status, *, readiness: bool = False) -> Health:
    check = Check("db:responseTime", status, 12, "ms", output=f"db {status}", readiness=readiness)
    return Health([lambda: [check]])


@pytest.mark.parametrize(
    ("path", "status", "code", "body"),
    [
        pytest.param("health", "pass", 200, {"status": "pass"}, id="health pass"),
        pytest.param("health", "warn", 200, {"status": "warn"}, id="health warn still 200"),
        pytest.param("health", "fail", 503, {"status": "fail"}, id="health fail 503"),
        pytest.param("livez", "fail", 200, {"status": "pass"}, id="livez ignores checks"),
        pytest.param("readyz", "pass", 200, {"status": "pass"}, id="readyz pass"),
        pytest.param("readyz", "warn", 200, {"status": "warn"}, id="readyz warn 200"),
        pytest.param("readyz", "fail", 200, {"status": "warn"}, id="readyz: observation fails"),
        pytest.param("readyz", "fail*", 503, {"status": "fail"}, id="readyz: readiness fails"),
        pytest.param("readyz", "warn*", 200, {"status": "warn"}, id="readyz: readiness warns"),
        pytest.param("health", "fail*", 503, {"status": "fail"}, id="health: readiness fails"),
    ],
)
def test_minimal_answers(path: str, status: str, code: int, body: dict[str, str]) -> None:
    health = health_with(status.rstrip("*"), readiness=status.endswith("*"))  # type: ignore[arg-type]
    layer = Probe(hello_app, health=health, token=TOKEN)
    result = call(layer, make_environ(P + path, remote="203.0.113.9"))
    assert result.code == code
    assert json.loads(result.body) == body
    assert result.header("Content-Type") == "application/json"
    assert result.header("Cache-Control") == "no-store"


def test_health_without_sources_passes() -> None:
    result = call(Probe(hello_app), make_environ(P + "health", remote="203.0.113.9"))
    assert (result.code, json.loads(result.body)) == (200, {"status": "pass"})


@pytest.mark.parametrize(
    ("token", "remote", "authorization", "full"),
    [
        pytest.param(TOKEN, "203.0.113.9", "Bearer " + TOKEN.reveal(), True, id="right token"),
        pytest.param(TOKEN, "203.0.113.9", "Bearer wrong", False, id="wrong token"),
        pytest.param(TOKEN, "127.0.0.1", None, False, id="loopback without token when one is set"),
        pytest.param(None, "127.0.0.1", None, True, id="no token configured: loopback"),
        pytest.param(None, "203.0.113.9", None, False, id="no token configured: remote"),
    ],
)
def test_full_document_only_when_admin_authorized(
    token: Secret | None, remote: str, authorization: str | None, full: bool
) -> None:
    layer = Probe(hello_app, health=health_with("warn"), token=token)
    headers = {"Authorization": authorization} if authorization else {}
    result = call(layer, make_environ(P + "health", remote=remote, headers=headers))
    doc = json.loads(result.body)
    assert result.code == 200
    if full:
        assert result.header("Content-Type") == "application/health+json"
        assert doc["status"] == "warn"
        assert doc["checks"]["db:responseTime"][0]["observedValue"] == 12
        assert doc["notes"] == ["db warn"]
    else:
        assert doc == {"status": "warn"}


def test_full_document_keeps_503_on_fail() -> None:
    layer = Probe(hello_app, health=health_with("fail"), token=None)
    result = call(layer, make_environ(P + "health", remote="::1"))
    assert result.code == 503
    assert json.loads(result.body)["status"] == "fail"


def test_forwarded_loopback_from_untrusted_peer_gets_minimal_answer() -> None:
    layer = ProxyTrust(Probe(hello_app, health=health_with("pass")), trusted=["10.0.0.0/8"])
    environ = make_environ(
        P + "health", remote="203.0.113.9", headers={"X-Forwarded-For": "127.0.0.1"}
    )
    assert json.loads(call(layer, environ).body) == {"status": "pass"}


@pytest.mark.parametrize("path", ["health", "livez", "readyz"])
@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "OPTIONS"])
def test_other_methods_get_405_with_allow(path: str, method: str) -> None:
    result = call(Probe(hello_app), make_environ(P + path, method=method))
    assert result.code == 405
    assert result.header("Allow") == "GET, HEAD"


@pytest.mark.parametrize("path", ["health", "livez", "readyz"])
def test_head_has_headers_and_no_body(path: str) -> None:
    layer = Probe(hello_app, health=health_with("fail", readiness=True))
    result = call(layer, make_environ(P + path, method="HEAD"))
    assert result.body == b""
    assert result.code == (200 if path == "livez" else 503)
    assert int(result.header("Content-Length") or 0) > 0


@pytest.mark.parametrize(
    "path",
    [
        pytest.param(P + "health/", id="trailing slash"),
        pytest.param(P + "healthz", id="longer name"),
        pytest.param("/health", id="outside prefix"),
        pytest.param(P + "metrics", id="admin path"),
        pytest.param("/", id="root"),
    ],
)
def test_other_paths_pass_through(path: str) -> None:
    result = call(Probe(hello_app, health=health_with("fail")), make_environ(path))
    assert (result.code, result.body) == (200, b"hello")


def test_custom_prefix() -> None:
    layer = Probe(hello_app, prefix="/_/")
    assert json.loads(call(layer, make_environ("/_/livez")).body) == {"status": "pass"}
    assert call(layer, make_environ(P + "livez")).body == b"hello"
    with pytest.raises(ConfigurationError, match="prefix"):
        Probe(hello_app, prefix="/no-slash")


def test_from_settings_uses_context_health_and_admin_token() -> None:
    settings = Settings(admin_token=TOKEN)
    stack = compose(hello_app, settings)
    layer = stack.layer("Probe")
    assert layer.health is stack.health and layer.token == TOKEN


@pytest.mark.parametrize(
    ("path", "code"),
    [
        pytest.param(P + "health", 200, id="health over http with internal host"),
        pytest.param(P + "livez", 200, id="livez over http with internal host"),
        pytest.param(P + "readyz", 200, id="readyz over http with internal host"),
        pytest.param("/", 400, id="app path with internal host refused"),
    ],
)
def test_probe_answers_before_host_check_and_redirect_in_default_order(
    path: str, code: int
) -> None:
    stack = compose(hello_app, Settings(enforce_https=True, allowed_hosts=("example.com",)))
    result = call(stack, make_environ(path, host="10.0.0.5:8000", remote="10.0.0.1"))
    assert result.code == code
    if code == 200:
        assert json.loads(result.body)["status"] in ("pass", "warn")


def test_default_order_still_redirects_app_paths_on_allowed_host() -> None:
    stack = compose(hello_app, Settings(enforce_https=True, allowed_hosts=("example.com",)))
    result = call(stack, make_environ("/x", host="example.com"))
    assert (result.code, result.header("Location")) == (301, "https://example.com/x")


def test_streaming_body_with_lazy_start_response_passes_through() -> None:
    bodies: list[Any] = []
    result = call(Probe(lazy_streaming_app(bodies)), make_environ("/"))
    assert (result.code, result.body) == (200, b"onetwothree")
    assert bodies[0].closed == 1


def test_exc_info_second_start_response_passes_through() -> None:
    result = call(Probe(exc_info_app), make_environ("/"))
    assert (result.code, result.body) == (500, b"error")


def test_a_failing_upstream_fails_health_but_keeps_every_instance_ready() -> None:
    # an upstream failure rate over its fail threshold is the same on every instance: readyz
    # answering 503 for it would take them all out of the load balancer at once
    from voyagr_wsgi.metrics.trackers import track_upstream

    stack = compose(hello_app, Settings(allowed_hosts=("example.com",)))
    registry = stack.layer("Metrics").registry
    call_ = track_upstream("payments", registry=registry)
    for _ in range(40):
        with call_:
            call_.fail()  # e.g. the upstream answered 503
    health = call(stack, make_environ(P + "health", remote="203.0.113.9"))
    ready = call(stack, make_environ(P + "readyz", remote="203.0.113.9"))
    assert (health.code, json.loads(health.body)) == (503, {"status": "fail"})
    assert (ready.code, json.loads(ready.body)) == (200, {"status": "warn"})
