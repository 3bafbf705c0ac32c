"""``AlertService``: the alerting service and the object other areas talk to.

It is a :class:`~voyagr_wsgi.services.Service` with ``singleton = True``: the stack's
Supervisor starts it only in the process that holds the services lock, so under gunicorn the
rules run and notifications go out exactly once per server, whatever the worker count.
Every ``evaluation_interval_s`` it reads ``metrics.window_snapshot(window_s)`` (merged across
workers) and the backup status, runs the rules (:mod:`.rules`), holds conditions for their
``for`` duration, applies dedup / resolve / mute (:mod:`.lifecycle`) and hands the
notifications to the :class:`~.dispatcher.Dispatcher` (across machines, through
:class:`~.fleet.FleetDedup` first when ``ALERT_DEDUP_URL`` or ``SERVICES_LEASE_URL`` is
set). ``compose(app, settings)`` registers it as ``stack.components["alerts"]``::

    alerts = stack.components["alerts"]
    alerts.add_rule(Rule("queue_depth", check_queue, for_s=60))   # custom rule
    alerts.mute(3600, "database migration")                        # maintenance window
    alerts.stats()   # {"slack": {"sent": 3, "failed": 0, "dropped": 0, ...}, ...}

Used without compose::

    service = AlertService(AlertSettings(), metrics=MetricsReader(registry),
                           channels=[LogChannel()])   # voyagr_wsgi.metrics.reader
    service.start(); ...; service.stop(timeout=10)
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol, runtime_checkable

from ..health import Check
from .channels import from_settings as channels_from_settings
from .channels.base import Channel
from .config import AlertSettings
from .dispatcher import Dispatcher
from .fleet import FleetDedup
from .lifecycle import Lifecycle
from .model import Alert, AlertKey, Notification, iso_utc
from .rules import ForTracker, Inputs, Rule, default_rules
from .state import read_json, write_json

__all__ = ["AlertService", "BackupSource", "MetricsSource"]

log = logging.getLogger("voyagr_wsgi.alerts")


@runtime_checkable
class MetricsSource(Protocol):
    def window_snapshot(self, window_s: float) -> dict[str, Any]: ...


@runtime_checkable
class BackupSource(Protocol):
    def status(self) -> dict[str, Any]: ...


class AlertService:
    """Evaluate rules on a schedule and dispatch notifications (see the module docstring)."""

    name = "alerts"
    singleton = True

    def __init__(
        self,
        settings: AlertSettings,
        *,
        metrics: MetricsSource | None = None,
        backups: BackupSource | None = None,
        channels: Iterable[Channel] | None = None,
        rules: Iterable[Rule] | None = None,
        state_dir: str | None = None,
        now: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        dispatcher: Dispatcher | None = None,
        fleet: FleetDedup | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.backups = backups
        self.rules: list[Rule] = list(default_rules(settings) if rules is None else rules)
        chans = channels_from_settings(settings) if channels is None else list(channels)
        self.dispatcher = dispatcher or Dispatcher(
            chans,
            queue_size=settings.queue_size,
            deadline_s=settings.delivery_deadline_s,
            send_timeout_s=settings.send_timeout_s,
            now=now,
        )
        self.lifecycle = Lifecycle(
            dedup_s=settings.dedup_s,
            refresh_s=settings.alertmanager_resend_s,
            keep_firing_s=settings.keep_firing_s,
            service=settings.service_name,
            instance=settings.instance_name,
            dashboard_url=settings.dashboard_url,
        )
        self.pending = ForTracker()
        #: the alert keys each rule reported last time (kept when the rule raises)
        self._rule_keys: dict[str, set[AlertKey]] = {}
        #: fleet-wide dedup (ALERT_DEDUP_URL): only the machine that wins a claim sends
        self.fleet = fleet
        self._clock, self._wall = now, wall
        self._state_path = os.path.join(state_dir, "alerts-state.json") if state_dir else None
        self._mute_path = os.path.join(state_dir, "alerts-mute.json") if state_dir else None
        self._mute: dict[str, Any] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.evaluations = 0
        self.last_error: str | None = None

    # -- rules and mute -------------------------------------------------------------------
    def add_rule(self, rule: Rule) -> None:
        with self._lock:
            self.rules.append(rule)

    def mute(self, seconds: float, reason: str = "") -> float:
        """Mute every notification for ``seconds`` (all processes); returns the end, epoch."""
        until = self._wall() + max(0.0, seconds)
        self._mute = {"until": until, "reason": reason[:200]}
        if self._mute_path:
            write_json(self._mute_path, self._mute)
        log.warning("alerts muted until %s: %s", iso_utc(until), reason or "no reason given")
        return until

    def unmute(self) -> None:
        self._mute = {}
        if self._mute_path:
            write_json(self._mute_path, {})
        log.warning("alerts unmuted")

    def muted(self) -> dict[str, Any] | None:
        """``{"until": epoch, "reason": str}`` while a mute is in force, else None."""
        doc = read_json(self._mute_path) if self._mute_path else self._mute
        if doc is not None:
            self._mute = doc
        until = self._mute.get("until")
        if isinstance(until, int | float) and until > self._wall():
            return self._mute
        return None

    # -- one evaluation -------------------------------------------------------------------
    def _inputs(self) -> Inputs:
        snapshot: dict[str, Any] = {"window_s": self.settings.window_s}
        if self.metrics is not None:
            snapshot = self.metrics.window_snapshot(self.settings.window_s)
        status = self.backups.status() if self.backups is not None else None
        return Inputs(snapshot, status, self._wall())

    def evaluate_once(self) -> list[Notification]:
        """Run the rules once, submit the resulting notifications and return them (with a
        fleet dedup, only those this machine won)."""
        inputs = self._inputs()
        breached: list[tuple[Alert, float]] = []
        observed: dict[AlertKey, Alert] = {}  # measured, within the threshold
        unknown: set[AlertKey] = set()  # too little data to tell
        with self._lock:
            rules = list(self.rules)
        for rule in rules:
            try:
                seen = list(rule.check(inputs))
            except Exception:
                log.exception("alert rule %s raised; skipped this round", rule.name)
                unknown.update(self._rule_keys.get(rule.name, ()))  # its alerts hold
                continue
            self._rule_keys[rule.name] = {alert.key for alert in seen}
            for alert in seen:
                if alert.state == "firing":
                    breached.append((alert, rule.for_s))
                elif alert.state == "ok":
                    observed[alert.key] = alert
                else:
                    unknown.add(alert.key)
        now = self._clock()
        with self._lock:
            firing = self.pending.update(breached, now)
            notes = self.lifecycle.update(
                firing,
                now=now,
                now_wall=inputs.now_wall,
                muted=self.muted() is not None,
                observed=observed,
                unknown=unknown,
            )
            self.evaluations += 1
            active = [act.alert for act in self.lifecycle.active.values()]
        if self.fleet is not None:
            notes = self.fleet.filter(notes, active)
        for note in notes:
            self.dispatcher.submit(note)
        self._write_state()
        return notes

    # -- service ----------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._take_over()
        self.dispatcher.start()
        self._thread = threading.Thread(
            target=self._loop, name="voyagr-alert-evaluator", daemon=True
        )
        self._thread.start()

    def _take_over(self) -> None:
        """Carry on from the state the previous runner published (it may have died)."""
        if self._state_path is None or self.evaluations:
            return
        doc = read_json(self._state_path)
        if not doc or not isinstance(doc.get("lifecycle"), list):
            return
        now, now_wall = self._clock(), self._wall()
        with self._lock:
            restored = self.lifecycle.restore(doc["lifecycle"], now=now, now_wall=now_wall)
            for act in self.lifecycle.active.values():  # already breached: no new `for` wait
                self.pending.since[act.alert.key] = now - max(0.0, now_wall - act.starts_at)
        if restored:
            log.info("took over %d active alert(s) from pid %s", restored, doc.get("pid"))

    def _loop(self) -> None:
        while not self._stop.wait(self.settings.evaluation_interval_s):
            try:
                self.evaluate_once()
                self.last_error = None
            except Exception as exc:
                self.last_error = type(exc).__name__
                log.exception("alert evaluation failed")

    def stop(self, timeout: float | None = None) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        end = self._clock() + (30.0 if timeout is None else timeout)
        if thread is not None:
            thread.join(max(0.0, end - self._clock()))
        self.dispatcher.stop(max(0.0, end - self._clock()))
        self._write_state()

    @property
    def running(self) -> bool:
        return self._thread is not None

    def state(self) -> dict[str, Any]:
        return {
            "running": self.running,
            "evaluations": self.evaluations,
            "active": len(self.lifecycle.active),
            "queued": self.dispatcher.pending(),
            "sending_to": self.dispatcher.in_flight,
            "last_error": self.last_error,
        }

    # -- what endpoints, health and metrics read (from any process) ------------------------
    def _write_state(self) -> None:
        if self._state_path is None:
            return
        try:
            write_json(self._state_path, self._local_snapshot())
        except OSError as exc:
            log.warning("cannot write alert state: %s", type(exc).__name__)

    def _local_snapshot(self) -> dict[str, Any]:
        with self._lock:
            active = self.lifecycle.describe()
            carry = self.lifecycle.export()
            suppressed = {k: dict(v) for k, v in self.lifecycle.suppressed_total.items()}
        return {
            "pid": os.getpid(),
            "updated_at": iso_utc(self._wall()),
            "running": self.running,
            "evaluations": self.evaluations,
            "active": active,
            "channels": self.dispatcher.stats(),
            "queued": self.dispatcher.pending(),
            "suppressed_total": suppressed,
            "lifecycle": carry,
        }

    def snapshot(self) -> dict[str, Any]:
        """Active alerts and channel stats: this process's if it evaluates, else the runner's
        last published state (written after every evaluation, so at most one interval old)."""
        local = self.running or self.evaluations > 0 or self._state_path is None
        doc = None if local else read_json(self._state_path)  # type: ignore[arg-type]
        doc = doc or self._local_snapshot()
        mute = self.muted()
        doc["muted_until"] = iso_utc(mute["until"]) if mute else None
        doc["mute_reason"] = mute.get("reason") if mute else None
        return doc

    def stats(self) -> dict[str, dict[str, Any]]:
        """``{channel: {"sent", "failed", "dropped", "retried", "last_ok", "last_error"}}``."""
        channels: dict[str, dict[str, Any]] = self.snapshot()["channels"]
        return channels

    def health_checks(self) -> list[Check]:
        """``alerts:channel``: warn for each channel that is suspended (a dead endpoint) or
        whose last delivery attempt failed; the observed value counts what it did not
        deliver (dropped + failed)."""
        checks = []
        for name, stats in sorted(self.stats().items()):
            suspended = stats.get("suspended")
            failed = stats.get("last_ok") is False
            if suspended:
                output: str | None = f"alert channel {name}: suspended ({suspended})"
            elif failed:
                output = f"alert channel {name}: last delivery failed ({stats.get('last_error')})"
            else:
                output = None
            checks.append(
                Check(
                    "alerts:channel",
                    "warn" if output else "pass",
                    observed_value=int(stats.get("dropped", 0)) + int(stats.get("failed", 0)),
                    observed_unit="undelivered",
                    output=output,
                    component_id=name,
                )
            )
        return checks
