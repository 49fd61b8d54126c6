"""Return dates read from out-of-office texts (pure)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from inboxwatch.core.message import parse_message
from inboxwatch.core.returndate import find_return_date

# Wednesday 3 March 2027, 10:00 in Berlin.
WED = datetime(2027, 3, 3, 10, 0, tzinfo=timezone(timedelta(hours=1)))
MON = datetime(2027, 3, 8, 9, 0, tzinfo=UTC)
D = date


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # until / through = last day away -> the next day
        ("I am out of the office until Monday.", D(2027, 3, 9)),
        ("I'm away till Friday, 12 March.", D(2027, 3, 13)),
        ("Out of office through March 12th, 2027.", D(2027, 3, 13)),
        ("I am on leave until 12th of March.", D(2027, 3, 13)),
        ("Out of office until 2027-03-12.", D(2027, 3, 13)),
        ("Ich bin bis Montag nicht im Büro.", D(2027, 3, 9)),
        ("Ich bin bis zum 3.4. nicht erreichbar.", D(2027, 4, 4)),
        ("Ich bin bis einschließlich 3.4.2027 im Urlaub.", D(2027, 4, 4)),
        ("Ich bin vom 1.4. bis 3.4. nicht im Büro.", D(2027, 4, 4)),
        ("Je suis absent jusqu'au lundi 5 avril inclus.", D(2027, 4, 6)),
        ("Estaré fuera de la oficina hasta el 5 de mayo.", D(2027, 5, 6)),
        ("Sarò fuori ufficio fino al 5 maggio.", D(2027, 5, 6)),
        ("Ik ben afwezig tot en met 5 maart.", D(2027, 3, 6)),
        ("Estarei ausente até 5 de março.", D(2027, 3, 6)),
        ("Estou de férias até segunda-feira.", D(2027, 3, 9)),
        ("Out of office 1-5 May.", D(2027, 5, 6)),
        ("Away from 1 May to 5 May.", D(2027, 5, 6)),
        ("Absent du 1er au 5 mai.", D(2027, 5, 6)),
        # back / return = the day itself
        ("I will be back on Tuesday.", D(2027, 3, 9)),
        ("I'm back on 12 March.", D(2027, 3, 12)),
        ("I will return to the office on March 15.", D(2027, 3, 15)),
        ("Back tomorrow.", D(2027, 3, 4)),
        ("I'll be back in the office on the 15th.", D(2027, 3, 15)),
        ("I won't be back until Monday 8 March.", D(2027, 3, 8)),
        ("Zurück am 12.3.", D(2027, 3, 12)),
        ("Ab dem 22.3. bin ich wieder für Sie erreichbar.", D(2027, 3, 22)),
        ("Am 22.3. bin ich wieder im Büro.", D(2027, 3, 22)),
        ("Ab morgen bin ich wieder da.", D(2027, 3, 4)),
        ("De retour le 5 mai.", D(2027, 5, 5)),
        ("Je serai de retour à partir du 6 mai.", D(2027, 5, 6)),
        ("Regresaré el lunes.", D(2027, 3, 8)),
        ("Estaré de vuelta el 10 de marzo.", D(2027, 3, 10)),
        ("Rientrerò il 10 marzo.", D(2027, 3, 10)),
        ("Vanaf 6 maart ben ik weer aanwezig.", D(2027, 3, 6)),
        ("Ik ben maandag weer terug.", D(2027, 3, 8)),
        ("Volto dia 10 de março.", D(2027, 3, 10)),
        # several dates: the latest first-day-back wins
        ("I am out from 1 May until 5 May and will return on 7 May.", D(2027, 5, 7)),
        ("Bis einschließlich 19.3. nicht im Büro. Ab dem 22.3. wieder da.", D(2027, 3, 22)),
        # wrapped lines are one sentence
        ("I am out of the office until\nFriday 12 March with limited access.", D(2027, 3, 13)),
        # Russian, Polish, Swedish (second real-world sweep)
        ("Я в отпуске до 15 марта 2027 г. включительно.", D(2027, 3, 16)),
        ("Я вернусь 10 мая.", D(2027, 5, 10)),
        ("Jestem poza biurem do 12 marca 2027.", D(2027, 3, 13)),
        ("Wracam 10 kwietnia.", D(2027, 4, 10)),
        ("Jag är tillbaka den 16 mars.", D(2027, 3, 16)),
        ("Jag är ledig till och med 5 april.", D(2027, 4, 6)),
    ],
)
def test_return_dates(text: str, expected: date) -> None:
    assert find_return_date(text, WED) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Thank you for your email. I am out of the office with limited access to email.",
        "Your message sent on 20 March was received.",  # not about returning
        "I have been away since 1 March.",
        "I am out of the office from 10 March.",  # start of absence, no end
        "I am out of office until 2026-03-01.",  # in the past
        "Back on 1 March 2027.",  # the day before it was received
        "I am on sabbatical until 12 March 2029.",  # more than a year ahead
        "Call me at 10.30 tomorrow morning.",  # a time, and no return word
        "Our phone is 555-1234, back office line 12-34.",
    ],
)
def test_no_return_date(text: str) -> None:
    assert find_return_date(text, WED) is None


def test_office_hours_are_not_an_absence() -> None:
    text = "Ich bin bis 5.3. im Urlaub.\n\nSie erreichen uns Montag bis Freitag von 9 bis 17 Uhr."
    assert find_return_date(text, WED) == D(2027, 3, 6)
    text = "Back on 4 March. Office hours: Monday to Friday, 9am-5pm."
    assert find_return_date(text, WED) == D(2027, 3, 4)
    # a weekday range without hours is an absence
    assert find_return_date("I am on holiday from Monday to Friday.", WED) == D(2027, 3, 13)
    assert find_return_date("Away from Friday to Tuesday.", WED) == D(2027, 3, 10)


def test_quoted_original_is_ignored() -> None:
    text = (
        "I am out of the office until Friday.\n\n"
        "-----Original Message-----\nFrom: Shop\nSent: 1 March\n"
        "Could you confirm delivery until 20 April?\n"
    )
    assert find_return_date(text, WED) == D(2027, 3, 6)
    assert find_return_date("Out until 5 March.\n> back on 20 April", WED) == D(2027, 3, 6)


def test_year_rolls_over() -> None:
    dec = datetime(2026, 12, 20, 12, tzinfo=UTC)
    assert find_return_date("Back on 2 January.", dec) == D(2027, 1, 2)
    assert find_return_date("Out of office until 31 December.", dec) == D(2027, 1, 1)
    assert find_return_date("Zurück am 7.1.", dec) == D(2027, 1, 7)
    assert find_return_date("Away from 28 December to 3 January.", dec) == D(2027, 1, 4)


def test_weekday_relative_to_the_day_received() -> None:
    # received on a Monday: "until Monday" is today (back tomorrow), "back Monday" is next week
    assert find_return_date("I am out until Monday.", MON) == D(2027, 3, 9)
    assert find_return_date("I will be back on Monday.", MON) == D(2027, 3, 15)
    # the received time is read in its own time zone: Sunday 23:30 in New York
    ny = datetime(2027, 3, 7, 23, 30, tzinfo=timezone(timedelta(hours=-5)))
    assert find_return_date("Back on Monday.", ny) == D(2027, 3, 8)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Out of office until 03/04/2027.", D(2027, 4, 4)),  # day first by default
        ("Out of office until 04/13/2027.", D(2027, 4, 14)),  # only m/d is a date
        ("Out of office until 04/03/2027 5pm EST.", D(2027, 4, 4)),  # US time zone
        ("Back Friday 04/09/2027.", D(2027, 4, 9)),  # the weekday fits only m/d
        ("Back on Friday 09/04/2027.", D(2027, 4, 9)),  # the weekday fits only d/m
        ("Back on 12.03.27.", D(2027, 3, 12)),  # dots are always d.m.
    ],
)
def test_numeric_dates(text: str, expected: date) -> None:
    assert find_return_date(text, WED) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("ooo_exchange.eml", D(2027, 3, 13)),
        ("ooo_gmail_vacation.eml", D(2027, 3, 15)),
        ("ooo_dovecot_sieve.eml", D(2027, 3, 9)),
        ("ooo_german.eml", D(2027, 3, 22)),
        ("autoresponder_helpdesk.eml", None),
    ],
)
def test_sample_messages(name: str, expected: date | None) -> None:
    msg = parse_message((Path(__file__).parent / "mail" / name).read_bytes())
    assert find_return_date(msg.body_text, WED) == expected


def test_english_do_is_no_until() -> None:
    assert find_return_date("If you do need me, 12 March works.", WED) is None
