"""Dispatcher: a bounded queue and one sender thread, so nobody waits on a channel.

:meth:`Dispatcher.submit` puts one job per accepting channel on a bounded heap and returns at
once (a full queue drops and counts, it never blocks). One named daemon thread, started by
:meth:`start` (the alerts service's ``start()``, itself run by ``stack.start()``), sends the
jobs in order of readiness:

- **pacing**: two sends on one channel are at least ``channel.min_interval_s`` apart (Slack
  about one per second; a channel may ask for more with a ``pause_s`` attribute, as Discord's
  does from its ``X-RateLimit-*`` headers); a ``Retry-After`` pushes the whole channel back,
  not one message;
- **retries**: a retryable failure (5xx, 429, network) is retried after an exponential
  backoff with jitter (``backoff_s * 2**attempt``, capped, times 0.5-1.0), or after the
  receiver's ``Retry-After`` / Discord ``retry_after`` when that is longer; non-retryable
  failures (other 4xx, SMTP 5xx) are counted as ``failed`` at once;
- **deadline**: a job not delivered within ``deadline_s`` of its submission is ``dropped``
  and counted, as are jobs refused by a full queue or left over at shutdown;
- **stop(timeout)**: wakes the thread, then sends what is still queued *synchronously in
  the calling thread* (no new threads during interpreter shutdown: pain point 10) until the
  timeout, dropping and counting the rest.

``stats()`` gives ``{channel: {"sent", "failed", "dropped", "retried", "last_ok",
"last_error"}}`` for the metrics JSON, the Prometheus output and health. Clock, sleep and
jitter are injected, so tests drive retries and deadlines without waiting.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import random
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from .channels.base import Channel, DeliveryFailed
from .model import Notification

__all__ = ["ChannelStats", "Dispatcher"]

log = logging.getLogger("voyagr_wsgi.alerts")


@dataclass
class ChannelStats:
    sent: int = 0
    failed: int = 0
    dropped: int = 0
    retried: int = 0
    last_ok: bool | None = None  # outcome of the last attempt; None before the first
    last_error: str | None = None  # never contains a URL or a secret
    disabled: str | None = None  # why the channel was taken out (a dead webhook), if it was

    def as_dict(self) -> dict[str, Any]:
        return {
            "sent": self.sent,
            "failed": self.failed,
            "dropped": self.dropped,
            "retried": self.retried,
            "last_ok": self.last_ok,
            "last_error": self.last_error,
            "disabled": self.disabled,
        }


@dataclass(order=True)
class _Job:
    ready_at: float
    seq: int
    channel: Channel = field(compare=False)
    notification: Notification = field(compare=False)
    expires_at: float = field(compare=False)
    attempt: int = field(compare=False, default=0)


class Dispatcher:
    """Deliver notifications to channels from one background thread (see module docs)."""

    def __init__(
        self,
        channels: Iterable[Channel],
        *,
        queue_size: int = 1000,
        deadline_s: float = 300.0,
        send_timeout_s: float = 10.0,
        backoff_s: float = 1.0,
        max_backoff_s: float = 60.0,
        now: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.channels = list(channels)
        self.queue_size = queue_size
        self.deadline_s = deadline_s
        self.send_timeout_s = send_timeout_s
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self._clock, self._sleep, self._jitter = now, sleep, jitter
        self._heap: list[_Job] = []
        self._seq = itertools.count()
        self._cv = threading.Condition()
        self._next_at: dict[str, float] = {}
        self._stats = {c.name: ChannelStats() for c in self.channels}
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._full_logged = float("-inf")
        self._closed = False  # set once stop() has flushed: late retries are counted dropped
        self.in_flight: str | None = None  # the channel a send is blocked on, if any

    # -- producer side: never blocks ----------------------------------------------------
    def submit(self, notification: Notification) -> bool:
        """Queue ``notification`` for every accepting channel; False if anything was dropped."""
        now = self._clock()
        complete = True
        with self._cv:
            for channel in self.channels:
                if not channel.accepts(notification):
                    continue
                if self._stats[channel.name].disabled:
                    self._stats[channel.name].dropped += 1
                    continue
                if len(self._heap) >= self.queue_size:
                    self._stats[channel.name].dropped += 1
                    complete = False
                    continue
                job = _Job(now, next(self._seq), channel, notification, now + self.deadline_s)
                heapq.heappush(self._heap, job)
            self._cv.notify()
        if not complete and now - self._full_logged >= 60.0:  # one line a minute, not a storm
            self._full_logged = now
            log.warning("alert queue full (%d): dropping notifications", self.queue_size)
        return complete

    def pending(self) -> int:
        with self._cv:
            return len(self._heap)

    def stats(self) -> dict[str, dict[str, Any]]:
        with self._cv:
            return {name: s.as_dict() for name, s in self._stats.items()}

    # -- the sender thread ------------------------------------------------------------------
    def start(self) -> None:
        with self._cv:
            if self._thread is not None:
                return
            self._stopping = self._closed = False
            self._thread = threading.Thread(
                target=self._run, name="voyagr-alert-sender", daemon=True
            )
            self._thread.start()

    def _run(self) -> None:
        while True:
            with self._cv:
                while True:
                    if self._stopping:
                        return
                    if self._heap:
                        delay = self._heap[0].ready_at - self._clock()
                        if delay <= 0:
                            job = heapq.heappop(self._heap)
                            break
                        self._cv.wait(delay)
                    else:
                        self._cv.wait()
            self._attempt(job, until=None)

    def stop(self, timeout: float | None = None) -> None:
        """Stop the thread, then deliver what is queued in this thread within ``timeout``."""
        budget = 30.0 if timeout is None else max(0.0, timeout)
        end = self._clock() + budget
        with self._cv:
            self._stopping = True
            self._cv.notify_all()
            thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(budget)  # returns early unless a send is in flight
        self.flush(max(0.0, end - self._clock()), drop_rest=True)
        with self._cv:
            self._closed = True

    def flush(self, timeout: float, *, drop_rest: bool = False) -> bool:
        """Send queued jobs synchronously until empty or ``timeout``; True when all went out."""
        end = self._clock() + timeout
        while True:
            with self._cv:
                if not self._heap:
                    return True
                head = self._heap[0]
                now = self._clock()
                if head.ready_at >= end or now >= end:
                    break
                if head.ready_at > now:
                    job = None
                else:
                    job = heapq.heappop(self._heap)
            if job is None:
                self._sleep(head.ready_at - now)
            else:
                self._attempt(job, until=end)
        if drop_rest:
            with self._cv:
                left, self._heap = self._heap, []
                for job in left:
                    self._stats[job.channel.name].dropped += 1
            if left:
                log.warning("alert dispatcher stopped: %d deliveries dropped", len(left))
        return False

    # -- one delivery attempt ------------------------------------------------------------
    def _requeue(self, job: _Job, ready_at: float) -> None:
        with self._cv:
            if self._closed:  # a send that outlived stop(): count it, nobody will send it
                self._stats[job.channel.name].dropped += 1
                return
            job.ready_at = ready_at
            heapq.heappush(self._heap, job)
            self._cv.notify()

    def _drop(self, job: _Job, why: str) -> None:
        with self._cv:
            self._stats[job.channel.name].dropped += 1
        log.warning(
            "alert %s dropped on channel %s: %s", job.notification.headline, job.channel.name, why
        )

    def _attempt(self, job: _Job, *, until: float | None) -> None:
        channel, name = job.channel, job.channel.name
        if self._stats[name].disabled:
            self._drop(job, "channel disabled")
            return
        now = self._clock()
        paced = self._next_at.get(name, 0.0)
        if paced > now:
            if paced > job.expires_at:
                self._drop(job, "deadline passed while paced")
            else:
                self._requeue(job, paced)
            return
        limit = job.expires_at if until is None else min(job.expires_at, until)
        timeout = min(self.send_timeout_s, limit - now)
        if timeout <= 0:
            self._drop(job, "deadline passed")
            return
        self.in_flight = name
        try:
            channel.send(job.notification, timeout)
        except DeliveryFailed as exc:
            self._failed(job, exc, now)
        except Exception as exc:  # a bug in a channel must not kill the sender thread
            log.exception("alert channel %s raised", name)
            self._failed(job, DeliveryFailed(type(exc).__name__, retryable=False), now)
        else:
            with self._cv:
                stats = self._stats[name]
                stats.sent, stats.last_ok, stats.last_error = stats.sent + 1, True, None
        finally:
            self.in_flight = None
            # a channel may ask for a longer pause after a send (Discord's rate-limit headers)
            pause = max(channel.min_interval_s, float(getattr(channel, "pause_s", 0.0)))
            self._next_at[name] = max(self._next_at.get(name, 0.0), self._clock() + pause)

    def _failed(self, job: _Job, exc: DeliveryFailed, now: float) -> None:
        name = job.channel.name
        with self._cv:
            stats = self._stats[name]
            stats.last_ok, stats.last_error = False, str(exc)
        if exc.dead:
            with self._cv:
                stats.failed += 1
                stats.disabled = f"{exc}: the endpoint is gone or refuses the credentials"
                queued = [j for j in self._heap if j.channel.name == name]
                self._heap = [j for j in self._heap if j.channel.name != name]
                heapq.heapify(self._heap)
                stats.dropped += len(queued)
            log.error(
                "alert channel %s disabled until the next restart: %s (fix its URL or "
                "credentials); %d queued notifications dropped",
                name,
                exc,
                len(queued),
            )
            return
        if not exc.retryable:
            with self._cv:
                stats.failed += 1
            log.warning("alert channel %s failed (not retried): %s", name, exc)
            return
        delay = min(self.max_backoff_s, self.backoff_s * 2**job.attempt)
        delay *= 0.5 + 0.5 * self._jitter()
        if exc.retry_after_s is not None:
            delay = max(delay, exc.retry_after_s)
            self._next_at[name] = max(self._next_at.get(name, 0.0), now + exc.retry_after_s)
        if now + delay > job.expires_at:
            self._drop(job, f"{exc}; deadline passed")
            return
        with self._cv:
            stats.retried += 1
        log.info("alert channel %s: %s, retrying in %.1fs", name, exc, delay)
        job.attempt += 1
        self._requeue(job, now + delay)
