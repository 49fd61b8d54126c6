"""Past times in words, as a person writing at ``now`` would put them ("yesterday").

Pure: both instants are arguments, and the words are worked out on the calendar of one
time zone, the business's (the lead's zone is not known; the business's is the one its
sending hours, and so its "yesterday", are in). Calendar dates, not hours: a message
sent at 16:00 on Friday was sent "on Friday" when read at 09:00 on Monday, and
"yesterday" at 08:00 on Saturday although only 16 hours passed.

In the lead's language: English (the default) and German ("gestern", "am Freitag",
"letzte Woche", "am 4. März"); any other language code gets English. A time in the
future (clocks out of step) reads "today" rather than anything that could be false.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
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


@dataclass(frozen=True)
class _Words:
    today: str
    yesterday: str
    weekday: str  # "{weekday}"
    last_week: str
    day_month: str  # "{day}", "{month}"
    day_month_year: str  # and "{year}"
    weekdays: tuple[str, ...]
    months: tuple[str, ...]


_ENGLISH = _Words(
    "today",
    "yesterday",
    "on {weekday}",
    "last week",
    "on {day} {month}",
    "on {day} {month} {year}",
    WEEKDAYS,
    MONTHS,
)
_GERMAN = _Words(
    "heute",
    "gestern",
    "am {weekday}",
    "letzte Woche",
    "am {day}. {month}",
    "am {day}. {month} {year}",
    ("Montag", "Dienstag", "Mittwoch", "Donnerstag", "Freitag", "Samstag", "Sonntag"),
    (
        "Januar",
        "Februar",
        "März",
        "April",
        "Mai",
        "Juni",
        "Juli",
        "August",
        "September",
        "Oktober",
        "November",
        "Dezember",
    ),
)
_LANGUAGES = {"en": _ENGLISH, "de": _GERMAN}
#: Languages with their own time words (others get English).
LANGUAGES = frozenset(_LANGUAGES)


def _words(language: str) -> _Words:
    return _LANGUAGES.get(language, _ENGLISH)


def when_words(then: datetime, now: datetime, tz: ZoneInfo, language: str = "") -> str:
    """When ``then`` was, seen from ``now``: "today", "yesterday", "on Friday" (2-6 days
    ago), "last week" (7 or more days ago, in the previous Monday-to-Sunday week), else
    "on 4 March" (with the year when it is about a year back or more); in German "heute",
    "gestern", "am Freitag", "letzte Woche", "am 4. März" ("am 4. März 2025")."""
    if then.tzinfo is None or now.tzinfo is None:
        raise ValueError("when_words needs timezone-aware datetimes")
    w = _words(language)
    a = then.astimezone(tz).date()
    b = now.astimezone(tz).date()
    days = (b - a).days
    if days <= 0:
        return w.today
    if days == 1:
        return w.yesterday
    if days < 7:
        return w.weekday.format(weekday=w.weekdays[a.weekday()])
    monday = b - timedelta(days=b.weekday())
    if a >= monday - timedelta(days=7):
        return w.last_week
    if b - a >= _WITH_YEAR_AFTER and a.year != b.year:
        return _date(w.day_month_year, w, a)
    return _date(w.day_month, w, a)


def _date(pattern: str, w: _Words, a: date) -> str:
    return pattern.format(day=a.day, month=w.months[a.month - 1], year=a.year)


def mail_date(t: datetime, tz: ZoneInfo, language: str = "") -> str:
    """``t`` as a mail client's attribution line puts it: "Wed, 4 Mar 2026 at 10:00";
    in German "04.03.2026 um 10:00" (as in "Am 04.03.2026 um 10:00 schrieb ...")."""
    lt = t.astimezone(tz)
    if language == "de":
        return f"{lt:%d.%m.%Y} um {lt:%H:%M}"
    return (
        f"{WEEKDAYS[lt.weekday()][:3]}, {lt.day} {MONTHS[lt.month - 1][:3]} {lt.year} at {lt:%H:%M}"
    )


def attribution(t: datetime, who: str, tz: ZoneInfo, language: str = "") -> str:
    """The line above a quote: "On Wed, 4 Mar 2026 at 10:00, Jane wrote:"; in German
    "Am 04.03.2026 um 10:00 schrieb Jane:"."""
    if language == "de":
        return f"Am {mail_date(t, tz, language)} schrieb {who}:"
    return f"On {mail_date(t, tz, language)}, {who} wrote:"
