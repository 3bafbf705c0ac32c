"""Prometheus families for operators: rate-limit decisions, rejections, backups, start time,
gzip on the scrape (issue 13 point 6)."""

from __future__ import annotations

import gzip
import itertools
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import call, free_port, make_environ
from test_backup_support import backup_settings, make_db
from test_prometheus import sample, scrape
from voyagr_wsgi import Settings, Stack, compose
from voyagr_wsgi.counters import Counters, count_value
from voyagr_wsgi.errors import BackupError
from voyagr_wsgi.layers import CrossOriginProtection, HostCheck, HTTPSRedirect, RateLimit
from voyagr_wsgi.metrics.prometheus import accepts_gzip, render
from voyagr_wsgi.metrics.registry import Registry
from voyagr_wsgi.ratelimit.redis_store import RedisStore
from voyagr_wsgi.secret import Secret


def hello(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hi"]


# -- the counters ------------------------------------------------------------------------------


def test_reading_a_count_does_not_advance_it() -> None:
    counter = itertools.count()
    tick = counter.__next__
    for _ in range(3):
        tick()
    assert count_value(counter) == 3
    assert count_value(counter) == 3


def test_counters_reset_keeps_the_ticks_the_layers_hold() -> None:
    counters = Counters()
    tick = counters.allowed_counter("default")
    tick(), tick()
    counters.decision("default", "denied")
    assert counters.get("ratelimit", "default", "allowed") == 2
    counters.reset()  # what a forked worker does
    assert counters.figures() == {"ratelimit\x1fdefault\x1fallowed": 0}
    tick()
    assert counters.get("ratelimit", "default", "allowed") == 1


# -- layers used alone count into their own object ---------------------------------------------


def test_ratelimit_alone_counts_allowed_and_denied_per_policy() -> None:
    layer = RateLimit(hello, "2/60s")
    codes = [call(layer, make_environ("/")).code for _ in range(3)]
    assert codes == [200, 200, 429]
    assert layer.counters.get("ratelimit", "default", "allowed") == 2
    assert layer.counters.get("ratelimit", "default", "denied") == 1
    assert layer.counters.get("rejection", "ratelimit", "quota-exceeded") == 1


def test_ratelimit_explain_is_no_decision() -> None:
    layer = RateLimit(hello, "2/60s", rules=[])
    before = layer.counters.figures()
    assert layer.explain(make_environ("/"))["outcome"] == "passes"
    assert layer.counters.figures() == before


def test_ratelimit_stacked_spec_counts_once_under_the_first_policy() -> None:
    layer = RateLimit(hello, "1/1s;100/1h")
    assert [call(layer, make_environ("/")).code for _ in range(2)] == [200, 429]
    figures = layer.counters.figures()
    assert figures["ratelimit\x1fdefault\x1fallowed"] == 1
    assert figures["ratelimit\x1fdefault\x1fdenied"] == 1


def test_ratelimit_store_error_counts_as_error() -> None:
    store = RedisStore(f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    layer = RateLimit(hello, "5/60s", store=store, failure="closed")
    assert call(layer, make_environ("/")).code == 503
    assert layer.counters.get("ratelimit", "default", "error") == 1
    assert layer.counters.get("rejection", "ratelimit", "store-unavailable") == 1


def test_host_check_counts_refusals_by_reason_and_explain_counts_nothing() -> None:
    layer = HostCheck(hello, allowed_hosts=["example.com"])
    assert call(layer, make_environ("/", host="evil.test")).code == 400
    assert call(layer, make_environ("/", host="exa mple.com")).code == 400
    assert call(layer, make_environ("/")).code == 200
    layer.explain(make_environ("/", host="evil.test"))
    assert layer.counters.get("rejection", "host_check", "host-not-allowed") == 1
    assert layer.counters.get("rejection", "host_check", "malformed-host") == 1


def test_cross_origin_counts_refusals_by_reason_slug() -> None:
    layer = CrossOriginProtection(hello)
    env = make_environ("/", method="POST", headers={"Sec-Fetch-Site": "cross-site"})
    assert call(layer, env).code == 403
    layer.explain(make_environ("/", method="POST", headers={"Sec-Fetch-Site": "cross-site"}))
    assert layer.counters.figures() == {"rejection\x1fcross_origin\x1fcross-site": 1}


def test_https_redirect_counts_a_rejected_insecure_request_not_a_redirect() -> None:
    layer = HTTPSRedirect(hello, unsafe="reject")
    assert call(layer, make_environ("/")).code == 301
    assert call(layer, make_environ("/", method="POST")).code == 403
    layer.explain(make_environ("/", method="POST"))
    assert layer.counters.figures() == {"rejection\x1fhttps_redirect\x1fhttps-required": 1}


# -- a composed stack exposes them --------------------------------------------------------------


@pytest.fixture
def full_stack(tmp_path: Path) -> Stack:
    make_db(tmp_path / "app.db")
    settings = Settings(
        state_dir=str(tmp_path / "state"),
        allowed_hosts=("example.com",),
        admin_token=Secret("s3cret-token-for-tests-0123456789"),
        backups=backup_settings(tmp_path),
    )
    return compose(hello, settings)


def admin_scrape(stack: Stack, **headers: str) -> Any:
    env = make_environ(
        "/api/production/prometheus",
        headers={"Authorization": "Bearer s3cret-token-for-tests-0123456789", **headers},
    )
    result = call(stack, env)
    assert result.code == 200
    return result


def test_a_stack_exposes_decisions_rejections_and_backups(full_stack: Stack) -> None:
    stack = full_stack
    for _ in range(3):
        assert call(stack, make_environ("/")).code == 200
    assert call(stack, make_environ("/", host="evil.test")).code == 400
    env = make_environ("/", method="POST", headers={"Sec-Fetch-Site": "cross-site"})
    assert call(stack, env).code == 403
    assert call(stack, make_environ("/api/production/prometheus")).code == 401
    manifest = stack.components["backups"].create()
    text = admin_scrape(stack).body.decode()

    assert sample(text, "voyagr_ratelimit_decisions_total", policy="default",
                  outcome="allowed") >= 3  # fmt: skip
    assert sample(text, "voyagr_rejections_total", layer="host_check",
                  reason="host-not-allowed") == 1  # fmt: skip
    assert sample(text, "voyagr_rejections_total", layer="cross_origin", reason="cross-site") == 1
    assert sample(text, "voyagr_rejections_total", layer="admin", reason="unauthorized") == 1
    assert "# TYPE voyagr_rejections_total counter" in text

    backup_set = {"backup_set": stack.components["backups"].set_name}
    assert sample(text, "voyagr_backup_last_success_timestamp_seconds", **backup_set) == (
        pytest.approx(manifest.created_ts, abs=1e-3)
    )
    assert sample(text, "voyagr_backup_size_bytes", **backup_set) == manifest.gz_bytes
    assert 0 <= sample(text, "voyagr_backup_duration_seconds", **backup_set) < 60
    assert sample(text, "voyagr_backup_failing", **backup_set) == 0
    assert sample(text, "voyagr_backup_interval_seconds", **backup_set) == 86400
    assert sample(text, "voyagr_backup_successes_total", **backup_set) == 1


def test_a_failed_backup_shows_as_failing(tmp_path: Path) -> None:
    settings = Settings(state_dir=str(tmp_path / "state"), backups=backup_settings(tmp_path))
    stack = compose(hello, settings)  # DATABASE_PATH names a file that does not exist
    with pytest.raises(BackupError):
        stack.components["backups"].create()
    text = scrape(stack)
    backup_set = {"backup_set": stack.components["backups"].set_name}
    assert sample(text, "voyagr_backup_failing", **backup_set) == 1
    assert sample(text, "voyagr_backup_failures_total", **backup_set) == 1
    assert sample(text, "voyagr_backup_last_failure_timestamp_seconds", **backup_set) > 0
    assert "voyagr_backup_last_success_timestamp_seconds" not in text  # none so far


def test_start_time_replaces_uptime_and_is_the_oldest_workers_start() -> None:
    registry = Registry(now=lambda: 1767322800.25)
    text = render(registry.snapshot(), 1767322900.0)
    assert "voyagr_uptime_seconds" not in text
    assert sample(text, "voyagr_process_start_time_seconds") == 1767322800.25
    assert "# TYPE voyagr_process_start_time_seconds gauge" in text


def test_counts_are_merged_across_worker_snapshots() -> None:
    from voyagr_wsgi.metrics.merge import merge
    from voyagr_wsgi.metrics.snapshot import from_json, to_json

    snaps = []
    for allowed in (2, 5):
        registry = Registry()
        registry.counters = Counters()
        tick = registry.counters.allowed_counter("default")
        for _ in range(allowed):
            tick()
        registry.counters.rejection("host_check", "host-not-allowed")
        snaps.append(from_json(to_json(registry.snapshot())))  # as the worker files hold them
    text = render(merge(snaps), time.time())
    assert sample(text, "voyagr_ratelimit_decisions_total", outcome="allowed") == 7
    assert sample(text, "voyagr_rejections_total", layer="host_check") == 2


# -- gzip ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [("gzip", True), ("gzip, deflate", True), ("deflate, gzip;q=0.5", True), ("*", True),
     ("identity", False), ("gzip;q=0", False), ("gzip;q=0.0, br", False), ("", False),
     ("GZIP", True), ("x-gzip", True), ("gzip;q=bad", False)],
)  # fmt: skip
def test_accept_encoding_takes_gzip(value: str, expected: bool) -> None:
    assert accepts_gzip(value) is expected


def test_the_scrape_is_gzipped_when_asked(full_stack: Stack) -> None:
    call(full_stack, make_environ("/"))
    plain = admin_scrape(full_stack)
    assert plain.header("Content-Encoding") is None
    assert plain.header("Vary") == "Accept-Encoding"
    zipped = admin_scrape(full_stack, **{"Accept-Encoding": "gzip"})
    assert zipped.header("Content-Encoding") == "gzip"
    assert zipped.header("Vary") == "Accept-Encoding"
    assert int(zipped.header("Content-Length") or 0) == len(zipped.body)
    text = gzip.decompress(zipped.body).decode()
    assert "voyagr_ratelimit_decisions_total" in text
    assert len(zipped.body) < len(plain.body) / 3
    refused = admin_scrape(full_stack, **{"Accept-Encoding": "gzip;q=0"})
    assert refused.header("Content-Encoding") is None


# -- under gunicorn: every worker's counts, the recycled ones' included ----------------------


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_gunicorn_workers_counts_merge_in_the_scrape(tmp_path: Path) -> None:
    from gunicorn_apps.harness import get, gunicorn, wait_for

    env = {
        "VOYAGR_STATE_DIR": str(tmp_path / "state"),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "RATE_LIMIT_EXEMPT_PATHS": "/api/production/*",  # the scrapes are no decisions
    }
    with gunicorn(
        "stack_app:application",
        port=free_port(),
        env=env,
        log_dir=str(tmp_path),
        args=("--max-requests", "8", "--max-requests-jitter", "0"),  # workers recycle
    ) as server:
        pids = {int(get(server.port).body) for _ in range(40)}
        refused = [get(server.port, headers={"Host": "evil.test"}).status for _ in range(6)]
        assert refused == [400] * 6
        assert len(pids) > 3, f"workers were recycled: {len(pids)} pids served"

        def scraped() -> str:
            answer = get(server.port, "/api/production/prometheus")
            assert answer.status == 200, answer.body
            return answer.body.decode()

        def settled() -> bool:
            text = scraped()
            allowed = sample(text, "voyagr_ratelimit_decisions_total", outcome="allowed")
            return allowed == 40 and sample(text, "voyagr_rejections_total") == 6

        wait_for(settled, timeout=5.0, what="40 decisions and 6 rejections merged")
        text = scraped()
        started = sample(text, "voyagr_process_start_time_seconds")
        assert time.time() - 60 < started <= time.time()


def test_backup_failures_and_successes_are_counted(tmp_path: Path) -> None:
    from voyagr_wsgi.backups.status import StatusFile

    status = StatusFile(str(tmp_path / "status.json"), clock=lambda: 1000.0)

    class Made:
        created_ts, id = 999.0, "20260101T000000Z-00000000"

    status.record(error="disk full")
    status.record(success=Made())
    status.record(success=Made())
    doc = status.read()
    assert (doc.successes_total, doc.failures_total) == (2, 1)
    assert StatusFile(str(tmp_path / "status.json")).read().as_dict()["failures_total"] == 1
