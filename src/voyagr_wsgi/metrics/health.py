"""The metrics health source: figures of the last window turned into pass / warn / fail.

``compose`` adds a :class:`HealthSource` to ``context.health``; the Probe layer serves the
result (minimal ``{"status": ...}`` to anyone, the full ``application/health+json`` to
admins). Each check is one :class:`~voyagr_wsgi.health.Check`, named the way
draft-inadarei-api-health-check-06 suggests:

============================  ==========================================================
``http:responseTime``         p95 latency over the window vs ``HEALTH_RESPONSE_TIME_*``
``http:errorRate``            (5xx + exceptions) / requests vs ``HEALTH_ERROR_RATE_*``
``cache:hitRate``             per cache (``componentId``), below ``HEALTH_CACHE_HIT_RATE_*``
``upstream:failureRate``      per upstream, (errors + timeouts) / calls
``database:slowQueries``      slow statements in the window vs ``HEALTH_SLOW_QUERIES_*``
``uptime``                    seconds since the oldest worker started (always pass)
============================  ==========================================================

Rates are judged only once the window holds ``HEALTH_MIN_REQUESTS`` events, so one failed
request out of two does not fail a fresh instance. Figures are merged across workers; the
p95 is exact while the window fits the workers' rings of recent durations and otherwise
read from the buckets without ever leaving the observed range (:mod:`.views`).
"""

from __future__ import annotations

from typing import Any

from ..health import Check, Status
from .config import HealthThresholds
from .reader import merged
from .registry import Registry
from .views import window

__all__ = ["HealthSource", "judge_high", "judge_low"]


def judge_high(value: float | None, warn: float, fail: float) -> Status:
    """``fail`` at or above ``fail``, ``warn`` at or above ``warn``."""
    if value is None:
        return "pass"
    return "fail" if value >= fail else "warn" if value >= warn else "pass"


def judge_low(value: float | None, warn: float, fail: float) -> Status:
    """``fail`` below ``fail``, ``warn`` below ``warn`` (for hit rates)."""
    if value is None:
        return "pass"
    return "fail" if value < fail else "warn" if value < warn else "pass"


class HealthSource:
    """Callable health source over a registry's merged figures."""

    def __init__(self, registry: Registry, thresholds: HealthThresholds | None = None) -> None:
        self.registry = registry
        self.t = thresholds or HealthThresholds()

    def __call__(self) -> list[Check]:
        reg = self.registry
        snap = merged(reg)
        now = reg.now()
        return self.checks(window(snap, self.t.window_s, now, reg.slot_s), now - snap.started_at)

    def checks(self, w: dict[str, Any], uptime_s: float) -> list[Check]:
        t = self.t
        enough = w["requests"]["total"] >= t.min_requests
        p95 = w["latency_s"]["p95"] if enough else None
        rate = w["requests"]["error_rate"] if enough else None
        out = [
            _check("http:responseTime", p95, "s", judge_high(p95, t.response_time_warn_s,
                   t.response_time_fail_s), "p95 response time {v:.3f} s"),
            _check("http:errorRate", rate, "ratio", judge_high(rate, t.error_rate_warn,
                   t.error_rate_fail), "error rate {v:.1%}"),
        ]  # fmt: skip
        for name, c in sorted(w["caches"].items()):
            hit = c["hit_rate"] if c["hits"] + c["misses"] >= t.min_requests else None
            status = judge_low(hit, t.cache_hit_rate_warn, t.cache_hit_rate_fail)
            out.append(_check("cache:hitRate", hit, "ratio", status,
                              f"cache {name} hit rate {{v:.1%}}", name))  # fmt: skip
        for name, u in sorted(w["upstreams"].items()):
            fail = u["failure_rate"] if u["calls"] >= t.min_requests else None
            status = judge_high(fail, t.upstream_failure_rate_warn, t.upstream_failure_rate_fail)
            out.append(_check("upstream:failureRate", fail, "ratio", status,
                              f"upstream {name} failure rate {{v:.1%}}", name))  # fmt: skip
        slow = w["slow_queries"]
        status = judge_high(slow, t.slow_queries_warn, t.slow_queries_fail)
        out.append(
            Check("database:slowQueries", status, slow, f"count/{int(t.window_s)}s",
                  f"{slow} slow queries in {int(t.window_s)} s", component_type="datastore")
        )  # fmt: skip
        out.append(Check("uptime", "pass", round(uptime_s, 1), "s", component_type="system"))
        return out


def _check(
    name: str,
    value: float | None,
    unit: str,
    status: Status,
    text: str,
    component: str | None = None,
) -> Check:
    output = text.format(v=value) if value is not None else None
    shown = None if value is None else round(value, 6)
    return Check(name, status, shown, unit, output, component_id=component)
