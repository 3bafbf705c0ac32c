"""Dispatcher: one bounded queue and one sender thread per channel, so nobody waits on a channel.

:meth:`Dispatcher.submit` puts one job per accepting channel on that channel's own bounded
queue (a *lane*) and returns at once: a full lane drops and counts, it never blocks, and it
never takes room from another channel. :meth:`start` (the alerts service's ``start()``, itself
run by ``stack.start()``) starts one named daemon thread per lane, which sends that lane's jobs
in order of readiness. A channel that hangs, drips bytes or is flooded delays and drops only
its own notifications:

- **bounded sends**: each attempt gets ``min(send_timeout_s, time left before the job's
  deadline)`` as a *total* budget; the HTTP channels enforce it on the whole exchange (connect,
  headers and body), closing the socket when it is spent, so a peer answering a byte every few
  seconds cannot hold the sender (:func:`~.channels.base.post_json`);
- **pacing**: two sends on one channel are at least ``channel.min_interval_s`` apart (Slack
  about one per second; a channel may ask for more with a ``pause_s`` attribute, as Discord's
  does from its ``X-RateLimit-*`` headers); a ``Retry-After`` pushes the whole channel back,
  not one message;
- **retries**: a retryable failure (5xx, 429, network, timeout) is retried after an
  exponential backoff with jitter (``backoff_s * 2**attempt``, capped, times 0.5-1.0), or after
  the receiver's ``Retry-After`` / Discord ``retry_after`` when that is longer; non-retryable
  failures (other 4xx, SMTP 5xx) are counted as ``failed`` at once;
- **dead endpoints**: an answer meaning the webhook is gone or refuses the credentials (HTTP
  401, 403, 404, 410) *suspends* the channel for ``dead_backoff_s`` (60 s), doubling on every
  further such answer up to ``max_dead_backoff_s`` (1 h). Its queue is kept (bounded, each job
  still under its deadline); after the pause the next job goes out as a probe: an answer that
  is not dead resumes the channel and resets the pause. So a revoked Discord webhook costs one
  request per pause, not one per alert (Discord bans IPs for repeated invalid requests), and a
  transient 403 from a proxy costs a pause, not the channel until restart;
- **deadline**: a job not delivered within ``deadline_s`` of its submission is ``dropped``
  and counted, as are jobs refused by a full lane or left over at shutdown;
- **stop(timeout)**: each lane's own thread sends what is left in its lane until the
  timeout (in parallel, so one hanging channel does not eat the others' time), then the rest
  is dropped and counted. A dispatcher never started sends its queues in the calling thread
  (no new threads during interpreter shutdown).

``stats()`` gives ``{channel: {"sent", "failed", "dropped", "retried", "queued", "last_ok",
"last_error", "suspended", "suspended_until"}}`` for the metrics JSON, the Prometheus output
and health. Clock, sleep and jitter are injected, so tests drive retries and deadlines without
waiting.
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
    suspended: str | None = None  # why the channel pauses (a dead webhook), while it does
    suspended_until: float | None = None  # on the dispatcher's clock

    def as_dict(self) -> dict[str, Any]:
        return {
            "sent": self.sent,
            "failed": self.failed,
            "dropped": self.dropped,
            "retried": self.retried,
            "last_ok": self.last_ok,
            "last_error": self.last_error,
            "suspended": self.suspended,
        }


@dataclass(order=True)
class _Job:
    ready_at: float
    seq: int
    notification: Notification = field(compare=False)
    expires_at: float = field(compare=False)
    attempt: int = field(compare=False, default=0)


class _Lane:
    """One channel's queue, pacing, suspension and sender thread."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self.name = channel.name
        self.heap: list[_Job] = []
        self.cv = threading.Condition()
        self.stats = ChannelStats()
        self.next_at = 0.0  # pacing / Retry-After: no send before this
        self.dead_backoff = 0.0  # the current suspension length, 0 while healthy
        self.thread: threading.Thread | None = None
        self.stopping = False
        self.drain_until: float | None = None  # set by stop(): send until then, then exit
        self.closed = False  # after stop(): late retries are counted dropped
        self.in_flight = False
        self.full_logged = float("-inf")


class Dispatcher:
    """Deliver notifications to channels, one background thread per channel (module docs)."""

    def __init__(
        self,
        channels: Iterable[Channel],
        *,
        queue_size: int = 1000,  # per channel
        deadline_s: float = 300.0,
        send_timeout_s: float = 10.0,
        backoff_s: float = 1.0,
        max_backoff_s: float = 60.0,
        dead_backoff_s: float = 60.0,
        max_dead_backoff_s: float = 3600.0,
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
        self.dead_backoff_s = dead_backoff_s
        self.max_dead_backoff_s = max_dead_backoff_s
        self._clock, self._sleep, self._jitter = now, sleep, jitter
        self._seq = itertools.count()
        self._lanes = [_Lane(c) for c in self.channels]
        self._started = False

    # -- producer side: never blocks ----------------------------------------------------
    def submit(self, notification: Notification) -> bool:
        """Queue ``notification`` for every accepting channel; False if any lane was full."""
        now = self._clock()
        complete = True
        for lane in self._lanes:
            if not lane.channel.accepts(notification):
                continue
            with lane.cv:
                if len(lane.heap) >= self.queue_size:
                    lane.stats.dropped += 1
                    complete = False
                    full, lane.full_logged = now - lane.full_logged >= 60.0, now
                else:
                    job = _Job(now, next(self._seq), notification, now + self.deadline_s)
                    heapq.heappush(lane.heap, job)
                    lane.cv.notify()
                    continue
            if full:  # one line a minute per channel, not a storm
                log.warning(
                    "alert queue of channel %s full (%d): dropping its notifications",
                    lane.name,
                    self.queue_size,
                )
        return complete

    def pending(self) -> int:
        return sum(len(lane.heap) for lane in self._lanes)

    def stats(self) -> dict[str, dict[str, Any]]:
        result = {}
        for lane in self._lanes:
            with lane.cv:
                doc = lane.stats.as_dict()
                doc["queued"] = len(lane.heap)
                until = lane.stats.suspended_until
                doc["suspended_for_s"] = (
                    None if until is None else round(max(0.0, until - self._clock()), 1)
                )
            result[lane.name] = doc
        return result

    @property
    def in_flight(self) -> str | None:
        """A channel a send is blocked on right now, if any (the first found)."""
        for lane in self._lanes:
            if lane.in_flight:
                return lane.name
        return None

    # -- the sender threads ---------------------------------------------------------------
    def start(self) -> None:
        if self._started:
            return
        self._started = True
        for lane in self._lanes:
            with lane.cv:
                lane.stopping = lane.closed = False
                lane.drain_until = None
                lane.thread = threading.Thread(
                    target=self._run, args=(lane,), name=f"voyagr-alert-{lane.name}", daemon=True
                )
                lane.thread.start()

    def _run(self, lane: _Lane) -> None:
        while True:
            with lane.cv:
                while True:
                    now = self._clock()
                    if lane.drain_until is not None and (not lane.heap or now >= lane.drain_until):
                        return
                    if lane.stopping and lane.drain_until is None:
                        return
                    if lane.heap:
                        delay = lane.heap[0].ready_at - now
                        if lane.drain_until is not None:
                            delay = min(delay, lane.drain_until - now)
                        if delay <= 0 and lane.heap[0].ready_at <= now:
                            job = heapq.heappop(lane.heap)
                            break
                        lane.cv.wait(max(delay, 0.0))
                    else:
                        lane.cv.wait()
            self._attempt(lane, job, until=lane.drain_until)

    def stop(self, timeout: float | None = None) -> None:
        """Send what is queued within ``timeout`` (each lane in its own thread, or in this
        thread when never started), then drop and count the rest."""
        budget = 30.0 if timeout is None else max(0.0, timeout)
        end = self._clock() + budget
        threads = []
        for lane in self._lanes:
            with lane.cv:
                lane.stopping = True
                lane.drain_until = end
                lane.cv.notify_all()
                if lane.thread is not None:
                    threads.append(lane.thread)
                lane.thread = None
        started = self._started
        self._started = False
        if started:
            wall_end = time.monotonic() + budget
            for thread in threads:
                thread.join(max(0.0, wall_end - time.monotonic()))
            self._drop_rest()
        else:
            self.flush(max(0.0, end - self._clock()), drop_rest=True)
        for lane in self._lanes:
            with lane.cv:
                lane.closed = True

    def flush(self, timeout: float, *, drop_rest: bool = False) -> bool:
        """Send queued jobs synchronously in this thread until empty or ``timeout``; True when
        all went out (for a dispatcher whose threads are not running, and for tests)."""
        end = self._clock() + timeout
        while True:
            now = self._clock()
            ready = [(lane.heap[0].ready_at, lane) for lane in self._lanes if lane.heap]
            if not ready:
                return True
            ready_at, lane = min(ready, key=lambda pair: pair[0])
            if ready_at >= end or now >= end:
                break
            if ready_at > now:
                self._sleep(ready_at - now)
                continue
            with lane.cv:
                job = heapq.heappop(lane.heap)
            self._attempt(lane, job, until=end)
        if drop_rest:
            self._drop_rest()
        return False

    def _drop_rest(self) -> None:
        dropped = 0
        for lane in self._lanes:
            with lane.cv:
                left, lane.heap = lane.heap, []
                lane.stats.dropped += len(left)
                dropped += len(left)
        if dropped:
            log.warning("alert dispatcher stopped: %d deliveries dropped", dropped)

    # -- one delivery attempt ------------------------------------------------------------
    def _requeue(self, lane: _Lane, job: _Job, ready_at: float) -> None:
        with lane.cv:
            if lane.closed:  # a send that outlived stop(): count it, nobody will send it
                lane.stats.dropped += 1
                return
            job.ready_at = ready_at
            heapq.heappush(lane.heap, job)
            lane.cv.notify()

    def _drop(self, lane: _Lane, job: _Job, why: str) -> None:
        with lane.cv:
            lane.stats.dropped += 1
        log.warning("alert %s dropped on channel %s: %s", job.notification.headline, lane.name, why)

    def _attempt(self, lane: _Lane, job: _Job, *, until: float | None) -> None:
        channel = lane.channel
        now = self._clock()
        if lane.next_at > now:  # paced, suspended or asked to wait
            if lane.next_at > job.expires_at:
                self._drop(lane, job, "deadline passed while the channel waits")
            else:
                self._requeue(lane, job, lane.next_at)
            return
        limit = job.expires_at if until is None else min(job.expires_at, until)
        timeout = min(self.send_timeout_s, limit - now)
        if timeout <= 0:
            self._drop(lane, job, "deadline passed")
            return
        lane.in_flight = True
        try:
            channel.send(job.notification, timeout)
        except DeliveryFailed as exc:
            self._failed(lane, job, exc, now)
        except Exception as exc:  # a bug in a channel must not kill the sender thread
            log.exception("alert channel %s raised", lane.name)
            self._failed(lane, job, DeliveryFailed(type(exc).__name__, retryable=False), now)
        else:
            self._resumed(lane)
            with lane.cv:
                stats = lane.stats
                stats.sent, stats.last_ok, stats.last_error = stats.sent + 1, True, None
        finally:
            lane.in_flight = False
            # a channel may ask for a longer pause after a send (Discord's rate-limit headers)
            pause = max(channel.min_interval_s, float(getattr(channel, "pause_s", 0.0)))
            lane.next_at = max(lane.next_at, self._clock() + pause)

    def _resumed(self, lane: _Lane) -> None:
        """An answer that is not 'dead' ends a suspension."""
        if lane.dead_backoff:
            lane.dead_backoff = 0.0
            with lane.cv:
                lane.stats.suspended = lane.stats.suspended_until = None
            log.warning("alert channel %s answers again: resumed", lane.name)

    def _failed(self, lane: _Lane, job: _Job, exc: DeliveryFailed, now: float) -> None:
        name = lane.name
        with lane.cv:
            stats = lane.stats
            stats.last_ok, stats.last_error = False, str(exc)
        if exc.dead:
            self._suspend(lane, job, exc, now)
            return
        self._resumed(lane)
        if not exc.retryable:
            with lane.cv:
                stats.failed += 1
            log.warning("alert channel %s failed (not retried): %s", name, exc)
            return
        delay = min(self.max_backoff_s, self.backoff_s * 2**job.attempt)
        delay *= 0.5 + 0.5 * self._jitter()
        if exc.retry_after_s is not None:
            delay = max(delay, exc.retry_after_s)
            lane.next_at = max(lane.next_at, now + exc.retry_after_s)
        if now + delay > job.expires_at:
            self._drop(lane, job, f"{exc}; deadline passed")
            return
        with lane.cv:
            stats.retried += 1
        log.info("alert channel %s: %s, retrying in %.1fs", name, exc, delay)
        job.attempt += 1
        self._requeue(lane, job, now + delay)

    def _suspend(self, lane: _Lane, job: _Job, exc: DeliveryFailed, now: float) -> None:
        """A dead answer: pause the channel, keep its queue, probe again after the pause."""
        pause = min(self.max_dead_backoff_s, max(self.dead_backoff_s, lane.dead_backoff * 2))
        lane.dead_backoff = pause
        lane.next_at = max(lane.next_at, now + pause)
        with lane.cv:
            stats = lane.stats
            stats.failed += 1
            stats.suspended = f"{exc}: the endpoint is gone or refuses the credentials"
            stats.suspended_until = now + pause
        log.error(
            "alert channel %s suspended for %.0fs: %s (fix its URL or credentials); its "
            "queue waits, then one notification probes it",
            lane.name,
            pause,
            exc,
        )
        if now + pause <= job.expires_at:  # this notification is the next probe
            self._requeue(lane, job, now + pause)
        else:
            self._drop(lane, job, f"{exc}; channel suspended past the deadline")
