"""Prometheus exposition: text format 0.0.4, OpenTelemetry-aligned names.

``GET /api/production/prometheus`` (admin-protected, merged across workers) serves
:func:`render`; ``Content-Type: text/plain; version=0.0.4; charset=utf-8``. Standard HTTP
metrics keep the semantic-convention names (``http.server.request.duration`` becomes
``http_server_request_duration_seconds``; attributes become labels), voyagr's own take the
``voyagr_`` prefix:

- ``http_server_request_duration_seconds`` histogram {http_request_method, http_route,
  http_response_status_code}, OTel's advisory buckets plus 0.5, 1 and 2.5 ms;
  ``http_server_active_requests``;
- ``voyagr_http_time_to_first_byte_seconds`` summary (sum, count) {http_request_method,
  http_route};
- ``voyagr_exceptions_total`` {error_type, http_route};
- ``voyagr_cache_requests_total`` {cache, result=hit|miss}, ``voyagr_cache_evictions_total``,
  ``voyagr_cache_entries``, ``voyagr_cache_memory_bytes`` {cache, estimate=true|false}
  (``true``: entries x a sampled entry's size, see :mod:`.sizing`);
- ``voyagr_upstream_request_duration_seconds`` histogram {upstream},
  ``voyagr_upstream_requests_total`` {upstream, outcome=success|error|timeout};
- ``db_client_operation_duration_seconds`` histogram {db_system_name},
  ``voyagr_db_slow_queries_total`` {db_system_name};
- ``voyagr_ratelimit_decisions_total`` {policy, outcome=allowed|denied|error}: the RateLimit
  layer's decisions (a request it lets through unasked, on an exempt path or from an
  allow-listed client, is no decision);
- ``voyagr_rejections_total`` {layer=host_check|cross_origin|https_redirect|ratelimit|admin,
  reason}: requests a layer refused itself, ``reason`` a fixed slug per layer
  (``host-not-allowed``, ``malformed-host``, ``cross-site``, ``origin-mismatch``,
  ``https-required``, ``quota-exceeded``, ``store-unavailable``, ``unauthorized``,
  ``not-loopback``...; see :mod:`voyagr_wsgi.counters`);
- ``voyagr_process_start_time_seconds``: when the oldest worker whose figures are merged
  started (Unix seconds; the merged counters, dead workers' included, start from zero at that
  moment, so a change of it marks a reset, as ``process_start_time_seconds`` does for one
  process; uptime is ``time() - voyagr_process_start_time_seconds``);
- ``voyagr_workers``, ``voyagr_metric_label_overflow_total``;
- ``voyagr_build_info`` {version, python_version, python_implementation}, always 1 (the
  usual way to see in a dashboard which release each instance runs).

Areas add their own families after these (``context.metrics_sections``): the alert
deliveries (:mod:`voyagr_wsgi.alerts.exposition`), the backups
(:mod:`voyagr_wsgi.backups.exposition`: ``voyagr_backup_last_success_timestamp_seconds``,
``voyagr_backup_last_failure_timestamp_seconds``, ``voyagr_backup_failing``,
``voyagr_backup_duration_seconds``, ``voyagr_backup_size_bytes``,
``voyagr_backup_interval_seconds``, ``voyagr_backup_pending_uploads`` {backup_set}).

Compression: a scraper that sends ``Accept-Encoding: gzip`` (Prometheus does) gets the body
gzipped (``Content-Encoding: gzip``); every answer says ``Vary: Accept-Encoding``
(:func:`response`).

For users who already run ``prometheus_client``, :class:`VoyagrCollector` exposes the same
families through their registry::

    from prometheus_client import REGISTRY
    from voyagr_wsgi.metrics.prometheus import VoyagrCollector
    REGISTRY.register(VoyagrCollector(registry))
"""

from __future__ import annotations

import gzip
import platform
from collections.abc import Iterator, Sequence
from typing import Any

from .._version import __version__
from .._wsgi import Headers
from .families import DB_BOUNDS, HTTP_BOUNDS
from .reader import merged
from .registry import Registry
from .snapshot import Snapshot

__all__ = ["CONTENT_TYPE", "VoyagrCollector", "accepts_gzip", "families", "render", "response"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_SEP = "\x1f"  # the key separator of voyagr_wsgi.counters' figures

# a family: (name, type, help, samples); a sample: (suffix, labels, value)
Sample = tuple[str, dict[str, str], float]
Family = tuple[str, str, str, list[Sample]]


def _hist(
    labels: dict[str, str], buckets: Sequence[float], bounds: Sequence[float], total: float
) -> list[Sample]:
    out: list[Sample] = []
    cumulative = 0.0
    for bound, count in zip([*bounds, float("inf")], buckets, strict=False):
        cumulative += count
        le = "+Inf" if bound == float("inf") else repr(float(bound))
        out.append(("_bucket", {**labels, "le": le}, cumulative))
    out.append(("_sum", labels, total))
    out.append(("_count", labels, cumulative))
    return out


def families(snap: Snapshot, now: float) -> list[Family]:
    """Every metric family of a (merged) snapshot."""
    http: list[Sample] = []
    ttfb: dict[tuple[str, str], list[float]] = {}  # (method, route) -> [sum_s, count]
    for row in snap.series:
        labels = {
            "http_request_method": row.method,
            "http_route": row.route,
            "http_response_status_code": str(row.status),
        }
        http += _hist(labels, row.buckets, HTTP_BOUNDS, row.sum_s)
        t = ttfb.setdefault((row.method, row.route), [0.0, 0])
        t[0] += row.ttfb_sum_s
        t[1] += row.requests
    first_byte: list[Sample] = []
    for (method, route), (total, count) in ttfb.items():
        labels = {"http_request_method": method, "http_route": route}
        first_byte += [("_sum", labels, total), ("_count", labels, count)]
    exceptions: list[Sample] = [
        ("", {"error_type": e.type, "http_route": e.route}, e.raised) for e in snap.exc_routes
    ]
    cache_req: list[Sample] = []
    cache_ev: list[Sample] = []
    cache_n: list[Sample] = []
    cache_mem: list[Sample] = []
    for name, c in sorted(snap.caches.items()):
        cache_req += [("", {"cache": name, "result": "hit"}, c.hits),
                      ("", {"cache": name, "result": "miss"}, c.misses)]  # fmt: skip
        cache_ev.append(("", {"cache": name}, c.evictions))
        cache_n.append(("", {"cache": name}, c.entries))
        if c.memory_bytes is not None:
            estimate = "true" if c.memory_estimated else "false"
            cache_mem.append(("", {"cache": name, "estimate": estimate}, c.memory_bytes))
    up_hist: list[Sample] = []
    up_req: list[Sample] = []
    for name, u in sorted(snap.upstreams.items()):
        up_hist += _hist({"upstream": name}, u.buckets, HTTP_BOUNDS, u.sum_s)
        for outcome, n in (("success", u.success), ("error", u.errors), ("timeout", u.timeouts)):
            up_req.append(("", {"upstream": name, "outcome": outcome}, n))
    db_hist: list[Sample] = []
    db_slow: list[Sample] = []
    for system, q in sorted(snap.db.items()):
        db_hist += _hist({"db_system_name": system}, q.buckets, DB_BOUNDS, q.sum_s)
        db_slow.append(("", {"db_system_name": system}, q.slow))
    decisions: list[Sample] = []
    rejections: list[Sample] = []
    for key, n in sorted(snap.counts.items()):
        kind, first, second = [*key.split(_SEP), "", ""][:3]
        if kind == "ratelimit":
            decisions.append(("", {"policy": first, "outcome": second}, n))
        elif kind == "rejection":
            rejections.append(("", {"layer": first, "reason": second}, n))
    return [
        ("http_server_request_duration_seconds", "histogram",
         "Duration of HTTP server requests, until the body is closed.", http),
        ("http_server_active_requests", "gauge", "Number of active HTTP server requests.",
         [("", {}, snap.in_flight)]),
        ("voyagr_http_time_to_first_byte_seconds", "summary",
         "Time until the application started the response.", first_byte),
        ("voyagr_exceptions_total", "counter", "Exceptions raised by the application.",
         exceptions),
        ("voyagr_cache_requests_total", "counter", "Cache lookups by result.", cache_req),
        ("voyagr_cache_evictions_total", "counter", "Entries evicted from caches.", cache_ev),
        ("voyagr_cache_entries", "gauge", "Entries held by caches.", cache_n),
        ("voyagr_cache_memory_bytes", "gauge",
         "Memory held by caches (estimate=true: entries x a sampled entry's size).", cache_mem),
        ("voyagr_upstream_request_duration_seconds", "histogram",
         "Duration of calls to upstream services.", up_hist),
        ("voyagr_upstream_requests_total", "counter", "Upstream calls by outcome.", up_req),
        ("db_client_operation_duration_seconds", "histogram",
         "Duration of database statements.", db_hist),
        ("voyagr_db_slow_queries_total", "counter",
         "Statements over the slow-query threshold.", db_slow),
        ("voyagr_ratelimit_decisions_total", "counter",
         "Rate-limit decisions by policy and outcome.", decisions),
        ("voyagr_rejections_total", "counter",
         "Requests a layer refused itself, by layer and reason.", rejections),
        ("voyagr_process_start_time_seconds", "gauge",
         "Start time of the oldest worker merged, in Unix seconds.",
         [("", {}, round(snap.started_at, 3))]),
        ("voyagr_workers", "gauge", "Worker processes whose figures are merged.",
         [("", {}, snap.workers)]),
        ("voyagr_metric_label_overflow_total", "counter",
         "Requests labelled __other__ because a label cap was reached.",
         [("", {}, snap.overflow)]),
        ("voyagr_build_info", "gauge", "Always 1; the versions serving, as labels.",
         [("", _BUILD, 1)]),
    ]  # fmt: skip


_BUILD = {
    "version": __version__,
    "python_version": platform.python_version(),
    "python_implementation": platform.python_implementation(),
}


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    if isinstance(value, int) or float(value).is_integer():
        return str(int(value))
    return repr(float(value))


def render(snap: Snapshot, now: float) -> str:
    """The text exposition format 0.0.4."""
    lines: list[str] = []
    for name, kind, text, samples in families(snap, now):
        lines.append(f"# HELP {name} {text}")
        lines.append(f"# TYPE {name} {kind}")
        for suffix, labels, value in samples:
            body = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
            lines.append(f"{name}{suffix}{{{body}}} {_number(value)}" if body else
                         f"{name}{suffix} {_number(value)}")  # fmt: skip
    return "\n".join(lines) + "\n"


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an ``Accept-Encoding`` value (RFC 9110 §12.5.3) takes gzip: ``gzip``,
    ``x-gzip`` or ``*`` with a weight above 0."""
    for item in accept_encoding.split(","):
        coding, _, params = item.partition(";")
        if coding.strip().lower() not in ("gzip", "x-gzip", "*"):
            continue
        weight = 1.0
        for param in params.split(";"):
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        if weight > 0:
            return True
    return False


def response(body: bytes, accept_encoding: str = "") -> tuple[str, Headers, list[bytes]]:
    """The scrape answer for ``body``: gzipped when ``accept_encoding`` takes gzip."""
    headers = [("Content-Type", CONTENT_TYPE), ("Cache-Control", "no-store"),
               ("Vary", "Accept-Encoding")]  # fmt: skip
    if accept_encoding and accepts_gzip(accept_encoding):
        body = gzip.compress(body, compresslevel=6, mtime=0)
        headers.append(("Content-Encoding", "gzip"))
    headers.append(("Content-Length", str(len(body))))
    return "200 OK", headers, [body]


class VoyagrCollector:
    """A ``prometheus_client`` custom collector serving the registry's merged figures."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def describe(self) -> list[Any]:
        return []  # no up-front description: families depend on what was recorded

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import Metric

        reg = self.registry
        for name, kind, text, samples in families(merged(reg), reg.now()):
            base = name[: -len("_total")] if kind == "counter" else name
            metric = Metric(base, text, kind)
            for suffix, labels, value in samples:
                metric.add_sample(name + suffix, labels, value)
            yield metric
