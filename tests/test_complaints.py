"""Abuse/spam complaints about our mail (issue 9, item 2): an opt-out, never answered."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from inboxwatch.adapters.memory_store import MemoryStore
from inboxwatch.core import route
from inboxwatch.core.actions import InboxMail, PutLead, Queue, Suppress
from inboxwatch.core.classify import Context, Kind, Known, classify
from inboxwatch.core.lead import Conversation, Ended, Lead
from inboxwatch.core.message import Address, parse_message
from inboxwatch.core.settings import Settings
from inboxwatch.core.timing import SendingWindow
from inboxwatch.userfiles.rulebook import RuleBook, load_rulebook

REPO = Path(__file__).resolve().parent.parent
MAIL = Path(__file__).parent / "mail" / "recognition"
NOW = datetime(2027, 3, 5, 12, 0, tzinfo=UTC)
OWN = frozenset({"hello@shop.example"})
CTX = Context(own=OWN, team=frozenset({"owner@shop.example"}))


@pytest.fixture(scope="module")
def book() -> RuleBook:
    return load_rulebook(REPO / "rules", REPO / "templates")


def raw(name: str) -> bytes:
    return (MAIL / name).read_bytes()


@pytest.mark.parametrize(
    ("name", "who"),
    [
        ("complaint_arf_abuse.eml", "tom.becker@example.org"),  # was auto_reply
        ("complaint_oldstyle_provider.eml", "anna.kovacs@oldmail.example"),  # was ignore
    ],
)
def test_complaints_are_recognised(name: str, who: str, book: RuleBook) -> None:
    c = classify(parse_message(raw(name)), book, CTX, NOW)
    assert c.kind is Kind.COMPLAINT, c.reasons
    assert c.complained == (who,)
    obj = json.loads(c.as_json())
    assert obj["kind"] == "complaint"
    assert obj["complaint"] == {"recipients": [who]}


@pytest.mark.parametrize("name", ["person_forwards_our_mail.eml", "abuse_desk_person_forward.eml"])
def test_a_person_forwarding_our_mail_is_not_a_complaint(name: str, book: RuleBook) -> None:
    c = classify(parse_message(raw(name)), book, CTX, NOW)
    assert c.kind is not Kind.COMPLAINT


def test_the_lead_is_found_by_the_original_message_id(book: RuleBook) -> None:
    """Providers that redact the recipient still leave the original's Message-ID."""
    text = (
        raw("complaint_arf_abuse.eml")
        .replace(b"To: Tom Becker <tom.becker@example.org>", b"To: redacted")
        .replace(b"Original-Rcpt-To: <tom.becker@example.org>", b"Original-Rcpt-To: redacted")
    )
    known = Known(by_message_id={"<iw.7f3e9a1c20@shop.example>": "tom.becker@example.org"})
    ctx = Context(own=OWN, team=frozenset(), known=known)
    c = classify(parse_message(text), book, ctx, NOW)
    assert c.kind is Kind.COMPLAINT and c.complained == ()
    assert c.lead_key == "tom.becker@example.org"


def _world(book: RuleBook) -> route.World:
    st = Settings(
        me=Address("hello@shop.example", "Shop"),
        owner="owner@shop.example",
        owner_alerts=True,
        window=SendingWindow(UTC),
        min_gap=timedelta(hours=20),
        ack_period=timedelta(days=7),
        hold_max=timedelta(days=30),
        own=OWN,
        team=frozenset({"owner@shop.example"}),
    )
    return route.World(book, st, ids=iter(f"<iw.n{i}@shop.example>" for i in range(99)).__next__)


def test_a_known_lead_complaining_is_an_opt_out(book: RuleBook) -> None:
    world = _world(book)
    store = MemoryStore()
    lead = Lead(
        address="tom.becker@example.org",
        name="Tom Becker",
        source="direct-email",
        rule="direct-email",
        sequence="default",
        arrived=NOW - timedelta(days=1),
        enquiry_id="<enq@example.org>",
        subject="Oak table",
        thread_subject="Oak table",
        thread=("<enq@example.org>", "<iw.7f3e9a1c20@shop.example>"),
    )
    with store.transaction() as state:
        state.put_lead(lead, None)
    with store.transaction() as state:
        actions = route.on_inbox(
            state, world, InboxMail("u1", NOW, False, raw("complaint_arf_abuse.eml")), NOW
        )
    suppress = [a for a in actions if isinstance(a, Suppress)]
    assert [s.address for s in suppress] == ["tom.becker@example.org"]
    queued = [a.item for a in actions if isinstance(a, Queue)]
    assert [q.rcpt for q in queued] == ["owner@shop.example"]  # never the lead
    assert b"COMPLAINT" in queued[0].raw
    put = [a.lead for a in actions if isinstance(a, PutLead)]
    assert put and put[0].ended is Ended.OPTED_OUT
    assert put[0].conversation is Conversation.CLOSED


def test_an_unknown_address_that_complained_is_suppressed(book: RuleBook) -> None:
    world = _world(book)
    with MemoryStore().transaction() as state:
        mail = InboxMail("u2", NOW, False, raw("complaint_oldstyle_provider.eml"))
        actions = route.on_inbox(state, world, mail, NOW)
    assert [a.address for a in actions if isinstance(a, Suppress)] == [
        "anna.kovacs@oldmail.example"
    ]
    assert not [a for a in actions if isinstance(a, Queue)]


def test_an_arf_report_names_the_recipient_even_without_the_original(book: RuleBook) -> None:
    """Original-Rcpt-To of the report part is enough (RFC 5965 §3.2), and a not-spam
    report (RFC 6650: the recipient wants the mail) is no complaint."""
    text = raw("complaint_arf_abuse.eml").decode()
    head, _, _ = text.partition("Content-Type: message/rfc822")
    redacted = head.replace(
        "Original-Rcpt-To: <tom.becker@example.org>", "Original-Rcpt-To: <x@y.example>"
    )
    c = classify(parse_message(redacted.encode()), book, CTX, NOW)
    assert c.kind is Kind.COMPLAINT and "x@y.example" in c.complained, (c.kind, c.reasons)
    not_spam = text.replace("Feedback-Type: abuse", "Feedback-Type: not-spam")
    c = classify(parse_message(not_spam.encode()), book, CTX, NOW)
    assert c.kind is not Kind.COMPLAINT
    assert c.kind not in (Kind.ENQUIRY, Kind.REPLY), (c.kind, c.reasons)
