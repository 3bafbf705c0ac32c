"""Threshold rules: pure functions from a metrics window to the alerts it breaches.

A :class:`Rule` is a name, a ``check(inputs) -> Iterable[Alert]`` and an optional ``for_s``
(the condition must hold that long before it fires, as in Prometheus' ``for:``). Rules know
nothing of threads, channels or WSGI; the evaluator feeds them an :class:`Inputs` built from
``metrics.window_snapshot(window_s)`` (merged across workers) and the backup status.

Built-in rules (all from :func:`default_rules`)::

    response_time        latency statistic (p95 by default) > threshold seconds
    error_rate           errors / requests > threshold            needs min_requests
    cache_hit_rate       per cache, hits / lookups < threshold    needs min_requests lookups
    upstream_failure     per upstream, failures / calls > threshold  needs min_requests calls
    slow_queries         slow queries in the window >= threshold
    backup               the last backup failed, or none succeeded within max age

A built-in rule returns, per condition it watches, an :class:`~.model.Alert` whose ``state``
says what it saw: ``firing`` (breached), ``ok`` (measured within the threshold, with today's
figure for a resolved notice: "Error rate 0.4% ...") or ``unknown`` (too little traffic to
tell: ``ALERT_MIN_REQUESTS``), which keeps an alert's state instead of resolving it, since
every remaining request may still be failing. A custom rule returns just its breaches (a
missing condition reads as clear)::

    def queue_depth(inputs: Inputs) -> list[Alert]:
        depth = my_queue.qsize()
        return [Alert("queue_depth", f"{depth} jobs waiting", value=depth)] if depth > 100 else []

    alerts.add_rule(Rule("queue_depth", queue_depth, for_s=60))
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .config import AlertSettings
from .model import Alert, AlertKey

__all__ = [
    "ForTracker",
    "Inputs",
    "Rule",
    "backup_rule",
    "cache_hit_rate_rule",
    "default_rules",
    "error_rate_rule",
    "response_time_rule",
    "slow_query_rule",
    "upstream_failure_rule",
]


@dataclass(frozen=True, slots=True)
class Inputs:
    """What one evaluation sees: the merged window, the backup status, the wall clock."""

    snapshot: Mapping[str, Any]
    backups: Mapping[str, Any] | None = None
    now_wall: float = 0.0

    @property
    def window_s(self) -> float:
        return float(self.snapshot.get("window_s", 0.0))


@dataclass(frozen=True, slots=True)
class Rule:
    """``check`` returns the alerts breached now; ``for_s`` delays firing."""

    name: str
    check: Callable[[Inputs], Iterable[Alert]]
    for_s: float = 0.0


def _pct(x: float) -> str:
    return f"{x * 100:.1f}%"


def _unknown(alert_type: str, scope: str = "") -> Alert:
    return Alert(alert_type, "too little traffic to tell", scope=scope, state="unknown")


def response_time_rule(
    threshold_s: float, *, statistic: str = "p95", min_requests: int = 1, for_s: float = 0.0
) -> Rule:
    def check(inputs: Inputs) -> list[Alert]:
        total = int(inputs.snapshot.get("requests", {}).get("total", 0))
        value = inputs.snapshot.get("latency_s", {}).get(statistic)
        if value is None or total < min_requests:
            return [_unknown("slow_responses")]
        return [
            Alert(
                "slow_responses",
                f"Response time {statistic} {value:.3g}s over {inputs.window_s:g}s "
                f"(threshold {threshold_s:g}s)",
                severity="warning",
                value=float(value),
                threshold=threshold_s,
                labels=(("statistic", statistic),),
                state="firing" if value > threshold_s else "ok",
            )
        ]

    return Rule("response_time", check, for_s)


def error_rate_rule(threshold: float, *, min_requests: int = 20, for_s: float = 0.0) -> Rule:
    def check(inputs: Inputs) -> list[Alert]:
        requests = inputs.snapshot.get("requests", {})
        total, errors = int(requests.get("total", 0)), int(requests.get("errors", 0))
        if total < min_requests:
            return [_unknown("high_error_rate")]
        rate = errors / total
        return [
            Alert(
                "high_error_rate",
                f"Error rate {_pct(rate)} ({errors}/{total}) over {inputs.window_s:g}s "
                f"(threshold {_pct(threshold)})",
                severity="critical",
                value=rate,
                threshold=threshold,
                state="firing" if rate > threshold else "ok",
            )
        ]

    return Rule("error_rate", check, for_s)


def cache_hit_rate_rule(threshold: float, *, min_requests: int = 20, for_s: float = 0.0) -> Rule:
    def check(inputs: Inputs) -> list[Alert]:
        found = []
        for name, cache in sorted(inputs.snapshot.get("caches", {}).items()):
            hits, misses = int(cache.get("hits", 0)), int(cache.get("misses", 0))
            lookups = hits + misses
            if lookups < min_requests:
                found.append(_unknown("low_cache_hit_rate", str(name)))
                continue
            rate = hits / lookups
            found.append(
                Alert(
                    "low_cache_hit_rate",
                    f"Cache {name} hit rate {_pct(rate)} over {inputs.window_s:g}s "
                    f"(threshold {_pct(threshold)})",
                    scope=str(name),
                    value=rate,
                    threshold=threshold,
                    state="firing" if rate < threshold else "ok",
                )
            )
        return found

    return Rule("cache_hit_rate", check, for_s)


def upstream_failure_rule(threshold: float, *, min_requests: int = 20, for_s: float = 0.0) -> Rule:
    def check(inputs: Inputs) -> list[Alert]:
        found = []
        for name, up in sorted(inputs.snapshot.get("upstreams", {}).items()):
            calls = int(up.get("calls", 0))
            failures = int(up.get("errors", 0)) + int(up.get("timeouts", 0))
            if calls < min_requests:
                found.append(_unknown("upstream_failure_rate", str(name)))
                continue
            rate = min(1.0, failures / calls)
            found.append(
                Alert(
                    "upstream_failure_rate",
                    f"Upstream {name} failure rate {_pct(rate)} ({failures}/{calls}) over "
                    f"{inputs.window_s:g}s (threshold {_pct(threshold)})",
                    severity="critical",
                    scope=str(name),
                    value=rate,
                    threshold=threshold,
                    state="firing" if rate > threshold else "ok",
                )
            )
        return found

    return Rule("upstream_failure", check, for_s)


def slow_query_rule(threshold: int, *, for_s: float = 0.0) -> Rule:
    def check(inputs: Inputs) -> list[Alert]:
        count = int(inputs.snapshot.get("slow_queries", 0))
        if threshold <= 0:
            return []
        return [
            Alert(
                "slow_query_burst",
                f"{count} slow queries over {inputs.window_s:g}s (threshold {threshold})",
                value=float(count),
                threshold=float(threshold),
                state="firing" if count >= threshold else "ok",
            )
        ]

    return Rule("slow_queries", check, for_s)


def backup_rule(max_age_s: float = 0.0, *, for_s: float = 0.0) -> Rule:
    """Failed: the last failure is newer than the last success. Overdue: no success within
    ``max_age_s`` (0: twice the status' ``interval_s``) of now."""

    def check(inputs: Inputs) -> list[Alert]:
        status = inputs.backups
        if not status:
            return []
        ok, bad = status.get("last_success_ts"), status.get("last_failure_ts")
        if bad is not None and (ok is None or bad > ok):
            error = str(status.get("last_error") or "unknown error")[:200]
            return [Alert("backup_failed", f"The last backup failed: {error}", "critical")]
        limit = max_age_s or 2 * float(status.get("interval_s") or 0)
        if ok is None or limit <= 0:
            return []
        age = inputs.now_wall - float(ok)
        if age <= limit:
            return []
        return [
            Alert(
                "backup_overdue",
                f"No successful backup for {age / 3600:.1f}h (limit {limit / 3600:.1f}h)",
                value=age,
                threshold=limit,
            )
        ]

    return Rule("backup", check, for_s)


def default_rules(settings: AlertSettings) -> list[Rule]:
    s = settings
    return [
        response_time_rule(
            s.response_time_threshold_s,
            statistic=s.response_time_statistic,
            min_requests=s.min_requests,
            for_s=s.for_s,
        ),
        error_rate_rule(s.error_rate_threshold, min_requests=s.min_requests, for_s=s.for_s),
        cache_hit_rate_rule(s.cache_hit_rate_threshold, min_requests=s.min_requests, for_s=s.for_s),
        upstream_failure_rule(
            s.engine_failure_rate_threshold, min_requests=s.min_requests, for_s=s.for_s
        ),
        slow_query_rule(s.slow_query_threshold, for_s=s.for_s),
        backup_rule(s.backup_max_age_s),
    ]


@dataclass
class ForTracker:
    """Holds conditions until they have been breached for their rule's ``for_s``.

    ``update(breached, now)`` takes ``[(alert, for_s)]`` from one evaluation and returns the
    alerts that fire now; a condition absent from an evaluation starts over.
    """

    since: dict[AlertKey, float] = field(default_factory=dict)

    def update(self, breached: Sequence[tuple[Alert, float]], now: float) -> list[Alert]:
        seen: dict[AlertKey, float] = {}
        firing = []
        for alert, for_s in breached:
            start = self.since.get(alert.key, now)
            seen[alert.key] = start
            if now - start >= for_s:
                firing.append(alert)
        self.since = seen
        return firing
