"""Health: checks from every area folded into ``pass`` / ``warn`` / ``fail``.

Each area (metrics, backups, alerts) contributes a *health source*: a callable returning
:class:`Check` objects. :class:`Health` runs them all and builds the
``application/health+json`` document (draft-inadarei-api-health-check-06): ``checks`` keyed
``"component:measurement"``, each a list of observations, ``notes`` listing the issues.
pass and warn answer 200, fail answers 503, so ``warn`` never fails a load-balancer probe.

Readiness is narrower: only a check marked ``readiness=True`` (a dependency this instance
cannot serve without, such as a fail-closed rate-limit store that is down) makes
``readyz`` answer 503. Observations of traffic (error rate, p95, an upstream's failure
rate, cache hit rate, slow queries) fail ``health`` but only degrade ``readyz`` to ``warn``:
they are shared by every instance, so failing readiness on them would take all instances
out of the load balancer at once (Kubernetes removes a pod whose readiness probe fails from
every service endpoint).

A source that raises is itself reported as a failing check (``health:source``), never as a
traceback: health must answer when something is broken.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["Check", "Health", "HealthReport", "HealthSource", "Status", "worst"]

log = logging.getLogger("voyagr_wsgi.health")

Status = Literal["pass", "warn", "fail"]
_RANK: dict[str, int] = {"pass": 0, "warn": 1, "fail": 2}


def worst(statuses: Iterable[Status]) -> Status:
    """The most severe of ``statuses`` (``pass`` when empty)."""
    result: Status = "pass"
    for status in statuses:
        if _RANK[status] > _RANK[result]:
            result = status
    return result


@dataclass(frozen=True, slots=True)
class Check:
    """One observation: ``name`` is ``component:measurement`` (``http:errorRate``)."""

    name: str
    status: Status
    observed_value: float | int | str | None = None
    observed_unit: str | None = None
    output: str | None = None  # the issue, in words; omitted when passing
    component_id: str | None = None
    component_type: Literal["component", "datastore", "system"] = "component"
    #: a fail here means the instance cannot serve: readyz answers 503 (see the module doc)
    readiness: bool = False

    def as_json(self, now_iso: str) -> dict[str, Any]:
        doc: dict[str, Any] = {"componentType": self.component_type, "status": self.status}
        if self.component_id is not None:
            doc["componentId"] = self.component_id
        if self.observed_value is not None:
            doc["observedValue"] = self.observed_value
        if self.observed_unit is not None:
            doc["observedUnit"] = self.observed_unit
        if self.output and self.status != "pass":
            doc["output"] = self.output
        doc["time"] = now_iso
        return doc


HealthSource = Callable[[], Iterable[Check]]


@dataclass(frozen=True, slots=True)
class HealthReport:
    status: Status
    checks: tuple[Check, ...] = ()
    issues: tuple[str, ...] = field(default=())
    ready: bool = True  # no readiness check fails

    @property
    def readiness(self) -> Status:
        """What readyz answers: fail when not ready, else warn when anything is not pass."""
        if not self.ready:
            return "fail"
        return "pass" if self.status == "pass" else "warn"

    @property
    def http_status(self) -> str:
        return "503 Service Unavailable" if self.status == "fail" else "200 OK"

    def document(self, *, service_id: str = "voyagr_wsgi") -> dict[str, Any]:
        now_iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        checks: dict[str, list[dict[str, Any]]] = {}
        for check in self.checks:
            checks.setdefault(check.name, []).append(check.as_json(now_iso))
        doc: dict[str, Any] = {
            "status": self.status,
            "version": "1",
            "serviceId": service_id,
            "description": "voyagr_wsgi health",
            "checks": checks,
        }
        if self.issues:
            doc["notes"] = list(self.issues)
            if self.status != "pass":
                doc["output"] = "; ".join(self.issues)
        return doc


class Health:
    """Run every health source and fold the results."""

    def __init__(self, sources: Iterable[HealthSource] = ()) -> None:
        self.sources: list[HealthSource] = list(sources)

    def add(self, source: HealthSource) -> None:
        self.sources.append(source)

    def evaluate(self) -> HealthReport:
        checks: list[Check] = []
        for source in self.sources:
            try:
                checks.extend(source())
            except Exception as exc:
                log.exception("health source %r raised", source)
                checks.append(
                    Check("health:source", "fail", output=f"{type(exc).__name__} in a check")
                )
        issues = tuple(c.output for c in checks if c.status != "pass" and c.output)
        ready = not any(c.readiness and c.status == "fail" for c in checks)
        return HealthReport(worst(c.status for c in checks), tuple(checks), issues, ready)
