from __future__ import annotations

import threading
import time

import pytest

from test_alert_support import FakeClock, notification, poll
from voyagr_wsgi.alerts.channels.base import DeliveryFailed
from voyagr_wsgi.alerts.dispatcher import Dispatcher
from voyagr_wsgi.alerts.model import Notification


class Scripted:
    """A channel whose attempts fail or succeed from a script (in-process, for timing)."""

    def __init__(
        self,
        clock: FakeClock | None = None,
        outcomes: list[Exception | None] | None = None,
        *,
        name: str = "scripted",
        min_interval_s: float = 0.0,
        hang: threading.Event | None = None,
    ) -> None:
        self.name, self.min_interval_s = name, min_interval_s
        self.clock = clock or time.monotonic
        self.outcomes = list(outcomes or [])
        self.calls: list[tuple[float, float, str]] = []
        self.sent: list[Notification] = []
        self.hang = hang

    def accepts(self, notification: Notification) -> bool:
        return notification.reason != "refresh"

    def send(self, notification: Notification, timeout: float) -> None:
        self.calls.append((self.clock(), timeout, threading.current_thread().name))
        if self.hang is not None:
            self.hang.wait(timeout)
            raise DeliveryFailed("network error (TimeoutError)")
        outcome = self.outcomes.pop(0) if self.outcomes else None
        if outcome is not None:
            raise outcome
        self.sent.append(notification)


def make(clock: FakeClock, *channels: Scripted, **kw: float) -> Dispatcher:
    return Dispatcher(
        channels,
        now=clock,
        sleep=clock.sleep,
        jitter=lambda: 1.0,
        **kw,  # type: ignore[arg-type]
    )


def test_retryable_failures_back_off_exponentially_then_deliver() -> None:
    clock = FakeClock()
    chan = Scripted(clock, [DeliveryFailed("HTTP 500")] * 3)
    d = make(clock, chan)
    d.submit(notification())
    assert d.flush(60)
    assert [t - 1000.0 for t, _, _ in chan.calls] == [0, 1, 3, 7]
    assert d.stats()["scripted"] == {
        "sent": 1,
        "failed": 0,
        "dropped": 0,
        "retried": 3,
        "last_ok": True,
        "last_error": None,
        "suspended": None,
        "queued": 0,
        "suspended_for_s": None,
    }


def test_backoff_has_jitter_between_half_and_full() -> None:
    clock = FakeClock()
    chan = Scripted(clock, [DeliveryFailed("HTTP 503")] * 2)
    d = Dispatcher([chan], now=clock, sleep=clock.sleep, jitter=lambda: 0.0, backoff_s=2.0)
    d.submit(notification())
    d.flush(60)
    assert [t - 1000.0 for t, _, _ in chan.calls] == [0, 1, 3]  # 2*0.5, then 4*0.5


@pytest.mark.parametrize(
    ("retry_after", "expected_gap"),
    [
        pytest.param(30.0, 30.0, id="Retry-After longer than backoff wins"),
        pytest.param(0.2, 1.0, id="backoff longer than Retry-After wins"),
    ],
)
def test_retry_after_is_honoured(retry_after: float, expected_gap: float) -> None:
    clock = FakeClock()
    chan = Scripted(clock, [DeliveryFailed("HTTP 429", retry_after_s=retry_after)])
    d = make(clock, chan)
    d.submit(notification())
    assert d.flush(120)
    assert chan.calls[1][0] - chan.calls[0][0] == pytest.approx(expected_gap)


def test_retry_after_paces_the_whole_channel() -> None:
    clock = FakeClock()
    chan = Scripted(clock, [DeliveryFailed("HTTP 429", retry_after_s=20.0)])
    d = make(clock, chan)
    d.submit(notification(summary="one"))
    d.submit(notification(summary="two"))
    d.flush(120)
    assert [round(t - 1000.0) for t, _, _ in chan.calls] == [0, 20, 20]


def test_non_retryable_failure_is_counted_failed_without_retry() -> None:
    clock = FakeClock()
    chan = Scripted(clock, [DeliveryFailed("HTTP 404", retryable=False)])
    d = make(clock, chan)
    d.submit(notification())
    d.flush(60)
    assert len(chan.calls) == 1
    stats = d.stats()["scripted"]
    assert (stats["sent"], stats["failed"], stats["last_ok"], stats["last_error"]) == (
        0,
        1,
        False,
        "HTTP 404",
    )


def test_a_dead_webhook_suspends_its_channel_then_a_probe_resumes_it() -> None:
    # a deleted Discord webhook answers 404 to every post, and each one counts towards
    # Discord's invalid-request ban: after the first, nothing is sent there for the pause;
    # a transient 403 from a proxy must not take the channel away until a restart either
    clock = FakeClock()
    dead = Scripted(clock, [DeliveryFailed("HTTP 404", dead=True)], name="discord")
    alive = Scripted(clock, name="slack")
    d = make(clock, dead, alive, dead_backoff_s=60.0)
    d.submit(notification(summary="one"))
    d.submit(notification(summary="two"))  # queued for discord before the 404 came back
    d.flush(59)
    assert len(dead.calls) == 1 and len(alive.calls) == 2
    stats = d.stats()["discord"]
    assert stats["suspended"] == "HTTP 404: the endpoint is gone or refuses the credentials"
    assert (stats["failed"], stats["queued"], stats["suspended_for_s"]) == (1, 2, 60.0)
    assert d.stats()["slack"]["suspended"] is None
    d.submit(notification(summary="three"))
    assert d.flush(120)  # after the pause: the probe answers, the queue goes out
    assert [n.alert.summary for n in dead.sent] == ["one", "two", "three"]
    assert dead.calls[1][0] - dead.calls[0][0] == 60.0
    after = d.stats()["discord"]
    assert (after["sent"], after["suspended"], after["dropped"]) == (3, None, 0)


def test_repeated_dead_answers_double_the_pause_and_cost_one_request_each() -> None:
    clock = FakeClock()
    dead = Scripted(clock, [DeliveryFailed("HTTP 401", dead=True)] * 3, name="webhook")
    d = make(clock, dead, dead_backoff_s=60.0, deadline_s=10_000.0)
    for i in range(5):
        d.submit(notification(summary=str(i)))
    d.flush(419)
    assert [round(t - 1000.0) for t, _, _ in dead.calls] == [0, 60, 180]  # pauses 60, 120
    assert d.stats()["webhook"]["suspended_for_s"] == 240.0  # then 240
    assert d.flush(1000)
    assert round(dead.calls[3][0] - 1000.0) == 420
    assert len(dead.calls) == 3 + 5 and d.stats()["webhook"]["sent"] == 5


def test_a_hanging_channel_delays_nobody_else() -> None:
    release = threading.Event()
    hanging = Scripted(name="webhook", hang=release)
    slack = Scripted(name="slack")
    d = Dispatcher([hanging, slack], send_timeout_s=20.0)
    d.start()
    try:
        d.submit(notification(summary="first"))
        poll(lambda: d.in_flight == "webhook", what="the webhook send to hang")
        started = time.monotonic()
        d.submit(notification(summary="second"))
        poll(lambda: len(slack.calls) == 2, what="slack to get both")
        assert time.monotonic() - started < 1.0
        assert len(hanging.calls) == 1
    finally:
        release.set()
        d.stop(timeout=1)


def test_a_flood_fills_only_the_slow_channels_queue() -> None:
    release = threading.Event()
    hanging = Scripted(name="webhook", hang=release)
    log = Scripted(name="log")
    d = Dispatcher([hanging, log], send_timeout_s=20.0, queue_size=100)
    d.start()
    try:
        for batch in range(40):  # 2000 alerts, as fast as the healthy channel takes them
            for i in range(50):
                d.submit(notification(summary=f"{batch}-{i}"))
            poll(lambda b=batch: len(log.calls) == 50 * (b + 1), what="the log channel")
        assert d.stats()["log"]["dropped"] == 0
        assert d.stats()["webhook"]["dropped"] >= 1899
    finally:
        release.set()
        d.stop(timeout=1)


def test_notification_past_its_deadline_is_dropped_and_counted() -> None:
    clock = FakeClock()
    chan = Scripted(clock, [DeliveryFailed("HTTP 500")] * 100)
    d = make(clock, chan, deadline_s=10.0)
    d.submit(notification())
    d.flush(1000)
    assert [round(t - 1000.0) for t, _, _ in chan.calls] == [0, 1, 3, 7]  # next at 15 > 10
    assert d.stats()["scripted"]["dropped"] == 1
    assert d.pending() == 0


def test_send_timeout_never_exceeds_remaining_deadline() -> None:
    clock = FakeClock()
    chan = Scripted(clock, [DeliveryFailed("HTTP 500")] * 3)
    d = make(clock, chan, deadline_s=8.0, send_timeout_s=5.0)
    d.submit(notification())
    d.flush(100)
    assert [timeout for _, timeout, _ in chan.calls] == [5.0, 5.0, 5.0, 1.0]


def test_slack_style_pacing_spaces_messages_one_second_apart() -> None:
    clock = FakeClock()
    slack = Scripted(clock, name="slack", min_interval_s=1.0)
    log = Scripted(clock, name="log")
    d = make(clock, slack, log)
    for i in range(3):
        d.submit(notification(summary=f"n{i}"))
    assert d.flush(60)
    assert [t - 1000.0 for t, _, _ in slack.calls] == [0, 1, 2]
    assert [t - 1000.0 for t, _, _ in log.calls] == [0, 0, 0]


def test_full_queue_drops_and_counts_instead_of_blocking() -> None:
    clock = FakeClock()
    chan = Scripted(clock)
    d = make(clock, chan, queue_size=2)
    results = [d.submit(notification(summary=str(i))) for i in range(5)]
    assert results == [True, True, False, False, False]
    assert d.stats()["scripted"]["dropped"] == 3


def test_refresh_notifications_only_reach_channels_that_accept_them() -> None:
    clock = FakeClock()
    chan = Scripted(clock)
    d = make(clock, chan)
    d.submit(notification(reason="refresh"))
    assert d.pending() == 0


def test_stop_sends_the_queue_synchronously_in_the_calling_thread() -> None:
    clock = FakeClock()
    chan = Scripted(clock, name="slack", min_interval_s=1.0)
    d = make(clock, chan)
    for i in range(3):
        d.submit(notification(summary=str(i)))
    d.stop(timeout=5)
    assert [name for _, _, name in chan.calls] == [threading.current_thread().name] * 3
    assert d.stats()["slack"]["sent"] == 3


def test_stop_drops_and_counts_what_cannot_be_sent_within_the_timeout() -> None:
    clock = FakeClock()
    chan = Scripted(clock, [DeliveryFailed("HTTP 429", retry_after_s=100.0)])
    d = make(clock, chan)
    d.submit(notification())
    d.submit(notification())
    d.stop(timeout=5)
    assert len(chan.calls) == 1
    assert d.stats()["scripted"]["dropped"] == 2
    assert clock.now - 1000.0 <= 5


def test_a_channel_bug_is_counted_and_does_not_kill_delivery() -> None:
    clock = FakeClock()
    broken = Scripted(clock, [RuntimeError("bug")], name="broken")
    good = Scripted(clock, name="good")
    d = make(clock, broken, good)
    d.submit(notification())
    d.flush(10)
    assert d.stats()["broken"]["failed"] == 1 and d.stats()["good"]["sent"] == 1


def test_sender_thread_delivers_in_background_and_submit_never_waits() -> None:
    release = threading.Event()
    hanging = Scripted(name="hanging", hang=release)
    d = Dispatcher([hanging], send_timeout_s=20.0, queue_size=100)
    d.start()
    try:
        started = time.perf_counter()
        for i in range(1000):
            d.submit(notification(summary=str(i)))
        elapsed = time.perf_counter() - started
        poll(lambda: len(hanging.calls) == 1, what="first send on the sender thread")
        assert hanging.calls[0][2] == "voyagr-alert-hanging"  # the channel's own thread
        assert elapsed < 0.5  # 1000 submits while the only channel hangs
        stats = d.stats()["hanging"]
        assert stats["dropped"] + d.pending() + len(hanging.calls) == 1000
        assert d.pending() >= 99 and stats["dropped"] >= 899  # the queue held 100 at most
    finally:
        release.set()
        d.stop(timeout=0.5)


def test_a_send_that_outlives_stop_is_counted_dropped() -> None:
    release = threading.Event()
    hanging = Scripted(name="hanging", hang=release)
    d = Dispatcher([hanging], send_timeout_s=20.0)
    d.start()
    d.submit(notification())
    poll(lambda: d.in_flight == "hanging", what="the send to start")
    d.stop(timeout=0.1)  # the sender thread is still blocked in send()
    assert d.stats()["hanging"]["dropped"] == 0
    release.set()  # the send fails now; its retry must not vanish uncounted
    poll(lambda: d.stats()["hanging"]["dropped"] == 1, what="the late retry counted")
    assert d.pending() == 0
