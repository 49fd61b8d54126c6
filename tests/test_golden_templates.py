"""Golden files: every shipped lead template, rendered as the lead receives it.

Two sample leads go through the whole default sequence with the shipped rule book: Jane,
who wrote directly on a Friday afternoon (so day 1 goes out on Monday), and Max, who used
the website form on a Wednesday, with no ``[identity] signature`` configured. Each email's
subject, date and body is compared with ``tests/golden/<lead>-<step>.txt``. The same two,
writing in German (the language detected from their words), get the German set
(``templates/de/``), compared with ``tests/golden/de/<lead>-<step>.txt``.

After changing a template on purpose, regenerate the files and read them as the lead
would before committing:

    INBOXWATCH_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_golden_templates.py
"""

from __future__ import annotations

import dataclasses
import itertools
import os
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from inboxwatch.core.cadence import next_wake, plan
from inboxwatch.core.classify import Classification, Kind
from inboxwatch.core.decide import Incoming, on_enquiry
from inboxwatch.core.letters import (
    ENQUIRY_LIMIT,
    QUOTE_LINES,
    Send,
    conversation_values,
    enquiry_phrase,
    quoted,
)
from inboxwatch.core.message import Address, parse_message
from inboxwatch.core.settings import Settings
from inboxwatch.core.timing import SendingWindow
from inboxwatch.userfiles.rulebook import load_rulebook

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).resolve().parent / "golden"
BOOK = load_rulebook(ROOT / "rules", ROOT / "templates")
BERLIN = ZoneInfo("Europe/Berlin")
UPDATE = bool(os.environ.get("INBOXWATCH_UPDATE_GOLDEN"))
LEAD_TEMPLATES = (
    "ack",
    "ack-form",
    "followup-day1",
    "nudge-day3",
    "value-day7",
    "final-day14",
    "reengage-day90",
)


def settings_(signature: str) -> Settings:
    return Settings(
        me=Address("sales@shop.test", "Shop Ltd"),
        owner="owner@shop.test",
        owner_alerts=True,
        window=SendingWindow(BERLIN),
        min_gap=timedelta(hours=20),
        ack_period=timedelta(days=7),
        hold_max=timedelta(days=30),
        signature=signature,
    )


def message(headers: str, body: str) -> bytes:
    head = headers.strip().replace("\n", "\r\n")
    return f"{head}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n".encode()


DIRECT_TEXT = (
    "Hello,\n\nwhat would a new oak kitchen cost, roughly 4 metres with an island?"
    "\nWe are moving in May.\n\nThanks,\nJane"
)
DIRECT = Incoming(
    parse_message(
        message(
            """
From: Jane Doe <jane@customer.test>
To: Shop Ltd <sales@shop.test>
Subject: Quote for a kitchen
Message-ID: <enq1@customer.test>
""",
            DIRECT_TEXT,
        )
    ),
    "1",
    datetime(2026, 3, 6, 16, 30, tzinfo=BERLIN),  # Friday afternoon
    Classification(
        Kind.ENQUIRY,
        ("matched rule 'direct-email'",),
        rule="direct-email",
        source="direct-email",
        lead=Address("jane@customer.test", "Jane Doe"),
        sequence="default",
        new_text=DIRECT_TEXT,
    ),
)
FORM_MESSAGE = "Do you deliver to Potsdam? We need six oak chairs by the end of April."
FORM = Incoming(
    parse_message(
        message(
            """
From: WordPress <wordpress@forms.test>
To: sales@shop.test
Subject: New contact form submission
Message-ID: <form1@forms.test>
""",
            f"Name: Max Muster\nEmail: max@customer.test\nPhone: +49 30 1234567\n"
            f"Message: {FORM_MESSAGE}\n\n--\nSent from the contact form on shop.test",
        )
    ),
    "2",
    datetime(2026, 3, 4, 10, 0, tzinfo=BERLIN),  # Wednesday morning
    Classification(
        Kind.ENQUIRY,
        ("matched rule 'website-form'",),
        rule="website-form",
        source="website-form",
        lead=Address("max@customer.test", "Max Muster"),
        fields={"phone": "+49 30 1234567", "message": FORM_MESSAGE},
        sequence="default",
        template="ack-form",
    ),
)
SAMPLES = {
    "direct": (DIRECT, settings_("Anna Berger\nShop Ltd")),
    "form": (FORM, settings_("")),
}
DE_DIRECT_TEXT = (
    "Guten Tag,\n\nwas würde eine neue Eichenküche kosten, etwa 4 Meter mit Kochinsel?"
    "\nWir ziehen im Mai um.\n\nViele Grüße\nJana Schmidt"
)
DE_FORM_MESSAGE = "Liefern Sie auch nach Potsdam? Wir brauchen sechs Eichenstühle bis Ende April."
SAMPLES_DE = {
    "direct": (
        Incoming(
            parse_message(
                message(
                    """
From: Jana Schmidt <jana@kunde.test>
To: Shop Ltd <sales@shop.test>
Subject: Angebot für eine Küche
Message-ID: <enq1@kunde.test>
""",
                    DE_DIRECT_TEXT,
                )
            ),
            "1",
            DIRECT.arrived,
            dataclasses.replace(
                DIRECT.c, lead=Address("jana@kunde.test", "Jana Schmidt"), new_text=DE_DIRECT_TEXT
            ),
        ),
        settings_("Anna Berger\nShop Ltd"),
    ),
    "form": (
        dataclasses.replace(
            FORM,
            c=dataclasses.replace(
                FORM.c,
                lead=Address("max@kunde.test", "Muster, Max"),
                fields={"phone": "+49 30 1234567", "message": DE_FORM_MESSAGE},
            ),
        ),
        settings_(""),
    ),
}


def whole_sequence(inc: Incoming, st: Settings) -> list[tuple[str, Send]]:
    """(template, send) for every email to the lead, a lead who never answers."""
    ids = itertools.count(1)
    d = on_enquiry(inc, BOOK, st, inc.arrived, lambda: f"<iw.{next(ids)}@shop.test>")
    assert d.lead is not None
    lead, now = d.lead, inc.arrived
    sends = [s for s in d.sends if s.out.purpose == "ack"]
    for _ in range(100):
        wake = next_wake(lead, BOOK, st, now)
        if wake is None:
            break
        now = max(now, wake)
        d = plan(lead, BOOK, st, now, lambda: f"<iw.{next(ids)}@shop.test>")
        lead = d.lead or lead
        sends += [s for s in d.sends if s.out.purpose == "followup"]
    steps = {s.name: s.template for s in BOOK.sequences["default"].steps}
    ack = inc.c.template or steps["ack"]
    return [(ack if s.step == "ack" else steps[s.step], s) for s in sends]


def as_text(send: Send) -> str:
    out = send.out
    return f"Subject: {out.subject}\nDate: {out.date:%a %d %b %Y %H:%M %Z}\n\n{out.body.strip()}\n"


RENDERED = {
    f"{sample}-{template}": as_text(send)
    for sample, (inc, st) in SAMPLES.items()
    for template, send in whole_sequence(inc, st)
}
GOLDEN_DE = GOLDEN / "de"
RENDERED_DE = {
    f"{sample}-{template}": as_text(send)
    for sample, (inc, st) in SAMPLES_DE.items()
    for template, send in whole_sequence(inc, st)
}


def test_every_lead_template_is_rendered() -> None:
    rendered = {name.split("-", 1)[1] for name in RENDERED}
    assert rendered == set(LEAD_TEMPLATES)
    assert set(LEAD_TEMPLATES) <= set(BOOK.templates)


@pytest.mark.parametrize("name", sorted(RENDERED))
def test_golden(name: str) -> None:
    path = GOLDEN / f"{name}.txt"
    got = RENDERED[name]
    if UPDATE:
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(got, encoding="utf-8")
    assert path.exists(), f"no {path.name}: regenerate (see this module's docstring)"
    assert got == path.read_text(encoding="utf-8"), (
        f"{name} differs from {path.name}; if on purpose, regenerate (module docstring)"
    )


def test_no_stale_golden_files() -> None:
    assert {p.stem for p in GOLDEN.glob("*.txt")} == set(RENDERED)
    assert {p.stem for p in GOLDEN_DE.glob("*.txt")} == set(RENDERED_DE)


def test_every_german_lead_template_is_rendered_from_the_german_set() -> None:
    rendered = {name.split("-", 1)[1] for name in RENDERED_DE}
    assert rendered == set(LEAD_TEMPLATES)
    assert set(LEAD_TEMPLATES) <= set(BOOK.languages["de"])
    for name, text in RENDERED_DE.items():
        first_line = text.split("\n\n", 2)[1].split("\n", 1)[0]
        who = "Jana Schmidt" if name.startswith("direct") else "Max Muster"  # "Muster, Max"
        assert first_line == f"Guten Tag {who},", name


@pytest.mark.parametrize("name", sorted(RENDERED_DE))
def test_golden_german(name: str) -> None:
    path = GOLDEN_DE / f"{name}.txt"
    got = RENDERED_DE[name]
    if UPDATE:
        GOLDEN_DE.mkdir(parents=True, exist_ok=True)
        path.write_text(got, encoding="utf-8")
    assert path.exists(), f"no de/{path.name}: regenerate (see this module's docstring)"
    assert got == path.read_text(encoding="utf-8"), (
        f"{name} differs from de/{path.name}; if on purpose, regenerate (module docstring)"
    )


@pytest.mark.parametrize("name", sorted(RENDERED_DE))
def test_german_mail_reads_like_a_person_wrote_it(name: str) -> None:
    text = RENDERED_DE[name]
    assert "{{" not in text and "}}" not in text
    assert "  " not in text.replace("\n", " \n")
    assert " ." not in text and " ," not in text
    body = text.split("\n\n", 1)[1]
    assert "Mit freundlichen Grüßen\n" in body and "Shop Ltd" in body
    assert " du " not in body.lower() and " dich " not in body.lower()  # formal "Sie"
    assert " ich " not in body.lower()  # "we" voice, as in English
    for english in ("Hi ", "Thank", " you", "wrote:", "yesterday", " on "):
        assert english not in body, english
    if "day" in name:
        assert "\n> " in body and " schrieb " in body
    if "final-day14" in name:
        assert "letzte" not in body.lower()  # day 90 still follows


@pytest.mark.parametrize("name", sorted(RENDERED))
def test_rendered_mail_reads_like_a_person_wrote_it(name: str) -> None:
    text = RENDERED[name]
    assert "{{" not in text and "}}" not in text
    assert "  " not in text.replace("\n", " \n")  # no hole where a value was empty
    assert " ." not in text and " ," not in text
    body = text.split("\n\n", 1)[1]
    assert "Shop Ltd" in body  # signed (by Anna, or by the company in "we" voice)
    assert "\nI " not in body and " I " not in body  # "we" voice: true whoever signs
    if "day" in name:  # follow-ups quote the lead's own words, so they read on their own
        assert "\n> " in body and "wrote:" in body
    if "final-day14" in name:
        assert "last" not in body.lower()  # day 90 still follows


# --- the values behind the words -----------------------------------------------------------


@pytest.mark.parametrize(
    ("subject", "message", "phrase"),
    [
        ("Quote for a kitchen", "", '"Quote for a kitchen"'),
        ("Re: AW: Quote for a kitchen", "", '"Quote for a kitchen"'),
        ("Hello", "Hi there,\nDo you deliver to Potsdam? Thanks", '"Do you deliver to Potsdam?"'),
        ("", "Hello, what would a kitchen cost? We move in May.", '"What would a kitchen cost?"'),
        ("", "Dear Sir or Madam,\n\nI need a new roof.", '"I need a new roof"'),
        ("", "", ""),
    ],
)
def test_enquiry_phrase(subject: str, message: str, phrase: str) -> None:
    assert enquiry_phrase(subject, message) == phrase


def test_a_long_first_sentence_is_shortened_at_a_word() -> None:
    phrase = enquiry_phrase("", "word " * 100)
    assert phrase.startswith('"Word word ') and phrase.endswith(' word..."')
    assert len(phrase) <= ENQUIRY_LIMIT + 5


def test_quoted_is_bounded() -> None:
    text = "\n".join(f"line {i}" for i in range(40))
    q = quoted(text, "On Wed, Jane wrote:").splitlines()
    assert q[0] == "On Wed, Jane wrote:" and q[1] == "> line 0"
    assert q[-1] == "> [...]" and len(q) == 1 + QUOTE_LINES + 1
    assert quoted("  \n ", "x") == ""


def test_signature_falls_back_to_our_name_and_words_are_at_queue_time() -> None:
    inc, _ = SAMPLES["direct"]
    ids = itertools.count(1)
    st = settings_("")
    d = on_enquiry(inc, BOOK, st, inc.arrived, lambda: f"<x{next(ids)}@s>")
    assert d.lead is not None
    assert d.lead.fields["message"] == DIRECT_TEXT  # kept for the follow-ups (bounded)
    monday = datetime(2026, 3, 9, 9, 0, tzinfo=BERLIN)
    v = conversation_values(d.lead, st.me, st.signature, monday, BERLIN)
    assert v["signature"] == "Shop Ltd"
    assert (v["you_wrote"], v["we_wrote"]) == ("on Friday", "on Friday")
    assert v["their_message"].startswith("On Fri, 6 Mar 2026 at 16:30, Jane Doe wrote:\n> Hello,")
