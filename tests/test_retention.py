"""GFS retention with restic semantics (reference section 2): pure, table-driven."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voyagr_wsgi.backups.retention import Policy, RetentionError, plan


@dataclass(frozen=True)
class B:
    id: str
    created_ts: float
    verified: bool = True
    pinned: bool = False


def at(text: str, **kw: bool) -> B:
    moment = datetime.fromisoformat(text).replace(tzinfo=UTC)
    return B(moment.strftime("%Y%m%dT%H%M%SZ") + "-00000000", moment.timestamp(), **kw)


def reference_timeline() -> list[B]:
    """Daily 02:00 UTC 2024-11-01..2026-01-04, 2025-12-31 missed, a manual 2026-01-02 15:00."""
    items = []
    day = datetime(2024, 11, 1, 2, tzinfo=UTC)
    while day <= datetime(2026, 1, 4, 2, tzinfo=UTC):
        if day.date().isoformat() != "2025-12-31":
            items.append(at(day.strftime("%Y-%m-%dT%H:%M:%S")))
        day += timedelta(days=1)
    items.append(at("2026-01-02T15:00:00"))
    return items


REFERENCE_KEPT = {
    "2026-01-04T02": ["daily", "weekly", "monthly"],
    "2026-01-03T02": ["daily"],
    "2026-01-02T15": ["daily"],
    "2026-01-01T02": ["daily"],
    "2025-12-30T02": ["daily", "monthly"],
    "2025-12-29T02": ["daily"],
    "2025-12-28T02": ["daily", "weekly"],
    "2025-12-21T02": ["weekly"],
    "2025-12-14T02": ["weekly"],
    "2025-11-30T02": ["monthly"],
    **{
        f"2025-{m}T02": ["monthly"]
        for m in ("10-31", "09-30", "08-31", "07-31", "06-30", "05-31", "04-30", "03-31", "02-28")
    },
}

NOW = datetime(2026, 1, 4, 12, tzinfo=UTC).timestamp()


def label(b: B) -> str:
    return datetime.fromtimestamp(b.created_ts, UTC).strftime("%Y-%m-%dT%H")


def test_reference_timeline_of_430_backups_keeps_the_19_restic_keeps() -> None:
    items = reference_timeline()
    assert len(items) == 430
    result = plan(items, Policy(7, 4, 12, min_keep=3), now=NOW)
    by_id = {b.id: label(b) for b in items}
    kept = {by_id[i]: [r for r in reasons if r != "min_keep"] for i, reasons in result.keep.items()}
    assert kept == REFERENCE_KEPT
    assert len(result.keep) == 19
    assert len(result.delete) == 430 - 19


def test_applying_after_every_backup_keeps_what_one_batch_run_keeps() -> None:
    policy = Policy(7, 4, 12, min_keep=3)
    alive: list[B] = []
    for backup in sorted(reference_timeline(), key=lambda b: b.created_ts):
        alive.append(backup)
        doomed = {b.id for b in plan(alive, policy, now=backup.created_ts).delete}
        alive = [b for b in alive if b.id not in doomed]
    batch = plan(reference_timeline(), policy, now=NOW)
    assert {b.id for b in alive} == set(batch.keep)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(min_value=0, max_value=400 * 24), min_size=1, max_size=60, unique=True),
    st.integers(0, 4),
    st.integers(0, 3),
    st.integers(1, 4),
)
def test_incremental_equals_batch_for_any_timeline(
    hours: list[int], daily: int, weekly: int, monthly: int
) -> None:
    base = datetime(2024, 12, 20, tzinfo=UTC).timestamp()
    items = [B(f"{h:08d}", base + h * 3600.0) for h in sorted(hours)]
    policy = Policy(daily, weekly, monthly, min_keep=1)
    alive: list[B] = []
    for backup in items:
        alive.append(backup)
        doomed = {b.id for b in plan(alive, policy, now=backup.created_ts).delete}
        alive = [b for b in alive if b.id not in doomed]
    assert {b.id for b in alive} == set(plan(items, policy, now=items[-1].created_ts).keep)


def test_young_history_keeps_dailies_and_the_oldest() -> None:
    items = [at(f"2026-01-{d:02d}T02:00:00") for d in range(1, 11)]
    result = plan(items, Policy(7, 4, 12, min_keep=3), now=items[-1].created_ts)
    kept = sorted(label(b)[:10] for b in items if b.id in result.keep)
    assert kept == ["2026-01-01"] + [f"2026-01-{d:02d}" for d in range(4, 11)]
    oldest = next(b for b in items if label(b).startswith("2026-01-01"))
    assert "oldest monthly" in result.keep[oldest.id]


def test_weekly_buckets_use_iso_year_across_new_year() -> None:
    # 2024-12-30 is ISO 2025-W01 (with 2025-01-05); calendar year + ISO week would split them
    items = [at("2024-12-29T02:00:00"), at("2024-12-30T02:00:00"), at("2025-01-05T02:00:00")]
    result = plan(items, Policy(daily=0, weekly=2, monthly=0, min_keep=1), now=NOW)
    assert [label(b) for b in result.delete] == ["2024-12-30T02"]


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        pytest.param({"pinned": True}, ["pinned"], id="pinned kept, outside buckets"),
        pytest.param({"verified": False}, None, id="unverified neither kept nor deleted"),
    ],
)
def test_pinned_and_unverified_backups_are_never_deleted(
    extra: dict[str, bool], reason: list[str] | None
) -> None:
    items = [*reference_timeline(), at("2025-01-15T09:00:00", **extra)]
    special = items[-1]
    result = plan(items, Policy(7, 4, 12), now=NOW)
    assert special not in result.delete
    assert result.keep.get(special.id) == reason
    # the special one takes no bucket: the rest is planned exactly as without it
    assert len(result.delete) == 430 - 19


def test_min_keep_keeps_newest_whatever_the_buckets() -> None:
    items = [at(f"2026-01-04T0{h}:00:00") for h in range(6)]  # one day: one daily bucket
    result = plan(items, Policy(daily=1, weekly=0, monthly=0, min_keep=3), now=NOW)
    assert sorted(label(b) for b in items if b.id in result.keep) == [
        "2026-01-04T03",
        "2026-01-04T04",
        "2026-01-04T05",
    ]
    assert result.keep[items[-1].id] == ["daily", "min_keep"]


def test_a_future_dated_backup_aborts_retention() -> None:
    items = [*reference_timeline(), B("future", NOW + 3600)]
    with pytest.raises(RetentionError, match="future"):
        plan(items, Policy(), now=NOW)


def test_a_backup_within_clock_skew_tolerance_is_accepted() -> None:
    assert plan([B("soon", NOW + 60)], Policy(), now=NOW).keep


def test_an_empty_policy_is_refused() -> None:
    with pytest.raises(RetentionError, match="empty"):
        Policy(daily=0, weekly=0, monthly=0)


@pytest.mark.parametrize(
    ("zone", "times", "deleted"),
    [
        pytest.param("UTC", ("2025-12-10T23:30", "2025-12-11T01:30"), ["2025-12-07T12"],
                     id="UTC: two days"),
        pytest.param("America/New_York", ("2025-12-10T23:30", "2025-12-11T01:30"),
                     ["2025-12-10T23"], id="New York: one day (18:30, 20:30)"),
        pytest.param("UTC", ("2025-12-10T14:30", "2025-12-10T15:30"), ["2025-12-10T14"],
                     id="UTC: one day"),
        pytest.param("Asia/Tokyo", ("2025-12-10T14:30", "2025-12-10T15:30"), ["2025-12-07T12"],
                     id="Tokyo: two days (23:30, 00:30)"),
    ],
)  # fmt: skip
def test_daily_buckets_follow_the_retention_timezone(
    zone: str, times: tuple[str, str], deleted: list[str]
) -> None:
    from voyagr_wsgi.backups.config import BackupSettings

    tz = BackupSettings(database_path="app.db", retention_timezone=zone).retention_tz()
    # with daily=2, an older day's backup is deleted when the pair spans two days, and the
    # pair's older one when it is a single day
    items = [at("2025-12-07T12:00:00"), *(at(t + ":00") for t in times)]
    result = plan(items, Policy(daily=2, weekly=0, monthly=0, min_keep=1, tz=tz), now=NOW)
    assert [label(b) for b in result.delete] == deleted


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "../../etc/passwd", "Europe/"])
def test_an_unknown_retention_timezone_is_refused_naming_the_variable(zone: str) -> None:
    from voyagr_wsgi import ConfigurationError, Settings

    with pytest.raises(ConfigurationError, match="BACKUP_RETENTION_TIMEZONE"):
        Settings.from_env({"DATABASE_PATH": "app.db", "BACKUP_RETENTION_TIMEZONE": zone})
