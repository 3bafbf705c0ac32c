"""Alert lifecycle: dedup, suppressed counts, resolved notices, mute. Pure and clock-driven.

:meth:`Lifecycle.update` takes the alerts firing in one evaluation and the current time and
returns the notifications to send:

- the first time a key ``(alert_type, scope)`` fires, which starts an *episode*: a
  ``new_alert`` notification, at once;
- while it keeps firing, at most one notification per key per ``dedup_s``: evaluations in
  between are *suppressed* and counted, and the next ``repeat`` notification carries the
  count. Dedup belongs to the episode: a condition that fires again after its resolve is a
  new episode, notified at once, so the last message on-call saw is never a stale
  "RESOLVED" while the condition is back;
- a key resolves only once its condition has been clear for ``keep_firing_s`` (Prometheus'
  ``keep_firing_for``), which damps flapping (with ``for_s`` on the way in); a key whose rule
  cannot tell this evaluation (too little traffic for a ratio: ``unknown``) keeps its state
  and does not start that clock;
- when a key that was notified resolves: one ``resolved`` notification carrying the current
  figure the rule observed (``observed``: "Error rate 0.4% ..."), not the last firing one. A
  key that never got a notification (suppressed or muted the whole time) resolves silently;
- every ``refresh_s`` while firing, a ``refresh`` notification that only Alertmanager takes
  (its API wants firing alerts re-sent so ``endsAt`` keeps moving); and for
  ``RESOLVED_RESEND_S`` (5 minutes) after a resolve, the resolved alert again with its
  original ``endsAt``, as Prometheus does, so an Alertmanager that missed the first one
  (restarting, a lost request) still resolves it;
- while ``muted`` (a maintenance window), nothing is sent: firing evaluations are counted as
  suppressed and reported by the first notification after the mute ends.

The evaluator runs in exactly one process (the elected one), so this state is not per worker
(pain point 12: one worker, one notification). :meth:`export` / :meth:`restore` carry it
over to the process that takes over when that one dies, so an alert already notified is not
notified again as new.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from .model import Alert, AlertKey, Notification, Reason, Status, iso_utc

__all__ = ["RESOLVED_RESEND_S", "Active", "Lifecycle"]

#: how long a resolved alert keeps being re-sent (``refresh`` notifications, Alertmanager)
RESOLVED_RESEND_S = 300.0


@dataclass
class Active:
    alert: Alert
    starts_at: float  # wall clock
    notified: bool = False
    last_refresh: float = 0.0  # monotonic
    clear_since: float | None = None  # monotonic: when its condition was last seen clear


class Lifecycle:
    """Turns per-evaluation firing sets into notifications (see the module docstring)."""

    def __init__(
        self,
        *,
        dedup_s: float = 300.0,
        refresh_s: float = 60.0,
        keep_firing_s: float = 0.0,
        service: str = "voyagr",
        instance: str = "",
        dashboard_url: str = "",
    ) -> None:
        self.dedup_s = dedup_s
        self.refresh_s = refresh_s
        self.keep_firing_s = keep_firing_s
        self.service = service
        self.instance = instance
        self.dashboard_url = dashboard_url
        self.active: dict[AlertKey, Active] = {}
        self._last_sent: dict[AlertKey, float] = {}
        self._last_sent_wall: dict[AlertKey, float] = {}
        self._suppressed: dict[AlertKey, int] = {}
        #: resolved and notified: (the alert, when it resolved (monotonic), its endsAt (wall))
        self._resolved: dict[AlertKey, tuple[Active, float, float]] = {}
        #: cumulative suppressed evaluations per alert type and reason (dedup / muted)
        self.suppressed_total: dict[str, dict[str, int]] = {}

    def _make(
        self,
        act: Active,
        status: Status,
        reason: Reason,
        now_wall: float,
        suppressed: int = 0,
        ends_at: float | None = None,
    ) -> Notification:
        if status == "resolved" and ends_at is None:
            ends_at = now_wall
        return Notification(
            alert=act.alert,
            status=status,
            reason=reason,
            starts_at=act.starts_at,
            sent_at=now_wall,
            ends_at=ends_at,
            suppressed=suppressed,
            service=self.service,
            instance=self.instance,
            dashboard_url=self.dashboard_url,
        )

    def update(
        self,
        firing: Sequence[Alert],
        *,
        now: float,
        now_wall: float,
        muted: bool = False,
        observed: Mapping[AlertKey, Alert] | None = None,
        unknown: Collection[AlertKey] = (),
    ) -> list[Notification]:
        """Notifications for one evaluation; ``now`` monotonic, ``now_wall`` epoch seconds.

        ``observed``: the current, non-firing figure of keys whose rule measured them (what a
        resolved notice says); ``unknown``: keys whose rule had too little data to tell.
        """
        out: list[Notification] = []
        current = {alert.key: alert for alert in firing}
        for key, alert in current.items():
            act = self.active.get(key)
            if act is None:
                act = self.active[key] = Active(alert, starts_at=now_wall)
            else:
                act.alert = alert  # keep the latest value in the text
                act.clear_since = None
            last = self._last_sent.get(key)
            if muted or (last is not None and now - last < self.dedup_s):
                self._suppressed[key] = self._suppressed.get(key, 0) + 1
                totals = self.suppressed_total.setdefault(alert.alert_type, {})
                why = "muted" if muted else "dedup"
                totals[why] = totals.get(why, 0) + 1
                if not muted and act.notified and now - act.last_refresh >= self.refresh_s:
                    act.last_refresh = now
                    out.append(self._make(act, "firing", "refresh", now_wall))
                continue
            reason: Reason = "repeat" if act.notified else "new_alert"
            out.append(self._make(act, "firing", reason, now_wall, self._suppressed.pop(key, 0)))
            self._last_sent[key] = now
            self._last_sent_wall[key] = now_wall
            act.notified = True
            act.last_refresh = now
        for key in [k for k in self.active if k not in current]:
            act = self.active[key]
            if key in unknown:
                continue  # too little data to say it cleared: the state holds
            if act.clear_since is None:
                act.clear_since = now
            if observed and key in observed:
                act.alert = observed[key]  # the resolved notice tells today's figure
            if now - act.clear_since < self.keep_firing_s:
                continue
            del self.active[key]
            # the episode ends: its dedup clock and suppressed count go with it
            self._last_sent.pop(key, None)
            self._last_sent_wall.pop(key, None)
            self._suppressed.pop(key, None)
            if act.notified and not muted:
                out.append(self._make(act, "resolved", "resolved", now_wall))
                act.last_refresh = now
                self._resolved[key] = (act, now, now_wall)
        for key, (act, resolved_at, ends_at) in list(self._resolved.items()):
            if key in current or now - resolved_at > RESOLVED_RESEND_S:
                del self._resolved[key]
            elif not muted and now - act.last_refresh >= self.refresh_s:
                act.last_refresh = now
                out.append(self._make(act, "resolved", "refresh", now_wall, ends_at=ends_at))
        return out

    def export(self) -> list[dict[str, Any]]:
        """The state another process needs to carry on (JSON-ready)."""
        return [
            {
                "alert": asdict(act.alert),
                "starts_at": act.starts_at,
                "notified": act.notified,
                "last_sent_wall": self._last_sent_wall.get(key),
                "suppressed": self._suppressed.get(key, 0),
            }
            for key, act in self.active.items()
        ]

    def restore(self, entries: Sequence[dict[str, Any]], *, now: float, now_wall: float) -> int:
        """Take over ``export()``'s state from another process; returns the alerts restored.

        Malformed entries are skipped (the state file is advisory: at worst an alert is
        notified once more).
        """
        restored = 0
        for entry in entries:
            try:
                raw = dict(entry["alert"])
                raw["labels"] = tuple(tuple(pair) for pair in raw.get("labels", ()))
                alert = Alert(**raw)
                starts_at = float(entry["starts_at"])
                sent_wall = entry.get("last_sent_wall")
            except (KeyError, TypeError, ValueError):
                continue
            key = alert.key
            self.active[key] = Active(alert, starts_at, bool(entry.get("notified")), now)
            if sent_wall is not None:
                self._last_sent_wall[key] = float(sent_wall)
                self._last_sent[key] = now - max(0.0, now_wall - float(sent_wall))
            self._suppressed[key] = int(entry.get("suppressed", 0))
            restored += 1
        return restored

    def suppressed(self, key: AlertKey) -> int:
        return self._suppressed.get(key, 0)

    def describe(self) -> list[dict[str, Any]]:
        """The active alerts, for the admin endpoint."""
        return [
            {
                "alert_type": act.alert.alert_type,
                "scope": act.alert.scope,
                "severity": act.alert.severity,
                "summary": act.alert.summary,
                "value": act.alert.value,
                "threshold": act.alert.threshold,
                "since": iso_utc(act.starts_at),
                "notified": act.notified,
                "suppressed": self._suppressed.get(key, 0),
            }
            for key, act in sorted(self.active.items())
        ]
