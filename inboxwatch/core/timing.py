"""Pure follow-up timing: when a cadence step is due and when the sending window opens.

Nothing here reads the clock or does IO: ``now`` and every instant are arguments, so the
cadence is testable in milliseconds and a time-lapse demo only needs a different
clock (:mod:`inboxwatch.service.clock`). All inputs must be timezone-aware; results are
aware datetimes in UTC.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

_WEEKDAYS = frozenset({0, 1, 2, 3, 4})
_SCAN_DAYS = 8  # today plus a full week: enough for any non-empty set of weekdays


def _aware(t: datetime, name: str = "datetime") -> datetime:
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {t!r}")
    return t


def _wall_to_utc(d: date, wall: time, tz: ZoneInfo, *, snap_gap: bool) -> datetime:
    """The instant the local wall clock in ``tz`` shows ``wall`` on ``d``, in UTC.

    Ambiguous (fall-back) times take the first occurrence (fold=0). A nonexistent
    (spring-forward) time is either shifted forward by the gap (``snap_gap=False``, like
    a person moving their diary entry) or snapped to the end of the gap, the first
    instant the clock reads at least ``wall`` (``snap_gap=True``, for window edges).
    """
    local = datetime.combine(d, wall.replace(fold=0), tzinfo=tz)
    before = local.astimezone(UTC)  # in a gap, fold=0 uses the pre-transition offset
    if not snap_gap or before.astimezone(tz).replace(tzinfo=None) == local.replace(tzinfo=None):
        return before
    # In a gap: the transition lies in (fold=1 instant, fold=0 instant]; transitions fall
    # on whole seconds, so bisect on POSIX seconds (a few dozen steps at most).
    lo = int(local.replace(fold=1).timestamp())
    hi = int(before.timestamp())
    after_offset = before.astimezone(tz).utcoffset()
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if datetime.fromtimestamp(mid, tz).utcoffset() == after_offset:
            hi = mid
        else:
            lo = mid
    return datetime.fromtimestamp(hi, UTC)


@dataclass(frozen=True)
class SendingWindow:
    """When follow-up emails may go out, in the business's time zone.

    Each sending day's window is the interval of instants [start, end) on that local date,
    so ``is_open`` and ``next_open`` agree even across DST transitions.
    """

    tz: ZoneInfo
    start: time = time(9, 0)  # local, inclusive
    end: time = time(17, 0)  # local, exclusive
    days: frozenset[int] = field(default=_WEEKDAYS)  # weekday() numbers; 0 = Monday
    #: Local dates that are not sending days (public holidays, the office closed).
    holidays: frozenset[date] = frozenset()

    def __post_init__(self) -> None:
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError("window start/end are local wall times; give them without tzinfo")
        if self.start.replace(fold=0) >= self.end.replace(fold=0):
            raise ValueError(f"window start {self.start} must be before end {self.end}")
        if not self.days:
            raise ValueError("window has no sending days")
        if not self.days <= frozenset(range(7)):
            raise ValueError(f"window days must be weekday() numbers 0-6, got {sorted(self.days)}")

    def is_sending_day(self, d: date) -> bool:
        return d.weekday() in self.days and d not in self.holidays

    def _interval(self, d: date) -> tuple[datetime, datetime]:
        return (
            _wall_to_utc(d, self.start, self.tz, snap_gap=True),
            _wall_to_utc(d, self.end, self.tz, snap_gap=True),
        )

    def is_open(self, t: datetime) -> bool:
        d = _aware(t).astimezone(self.tz).date()
        if not self.is_sending_day(d):
            return False
        opens, closes = self._interval(d)
        return opens <= t < closes

    def next_open(self, t: datetime) -> datetime:
        """``t`` if the window is open then, else the first instant after it opens (UTC)."""
        t = _aware(t).astimezone(UTC)
        first = t.astimezone(self.tz).date()
        # Each holiday can push the first sending day back by at most one day.
        scan = _SCAN_DAYS + len(self.holidays)
        for i in range(scan):
            d = first + timedelta(days=i)
            if not self.is_sending_day(d):
                continue
            opens, closes = self._interval(d)
            candidate = max(t, opens)
            if candidate < closes:
                return candidate
        raise ValueError(f"window never opens within {scan} days of {t}")  # pragma: no cover


def day_offset(arrival: datetime, days: int, tz: ZoneInfo) -> datetime:
    """``arrival`` plus ``days`` calendar days at the same local wall time in ``tz`` (UTC).

    Calendar days, not N*24h: 'day 1' means tomorrow at the time the lead wrote, which
    a 24h step would miss by an hour across a DST change.
    """
    local = _aware(arrival, "arrival").astimezone(tz)
    return _wall_to_utc(local.date() + timedelta(days=days), local.time(), tz, snap_gap=False)


def back_on(d: date, window: SendingWindow) -> datetime:
    """Window start on the first sending day on or after ``d`` ('back on 12 March')."""
    midnight = _wall_to_utc(d, time(0), window.tz, snap_gap=True)
    return window.next_open(midnight)


def first_business_day_after(d: date, window: SendingWindow) -> datetime:
    """Window start on the first sending day strictly after ``d`` ('out until 12 March')."""
    return back_on(d + timedelta(days=1), window)


def due_at(
    *,
    arrival: datetime,
    offset_days: int,
    window: SendingWindow,
    last_email_at: datetime | None,
    min_gap: timedelta,
    hold_until: datetime | None = None,
    respect_window: bool = True,
    gap_days: int = 0,
) -> datetime:
    """When a cadence step becomes due (UTC).

    The latest of: the step's calendar offset from arrival; ``gap_days`` calendar days
    (the difference of the two steps' ``day`` values) and ``min_gap`` after the last email
    really went out, so a step that slipped (weekend, holiday, hold, sending caps) pushes
    the later ones back and two follow-ups never land on consecutive days by accident;
    and ``hold_until`` (out-of-office). Then moved to the next open window instant.
    """
    if min_gap < timedelta(0):
        raise ValueError(f"min_gap must not be negative, got {min_gap}")
    if gap_days < 0:
        raise ValueError(f"gap_days must not be negative, got {gap_days}")
    bounds = [day_offset(arrival, offset_days, window.tz)]
    if last_email_at is not None:
        last = _aware(last_email_at, "last_email_at").astimezone(UTC)
        bounds.append(last + min_gap)
        if gap_days:
            bounds.append(day_offset(last, gap_days, window.tz))
    if hold_until is not None:
        bounds.append(_aware(hold_until, "hold_until").astimezone(UTC))
    due = max(bounds)
    return window.next_open(due) if respect_window else due
