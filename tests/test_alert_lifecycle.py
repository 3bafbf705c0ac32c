from __future__ import annotations

import dataclasses

from voyagr_wsgi.alerts.lifecycle import Lifecycle
from voyagr_wsgi.alerts.model import Alert

ERR = Alert("high_error_rate", "errors", severity="critical")
ENGINE = Alert("upstream_failure_rate", "engine down", scope="engine")
MAPS = Alert("upstream_failure_rate", "maps down", scope="maps")
WALL = 1_767_225_600.0


def run(
    life: Lifecycle, t: float, *alerts: Alert, muted: bool = False
) -> list[tuple[str, str, str, int]]:
    notes = life.update(list(alerts), now=t, now_wall=WALL + t, muted=muted)
    return [
        (n.alert.alert_type + ":" + n.alert.scope, n.status, n.reason, n.suppressed) for n in notes
    ]


def test_first_firing_notifies_then_dedups_then_reports_suppressed_count() -> None:
    life = Lifecycle(dedup_s=300, refresh_s=10_000)
    assert run(life, 0, ERR) == [("high_error_rate:", "firing", "new_alert", 0)]
    for t in range(15, 300, 15):  # 19 evaluations inside the dedup window
        assert run(life, t, ERR) == []
    assert life.suppressed(ERR.key) == 19
    assert run(life, 300, ERR) == [("high_error_rate:", "firing", "repeat", 19)]
    assert life.suppressed(ERR.key) == 0


def test_scope_is_part_of_the_dedup_key() -> None:
    life = Lifecycle(dedup_s=300, refresh_s=10_000)
    assert run(life, 0, ENGINE) == [("upstream_failure_rate:engine", "firing", "new_alert", 0)]
    assert run(life, 15, ENGINE, MAPS) == [("upstream_failure_rate:maps", "firing", "new_alert", 0)]


def test_resolved_notice_once_when_condition_clears() -> None:
    life = Lifecycle(dedup_s=300, refresh_s=10_000)
    run(life, 0, ERR, ENGINE)
    assert run(life, 15, ENGINE) == [("high_error_rate:", "resolved", "resolved", 0)]
    assert run(life, 30, ENGINE) == []
    (note,) = life.update([], now=45, now_wall=WALL + 45)
    assert (note.status, note.ends_at, note.starts_at) == ("resolved", WALL + 45, WALL)


def test_a_re_fire_after_a_resolve_is_a_new_episode_sent_at_once() -> None:
    # before, the dedup window outlived the resolve: on-call's last message said RESOLVED
    # while the errors were back
    life = Lifecycle(dedup_s=300, refresh_s=10_000)
    assert run(life, 0, ERR)[0][2] == "new_alert"
    assert run(life, 15)[0][1] == "resolved"
    assert run(life, 30, ERR) == [("high_error_rate:", "firing", "new_alert", 0)]
    assert run(life, 45, ERR) == []  # within the episode: dedup
    assert run(life, 330, ERR) == [("high_error_rate:", "firing", "repeat", 1)]


def test_keep_firing_damps_flapping_into_one_episode() -> None:
    life = Lifecycle(dedup_s=300, refresh_s=10_000, keep_firing_s=60)
    assert run(life, 0, ERR) == [("high_error_rate:", "firing", "new_alert", 0)]
    flaps = [n for t in range(15, 181, 15) for n in run(life, t, *([ERR] if t % 30 == 0 else []))]
    assert flaps == []  # clear 15 s at a time, never 60 s: the same episode, deduplicated
    assert run(life, 195) == [] and run(life, 240) == []  # clear since 195: not yet
    assert [n[1] for n in run(life, 255)] == ["resolved"]  # 60 s clear
    assert run(life, 270, ERR) == [("high_error_rate:", "firing", "new_alert", 0)]


def test_too_little_traffic_keeps_the_state_instead_of_resolving() -> None:
    life = Lifecycle(dedup_s=300, refresh_s=10_000)
    run(life, 0, ERR)
    key = ERR.key
    assert life.update([], now=15, now_wall=WALL + 15, unknown={key}) == []
    assert key in life.active  # every request may still be failing: we cannot tell
    assert [n.status for n in life.update([], now=30, now_wall=WALL + 30)] == ["resolved"]


def test_a_resolved_notice_carries_the_current_figure() -> None:
    life = Lifecycle(dedup_s=300, refresh_s=10_000)
    run(life, 0, ERR)
    now_ok = dataclasses.replace(ERR, summary="Error rate 0.4% (4/1000)", value=0.004)
    (resolved,) = life.update([], now=15, now_wall=WALL + 15, observed={ERR.key: now_ok})
    assert resolved.status == "resolved" and resolved.alert.summary.startswith("Error rate 0.4%")
    assert resolved.alert.value == 0.004


def test_mute_sends_nothing_and_counts_what_it_held_back() -> None:
    life = Lifecycle(dedup_s=300, refresh_s=10_000)
    assert run(life, 0, ERR, muted=True) == []
    assert run(life, 15, ERR, muted=True) == []
    assert run(life, 30, ERR) == [("high_error_rate:", "firing", "new_alert", 2)]
    assert run(life, 45, muted=True) == []  # resolve during the mute is not announced
    assert life.active == {}


def test_alertmanager_refresh_while_firing_between_dedup_notifications() -> None:
    life = Lifecycle(dedup_s=300, refresh_s=60)
    run(life, 0, ERR)
    reasons = [r for t in range(15, 301, 15) for (_, _, r, _) in run(life, t, ERR)]
    assert reasons == ["refresh", "refresh", "refresh", "refresh", "repeat"]


def test_a_resolved_alert_is_re_sent_to_alertmanager_for_five_minutes() -> None:
    # as Prometheus does: an Alertmanager that missed the resolve (restart, lost request)
    # still gets it; the endsAt stays the moment it resolved
    life = Lifecycle(dedup_s=300, refresh_s=60)
    run(life, 0, ERR)
    (resolved,) = life.update([], now=30, now_wall=WALL + 30)
    assert (resolved.status, resolved.reason) == ("resolved", "resolved")
    sent = []
    for t in range(45, 421, 15):
        for note in life.update([], now=t, now_wall=WALL + t):
            sent.append((t, note.status, note.reason, note.ends_at))
    assert sent == [(t, "resolved", "refresh", WALL + 30) for t in (90, 150, 210, 270, 330)]


def test_re_firing_ends_the_resolved_re_sends() -> None:
    life = Lifecycle(dedup_s=0, refresh_s=60)
    run(life, 0, ERR)
    run(life, 30)  # resolved
    assert run(life, 60, ERR) == [("high_error_rate:", "firing", "new_alert", 0)]
    assert [
        r for t in range(75, 200, 15) for (_, st, r, _) in run(life, t, ERR) if st == "resolved"
    ] == []


def test_describe_lists_active_alerts_with_their_suppressed_count() -> None:
    life = Lifecycle(dedup_s=300)
    run(life, 0, ENGINE)
    run(life, 15, ENGINE)
    (row,) = life.describe()
    assert row["alert_type"] == "upstream_failure_rate" and row["scope"] == "engine"
    assert row["suppressed"] == 1 and row["notified"] is True
    assert row["since"] == "2026-01-01T00:00:00Z"


def test_state_carried_to_a_successor_keeps_dedup_and_resolves_once() -> None:
    import json

    first = Lifecycle(dedup_s=300, refresh_s=10_000)
    assert run(first, 0, ERR, ENGINE) != []
    run(first, 15, ERR, ENGINE)
    carried = json.loads(json.dumps(first.export()))  # through the state file's JSON
    # the successor's monotonic clock is unrelated to the first one's: only wall time is shared
    second = Lifecycle(dedup_s=300, refresh_s=10_000)
    assert second.restore([*carried, {"alert": "junk"}], now=5_000.0, now_wall=WALL + 30) == 2

    def after(t: float, *alerts: Alert) -> list[tuple[str, str, str, int]]:
        notes = second.update(list(alerts), now=5_000.0 + t - 30, now_wall=WALL + t)
        return [(n.alert.alert_type + ":" + n.alert.scope, n.status, n.reason, 0) for n in notes]

    assert after(45, ERR, ENGINE) == [], "already notified: no new_alert from the successor"
    assert after(60, ERR) == [("upstream_failure_rate:engine", "resolved", "resolved", 0)]
    assert after(300, ERR) == [("high_error_rate:", "firing", "repeat", 0)]
