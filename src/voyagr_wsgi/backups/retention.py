"""GFS retention with restic's semantics: a pure function from manifests to a plan.

Rules (1-3 are those of ``restic forget --keep-daily/-weekly/-monthly``; 4-6 add safeguards):

1. only ``verified`` backups take part; unverified ones are never deleted here;
2. buckets in UTC (or the policy's ``tz``, ``BACKUP_RETENTION_TIMEZONE``, so that "a day"
   is the team's day; restic uses local time) from the manifest's ``created_ts`` (never file
   mtimes or names):
   daily = date, weekly = ISO year + ISO week (``isocalendar()[:2]``, never calendar year +
   ISO week), monthly = (year, month);
3. newest first, one independent counter per tier, the newest backup of each *non-empty*
   bucket is kept until the tier's count is used up; tiers are OR-ed; a tier with count left
   at the end also keeps the oldest backup ("oldest monthly");
4. the ``min_keep`` newest verified backups are always kept (so the newest one is too);
5. ``pinned`` backups are never deleted and occupy no bucket;
6. a backup dated more than 5 minutes in the future aborts (a wrong clock could otherwise
   wipe history); an empty policy is refused; the caller aborts on an incomplete listing.

``plan(...).keep`` maps each kept id to its reasons, e.g. ``["daily", "weekly"]``: the dry
run prints it. Applying it after every backup keeps exactly what one batch run keeps.

Example::

    p = plan(listing.manifests, Policy(daily=7, weekly=4, monthly=12), now=time.time())
    for backup in p.delete: store.delete(backup)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, tzinfo
from typing import Generic, Protocol, TypeVar

from ..errors import BackupError

__all__ = ["FUTURE_TOLERANCE_S", "Plan", "Policy", "RetentionError", "plan"]

FUTURE_TOLERANCE_S = 300.0


class RetentionError(BackupError):
    """Retention refused to run; nothing was deleted."""


class Dated(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def created_ts(self) -> float: ...
    @property
    def verified(self) -> bool: ...
    @property
    def pinned(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class Policy:
    daily: int = 7
    weekly: int = 4
    monthly: int = 12
    min_keep: int = 3
    tz: tzinfo = UTC  # the calendar the buckets follow

    def __post_init__(self) -> None:
        if min(self.daily, self.weekly, self.monthly, self.min_keep) < 0:
            raise RetentionError("retention counts must be >= 0")
        if self.daily + self.weekly + self.monthly == 0:
            raise RetentionError("an empty retention policy is refused")


T = TypeVar("T", bound=Dated)


@dataclass(frozen=True, slots=True)
class Plan(Generic[T]):
    keep: dict[str, list[str]] = field(default_factory=dict)  # id -> reasons
    delete: tuple[T, ...] = ()


def _day(t: datetime) -> object:
    return t.date()


def _week(t: datetime) -> object:
    iso = date.isocalendar(t.date())
    return (iso.year, iso.week)


def _month(t: datetime) -> object:
    return (t.year, t.month)


_TIERS: tuple[tuple[str, Callable[[datetime], object]], ...] = (
    ("daily", _day),
    ("weekly", _week),
    ("monthly", _month),
)


def plan(backups: Iterable[T], policy: Policy, *, now: float) -> Plan[T]:
    """What to keep (with reasons) and what to delete among ``backups``."""
    items: Sequence[T] = list(backups)
    future = [b for b in items if b.created_ts > now + FUTURE_TOLERANCE_S]
    if future:
        raise RetentionError(
            f"backup {future[0].id} is dated in the future (clock wrong?); retention aborted"
        )
    keep: dict[str, list[str]] = {b.id: ["pinned"] for b in items if b.pinned}
    eligible = sorted(
        (b for b in items if b.verified and not b.pinned),
        key=lambda b: (b.created_ts, b.id),
        reverse=True,
    )
    counts = [policy.daily, policy.weekly, policy.monthly]
    last: list[object] = [None, None, None]
    for index, backup in enumerate(eligible):
        moment = datetime.fromtimestamp(backup.created_ts, policy.tz)
        for tier, (label, key) in enumerate(_TIERS):
            if counts[tier] <= 0:
                continue
            value = key(moment)
            oldest = index == len(eligible) - 1
            if value != last[tier] or oldest:
                reason = ("oldest " if value == last[tier] else "") + label
                keep.setdefault(backup.id, []).append(reason)
                last[tier] = value
                counts[tier] -= 1
    for backup in eligible[: policy.min_keep]:
        keep.setdefault(backup.id, []).append("min_keep")
    delete = tuple(b for b in reversed(eligible) if b.id not in keep)
    return Plan(keep, delete)
