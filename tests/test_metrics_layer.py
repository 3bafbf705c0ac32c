"""The Metrics layer: labels, timing until close(), exceptions, request ids, caps."""

from __future__ import annotations

import logging
import random
import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any
from wsgiref.util import FileWrapper

import pytest

from conftest import call, hello_app, make_environ
from voyagr_wsgi import ConfigurationError
from voyagr_wsgi.layers import Metrics
from voyagr_wsgi.metrics import reader
from voyagr_wsgi.metrics.registry import OVERFLOW, UNMATCHED, Registry
from voyagr_wsgi.metrics.snapshot import Series
from wsgi_apps import CloseCounter, exc_info_app, lazy_streaming_app


class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def series(registry: Registry) -> dict[tuple[str, str, int], Series]:
    return {(row.method, row.route, row.status): row for row in registry.snapshot().series}


def status_app(status: str, route: str | None = None) -> Callable[..., list[bytes]]:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        if route is not None:
            environ["voyagr.route"] = route
        start_response(status, [("Content-Type", "text/plain")])
        return [b"x"]

    return app


@pytest.mark.parametrize(
    ("environ", "app", "routes", "expected"),
    [
        pytest.param(make_environ("/"), status_app("200 OK"), (), ("GET", UNMATCHED, 200),
                     id="no route info: unmatched bucket"),
        pytest.param(make_environ("/users/42"), status_app("200 OK", "/users/<int:id>"), (),
                     ("GET", "/users/<int:id>", 200), id="route from environ (Flask rule)"),
        pytest.param(make_environ("/users/42", method="POST"), status_app("201 Created"),
                     ("/users/{id}",), ("POST", "/users/{id}", 201), id="configured template"),
        pytest.param(make_environ("/files/a/b/c"), status_app("200 OK"),
                     ("/users/{id}", "/files/{rest:path}"), ("GET", "/files/{rest:path}", 200),
                     id="path template spans segments"),
        pytest.param(make_environ("/users/42/x"), status_app("404 Not Found"), ("/users/{id}",),
                     ("GET", UNMATCHED, 404), id="template does not match deeper path"),
        pytest.param(make_environ("/", method="PROPFIND"), status_app("405 Method Not Allowed"),
                     (), ("_OTHER", UNMATCHED, 405), id="unknown method is _OTHER",
                     marks=pytest.mark.filterwarnings("ignore:Unknown REQUEST_METHOD")),
        pytest.param(make_environ("/"), status_app("503 Service Unavailable"), (),
                     ("GET", UNMATCHED, 503), id="5xx counted"),
    ],
)  # fmt: skip
def test_request_is_labelled_by_method_route_and_status(
    environ: dict[str, Any], app: Any, routes: tuple[str, ...], expected: tuple[str, str, int]
) -> None:
    registry = Registry()
    call(Metrics(app, registry=registry, routes=routes), environ)
    got = series(registry)
    assert list(got) == [expected]
    assert got[expected].requests == 1
    assert got[expected].errors == (1 if expected[2] >= 500 else 0)


def test_streamed_body_is_timed_until_close_and_ttfb_at_start_response() -> None:
    clock = FakeClock()
    registry = Registry()

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterator[bytes]:
        clock.t += 0.010  # the handler
        start_response("200 OK", [("Content-Type", "text/plain")])
        for chunk in (b"a", b"b", b"c"):
            clock.t += 0.2  # streaming
            yield chunk

    result = call(Metrics(app, registry=registry, now=clock), make_environ("/"))
    assert result.body == b"abc"
    (row,) = series(registry).values()
    assert row.sum_s == pytest.approx(0.61)  # duration includes the stream
    assert row.ttfb_sum_s == pytest.approx(0.01)  # time to first byte


@pytest.mark.parametrize(
    ("content_type", "recorded"),
    [
        pytest.param("text/event-stream", 0.01, id="SSE: its time to first byte"),
        pytest.param("Text/Event-Stream; charset=utf-8", 0.01, id="SSE, any case"),
        pytest.param("application/x-ndjson", 60.01, id="other stream: until close"),
    ],
)
def test_an_event_stream_is_timed_to_its_first_byte_not_its_lifetime(
    content_type: str, recorded: float, caplog: pytest.LogCaptureFixture
) -> None:
    # a server-sent-event stream lives for minutes by design: recorded as a latency it would
    # push p95 past every threshold (the response-time alert, health)
    clock = FakeClock()
    registry = Registry()

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterator[bytes]:
        clock.t += 0.010
        start_response("200 OK", [("content-type", content_type)])
        for _ in range(3):
            clock.t += 20.0
            yield b"data: tick\n\n"

    with caplog.at_level(logging.INFO, logger="voyagr_wsgi.access"):
        call(Metrics(app, registry=registry, now=clock), make_environ("/events"))
    (row,) = series(registry).values()
    assert (row.sum_s, row.ttfb_sum_s) == (pytest.approx(recorded), pytest.approx(0.01))
    window = reader.window(registry, 600)["latency_s"]
    assert window["max"] == pytest.approx(recorded)
    (line,) = [vars(r) for r in caplog.records if r.name == "voyagr_wsgi.access"]
    assert line["duration_ms"] == pytest.approx(60010.0)  # the log keeps the lifetime


def test_lazy_start_response_and_close_passed_exactly_once() -> None:
    bodies: list[CloseCounter] = []
    registry = Registry()
    result = call(Metrics(lazy_streaming_app(bodies), registry=registry), make_environ("/"))
    assert result.body == b"onetwothree"
    assert bodies[0].closed == 1
    assert list(series(registry)) == [("GET", UNMATCHED, 200)]


def test_second_start_response_with_exc_info_records_final_status() -> None:
    registry = Registry()
    result = call(Metrics(exc_info_app, registry=registry), make_environ("/"))
    assert result.code == 500
    assert list(series(registry)) == [("GET", UNMATCHED, 500)]


def test_in_flight_counts_a_request_until_its_body_is_closed() -> None:
    registry = Registry()
    layer = Metrics(hello_app, registry=registry)
    body = layer(make_environ("/"), lambda s, h, e=None: None)
    assert registry.in_flight == 1
    assert registry.total == 0
    list(body)
    body.close()  # type: ignore[attr-defined]
    assert registry.in_flight == 0
    assert registry.total == 1


def test_exception_from_app_is_recorded_then_reraised() -> None:
    registry = Registry()

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        environ["voyagr.route"] = "/boom"
        raise KeyError("secret-ish key " + "x" * 500)

    with pytest.raises(KeyError):
        call(Metrics(app, registry=registry), make_environ("/boom"))
    snap = registry.snapshot()
    assert snap.exceptions == {"KeyError": 1}
    assert snap.errors == 1
    (recent,) = snap.recent_errors
    assert recent["type"] == "KeyError" and recent["route"] == "/boom"
    assert len(recent["message"]) == 200
    assert recent["traceback"][-1].endswith("in app")
    assert list(series(registry)) == [("GET", "/boom", 500)]
    assert registry.in_flight == 0


def test_exception_after_start_response_but_before_any_body_counts_as_500() -> None:
    registry = Registry()

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        raise OSError("disk gone")

    with pytest.raises(OSError):
        call(Metrics(app, registry=registry), make_environ("/"))
    row = series(registry)[("GET", UNMATCHED, 500)]
    assert (row.requests, row.errors) == (1, 1)


def test_exception_while_iterating_body_is_recorded_reraised_and_closed() -> None:
    registry = Registry()
    closed: list[bool] = []

    class Body:
        def __iter__(self) -> Iterator[bytes]:
            yield b"first"
            raise ValueError("mid-stream")

        def close(self) -> None:
            closed.append(True)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Body:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return Body()

    with pytest.raises(ValueError, match="mid-stream"):
        call(Metrics(app, registry=registry), make_environ("/"))
    assert closed == [True]
    snap = registry.snapshot()
    assert snap.exceptions == {"ValueError": 1}
    assert snap.errors == 1
    assert series(registry)[("GET", UNMATCHED, 200)].errors == 1  # an error, status as sent


def test_file_wrapper_body_is_returned_as_is_and_still_counted(tmp_path: Any) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"0123456789")
    registry = Registry()

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return environ["wsgi.file_wrapper"](open(path, "rb"), 4)

    environ = make_environ("/file", **{"wsgi.file_wrapper": FileWrapper})
    body = Metrics(app, registry=registry)(environ, lambda s, h, e=None: None)
    assert isinstance(body, FileWrapper)  # the server can still use sendfile
    assert b"".join(body) == b"0123456789"
    assert registry.total == 0
    body.close()
    assert registry.total == 1
    assert body.filelike.closed


@pytest.mark.parametrize(
    "chunks",
    [
        pytest.param([b"hello"], id="one chunk"),
        pytest.param([b"a", b"", b"bc"], id="several chunks"),
        pytest.param([], id="empty"),
    ],
)
def test_list_body_keeps_its_chunks_and_length_and_is_counted_on_close(
    chunks: list[bytes],
) -> None:
    registry = Registry()

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return list(chunks)

    body: Any = Metrics(app, registry=registry)(make_environ("/"), lambda s, h, e=None: None)
    assert len(body) == len(chunks)  # a server may still set Content-Length from it
    assert list(body) == chunks
    assert registry.total == 0
    body.close()
    body.close()
    assert registry.total == 1


def test_admin_paths_are_not_counted() -> None:
    registry = Registry()
    layer = Metrics(hello_app, registry=registry)
    call(layer, make_environ("/api/production/metrics"))
    call(layer, make_environ("/api/production/health"))
    assert registry.total == 0
    call(layer, make_environ("/api/productionx"))
    assert registry.total == 1


@pytest.mark.parametrize(
    ("incoming", "kept"),
    [
        pytest.param("abc-123.DEF_9", True, id="well-formed kept"),
        pytest.param("x" * 128, True, id="128 chars kept"),
        pytest.param("x" * 129, False, id="too long replaced"),
        pytest.param("a b", False, id="space replaced"),
        pytest.param("id\r\nX-Evil: 1", False, id="header injection replaced"),
        pytest.param(None, False, id="absent: generated"),
    ],
)
def test_request_id_is_kept_when_well_formed_else_generated(
    incoming: str | None, kept: bool
) -> None:
    headers = {} if incoming is None else {"X-Request-ID": incoming}
    result = call(Metrics(hello_app, registry=Registry()), make_environ("/", headers=headers))
    rid = result.environ["voyagr.request_id"]
    assert result.all("X-Request-ID") == [rid]
    assert (rid == incoming) is kept
    if not kept:
        assert len(rid) > 17 and rid.replace("-", "").isalnum()


def test_generated_request_ids_are_unique() -> None:
    layer = Metrics(hello_app, registry=Registry())
    ids = {call(layer, make_environ("/")).environ["voyagr.request_id"] for _ in range(200)}
    assert len(ids) == 200


def test_request_id_can_be_turned_off() -> None:
    result = call(Metrics(hello_app, registry=Registry(), request_id=False), make_environ("/"))
    assert result.header("X-Request-ID") is None
    assert "voyagr.request_id" not in result.environ


def test_access_log_record_has_a_plain_message_and_its_fields_as_attributes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = status_app("201 Created", "/things/{id}")
    layer = Metrics(app, registry=Registry())
    with caplog.at_level(logging.INFO, logger="voyagr_wsgi.access"):
        call(layer, make_environ("/things/7", method="POST", remote="198.51.100.4",
                                 headers={"X-Request-ID": "req-1", "User-Agent": "curl/8",
                                          "Referer": "https://a.example/"}))  # fmt: skip
    (record,) = [r for r in caplog.records if r.name == "voyagr_wsgi.access"]
    fields = vars(record)
    assert {k: fields[k] for k in (
        "method", "path", "route", "status", "bytes", "user_agent", "referer", "client_ip",
        "request_id",
    )} == {
        "method": "POST", "path": "/things/7", "route": "/things/{id}", "status": 201,
        "bytes": 1, "user_agent": "curl/8", "referer": "https://a.example/",
        "client_ip": "198.51.100.4", "request_id": "req-1",
    }  # fmt: skip
    assert fields["duration_ms"] >= 0
    message = record.getMessage()
    assert message.startswith('198.51.100.4 "POST /things/7" 201 1B ') and message.endswith("ms")
    assert "{" not in message  # a JSON formatter gets fields, not JSON inside the message


def test_access_log_escapes_control_characters_in_the_path(
    caplog: pytest.LogCaptureFixture,
) -> None:
    layer = Metrics(hello_app, registry=Registry())
    with caplog.at_level(logging.INFO, logger="voyagr_wsgi.access"):
        call(layer, make_environ("/a\nFAKE 200"))
    (record,) = [r for r in caplog.records if r.name == "voyagr_wsgi.access"]
    assert "\n" not in record.getMessage() and "/a\\nFAKE" in record.getMessage()
    assert vars(record)["path"] == "/a\nFAKE 200"


def test_the_librarys_own_endpoints_are_logged_but_not_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    registry = Registry()
    layer = Metrics(hello_app, registry=registry)
    with caplog.at_level(logging.INFO, logger="voyagr_wsgi.access"):
        call(layer, make_environ("/api/production/metrics"))
    (record,) = [r for r in caplog.records if r.name == "voyagr_wsgi.access"]
    assert vars(record)["path"] == "/api/production/metrics" and vars(record)["status"] == 200
    assert registry.total == 0


def test_access_log_disabled_writes_nothing(caplog: pytest.LogCaptureFixture) -> None:
    layer = Metrics(hello_app, registry=Registry(), access_log=False)
    with caplog.at_level(logging.INFO, logger="voyagr_wsgi.access"):
        call(layer, make_environ("/"))
    assert not [r for r in caplog.records if r.name == "voyagr_wsgi.access"]


def test_route_cap_sends_new_routes_to_overflow_and_memory_stays_flat() -> None:
    registry = Registry(max_routes=50)
    rng = random.Random(7)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        environ["voyagr.route"] = environ["PATH_INFO"]  # worst case: the app labels raw paths
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"x"]

    layer = Metrics(app, registry=registry, request_id=False, access_log=False)
    environ = make_environ("/")

    def sr(status: str, headers: Any, exc_info: Any = None) -> None:
        return None

    def hit(n: int) -> None:
        for _ in range(n):
            environ["PATH_INFO"] = f"/{rng.getrandbits(64):x}"
            environ.pop("voyagr.route", None)
            body = layer(environ, sr)
            body.close()  # type: ignore[attr-defined]

    hit(1_000)  # reach the cap and warm every structure
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    hit(100_000)
    grown = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    routes = {row.route for row in registry.snapshot().series}
    assert len(routes) == 51 and OVERFLOW in routes
    assert registry.total == 101_000
    assert registry.snapshot().overflow == 101_000 - 50
    assert grown < 512 * 1024, f"grew {grown} bytes over 100k random paths"


def test_bad_route_template_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="must start with '/'"):
        Metrics(hello_app, routes=["users/{id}"])


def test_unbound_layer_is_bound_by_compose_with_same_registry() -> None:
    from voyagr_wsgi import compose

    registry = Registry()
    stack = compose(hello_app, Metrics(registry=registry))
    call(stack, make_environ("/"))
    assert registry.total == 1


def test_concurrent_requests_from_many_threads_are_all_counted() -> None:
    import threading

    registry = Registry()
    layer = Metrics(status_app("200 OK", "/t"), registry=registry, access_log=False)

    def sr(status: str, headers: Any, exc_info: Any = None) -> None:
        return None

    def worker() -> None:
        for _ in range(5_000):
            body = layer(make_environ("/t"), sr)
            list(body)
            body.close()  # type: ignore[attr-defined]

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    snap = registry.snapshot()
    assert snap.total == 40_000 and snap.in_flight == 0
    assert sum(slot.requests.total for slot in snap.slots.values()) == 40_000


def test_a_body_closed_before_iteration_is_accounted_without_headers() -> None:
    # a lazy app has not called start_response when a server (client gone) closes the body
    registry = Registry()

    def lazy(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "text/event-stream")])
        yield b"data: x\n\n"

    body = Metrics(lazy, registry=registry)(make_environ("/"), lambda *a: None)
    body.close()  # type: ignore[attr-defined]
    assert list(series(registry)) == [("GET", UNMATCHED, 500)]  # nothing was sent
