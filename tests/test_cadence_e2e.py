"""The cadence end to end on the real servers, with a clock the test moves (issue 4)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from harness import RunningDaemon, smtp_send

from inboxwatch.core.actions import Queue
from inboxwatch.core.lead import Ended
from inboxwatch.service.clock import FixedClock
from inboxwatch.testing.devservers import MailServers
from inboxwatch.testing.mailfactory import mail, parse, reply_to

pytestmark = pytest.mark.servers
#: Every day and hour open, so "day N" is exactly N days after the enquiry.
ALWAYS_OPEN = '[sending]\nwindow_start = "00:00"\nwindow_end = "23:59"\n' + (
    'days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]\n'
)


class Cadence:
    """A daemon on a fixed clock, one lead, and helpers to move through the days."""

    def __init__(
        self, servers: MailServers, daemon: RunningDaemon, clock: FixedClock, lead: str
    ) -> None:
        self.servers, self.daemon, self.clock, self.lead = servers, daemon, clock, lead
        self.enquiry = b""

    def start_with_enquiry(self, subject: str = "Quote for a new roof") -> bytes:
        self.daemon.start()
        self.enquiry = mail(
            self.lead, self.daemon.address, subject, "Hi, what would it cost?", name="Rita Roof"
        )
        self.servers.deliver(self.daemon.shop, self.enquiry, sender=self.lead)
        self.daemon.wait_until(lambda: self.emails(), what="ack")
        return self.enquiry

    def emails(self) -> list[bytes]:
        """Lead-facing mail so far (ack and follow-ups), oldest first."""
        return [
            m.data
            for m in self.daemon.sent_to(self.lead)
            if parse(m.data)["X-Inboxwatch"] in ("ack", "followup")
        ]

    def owner_mail(self, purpose: str) -> list[bytes]:
        owner = self.servers.address("owner")
        return [m.data for m in self.daemon.sent_to(owner, purpose)]

    def go_to_day(self, day: float) -> None:
        """Move the clock to `day` days after the enquiry and run one whole tick then."""
        self.clock.set(self.t0 + timedelta(days=day))
        self.daemon.tick()

    @property
    def t0(self) -> datetime:
        lead = self.daemon.lead(self.lead)
        assert lead is not None
        return lead.arrived

    def lead_reply(self, body: str, to_message: bytes) -> bytes:
        raw = reply_to(to_message, self.lead, body, name="Rita Roof")
        smtp_send(self.servers, self.lead, self.daemon.address, raw)
        return raw


def make_cadence(servers: MailServers, shop: str, folder: Path, lead: str, **kw: Any) -> Cadence:
    """A daemon on a fixed clock (every hour a sending hour) and one lead."""
    # Not the wall clock: the window closes 23:59-24:00, so "day 1.01" of a test begun at
    # 23:50 fell into it. Mid-morning and in the past (Dovecot dates mail now, and mail
    # dated after the clock counts as arriving at the clock's "now").
    clock = FixedClock(datetime(2026, 3, 2, 10, 0, tzinfo=UTC))
    rd = RunningDaemon(
        servers, shop, folder, extra=ALWAYS_OPEN, clock=clock, poll_seconds=3600, **kw
    )
    return Cadence(servers, rd, clock, servers.address(lead))


@pytest.fixture
def cadence(
    mail_servers: MailServers, tmp_path: Path, fresh_user: str, shop: str
) -> Iterator[Cadence]:
    made = make_cadence(mail_servers, shop, tmp_path / "iw", fresh_user)
    yield made
    made.daemon.stop()


def test_day1_follow_up_is_threaded_and_a_reply_stops_the_sequence(cadence: Cadence) -> None:
    enquiry = cadence.start_with_enquiry()
    cadence.go_to_day(0.5)
    assert len(cadence.emails()) == 1  # nothing before day 1
    cadence.go_to_day(1.01)
    cadence.daemon.wait_until(lambda: len(cadence.emails()) >= 2, what="day-1 follow-up")
    ack, follow = (parse(m) for m in cadence.emails())
    first = parse(enquiry)["Message-ID"]
    assert follow["In-Reply-To"] == ack["Message-ID"]
    assert follow["References"].split() == [first, ack["Message-ID"]]
    assert follow["Subject"] == "Re: Quote for a new roof"
    assert follow["Auto-Submitted"] == "auto-generated"
    # Copies of both are in Sent, as the lead would see them in a normal conversation.
    sent = cadence.servers.wait_for(cadence.daemon.shop, 2, folder="Sent")
    assert {parse(m)["Message-ID"] for m in sent} == {ack["Message-ID"], follow["Message-ID"]}
    # The lead answers from their mail client, quoting our follow-up.
    cadence.lead_reply("Yes please, call me on Thursday.", cadence.emails()[-1])
    alert = cadence.daemon.wait_until(lambda: cadence.owner_mail("owner-reply"), what="alert")
    body = parse(alert[0]).get_body(("plain",)).get_content()
    assert "Yes please, call me on Thursday." in body
    assert "> " not in body.split("Yes please")[1].split("Reply to this email")[0]
    for day in (3.1, 7.1, 14.1):
        cadence.go_to_day(day)
    assert len(cadence.emails()) == 2
    lead = cadence.daemon.lead(cadence.lead)
    assert lead is not None and lead.ended is Ended.REPLIED
    assert lead.conversation.value == "waiting_us"
    # Long after, the ended lead leaves the live state for the archive; still nothing sent.
    cadence.go_to_day(95)
    assert len(cadence.emails()) == 2
    assert cadence.daemon.lead(cadence.lead) is None
    assert [x.ended for x in cadence.daemon.archived()] == [Ended.REPLIED]


def test_a_lead_who_never_answers_gets_every_step_then_is_closed(cadence: Cadence) -> None:
    cadence.start_with_enquiry()
    for day in (1.01, 3.01, 7.01, 14.01, 20, 90.01, 96, 98):
        cadence.go_to_day(day)
    subjects = [parse(m)["X-Inboxwatch"] for m in cadence.emails()]
    assert subjects == ["ack"] + ["followup"] * 5
    tasks = cadence.owner_mail("owner-task")
    assert len(tasks) == 2 and all("call" in parse(t)["Subject"] for t in tasks)
    lead = cadence.daemon.lead(cadence.lead)
    assert lead is not None and lead.ended is Ended.NO_RESPONSE and lead.dormant
    assert lead.conversation.value == "closed"
    assert set(lead.steps_done) == {
        "ack",
        "call-day0",
        "followup-day1",
        "call-day3",
        "nudge-day3",
        "value-day7",
        "final-day14",
        "reengage-day90",
    }


def _auto_reply(cadence: Cadence, body: str) -> None:
    ours = parse(cadence.emails()[-1])
    raw = mail(
        cadence.lead,
        cadence.daemon.address,
        f"Automatic reply: {ours['Subject']}",
        body,
        headers={"Auto-Submitted": "auto-replied", "In-Reply-To": ours["Message-ID"]},
    )
    cadence.servers.deliver(cadence.daemon.shop, raw, sender=cadence.lead)


def test_out_of_office_without_date_does_not_stop_the_cadence(cadence: Cadence) -> None:
    cadence.start_with_enquiry()
    _auto_reply(cadence, "I am out of the office with limited access to email.")
    cadence.go_to_day(0.2)
    cadence.go_to_day(1.01)
    cadence.daemon.wait_until(lambda: len(cadence.emails()) == 2, what="day-1 follow-up")
    lead = cadence.daemon.lead(cadence.lead)
    assert lead is not None and lead.is_active
    assert any(e.what == "automatic reply" for e in lead.events)
    assert cadence.owner_mail("owner-reply") == []


def test_dated_out_of_office_holds_the_cadence_until_after_the_return(cadence: Cadence) -> None:
    cadence.start_with_enquiry()
    back = (cadence.t0 + timedelta(days=10)).date()
    _auto_reply(cadence, f"I am on holiday and back on {back:%d %B %Y}.")
    cadence.go_to_day(0.2)
    lead = cadence.daemon.lead(cadence.lead)
    assert lead is not None and lead.automation.value == "held"
    assert lead.hold_until is not None and lead.hold_until.date() > back
    for day in (1.01, 3.01, 7.01, 9.9):
        cadence.go_to_day(day)
    assert len(cadence.emails()) == 1
    cadence.go_to_day((lead.hold_until - cadence.t0).total_seconds() / 86400 + 0.01)
    cadence.daemon.wait_until(lambda: len(cadence.emails()) == 2, what="first touch after hold")


def test_a_bounce_stops_the_sequence_and_flags_the_address(cadence: Cadence) -> None:
    cadence.start_with_enquiry()
    ack = parse(cadence.emails()[0])
    dsn = (
        "From: Mail Delivery System <MAILER-DAEMON@customer.test>\n"
        f"To: {cadence.daemon.address}\nSubject: Undelivered Mail Returned to Sender\n"
        "Auto-Submitted: auto-replied\nMIME-Version: 1.0\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\n\n'
        "--B\nContent-Type: text/plain\n\nYour message could not be delivered.\n\n"
        "--B\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.customer.test\n\n"
        f"Final-Recipient: rfc822; {cadence.lead}\nAction: failed\nStatus: 5.1.1\n\n"
        "--B\nContent-Type: text/rfc822-headers\n\n"
        f"Message-ID: {ack['Message-ID']}\nTo: {cadence.lead}\n\n--B--\n"
    ).encode()
    cadence.servers.deliver(cadence.daemon.shop, dsn, sender="")
    cadence.go_to_day(0.2)
    for day in (1.01, 3.01):
        cadence.go_to_day(day)
    assert len(cadence.emails()) == 1
    lead = cadence.daemon.lead(cadence.lead)
    assert lead is not None and lead.ended is Ended.BOUNCED and lead.undeliverable


def test_an_opt_out_stops_the_sequence_and_sticks_across_a_restart(cadence: Cadence) -> None:
    cadence.start_with_enquiry()
    cadence.lead_reply("Please remove me from your list.", cadence.emails()[0])
    cadence.daemon.wait_until(lambda: cadence.owner_mail("owner-reply"), what="alert")
    lead = cadence.daemon.lead(cadence.lead)
    assert lead is not None and lead.ended is Ended.OPTED_OUT
    cadence.daemon.restart()
    cadence.go_to_day(1.01)
    assert len(cadence.emails()) == 1
    # A new enquiry from the suppressed address is not acknowledged either.
    other = mail(cadence.lead, cadence.daemon.address, "Another question", "Hello again")
    cadence.servers.deliver(cadence.daemon.shop, other, sender=cadence.lead)
    cadence.go_to_day(1.5)
    assert len(cadence.emails()) == 1


def test_a_persons_message_in_sent_hands_the_lead_over(cadence: Cadence) -> None:
    cadence.start_with_enquiry()
    cadence.go_to_day(0.1)  # our own ack is in Sent by now and must not count
    lead = cadence.daemon.lead(cadence.lead)
    assert lead is not None and lead.is_active
    personal = reply_to(cadence.enquiry, cadence.daemon.address, "Hi Rita, I can come Monday.")
    cadence.servers.append(cadence.daemon.shop, "Sent", personal, flags=["\\Seen"])
    cadence.go_to_day(0.3)
    lead = cadence.daemon.lead(cadence.lead)
    assert lead is not None and lead.ended is Ended.HANDLED
    assert lead.conversation.value == "waiting_them"
    cadence.go_to_day(1.01)
    assert len(cadence.emails()) == 1


def test_flagging_the_enquiry_hands_the_lead_over(cadence: Cadence) -> None:
    cadence.start_with_enquiry()
    client = cadence.servers.imap_client(cadence.daemon.shop)
    try:
        client.select_folder("INBOX")
        client.add_flags(client.search(["ALL"]), [b"\\Flagged"])
    finally:
        client.logout()
    cadence.go_to_day(0.3)
    lead = cadence.daemon.lead(cadence.lead)
    assert lead is not None and lead.ended is Ended.HANDLED
    cadence.go_to_day(1.01)
    assert len(cadence.emails()) == 1


def test_a_reply_racing_a_due_step_wins(cadence: Cadence) -> None:
    """The reply lands after the follow-up was queued but before it is sent."""
    cadence.start_with_enquiry()
    daemon = cadence.daemon.daemon
    assert daemon is not None
    replied: list[bytes] = []

    def reply_when_followup_queued(what: str, data: Mapping[str, Any]) -> None:
        queued = [a for a in data.get("actions", ()) if isinstance(a, Queue)]
        if not replied and any(a.item.purpose == "followup" for a in queued):
            raw = reply_to(cadence.emails()[0], cadence.lead, "Sounds good, call me.")
            cadence.servers.deliver(cadence.daemon.shop, raw, sender=cadence.lead)
            replied.append(raw)

    cadence.go_to_day(0.5)
    daemon.hooks.append(reply_when_followup_queued)
    cadence.go_to_day(1.01)
    assert replied  # the follow-up was queued, and the reply came after it
    assert len(cadence.emails()) == 1
    lead = cadence.daemon.lead(cadence.lead)
    assert lead is not None and lead.ended is Ended.REPLIED


def test_live_edit_of_a_sequence_applies_to_leads_already_in_it(
    mail_servers: MailServers, tmp_path: Path, fresh_user: str, shop: str
) -> None:
    import shutil

    from harness import REPO

    rules = tmp_path / "rules"
    shutil.copytree(REPO / "rules", rules)
    cadence = make_cadence(mail_servers, shop, tmp_path / "iw", fresh_user, rules=rules)
    rd = cadence.daemon
    try:
        cadence.start_with_enquiry()
        seq = rules / "sequences.toml"
        text = seq.read_text()
        block = text[text.index('  [[sequence.default.step]]\n  name = "followup-day1"') :]
        block = block[: block.index("\n\n") + 2]
        seq.write_text(text.replace(block, ""))  # the day-1 follow-up is dropped
        cadence.go_to_day(1.01)
        assert len(cadence.emails()) == 1
        # A broken edit is logged and ignored: the last good rules stay in force.
        seq.write_text(seq.read_text() + "\n[sequence.default\n")
        cadence.go_to_day(3.01)
        cadence.daemon.wait_until(lambda: len(cadence.emails()) == 2, what="day-3 nudge")
        assert parse(cadence.emails()[1])["Subject"] == "Re: Quote for a new roof"
        lead = cadence.daemon.lead(cadence.lead)
        assert lead is not None and "followup-day1" not in lead.steps_done
        assert "nudge-day3" in lead.steps_done
    finally:
        rd.stop()
