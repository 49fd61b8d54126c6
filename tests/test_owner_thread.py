"""Pure tests for the owner's mail (issue 10): an alert's plain Reply is a good message
to the lead, in their conversation; tasks name a phone number, never an internal step."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from inboxwatch.core.lead import Conversation, Ended, Lead
from inboxwatch.core.letters import Send
from inboxwatch.core.message import Address
from inboxwatch.core.mime import reply_subject, to_bytes
from inboxwatch.core.owner_mail import owner_mail
from inboxwatch.core.settings import Settings
from inboxwatch.core.timing import SendingWindow
from inboxwatch.testing.mailfactory import parse
from inboxwatch.userfiles.rulebook import load_rulebook

ROOT = Path(__file__).resolve().parent.parent
BOOK = load_rulebook(ROOT / "rules", ROOT / "templates")
ME = Address("sales@shop.test", "Shop Ltd")
NOW = datetime(2026, 3, 4, 9, 0, tzinfo=UTC)
ST = Settings(
    me=ME,
    owner="owner@shop.test",
    owner_alerts=True,
    window=SendingWindow(UTC),
    min_gap=timedelta(hours=20),
    ack_period=timedelta(days=7),
    hold_max=timedelta(days=30),
)
WORDS = "Hi, what would a new roof cost? The house is in Potsdam."
#: The lead wrote; we acknowledged.
EMAILED = Lead(
    address="rita@customer.test",
    name="Rita Roof",
    source="direct-email",
    rule="direct-email",
    sequence="default",
    arrived=NOW,
    enquiry_id="<e1@customer.test>",
    subject="Quote for a new roof",
    thread_subject="Quote for a new roof",
    thread=("<e1@customer.test>", "<iw.ack@shop.test>"),
    fields={"message": WORDS},
)
#: A web form's notification: the lead never saw it; our acknowledgement began the thread.
FORM = dataclasses.replace(
    EMAILED,
    source="website-form",
    rule="website-form",
    enquiry_id="<notification@forms.test>",
    subject="",
    thread_subject="Your enquiry to Shop Ltd",
    thread=("<iw.ack@shop.test>",),
    answers_own_message=False,
    phone="+49 30 1234567",
)
INTERNAL = ("rule", "direct-email", "website-form", "Source", "sequence", "call-day0", "step")


def ids() -> Callable[[], str]:
    n = itertools.count(1)
    return lambda: f"<iw.alert{next(n)}@shop.test>"


def one(purpose: str, lead: Lead, **extra: str) -> Send:
    (send,) = owner_mail(purpose, lead, BOOK, ST, NOW, ids(), **extra)
    return send


def alert(lead: Lead = EMAILED) -> Send:
    return one("owner-alert", lead, excerpt=WORDS, arrived="2026-03-04 09:00", acked="sent")


def test_a_new_lead_alert_carries_the_leads_subject_and_conversation() -> None:
    out = alert().out
    assert out.subject == "Quote for a new roof"
    assert out.references == ("<e1@customer.test>", "<iw.ack@shop.test>")
    assert out.in_reply_to == "<iw.ack@shop.test>"
    assert out.reply_to == Address("rita@customer.test", "Rita Roof")
    assert out.to == Address("owner@shop.test")
    # The owner tells it apart by the sender's name, which a Reply does not copy.
    assert out.from_ == Address("sales@shop.test", "New lead: Rita Roof")


def test_a_plain_reply_to_the_alert_reads_right_to_the_lead() -> None:
    """What a mail client makes of the alert (RFC 5322 §3.6.4)."""
    msg = parse(to_bytes(alert().out))
    assert reply_subject(str(msg["Subject"])) == "Re: Quote for a new roof"
    refs = [*msg["References"].split(), msg["Message-ID"]]
    assert refs[:2] == ["<e1@customer.test>", "<iw.ack@shop.test>"]
    # The lead first; the business mailbox beside them, so the watched inbox sees the answer.
    reply_to = [a.addr_spec for a in msg["Reply-To"].addresses]
    assert reply_to == ["rita@customer.test", "sales@shop.test"]
    # What the reply quotes: the lead's words first, nothing internal.
    body = msg.get_body(("plain",)).get_content()
    assert body.startswith(WORDS)
    assert not any(word in body for word in INTERNAL)


def test_a_form_leads_alert_uses_the_subject_they_know_and_their_message() -> None:
    notification = "New submission from Website\nName: Rita Roof\nMessage: " + WORDS
    out = one("owner-alert", FORM, excerpt=notification, arrived="today", acked="sent").out
    assert out.subject == "Your enquiry to Shop Ltd"  # our acknowledgement's subject
    assert out.references == ("<iw.ack@shop.test>",)  # not the notification they never saw
    assert out.body.startswith(WORDS)
    assert "+49 30 1234567" in out.body
    assert not any(word in out.body for word in INTERNAL)


def test_a_reply_alert_answers_the_leads_reply() -> None:
    lead = EMAILED.end(NOW, Ended.REPLIED)
    out = one(
        "owner-reply", lead, excerpt="Yes please, Thursday.", answers="<r2@customer.test>"
    ).out
    assert out.subject == "Quote for a new roof"
    assert out.references[-1] == out.in_reply_to == "<r2@customer.test>"
    assert out.from_.name == "Rita Roof replied"
    assert out.body.startswith("Yes please, Thursday.")
    assert "answers" not in out.body and "stopped" not in out.body


def test_an_alert_nobody_answers_says_what_happened() -> None:
    lead = dataclasses.replace(EMAILED, conversation=Conversation.CLOSED)
    lead = lead.end(NOW, Ended.OPTED_OUT, "the lead asked not to be contacted")
    out = one("owner-reply", lead, excerpt="Please stop writing to me.").out
    assert out.subject == "Rita Roof asked for no more mail: nothing more will be sent"
    assert out.reply_to is None and out.lead == "rita@customer.test"
    complained = lead.log(NOW, "complaint", "abuse report")
    out = one("owner-reply", complained, excerpt="COMPLAINT: ...").out
    assert out.subject == "Rita Roof reported our mail as spam: no more mail to them"


def test_a_task_names_the_phone_number_and_no_step() -> None:
    out = one("owner-task", FORM, task="call", step="call-day0").out
    assert out.subject == "Please call Rita Roof: +49 30 1234567"
    assert "+49 30 1234567" in out.body
    assert not any(word in out.subject + out.body for word in INTERNAL)


def test_a_task_without_a_number_says_how_to_get_one() -> None:
    out = one("owner-task", EMAILED, task="call", step="call-day0").out
    assert out.subject == "Please call Rita Roof: no phone number yet"
    assert 'Reply to the "Quote for a new roof" alert' in out.body
    assert "call-day0" not in out.body and out.reply_to is None


def test_no_alerts_when_the_owner_turned_them_off() -> None:
    quiet = dataclasses.replace(ST, owner_alerts=False)
    assert owner_mail("owner-alert", EMAILED, BOOK, quiet, NOW, lambda: "<x@y>") == ()
