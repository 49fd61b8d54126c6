"""Pure tests for inboxwatch.core.timewords: past times in words, true on the calendar of
the business's time zone, in two zones and across DST changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from inboxwatch.core.timewords import mail_date, when_words

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def at(tz: ZoneInfo, y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=tz)


@pytest.mark.parametrize("tz", [BERLIN, NEW_YORK], ids=["berlin", "new-york"])
@pytest.mark.parametrize(
    ("then", "now", "words"),
    [
        ((2026, 3, 6, 16, 30), (2026, 3, 6, 16, 31), "today"),
        ((2026, 3, 6, 16, 30), (2026, 3, 7, 8, 0), "yesterday"),  # 16 hours, a day back
        ((2026, 3, 5, 9, 0), (2026, 3, 6, 16, 0), "yesterday"),  # 31 hours, still yesterday
        ((2026, 3, 6, 16, 30), (2026, 3, 9, 9, 0), "on Friday"),  # the Monday
        ((2026, 3, 3, 10, 0), (2026, 3, 9, 9, 0), "on Tuesday"),  # six days back
        ((2026, 3, 2, 10, 0), (2026, 3, 9, 9, 0), "last week"),  # Monday to Monday
        ((2026, 3, 2, 10, 0), (2026, 3, 15, 9, 0), "last week"),  # Sunday: 13 days
        ((2026, 3, 1, 10, 0), (2026, 3, 9, 9, 0), "on 1 March"),  # a Sunday two weeks back
        ((2026, 3, 4, 10, 0), (2026, 6, 4, 9, 0), "on 4 March"),  # the day-90 step
        ((2025, 12, 20, 10, 0), (2026, 3, 20, 9, 0), "on 20 December"),
        ((2025, 3, 4, 10, 0), (2026, 3, 4, 9, 0), "on 4 March 2025"),
        ((2026, 3, 9, 10, 0), (2026, 3, 9, 9, 0), "today"),  # clocks out of step
    ],
)
def test_words(tz: ZoneInfo, then: tuple[int, ...], now: tuple[int, ...], words: str) -> None:
    assert when_words(at(tz, *then), at(tz, *now), tz) == words


def test_the_calendar_is_the_business_zone() -> None:
    """23:30 in New York on Friday is 05:30 on Saturday in Berlin: each zone's truth."""
    then = at(NEW_YORK, 2026, 3, 6, 23, 30)
    now = at(NEW_YORK, 2026, 3, 7, 10, 0)
    assert when_words(then, now, NEW_YORK) == "yesterday"
    assert when_words(then, now, BERLIN) == "today"
    monday = at(BERLIN, 2026, 3, 9, 9, 0)  # 03:00 in New York, still Monday
    assert when_words(then, monday, NEW_YORK) == "on Friday"
    assert when_words(then, monday, BERLIN) == "on Saturday"


@pytest.mark.parametrize(
    ("tz", "then", "now", "a_day_later"),
    [
        # Berlin springs forward on Sunday 29 March 2026 (02:00 -> 03:00): 24 hours after
        # Saturday 23:30 CET is Monday 00:30 CEST, two calendar days on.
        (BERLIN, (2026, 3, 28, 23, 30), (2026, 3, 29, 0, 30), "on Saturday"),
        # New York falls back on Sunday 1 November 2026 (02:00 -> 01:00): 24 hours after
        # Saturday 23:30 EDT is Sunday 22:30 EST, one calendar day on.
        (NEW_YORK, (2026, 10, 31, 23, 30), (2026, 11, 1, 0, 30), "yesterday"),
    ],
)
def test_across_dst_the_calendar_day_counts_not_hours(
    tz: ZoneInfo, then: tuple[int, ...], now: tuple[int, ...], a_day_later: str
) -> None:
    t0, t1 = at(tz, *then), at(tz, *now)
    assert when_words(t0, t1, tz) == "yesterday"  # an hour apart, but across midnight
    assert when_words(t0, t0.astimezone(UTC) + timedelta(hours=24), tz) == a_day_later
    assert when_words(t0, t1 + timedelta(days=2), tz) == f"on {t0:%A}"


def test_spring_forward_23_hour_day() -> None:
    """Saturday 00:30 to Sunday 23:59 in Berlin (a 23-hour Sunday): one calendar day."""
    then = at(BERLIN, 2026, 3, 28, 0, 30)
    now = at(BERLIN, 2026, 3, 29, 23, 59)
    assert when_words(then, now, BERLIN) == "yesterday"
    assert when_words(then, now + timedelta(minutes=2), BERLIN) == "on Saturday"


def test_mail_date() -> None:
    t = datetime(2026, 3, 4, 9, 0, tzinfo=UTC)
    assert mail_date(t, BERLIN) == "Wed, 4 Mar 2026 at 10:00"
    assert mail_date(t, NEW_YORK) == "Wed, 4 Mar 2026 at 04:00"
    summer = datetime(2026, 7, 1, 9, 0, tzinfo=UTC)
    assert mail_date(summer, BERLIN) == "Wed, 1 Jul 2026 at 11:00"  # CEST


def test_naive_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        when_words(datetime(2026, 3, 4), datetime(2026, 3, 5, tzinfo=UTC), BERLIN)


@given(
    then=st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2027, 12, 31)),
    hours=st.integers(min_value=0, max_value=24 * 200),
    tz=st.sampled_from([BERLIN, NEW_YORK]),
)
def test_words_are_true_on_the_calendar(then: datetime, hours: int, tz: ZoneInfo) -> None:
    t0 = then.replace(tzinfo=tz)
    t1 = t0.astimezone(UTC) + timedelta(hours=hours)  # elapsed time, not wall time
    words = when_words(t0, t1, tz)
    days = (t1.astimezone(tz).date() - t0.astimezone(tz).date()).days
    if words == "today":
        assert days == 0
    elif words == "yesterday":
        assert days == 1
    elif words == "last week":
        assert 7 <= days <= 13
    elif words.startswith("on ") and words[3:] in (
        ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
    ):
        assert 2 <= days <= 6 and words == f"on {t0.astimezone(tz):%A}"
    else:
        d = t0.astimezone(tz).date()
        assert words.startswith(f"on {d.day} {d:%B}") and days >= 7
