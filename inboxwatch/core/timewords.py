"""Past times in words, as a person writing at ``now`` would put them ("yesterday").

Pure: both instants are arguments, and the words are worked out on the calendar of one
time zone, the business's (the lead's zone is not known; the business's is the one its
sending hours, and so its "yesterday", are in). Calendar dates, not hours: a message
sent at 16:00 on Friday was sent "on Friday" when read at 09:00 on Monday, and
"yesterday" at 08:00 on Saturday although only 16 hours passed.

Limits, on purpose: English only; a time in the future (clocks out of step) reads
"today" rather than anything that could be false.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
#: A date this far back or more also names its year ("on 4 March 2025").
_WITH_YEAR_AFTER = timedelta(days=300)


def when_words(then: datetime, now: datetime, tz: ZoneInfo) -> str:
    """When ``then`` was, seen from ``now``: "today", "yesterday", "on Friday" (2-6 days
    ago), "last week" (7 or more days ago, in the previous Monday-to-Sunday week), else
    "on 4 March" (with the year when it is about a year back or more)."""
    if then.tzinfo is None or now.tzinfo is None:
        raise ValueError("when_words needs timezone-aware datetimes")
    a = then.astimezone(tz).date()
    b = now.astimezone(tz).date()
    days = (b - a).days
    if days <= 0:
        return "today"
    if days == 1:
        return "yesterday"
    if days < 7:
        return f"on {WEEKDAYS[a.weekday()]}"
    monday = b - timedelta(days=b.weekday())
    if a >= monday - timedelta(days=7):
        return "last week"
    if b - a >= _WITH_YEAR_AFTER and a.year != b.year:
        return f"on {a.day} {MONTHS[a.month - 1]} {a.year}"
    return f"on {a.day} {MONTHS[a.month - 1]}"


def mail_date(t: datetime, tz: ZoneInfo) -> str:
    """``t`` as a mail client's attribution line puts it: "Wed, 4 Mar 2026 at 10:00"."""
    lt = t.astimezone(tz)
    return (
        f"{WEEKDAYS[lt.weekday()][:3]}, {lt.day} {MONTHS[lt.month - 1][:3]} {lt.year} at {lt:%H:%M}"
    )
