"""``FleetDedup``: one notification per alert across machines, through Redis.

Each machine keeps evaluating its own metrics (as each Prometheus does), so N machines that
see one condition would each send it. With ``ALERT_DEDUP_URL=redis://...`` (or, when empty,
``SERVICES_LEASE_URL``) the :class:`~.evaluator.AlertService` passes its notifications
through :meth:`FleetDedup.filter` before the dispatcher, and only the machine that wins a
claim sends:

- **firing** (``new_alert``, ``repeat``): ``SET voyagr:alert:<key>:sent <machine> NX PX
  <ALERT_DEDUP_SECONDS>``; the winner sends. So one firing message per dedup window for the
  whole fleet, not per machine. ``<key>`` hashes the service name, alert type and scope: the
  ``instance`` label that tells machines apart is left out on purpose.
- **who still fires**: every machine adds itself to the sorted set ``voyagr:alert:<key>:
  machines`` (score = expiry on Redis's clock, three evaluation intervals ahead) when it
  fires and at every evaluation while the alert stays active. A machine that dies drops out
  when its entry expires.
- **resolved**: the machine removes itself; the resolve is sent by the one that leaves the
  set empty, once per episode (the episode key is deleted atomically with the check), and the
  ``sent`` claim goes with it, so the next episode notifies at once.
- ``refresh`` notifications (Alertmanager re-sends) pass unchanged: Alertmanager
  deduplicates them itself.

All of it runs in Lua scripts on Redis's clock, one round trip per evaluation plus one per
notification, on the evaluator thread, never on the request path. If Redis cannot be reached
the notification is sent anyway (a duplicate is better than a lost alert) and
:attr:`FleetDedup.last_error` says why.

With the fleet lease on (``SERVICES_LEASE_URL``) only one machine evaluates alerts, so this
matters during a failover (two holders for up to one lease TTL) and whenever the lease is
off. What it does not do: a resolve is not sent if the last firing machine dies before
resolving (its entry expires silently; the chat shows the alert as still firing), and a
Redis failover that loses the keys can let one duplicate through.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
from collections.abc import Iterable
from typing import Any

from .model import Alert, Notification

__all__ = ["FleetDedup", "fleet_key"]

log = logging.getLogger("voyagr_wsgi.alerts")

_NOW = "local t = redis.call('TIME')\nlocal now = tonumber(t[1]) + tonumber(t[2]) / 1000000\n"
# KEYS: sent, episode, machines; ARGV: machine, member_ttl_s, dedup_ms, episode_ms
_FIRE = (
    _NOW
    + """
redis.call('ZADD', KEYS[3], now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[3], ARGV[4])
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[3]) then
  redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[4])
  return 1
end
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return 0
"""
)
# KEYS: episode, machines; ARGV: machine, member_ttl_s, episode_ms
_BEAT = (
    _NOW
    + """
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
"""
)
# KEYS: sent, episode, machines; ARGV: machine
_RESOLVE = (
    _NOW
    + """
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
if redis.call('ZCARD', KEYS[3]) > 0 then return 0 end
redis.call('DEL', KEYS[1])
return redis.call('DEL', KEYS[2])
"""
)


def fleet_key(service: str, alert: Alert) -> str:
    """16 hex of (service, alert type, scope): the same on every machine."""
    text = f"{service}\x00{alert.alert_type}\x00{alert.scope}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class FleetDedup:
    """Let one machine of the fleet send each notification (see the module docstring)."""

    def __init__(
        self,
        client: Any,
        *,
        service: str,
        dedup_s: float,  # seconds: one firing message per alert per window, fleet-wide
        evaluation_interval_s: float,  # a machine silent for 3 intervals drops out
        machine: str | None = None,  # default host:pid
        prefix: str = "voyagr:",
    ) -> None:
        from ..lease import redis_errors

        self.client = client
        self.service = service
        self.machine = machine or f"{socket.gethostname()}:{os.getpid()}"
        self.prefix = f"{prefix}alert:"
        self.dedup_ms = max(1, int(dedup_s * 1000))
        self.member_ttl_s = max(3 * evaluation_interval_s, 1.0)
        self.episode_ms = int(max(4 * self.member_ttl_s, 2 * dedup_s, 3600.0) * 1000)
        self.suppressed = 0
        self.last_error: str | None = None
        self._errors = redis_errors()

    @classmethod
    def from_url(cls, url: str, *, what: str = "ALERT_DEDUP_URL", **options: Any) -> FleetDedup:
        from ..lease import redis_client

        return cls(redis_client(url, what=what), **options)

    def _keys(self, alert: Alert) -> tuple[str, str, str]:
        base = f"{self.prefix}{fleet_key(self.service, alert)}"
        return f"{base}:sent", f"{base}:episode", f"{base}:machines"

    def filter(self, notes: Iterable[Notification], active: Iterable[Alert]) -> list[Notification]:
        """The notifications this machine should send; ``active`` (the alerts firing here
        now) keeps this machine's membership fresh."""
        keep: list[Notification] = []
        try:
            self._heartbeat(active)
        except self._errors as exc:
            self._error(exc)
        for note in notes:
            if note.reason == "refresh":
                keep.append(note)
                continue
            try:
                won = self._claim(note)
            except self._errors as exc:
                self._error(exc)
                won = True  # fail open: a duplicate beats a lost alert
            if won:
                keep.append(note)
            else:
                self.suppressed += 1
                log.info("alert %s %s: another machine notifies", note.alert.title, note.status)
        return keep

    def _claim(self, note: Notification) -> bool:
        sent, episode, machines = self._keys(note.alert)
        if note.resolved:
            result = self.client.eval(_RESOLVE, 3, sent, episode, machines, self.machine)
        else:
            result = self.client.eval(
                _FIRE,
                3,
                sent,
                episode,
                machines,
                self.machine,
                self.member_ttl_s,
                self.dedup_ms,
                self.episode_ms,
            )
        self.last_error = None
        return bool(result)

    def _heartbeat(self, active: Iterable[Alert]) -> None:
        alerts = list(active)
        if not alerts:
            return
        pipe = self.client.pipeline(transaction=False)
        for alert in alerts:
            _, episode, machines = self._keys(alert)
            pipe.eval(_BEAT, 2, episode, machines, self.machine, self.member_ttl_s, self.episode_ms)
        pipe.execute()

    def _error(self, exc: BaseException) -> None:
        text = f"{type(exc).__name__}: {exc}"[:200]
        if text != self.last_error:
            log.warning("alert fleet dedup: redis error, sending anyway: %s", text)
        self.last_error = text

    def state(self) -> dict[str, Any]:
        return {
            "machine": self.machine,
            "suppressed": self.suppressed,
            "last_error": self.last_error,
        }
