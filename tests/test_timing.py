"""Pure tests for inboxwatch.core.timing: windows, calendar-day offsets, DST, clocks."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from inboxwatch.core.timing import (
    SendingWindow,
    back_on,
    day_offset,
    due_at,
    first_business_day_after,
)
from inboxwatch.service.clock import Clock, FixedClock, ScaledClock, SystemClock

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
ALL_DAYS = frozenset(range(7))
GAP = timedelta(hours=20)


def local(
    tz: ZoneInfo, y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0, fold: int = 0
) -> datetime:
    return datetime(y, mo, d, h, mi, s, tzinfo=tz, fold=fold)


def utc(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, s, tzinfo=UTC)


W = SendingWindow(BERLIN)


# --- window edges -------------------------------------------------------------------------


def test_window_start_inclusive_end_exclusive() -> None:
    # 2026-03-04 is a Wednesday.
    assert not W.is_open(local(BERLIN, 2026, 3, 4, 8, 59, 59))
    assert W.is_open(local(BERLIN, 2026, 3, 4, 9, 0))
    assert W.is_open(local(BERLIN, 2026, 3, 4, 16, 59, 59))
    assert not W.is_open(local(BERLIN, 2026, 3, 4, 17, 0))


def test_next_open_returns_t_itself_in_utc_when_open() -> None:
    t = local(BERLIN, 2026, 3, 4, 11, 15)
    got = W.next_open(t)
    assert got == t and got.tzinfo is UTC


def test_next_open_before_and_after_hours() -> None:
    assert W.next_open(local(BERLIN, 2026, 3, 4, 7, 0)) == local(BERLIN, 2026, 3, 4, 9, 0)
    assert W.next_open(local(BERLIN, 2026, 3, 4, 17, 0)) == local(BERLIN, 2026, 3, 5, 9, 0)


def test_weekend_skipped() -> None:
    saturday = local(BERLIN, 2026, 3, 7, 10, 0)
    assert not W.is_open(saturday)
    assert W.next_open(saturday) == local(BERLIN, 2026, 3, 9, 9, 0)  # Monday


def test_weekend_allowed_when_configured() -> None:
    w = SendingWindow(BERLIN, days=ALL_DAYS)
    saturday = local(BERLIN, 2026, 3, 7, 10, 0)
    assert w.is_open(saturday)
    assert w.next_open(local(BERLIN, 2026, 3, 6, 18, 0)) == local(BERLIN, 2026, 3, 7, 9, 0)


def test_single_day_window_scans_a_full_week() -> None:
    w = SendingWindow(BERLIN, days=frozenset({0}))
    monday_evening = local(BERLIN, 2026, 3, 9, 18, 0)
    assert w.next_open(monday_evening) == local(BERLIN, 2026, 3, 16, 9, 0)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"start": time(17, 0), "end": time(9, 0)},
        {"start": time(9, 0), "end": time(9, 0)},
        {"days": frozenset()},
        {"days": frozenset({7})},
    ],
)
def test_bad_window_is_config_error(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        SendingWindow(BERLIN, **kwargs)  # type: ignore[arg-type]


def test_naive_datetime_rejected() -> None:
    with pytest.raises(ValueError, match="aware"):
        W.next_open(datetime(2026, 3, 4, 9, 0))


# --- the weekend pile-up ------------------------------------------------------------------


def test_friday_night_day1_monday_and_day3_not_same_day() -> None:
    arrival = local(BERLIN, 2026, 3, 6, 22, 0)  # Friday
    day1 = due_at(arrival=arrival, offset_days=1, window=W, last_email_at=arrival, min_gap=GAP)
    assert day1 == local(BERLIN, 2026, 3, 9, 9, 0)  # Monday
    day3 = due_at(arrival=arrival, offset_days=3, window=W, last_email_at=day1, min_gap=GAP)
    assert day3 == local(BERLIN, 2026, 3, 10, 9, 0)  # Tuesday, not with day 1
    # The gap is what does it when day 3's calendar time is inside Monday's window.
    morning = local(BERLIN, 2026, 3, 6, 10, 0)
    d1 = due_at(arrival=morning, offset_days=1, window=W, last_email_at=morning, min_gap=GAP)
    d3 = due_at(arrival=morning, offset_days=3, window=W, last_email_at=d1, min_gap=GAP)
    no_gap = due_at(arrival=morning, offset_days=3, window=W, last_email_at=d1, min_gap=timedelta())
    assert (d1, no_gap) == (local(BERLIN, 2026, 3, 9, 9, 0), local(BERLIN, 2026, 3, 9, 10, 0))
    assert d3 == local(BERLIN, 2026, 3, 10, 9, 0)


# --- DST ----------------------------------------------------------------------------------


def test_window_start_in_spring_forward_gap_opens_at_gap_end() -> None:
    w = SendingWindow(BERLIN, start=time(2, 30), end=time(17, 0), days=ALL_DAYS)
    # 2026-03-29 (Sunday): 02:00 -> 03:00, so 02:30 never happens; opens 03:00 CEST.
    assert w.next_open(local(BERLIN, 2026, 3, 29, 0, 0)) == utc(2026, 3, 29, 1, 0)
    assert not w.is_open(utc(2026, 3, 29, 0, 59, 59))
    assert w.is_open(utc(2026, 3, 29, 1, 0))
    assert w.next_open(local(BERLIN, 2026, 3, 30, 0, 0)) == utc(2026, 3, 30, 0, 30)


def test_day_offset_keeps_wall_time_across_spring_forward() -> None:
    arrival = utc(2026, 3, 28, 9, 0)  # Saturday 10:00 CET
    assert day_offset(arrival, 1, BERLIN) == utc(2026, 3, 29, 8, 0)  # Sunday 10:00 CEST
    assert day_offset(arrival, 1, BERLIN).tzinfo is UTC


def test_day_offset_into_gap_shifts_forward_by_gap() -> None:
    arrival = local(BERLIN, 2026, 3, 28, 2, 30)
    assert day_offset(arrival, 1, BERLIN) == local(BERLIN, 2026, 3, 29, 3, 30)


def test_fall_back_ambiguous_start_is_first_occurrence() -> None:
    w = SendingWindow(NEW_YORK, start=time(1, 30), end=time(17, 0), days=ALL_DAYS)
    # 2026-11-01: 01:00-02:00 happens twice in New York; open at the first 01:30 (EDT).
    assert w.next_open(local(NEW_YORK, 2026, 11, 1, 0, 0)) == utc(2026, 11, 1, 5, 30)
    # During the repeated hour it stays open: one contiguous window per local day.
    assert w.is_open(local(NEW_YORK, 2026, 11, 1, 1, 10, fold=1))


def test_day_offset_across_fall_back() -> None:
    arrival = local(NEW_YORK, 2026, 10, 31, 1, 30)  # EDT, 05:30 UTC
    assert day_offset(arrival, 1, NEW_YORK) == utc(2026, 11, 1, 5, 30)  # ambiguous -> fold=0
    evening = local(NEW_YORK, 2026, 10, 31, 18, 0)  # EDT, 22:00 UTC
    assert day_offset(evening, 1, NEW_YORK) == utc(2026, 11, 1, 23, 0)  # EST: 25h later


# --- whole cadence, holds, out-of-office --------------------------------------------------


@pytest.mark.parametrize("tz", [BERLIN, NEW_YORK])
@pytest.mark.parametrize("arrival_day", range(1, 8))
def test_full_schedule_increasing_in_window_and_spaced(tz: ZoneInfo, arrival_day: int) -> None:
    window = SendingWindow(tz)
    arrival = local(tz, 2026, 3, arrival_day + 20, 23, 45)  # spans US and EU DST changes
    previous: datetime | None = None
    for offset in (0, 1, 3, 7, 14, 90):
        due = due_at(
            arrival=arrival, offset_days=offset, window=window, last_email_at=previous, min_gap=GAP
        )
        assert window.is_open(due)
        if previous is not None:
            assert due >= previous + GAP
        previous = due


def test_hold_until_respected() -> None:
    arrival = local(BERLIN, 2026, 3, 2, 10, 0)
    hold = local(BERLIN, 2026, 3, 12, 11, 0)
    got = due_at(
        arrival=arrival, offset_days=1, window=W, last_email_at=None, min_gap=GAP, hold_until=hold
    )
    assert got == hold


def test_respect_window_false_returns_raw_bound() -> None:
    arrival = local(BERLIN, 2026, 3, 6, 22, 0)
    got = due_at(
        arrival=arrival,
        offset_days=1,
        window=W,
        last_email_at=None,
        min_gap=GAP,
        respect_window=False,
    )
    assert got == local(BERLIN, 2026, 3, 7, 22, 0) and got.tzinfo is UTC


def test_negative_min_gap_rejected() -> None:
    with pytest.raises(ValueError):
        due_at(
            arrival=utc(2026, 1, 1),
            offset_days=0,
            window=W,
            last_email_at=None,
            min_gap=timedelta(hours=-1),
        )


def test_back_on_and_first_business_day_after() -> None:
    friday, saturday = date(2026, 3, 6), date(2026, 3, 7)
    assert back_on(friday, W) == local(BERLIN, 2026, 3, 6, 9, 0)
    assert back_on(saturday, W) == local(BERLIN, 2026, 3, 9, 9, 0)
    assert first_business_day_after(friday, W) == local(BERLIN, 2026, 3, 9, 9, 0)
    assert first_business_day_after(saturday, W) == local(BERLIN, 2026, 3, 9, 9, 0)
    assert first_business_day_after(date(2026, 3, 4), W) == local(BERLIN, 2026, 3, 5, 9, 0)


# --- clocks -------------------------------------------------------------------------------


def test_scaled_clock_one_real_second_is_one_day() -> None:
    ticks = iter([100.0, 101.0, 101.5])
    start = utc(2026, 3, 1)
    clock = ScaledClock(86400, start=start, monotonic=lambda: next(ticks))
    assert clock.scale == 86400
    assert clock.now() == start + timedelta(days=1)
    assert clock.now() == start + timedelta(days=1, hours=12)
    with pytest.raises(ValueError):
        ScaledClock(0.5)


def test_fixed_clock_set_and_advance() -> None:
    clock = FixedClock(local(BERLIN, 2026, 3, 1, 12, 0))
    assert clock.now() == utc(2026, 3, 1, 11, 0) and clock.now().tzinfo is UTC
    clock.advance(timedelta(hours=5))
    assert clock.now() == utc(2026, 3, 1, 16, 0)
    clock.set(utc(2026, 4, 1))
    assert clock.now() == utc(2026, 4, 1)


def test_clocks_satisfy_protocol() -> None:
    for clock in (SystemClock(), FixedClock(utc(2026, 1, 1)), ScaledClock(10)):
        assert isinstance(clock, Clock)
        assert clock.now().tzinfo is UTC


# --- property -----------------------------------------------------------------------------

YEAR_SECONDS = 365 * 86400
gaps = st.integers(0, 72 * 3600).map(lambda s: timedelta(seconds=s))


@given(
    tz=st.sampled_from([BERLIN, NEW_YORK]),
    arrival_s=st.integers(0, YEAR_SECONDS),
    offset=st.integers(0, 120),
    last_s=st.none() | st.integers(-86400, 130 * 86400),
    min_gap=gaps,
    hold_s=st.none() | st.integers(0, 130 * 86400),
    weekends=st.booleans(),
)
def test_due_at_property(
    tz: ZoneInfo,
    arrival_s: int,
    offset: int,
    last_s: int | None,
    min_gap: timedelta,
    hold_s: int | None,
    weekends: bool,
) -> None:
    window = SendingWindow(tz, days=ALL_DAYS) if weekends else SendingWindow(tz)
    arrival = utc(2026, 1, 1) + timedelta(seconds=arrival_s)
    last = None if last_s is None else arrival + timedelta(seconds=last_s)
    hold = None if hold_s is None else arrival + timedelta(seconds=hold_s)
    got = due_at(
        arrival=arrival,
        offset_days=offset,
        window=window,
        last_email_at=last,
        min_gap=min_gap,
        hold_until=hold,
    )
    bounds = [day_offset(arrival, offset, tz)]
    bounds += [] if last is None else [last + min_gap]
    bounds += [] if hold is None else [hold]
    assert all(got >= b for b in bounds)
    assert window.is_open(got)
    assert got < max(bounds) + timedelta(days=4)
    assert got.tzinfo is UTC
