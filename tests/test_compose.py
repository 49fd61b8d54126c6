"""Outgoing mail: no header injection, RFC 2047, threading headers, Auto-Submitted."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import pytest

from inboxwatch.core.classify import Context, Kind, classify
from inboxwatch.core.letters import LeadView, Thread, excerpt, lead_values, to_lead
from inboxwatch.core.message import Address, parse_message
from inboxwatch.core.mime import (
    MARK_HEADER,
    Outgoing,
    clean_header,
    new_message_id,
    reply_subject,
    to_bytes,
)
from inboxwatch.core.owner_mail import to_owner
from inboxwatch.userfiles.rulebook import load_rulebook
from inboxwatch.userfiles.templates import Template

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "inboxwatch" / "testing" / "samples"
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
ME = Address("hello@shop.example", "Shop")
JANE = Address("jane@example.org", "Jane Doe")
BASE_HEADERS = {
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "Auto-Submitted",
    MARK_HEADER,
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
}
EVIL = [
    "\r\nBcc: evil@attacker.example",
    "\nBcc: evil@attacker.example",
    "\rBcc: evil@attacker.example",
    "\x00\r\nBcc: evil@attacker.example",
    "\r\n\r\nBcc: evil@attacker.example",
    "\r\n Bcc: evil@attacker.example",  # a fold
    "\u2028Bcc: evil@attacker.example",
    "\x85Bcc: evil@attacker.example",
    "\r\nContent-Type: text/html\r\n\r\n<h1>pwned</h1>",
]


def outgoing(**kw: object) -> Outgoing:
    values: dict[str, object] = {
        "purpose": "ack",
        "from_": ME,
        "to": JANE,
        "subject": "Thanks for your enquiry",
        "body": "Hello Jane,\n\nthanks.\n",
        "message_id": "<iw.1@shop.example>",
        "date": NOW,
    }
    values.update(kw)
    return Outgoing(**values)  # type: ignore[arg-type]


def parsed(raw: bytes) -> EmailMessage:
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def header_block(raw: bytes) -> list[str]:
    return raw.split(b"\r\n\r\n", 1)[0].decode("ascii").split("\r\n")


def assert_no_injection(raw: bytes, expected: set[str]) -> EmailMessage:
    msg = parsed(raw)
    assert set(msg.keys()) == expected
    assert len(msg.keys()) == len(expected)  # no header twice
    assert not msg.defects
    for line in header_block(raw):
        assert not line.lower().startswith(("bcc:", "cc:")), line
    assert [a.addr_spec for a in msg["To"].addresses] == [JANE.addr]
    return msg


# ---- header injection -----------------------------------------------------------------


@pytest.mark.parametrize("evil", EVIL)
def test_a_name_cannot_add_a_header(evil: str) -> None:
    raw = to_bytes(outgoing(to=Address(JANE.addr, "Jane" + evil)))
    msg = assert_no_injection(raw, BASE_HEADERS)
    assert msg["To"].addresses[0].display_name.startswith("Jane")


@pytest.mark.parametrize("evil", EVIL)
def test_a_subject_cannot_add_a_header(evil: str) -> None:
    msg = assert_no_injection(to_bytes(outgoing(subject="Quote" + evil)), BASE_HEADERS)
    assert msg["Subject"].startswith("Quote")
    assert msg.get_content_type() == "text/plain"


@pytest.mark.parametrize("evil", EVIL)
def test_a_reply_to_name_cannot_add_a_header(evil: str) -> None:
    out = outgoing(
        purpose="owner-alert", to=JANE, reply_to=Address("lead@example.net", "Lead" + evil)
    )
    msg = assert_no_injection(
        to_bytes(out), BASE_HEADERS | {"Reply-To", "X-Auto-Response-Suppress"}
    )
    assert [a.addr_spec for a in msg["Reply-To"].addresses] == ["lead@example.net"]


def test_a_display_name_that_looks_like_an_address_stays_a_name() -> None:
    raw = to_bytes(outgoing(to=Address(JANE.addr, 'Doe, "Jane" <evil@attacker.example>')))
    msg = assert_no_injection(raw, BASE_HEADERS)
    assert msg["To"].addresses[0].display_name == 'Doe, "Jane" <evil@attacker.example>'


def test_an_address_with_a_line_break_is_never_written() -> None:
    out = outgoing(to=Address("jane@example.org\r\nBcc: evil@attacker.example", "Jane"))
    try:
        raw = to_bytes(out)
    except ValueError:
        return  # refusing is fine
    assert_no_injection(raw, BASE_HEADERS)


@pytest.mark.parametrize("evil", EVIL)
def test_lead_fields_through_to_lead_cannot_add_headers(evil: str) -> None:
    template = Template("ack-form", "ack-form.toml", "Your enquiry: {{ product }}", "Hi {{ name }}")
    lead = LeadView(
        Address("jane@example.org", "Jane" + evil),
        "website-form",
        "website-form",
        "Subject" + evil,
        {"product": "Chairs" + evil},
    )
    out, _ = to_lead(
        purpose="ack",
        template=template,
        values=lead_values(lead, ME, "owner@shop.example"),
        me=ME,
        to=lead.address,
        thread=Thread("", ()),
        message_id="<iw.2@shop.example>",
        now=NOW,
        answers_lead_message=False,
    )
    msg = assert_no_injection(to_bytes(out), BASE_HEADERS)
    assert msg["Subject"].startswith("Your enquiry: Chairs")


def test_the_purpose_mark_is_one_clean_header() -> None:
    raw = to_bytes(outgoing(purpose="ack\r\nBcc: evil@attacker.example"))
    assert_no_injection(raw, BASE_HEADERS)


def test_clean_header() -> None:
    assert clean_header("a\r\nb\x00c\td\x7fe") == "a b c d e"
    assert clean_header("  many   spaces  ") == "many spaces"
    assert clean_header("x" * 50, 10) == "x" * 10


# ---- subjects --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Quote for 40 chairs", "Re: Quote for 40 chairs"),
        ("Re: Quote", "Re: Quote"),
        ("RE: Re: Quote", "Re: Quote"),
        ("Re: AW: Re: Quote", "Re: Quote"),
        ("AW: Angebot für 40 Stühle", "Re: Angebot für 40 Stühle"),
        ("Re:Re:Re: Quote", "Re: Quote"),
        ("Re[2]: Quote", "Re: Quote"),
        ("SV: VS: Antw: Quote", "Re: Quote"),
        ("Fwd: Re: Quote", "Re: Quote"),
        ("WG: Quote", "Re: Quote"),
        ("Re : Quote", "Re: Quote"),
        ("Research results", "Re: Research results"),
        ("Rechnung 42", "Re: Rechnung 42"),
        ("Awesome chairs", "Re: Awesome chairs"),
        ("Re:", "Re: your enquiry"),
        ("", "Re: your enquiry"),
        ("Re: Quote\r\nBcc: evil@attacker.example", "Re: Quote Bcc: evil@attacker.example"),
    ],
)
def test_reply_subject_does_not_stack_prefixes(subject: str, expected: str) -> None:
    assert reply_subject(subject) == expected
    assert reply_subject(reply_subject(subject)) == expected


# ---- non-ASCII -------------------------------------------------------------------------


def test_non_ascii_subject_and_names_are_encoded_and_round_trip() -> None:
    subject = "Ihr Angebot für 40 Stühle – Grüße aus Köln"
    out = outgoing(
        from_=Address("hello@shop.example", "Möbel Müller GmbH"),
        to=Address("zoe@example.org", "Zoë Ørsted"),
        subject=subject,
        body="Liebe Zoë,\n\nvielen Dank für Ihre Anfrage.\n",
    )
    raw = to_bytes(out)
    head = b"\r\n".join(raw.split(b"\r\n\r\n", 1)[:1])
    assert head.isascii()
    assert b"=?utf-8?" in head.lower()
    assert all(len(line) <= 78 for line in head.split(b"\r\n"))
    msg = parsed(raw)
    assert msg["Subject"] == subject
    assert msg["To"].addresses[0].display_name == "Zoë Ørsted"
    assert msg["From"].addresses[0].display_name == "Möbel Müller GmbH"
    body = msg.get_body(("plain",))
    assert body is not None and body.get_content().replace("\r\n", "\n") == (
        "Liebe Zoë,\n\nvielen Dank für Ihre Anfrage.\n"
    )


def test_a_long_subject_is_folded_and_round_trips() -> None:
    subject = "Quote " * 30
    msg = parsed(to_bytes(outgoing(subject=subject)))
    assert msg["Subject"] == subject.strip()
    assert all(len(line) <= 78 for line in header_block(to_bytes(outgoing(subject=subject))))


def test_html_alternative() -> None:
    msg = parsed(to_bytes(outgoing(html="<p>Hello &amp; welcome</p>")))
    assert msg.get_content_type() == "multipart/alternative"
    html = msg.get_body(("html",))
    text = msg.get_body(("plain",))
    assert html is not None and html.get_content().strip() == "<p>Hello &amp; welcome</p>"
    assert text is not None and "Hello Jane" in text.get_content()


# ---- threading and auto-submitted ------------------------------------------------------

ACK = Template("ack", "ack.toml", "Thanks for writing to {{ our_name }}", "Hi {{ first_name }}")


def lead_mail(**kw: object) -> tuple[Outgoing, Thread]:
    args: dict[str, object] = {
        "purpose": "ack",
        "template": ACK,
        "values": {"our_name": "Shop", "first_name": "Jane"},
        "me": ME,
        "to": JANE,
        "thread": Thread("Quote for 40 chairs", ("<their-1@example.org>",)),
        "message_id": "<iw.3@shop.example>",
        "now": NOW,
        "answers_lead_message": True,
    }
    args.update(kw)
    return to_lead(**args)  # type: ignore[arg-type]


def test_a_reply_in_the_leads_thread() -> None:
    out, thread = lead_mail()
    msg = parsed(to_bytes(out))
    assert msg["Subject"] == "Re: Quote for 40 chairs"
    assert msg["In-Reply-To"] == "<their-1@example.org>"
    assert msg["References"] == "<their-1@example.org>"
    assert msg["Message-ID"] == "<iw.3@shop.example>"
    assert msg["Auto-Submitted"] == "auto-replied"
    assert msg[MARK_HEADER] == "ack"
    assert "X-Auto-Response-Suppress" not in msg
    assert thread == Thread("Quote for 40 chairs", ("<their-1@example.org>", "<iw.3@shop.example>"))


def test_a_follow_up_references_the_whole_thread_and_does_not_stack_re() -> None:
    ids = ("<their-1@example.org>", "<iw.3@shop.example>")
    out, thread = lead_mail(
        purpose="followup",
        thread=Thread("Re: AW: Quote for 40 chairs", ids),
        message_id="<iw.4@shop.example>",
        answers_lead_message=False,
    )
    msg = parsed(to_bytes(out))
    assert msg["Subject"] == "Re: Quote for 40 chairs"
    assert msg["In-Reply-To"] == "<iw.3@shop.example>"
    assert msg["References"].split() == list(ids)
    assert msg["Auto-Submitted"] == "auto-generated"
    assert thread.message_ids == (*ids, "<iw.4@shop.example>")


def test_references_are_capped_to_the_latest() -> None:
    ids = tuple(f"<m{i}@example.org>" for i in range(30))
    out, _ = lead_mail(thread=Thread("x", ids))
    refs = parsed(to_bytes(out))["References"].split()
    assert refs == list(ids[-20:])


def test_a_new_thread_uses_the_template_subject_never_the_notification_subject() -> None:
    notification = 'Shop Website "Heat pumps?" [#4711 new contact form entry]'
    out, thread = lead_mail(thread=Thread(notification, ()), answers_lead_message=False, to=JANE)
    raw = to_bytes(out)
    msg = parsed(raw)
    assert msg["Subject"] == "Thanks for writing to Shop"
    assert "Heat pumps" not in raw.decode("ascii")
    assert "In-Reply-To" not in msg and "References" not in msg
    assert msg["Auto-Submitted"] == "auto-generated"
    assert thread == Thread("Thanks for writing to Shop", ("<iw.3@shop.example>",))
    # the next step answers our own first message
    out2, _ = lead_mail(thread=thread, message_id="<iw.5@shop.example>")
    msg2 = parsed(to_bytes(out2))
    assert msg2["Subject"] == "Re: Thanks for writing to Shop"
    assert msg2["In-Reply-To"] == "<iw.3@shop.example>"


def test_a_web_form_lead_never_sees_the_notification_subject() -> None:
    """Sample 02 (Contact Form 7) through classify, as the engine builds the first mail."""
    book = load_rulebook(REPO / "rules", REPO / "templates")
    raw = (SAMPLES / "02-web-form.eml").read_bytes()
    msg = parse_message(raw)
    c = classify(msg, book, Context(own=frozenset({"hello@shop.example"}), team=frozenset()), NOW)
    assert c.kind is Kind.ENQUIRY and c.lead is not None and c.template
    own = c.lead.addr == (msg.from_.addr if msg.from_ else "")
    assert not own
    lead = LeadView(c.lead, c.source, c.rule, msg.subject if own else "", c.fields)
    out, _ = to_lead(
        purpose="ack",
        template=book.templates[c.template],
        values=lead_values(lead, ME, "owner@shop.example"),
        me=ME,
        to=c.lead,
        thread=Thread(msg.subject if own else "", ()),
        message_id="<iw.6@shop.example>",
        now=NOW,
        answers_lead_message=False,
    )
    sent = parsed(to_bytes(out))
    assert sent["To"].addresses[0].addr_spec == "tom.becker@example.org"
    assert "Heat pumps" not in str(sent["Subject"]) and "Shop Website" not in str(sent["Subject"])
    assert "In-Reply-To" not in sent


def test_an_owner_alert() -> None:
    template = Template("owner-alert", "o.toml", "New lead: {{ name | email }}", "{{ excerpt }}")
    out = to_owner(
        purpose="owner-alert",
        template=template,
        values={"name": "Jane Doe", "excerpt": "Hello"},
        me=ME,
        owner="owner@shop.example",
        lead=JANE,
        message_id="<iw.7@shop.example>",
        now=NOW,
    )
    msg = parsed(to_bytes(out))
    assert msg["To"].addresses[0].addr_spec == "owner@shop.example"
    assert msg["Reply-To"].addresses[0].addr_spec == "jane@example.org"
    assert msg["From"].addresses[0].display_name == "inboxwatch (Shop)"
    assert msg["From"].addresses[0].addr_spec == "hello@shop.example"
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg["X-Auto-Response-Suppress"] == "All"
    assert msg["Subject"] == "New lead: Jane Doe"
    assert out.lead == "jane@example.org"


def test_date_and_message_id() -> None:
    msg = parsed(to_bytes(outgoing()))
    assert msg["Date"].datetime == NOW
    a, b = new_message_id("hello@shop.example"), new_message_id("hello@shop.example")
    assert a != b
    assert a.startswith("<") and a.endswith("@shop.example>")
    assert new_message_id("").endswith("@localhost>")


def test_excerpt() -> None:
    assert excerpt("  short  ") == "short"
    long = "word " * 400
    cut = excerpt(long, 100)
    assert len(cut) <= 106 and cut.endswith(" [...]") and cut.startswith("word word")


def test_restamp_sets_the_date_of_sending_and_leaves_the_body_alone() -> None:
    from datetime import UTC, datetime

    from inboxwatch.core.mime import restamp

    raw = to_bytes(outgoing(body="Date: this line is part of the body\n"))
    later = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    out = restamp(raw, later)
    msg = parsed(out)
    assert msg["Date"].datetime == later
    assert len(msg.get_all("Date")) == 1
    assert b"Date: this line is part of the body" in out.split(b"\r\n\r\n", 1)[1]
    folded = (
        b"From: a@b.example\r\nDate: Mon, 1 Jan 2026\r\n 00:00:00 +0000\r\nSubject: x\r\n\r\nhi\r\n"
    )
    assert restamp(folded, later).count(b"Date:") == 1
    assert b" 00:00:00 +0000" not in restamp(folded, later)
