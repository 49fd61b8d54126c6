"""Pure tests for inboxwatch.core.decide: the whole cadence, threading, stop rules, live edits.

No IO and no clock: every decision gets ``now``; time is simulated by jumping from one
``next_wake`` to the next (or by fixed ticks) and applying the lead each call returns.
The shipped rule book (rules/ and templates/) is the one under test.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inboxwatch.core.cadence import next_step, next_wake, pending_steps, plan, step_due
from inboxwatch.core.classify import Classification, Kind
from inboxwatch.core.decide import Decision, Incoming, handed_over, on_enquiry, on_message
from inboxwatch.core.lead import Automation, Conversation, Ended, Lead
from inboxwatch.core.letters import Send
from inboxwatch.core.message import Address, Message, parse_message
from inboxwatch.core.returndate import find_return_date
from inboxwatch.core.settings import Settings
from inboxwatch.core.timing import SendingWindow, day_offset
from inboxwatch.userfiles.rulebook import RuleBook, load_rulebook
from inboxwatch.userfiles.sequences import Step

ROOT = Path(__file__).resolve().parent.parent
BOOK = load_rulebook(ROOT / "rules", ROOT / "templates")
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
ME = Address("sales@shop.test", "Shop Ltd")
OWNER = "owner@shop.test"


def make_settings(tz: ZoneInfo = BERLIN) -> Settings:
    return Settings(
        me=ME,
        owner=OWNER,
        owner_alerts=True,
        window=SendingWindow(tz),
        min_gap=timedelta(hours=20),
        ack_period=timedelta(days=7),
        hold_max=timedelta(days=30),
    )


ST = make_settings()
LEAD_MAIL = ("ack", "followup")  # purposes of mail that goes to the lead
FOLLOWUPS = ("followup-day1", "nudge-day3", "value-day7", "final-day14", "reengage-day90")
EMAIL_STEPS = ("ack", *FOLLOWUPS)
TASK_STEPS = ("call-day0", "call-day3")
MAX_WAKES = 200  # a whole sequence needs about 15; more means next_wake does not advance


def local(tz: ZoneInfo, y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=tz)


def berlin(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return local(BERLIN, y, mo, d, h, mi)


def counter_ids() -> Callable[[], str]:
    n = itertools.count(1)
    return lambda: f"<iw.{next(n)}@shop.test>"


# --- messages and classifications, built directly --------------------------------------


def mail(
    frm: str,
    subject: str,
    message_id: str,
    body: str,
    to: str = "Shop Ltd <sales@shop.test>",
    in_reply_to: str = "",
    references: Iterable[str] = (),
) -> Message:
    lines = [
        f"From: {frm}",
        f"To: {to}",
        f"Subject: {subject}",
        f"Message-ID: {message_id}",
        "Date: Wed, 04 Mar 2026 10:00:00 +0100",
    ]
    if in_reply_to:
        lines.append(f"In-Reply-To: {in_reply_to}")
    if refs := " ".join(references):
        lines.append(f"References: {refs}")
    lines += ["MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8", "", body, ""]
    return parse_message("\r\n".join(lines).encode())


JANE = Address("jane@customer.test", "Jane Doe")
MAX = Address("max@customer.test", "Max Muster")
DIRECT_SUBJECT = "Quote for a kitchen"
DIRECT_ID = "<enq1@customer.test>"
DIRECT_TEXT = "Hello, what would a new oak kitchen cost? We are moving in May."
DIRECT_MSG = mail(f"Jane Doe <{JANE.addr}>", DIRECT_SUBJECT, DIRECT_ID, DIRECT_TEXT)
FORM_MSG = mail(
    "WordPress <wordpress@forms.test>",
    "New contact form submission",
    "<form1@forms.test>",
    "Name: Max Muster\nEmail: max@customer.test\nPhone: +49 30 1234567\n"
    "Message: Do you deliver to Potsdam?\n\n--\nSent from the contact form on shop.test",
)


def direct_enquiry(arrived: datetime, who: Address = JANE) -> Incoming:
    c = Classification(
        Kind.ENQUIRY,
        ("matched rule 'direct-email'",),
        rule="direct-email",
        source="direct-email",
        lead=who,
        sequence="default",
        new_text=DIRECT_TEXT,
    )
    msg = DIRECT_MSG
    if who != JANE:
        msg = mail(str(who), DIRECT_SUBJECT, f"<enq.{who.local}@customer.test>", DIRECT_TEXT)
    return Incoming(msg, str(1), arrived, c)


def form_enquiry(arrived: datetime) -> Incoming:
    c = Classification(
        Kind.ENQUIRY,
        ("matched rule 'website-form'",),
        rule="website-form",
        source="website-form",
        lead=MAX,
        fields={"phone": "+49 30 1234567", "message": "Do you deliver to Potsdam?"},
        sequence="default",
        template="ack-form",
        new_text=FORM_MSG.body_text,
    )
    return Incoming(FORM_MSG, str(2), arrived, c)


_uid = itertools.count(100)


def from_lead(lead: Lead, kind: Kind, text: str, **c: object) -> Incoming:
    """A message from the lead in our thread (reply, out-of-office), classified as ``kind``."""
    last = lead.thread[-1] if lead.thread else lead.enquiry_id
    n = next(_uid)
    msg = mail(
        f"{lead.name} <{lead.address}>",
        f"Re: {lead.thread_subject}",
        f"<r{n}@customer.test>",
        text,
        in_reply_to=last,
        references=lead.thread,
    )
    cls = Classification(
        kind,
        ("from a known lead",),
        lead=Address(lead.address, lead.name),
        lead_key=lead.address,
        new_text=text,
        **c,  # type: ignore[arg-type]
    )
    return Incoming(msg, str(n), lead.last_email_at or lead.arrived, cls)


def reply(lead: Lead, text: str, opt_out: bool = False) -> Incoming:
    return from_lead(lead, Kind.REPLY, text, opt_out=opt_out)


def out_of_office(lead: Lead, return_date: date | None, text: str = "") -> Incoming:
    text = text or "Thank you for your message. I am out of the office."
    return from_lead(lead, Kind.AUTO_REPLY, text, return_date=return_date)


def bounce(lead: Lead, hard: bool) -> Incoming:
    n = next(_uid)
    msg = mail(
        "Mail Delivery System <MAILER-DAEMON@mx.shop.test>",
        "Undelivered Mail Returned to Sender",
        f"<b{n}@mx.shop.test>",
        "This is the mail system: your message could not be delivered.",
        references=lead.thread[-1:],
    )
    why = "550 5.1.1 user unknown" if hard else "451 4.2.0 mailbox busy, will retry"
    c = Classification(
        Kind.BOUNCE,
        (why,),
        lead_key=lead.address,
        bounce_hard=hard,
        bounced=(lead.address,),
    )
    return Incoming(msg, str(n), lead.arrived, c)


# --- simulation -------------------------------------------------------------------------


@dataclass
class Sent:
    at: datetime
    send: Send

    @property
    def purpose(self) -> str:
        return self.send.out.purpose

    @property
    def step(self) -> str:
        return self.send.step


@dataclass
class Sim:
    """One lead moving through time; every send is kept with the instant it was made."""

    lead: Lead
    now: datetime
    book: RuleBook = BOOK
    st: Settings = ST
    ids: Callable[[], str] = field(default_factory=counter_ids)
    sent: list[Sent] = field(default_factory=list)

    @classmethod
    def enquiry(
        cls,
        inc: Incoming,
        book: RuleBook = BOOK,
        st: Settings = ST,
        last_ack: datetime | None = None,
    ) -> Sim:
        ids = counter_ids()
        d = on_enquiry(inc, book, st, inc.arrived, ids, last_ack=last_ack)
        assert d.lead is not None
        sim = cls(d.lead, inc.arrived, book, st, ids)
        sim.sent += [Sent(inc.arrived, s) for s in d.sends]
        return sim

    def apply(self, d: Decision) -> Decision:
        if d.lead is not None:
            self.lead = d.lead
        self.sent += [Sent(self.now, s) for s in d.sends]
        return d

    def plan(self) -> Decision:
        return self.apply(plan(self.lead, self.book, self.st, self.now, self.ids))

    def message(self, inc: Incoming, at: datetime) -> Decision:
        assert at >= self.now
        self.now = at
        return self.apply(on_message(inc, self.lead, self.book, self.st, at, self.ids))

    def run_until(self, until: datetime) -> None:
        """Call plan now and at every next_wake up to ``until`` (bounded)."""
        for _ in range(MAX_WAKES):
            d = self.plan()
            wake = next_wake(self.lead, self.book, self.st, self.now)
            if wake is None or wake > until:
                self.now = max(self.now, until)
                return
            if wake <= self.now and d.lead is None and not d.sends:
                pytest.fail(f"next_wake {wake} is not after {self.now}, yet plan did nothing")
            self.now = max(self.now, wake)
        pytest.fail(f"still waking after {MAX_WAKES} wakes: next_wake does not move on")

    def tick_until(self, until: datetime, tick: timedelta) -> None:
        """Call plan every ``tick`` (as a polling daemon would), up to ``until``."""
        while self.now <= until:
            self.plan()
            self.now += tick

    def lead_mail(self) -> list[Sent]:
        return [s for s in self.sent if s.purpose in LEAD_MAIL]

    def sent_after(self, t: datetime) -> list[Sent]:
        return [s for s in self.sent if s.at > t]


def owner_tasks(sent: Iterable[Sent]) -> list[Sent]:
    return [s for s in sent if s.purpose == "owner-task"]


def wall(t: datetime, tz: ZoneInfo = BERLIN) -> tuple[str, str]:
    """(weekday date, HH:MM) on the local wall clock."""
    lt = t.astimezone(tz)
    return f"{lt:%a %Y-%m-%d}", f"{lt:%H:%M}"


def assert_cadence_rules(sim: Sim) -> None:
    """Follow-ups inside the window, lead mail at least min_gap apart, owner mail to owner."""
    mails = sim.lead_mail()
    for s in mails:
        assert s.send.out.to.addr == sim.lead.address
        assert s.send.out.date == s.at
        if s.purpose == "followup":
            assert sim.st.window.is_open(s.at), f"{s.step} at {s.at} outside the window"
    for a, b in itertools.pairwise(mails):
        assert b.at - a.at >= sim.st.min_gap, f"{a.step} {a.at} and {b.step} {b.at} too close"
    for s in sim.sent:
        if s.purpose not in LEAD_MAIL:
            assert s.send.out.to.addr == OWNER


# --- the whole sequence -----------------------------------------------------------------

WED = berlin(2026, 3, 4, 10, 0)  # Wednesday 10:00 CET

#: (step, local date, local time) for a lead arriving WED and never answering.
WED_SCHEDULE = [
    ("ack", "Wed 2026-03-04", "10:00"),
    ("followup-day1", "Thu 2026-03-05", "10:00"),
    ("nudge-day3", "Mon 2026-03-09", "09:00"),  # day 3 is a Saturday
    # Each later step keeps its distance (difference of days) from the one actually sent:
    # 4 days after Monday's nudge, 7 after that, 76 after that (CEST by then: 09:00 local).
    ("value-day7", "Fri 2026-03-13", "09:00"),
    ("final-day14", "Fri 2026-03-20", "09:00"),
    ("reengage-day90", "Thu 2026-06-04", "09:00"),
]


@pytest.mark.parametrize("driver", ["next_wake", "ticks"])
def test_whole_sequence_for_a_lead_who_never_answers(driver: str) -> None:
    sim = Sim.enquiry(direct_enquiry(WED))
    end = WED + timedelta(days=100)
    if driver == "next_wake":
        sim.run_until(end)
    else:
        sim.tick_until(end, timedelta(minutes=15))

    mails = sim.lead_mail()
    assert [(s.step, *wall(s.at)) for s in mails] == WED_SCHEDULE
    assert [s.purpose for s in mails] == ["ack"] + ["followup"] * 5
    # Each email uses its own template (subjects are all "Re: ...", the bodies differ).
    assert len({s.send.out.body for s in mails}) == 6

    tasks = owner_tasks(sim.sent)
    assert [(t.send.out.subject, *wall(t.at)) for t in tasks] == [
        ("Please call Jane Doe: no phone number yet", "Wed 2026-03-04", "10:00"),  # at once
        ("Please call Jane Doe: no phone number yet", "Mon 2026-03-09", "09:00"),
    ]
    assert not any("call-day" in t.send.out.body for t in tasks)  # no internal step names
    alerts = [s for s in sim.sent if s.purpose == "owner-alert"]
    assert len(alerts) == 1 and alerts[0].at == WED
    assert len(sim.sent) == 6 + 2 + 1  # nothing else, ever
    assert_cadence_rules(sim)

    lead = sim.lead
    assert set(lead.steps_done) == {*EMAIL_STEPS, *TASK_STEPS}
    assert lead.automation is Automation.ENDED
    assert lead.ended is Ended.NO_RESPONSE
    assert lead.conversation is Conversation.CLOSED
    assert lead.dormant
    closed = [e.at for e in lead.events if e.what == "automation ended: no_response"]
    # close_after_days (7) after the last step, to the quarter hour for the tick driver.
    assert wall(closed[0]) == ("Thu 2026-06-11", "09:00")
    assert next_wake(lead, BOOK, ST) is None
    assert next_step(lead, BOOK, ST) is None


def test_dormant_only_after_the_day_14_email_and_conversation_waits_for_them() -> None:
    sim = Sim.enquiry(direct_enquiry(WED))
    assert sim.lead.conversation is Conversation.WAITING_THEM  # acked: the ball is with them
    sim.run_until(berlin(2026, 3, 20, 8, 59))
    assert "value-day7" in sim.lead.steps_done
    assert not sim.lead.dormant
    sim.run_until(berlin(2026, 3, 20, 9, 0))
    assert "final-day14" in sim.lead.steps_done
    assert sim.lead.dormant
    assert sim.lead.automation is Automation.ACTIVE  # dormant is not ended: day 90 is to come
    sim.run_until(berlin(2026, 6, 11, 8, 59))
    assert sim.lead.is_active and "reengage-day90" in sim.lead.steps_done
    sim.run_until(berlin(2026, 6, 11, 9, 0))
    assert sim.lead.ended is Ended.NO_RESPONSE


def test_nothing_is_sent_after_the_lead_is_closed() -> None:
    sim = Sim.enquiry(direct_enquiry(WED))
    sim.run_until(WED + timedelta(days=99))
    assert sim.lead.ended is Ended.NO_RESPONSE
    count = len(sim.sent)
    closed = sim.lead
    for days in (99, 120, 365, 1000):
        d = plan(closed, BOOK, ST, WED + timedelta(days=days), sim.ids)
        assert d == Decision()
    assert len(sim.sent) == count


# --- threading --------------------------------------------------------------------------


def test_direct_enquiry_thread_reply_headers() -> None:
    sim = Sim.enquiry(direct_enquiry(WED))
    sim.run_until(WED + timedelta(days=100))
    mails = [s.send.out for s in sim.lead_mail()]
    assert len(mails) == 6
    chain = [DIRECT_ID]
    for out in mails:
        assert out.subject == f"Re: {DIRECT_SUBJECT}"
        assert out.in_reply_to == chain[-1]
        assert out.references == tuple(chain)
        assert out.to == JANE and out.from_ == ME
        chain.append(out.message_id)
    assert mails[0].auto_submitted == "auto-replied"  # the ack answers their message
    assert sim.lead.thread == tuple(chain)
    assert len(set(chain)) == len(chain)  # every Message-ID is new


def test_web_form_thread_starts_with_our_ack() -> None:
    sim = Sim.enquiry(form_enquiry(WED))
    sim.run_until(WED + timedelta(days=100))
    mails = [s.send.out for s in sim.lead_mail()]
    assert len(mails) == 6
    ack = mails[0]
    assert ack.to == MAX
    assert ack.subject == "Your enquiry to Shop Ltd"  # the template's, never the form's
    assert ack.in_reply_to == ""
    assert ack.references == ()
    assert ack.auto_submitted == "auto-generated"
    assert "contact form submission" not in " ".join(o.subject for o in mails).lower()
    chain = [ack.message_id]
    for out in mails[1:]:
        assert out.subject == "Re: Your enquiry to Shop Ltd"
        assert out.in_reply_to == chain[-1]
        assert out.references == tuple(chain)
        chain.append(out.message_id)
    # The owner alert carries the form's phone number and answers go to the lead.
    alert = next(s.send.out for s in sim.sent if s.purpose == "owner-alert")
    assert "+49 30 1234567" in alert.body
    assert alert.reply_to == MAX


# --- calendar: weekend, DST -------------------------------------------------------------


def test_friday_night_enquiry() -> None:
    fri = berlin(2026, 3, 6, 22, 0)
    sim = Sim.enquiry(direct_enquiry(fri))
    sim.run_until(fri + timedelta(days=5))
    mails = sim.lead_mail()
    assert (mails[0].step, mails[0].at) == ("ack", fri)  # at once, window or not
    tasks = owner_tasks(sim.sent)
    assert tasks[0].at == fri  # the day-0 call task too
    steps = {s.step: s.at for s in mails}
    assert wall(steps["followup-day1"]) == ("Mon 2026-03-09", "09:00")
    nudge = steps["nudge-day3"]
    assert nudge.astimezone(BERLIN).date() != date(2026, 3, 9)  # not the same Monday
    assert nudge - steps["followup-day1"] >= ST.min_gap
    # Day 3 keeps two days' distance from the day-1 email actually sent on Monday.
    assert wall(nudge) == ("Wed 2026-03-11", "09:00")
    assert wall(tasks[1].at) == ("Tue 2026-03-10", "09:00")  # day 3 = Monday 22:00
    assert_cadence_rules(sim)


@pytest.mark.parametrize(
    ("tz", "arrived", "expected"),
    [
        pytest.param(
            BERLIN,
            local(BERLIN, 2026, 3, 26, 16, 45),  # Thursday; clocks go forward Sunday 29th
            [
                ("ack", "Thu 2026-03-26", "16:45", "15:45"),
                ("followup-day1", "Fri 2026-03-27", "16:45", "15:45"),
                ("nudge-day3", "Mon 2026-03-30", "09:00", "07:00"),
                # Calendar days from the nudge actually sent, at its wall time: 09:00 CEST.
                ("value-day7", "Fri 2026-04-03", "09:00", "07:00"),
                ("final-day14", "Fri 2026-04-10", "09:00", "07:00"),
                ("reengage-day90", "Thu 2026-06-25", "09:00", "07:00"),
            ],
            id="berlin-spring-forward",
        ),
        pytest.param(
            NEW_YORK,
            local(NEW_YORK, 2026, 10, 29, 16, 45),  # Thursday; clocks go back Sunday 1 Nov
            [
                ("ack", "Thu 2026-10-29", "16:45", "20:45"),
                ("followup-day1", "Fri 2026-10-30", "16:45", "20:45"),
                ("nudge-day3", "Mon 2026-11-02", "09:00", "14:00"),  # 09:00 EST
                ("value-day7", "Fri 2026-11-06", "09:00", "14:00"),
                ("final-day14", "Fri 2026-11-13", "09:00", "14:00"),
                ("reengage-day90", "Thu 2027-01-28", "09:00", "14:00"),
            ],
            id="new-york-fall-back",
        ),
    ],
)
def test_schedule_across_dst(
    tz: ZoneInfo, arrived: datetime, expected: list[tuple[str, str, str, str]]
) -> None:
    st_ = make_settings(tz)
    sim = Sim.enquiry(direct_enquiry(arrived), st=st_)
    sim.run_until(arrived + timedelta(days=100))
    got = [(s.step, *wall(s.at, tz), f"{s.at.astimezone(UTC):%H:%M}") for s in sim.lead_mail()]
    assert got == expected
    assert_cadence_rules(sim)
    for t in owner_tasks(sim.sent)[1:]:
        assert st_.window.is_open(t.at)
    assert sim.lead.ended is Ended.NO_RESPONSE


# --- stop on reply ----------------------------------------------------------------------


def test_reply_stops_everything_and_alerts_the_owner() -> None:
    sim = Sim.enquiry(direct_enquiry(WED))
    sim.run_until(berlin(2026, 3, 6, 12, 0))
    assert [s.step for s in sim.lead_mail()] == ["ack", "followup-day1"]
    before = len(sim.sent)
    text = "Yes please, call me on Monday about the oak kitchen. 0151 2345678"
    d = sim.message(reply(sim.lead, text), berlin(2026, 3, 6, 12, 0))
    lead = sim.lead
    assert lead.automation is Automation.ENDED and lead.ended is Ended.REPLIED
    assert lead.conversation is Conversation.WAITING_US
    assert d.suppress == ""
    assert len(d.sends) == 1
    alert = d.sends[0].out
    assert alert.purpose == "owner-reply"
    assert alert.to.addr == OWNER
    assert alert.reply_to == JANE  # answering the alert answers the lead
    assert text in alert.body
    assert next_wake(lead, BOOK, ST) is None and next_step(lead, BOOK, ST) is None
    sim.tick_until(WED + timedelta(days=120), timedelta(hours=1))
    assert len(sim.sent) == before + 1  # only the owner's alert, ever
    assert sim.lead.ended is Ended.REPLIED


def test_opt_out_reply_suppresses_the_address() -> None:
    sim = Sim.enquiry(direct_enquiry(WED))
    sim.run_until(berlin(2026, 3, 6, 12, 0))
    d = sim.message(
        reply(sim.lead, "Please stop emailing me.", opt_out=True), berlin(2026, 3, 6, 12, 0)
    )
    assert sim.lead.ended is Ended.OPTED_OUT
    assert d.suppress == JANE.addr
    assert sim.lead.conversation is Conversation.CLOSED
    assert [s.out.purpose for s in d.sends] == ["owner-reply"]
    assert d.sends[0].out.to.addr == OWNER
    assert "Please stop emailing me." in d.sends[0].out.body
    sim.run_until(WED + timedelta(days=120))
    assert [s.step for s in sim.lead_mail()] == ["ack", "followup-day1"]


def test_reply_when_already_ended_sends_no_new_alert() -> None:
    sim = Sim.enquiry(direct_enquiry(WED))
    sim.message(reply(sim.lead, "Interested!"), berlin(2026, 3, 4, 11, 0))
    assert sim.lead.ended is Ended.REPLIED
    n = len(sim.sent)
    d = sim.message(reply(sim.lead, "Also: do you do bathrooms?"), berlin(2026, 3, 4, 12, 0))
    assert d.sends == ()
    assert sim.lead.ended is Ended.REPLIED
    assert sim.lead.conversation is Conversation.WAITING_US
    assert len(sim.sent) == n
    # Handed to a person, then the lead answers: still no automatic alert.
    sim2 = Sim.enquiry(direct_enquiry(WED))
    sim2.apply(handed_over(sim2.lead, berlin(2026, 3, 4, 10, 30), "a person wrote"))
    d2 = sim2.message(reply(sim2.lead, "Thanks, see you then."), berlin(2026, 3, 4, 11, 0))
    assert d2.sends == () and sim2.lead.ended is Ended.HANDLED


def test_opt_out_after_the_automation_ended_is_still_honoured() -> None:
    """A lead a person took over writes "please stop emailing me": the address is suppressed."""
    sim = Sim.enquiry(direct_enquiry(WED))
    sim.apply(handed_over(sim.lead, berlin(2026, 3, 4, 10, 30), "a person wrote"))
    d = sim.message(
        reply(sim.lead, "Please stop emailing me.", opt_out=True), berlin(2026, 3, 5, 8, 0)
    )
    assert d.suppress == JANE.addr


def test_reply_while_held_stops_the_automation() -> None:
    sim = Sim.enquiry(direct_enquiry(WED))
    sim.message(out_of_office(sim.lead, date(2026, 3, 14)), berlin(2026, 3, 4, 10, 5))
    assert sim.lead.automation is Automation.HELD
    d = sim.message(reply(sim.lead, "Back early, yes please."), berlin(2026, 3, 9, 8, 0))
    assert sim.lead.ended is Ended.REPLIED and sim.lead.hold_until is None
    assert [s.out.purpose for s in d.sends] == ["owner-reply"]
    sim.run_until(WED + timedelta(days=120))
    assert [s.step for s in sim.lead_mail()] == ["ack"]


# --- out of office ----------------------------------------------------------------------


def test_out_of_office_without_return_date_changes_nothing() -> None:
    sim = Sim.enquiry(direct_enquiry(WED))
    sim.plan()
    before = next_step(sim.lead, BOOK, ST)
    assert before is not None and before[0].name == "followup-day1"
    d = sim.message(out_of_office(sim.lead, None), berlin(2026, 3, 4, 10, 5))
    assert d.sends == ()
    assert sim.lead.automation is Automation.ACTIVE
    assert sim.lead.events[-1].what == "automatic reply"
    assert next_step(sim.lead, BOOK, ST) == before
    sim.run_until(WED + timedelta(days=100))
    assert [s.step for s in sim.lead_mail()] == list(EMAIL_STEPS)


def test_out_of_office_with_return_date_holds_until_the_window_opens_after_it() -> None:
    sim = Sim.enquiry(direct_enquiry(WED))
    sim.plan()  # the day-0 call task
    ooo_at = berlin(2026, 3, 4, 10, 5)
    text = "I am out of the office until Friday, 13 March."
    back = find_return_date(text, ooo_at)
    assert back == date(2026, 3, 14)  # the first day back: Saturday
    d = sim.message(out_of_office(sim.lead, back, text), ooo_at)
    assert [s.out.purpose for s in d.sends] == ["owner-event"]  # the owner is told (issue 11)
    hold = berlin(2026, 3, 16, 9, 0)  # Monday, window start
    assert sim.lead.automation is Automation.HELD
    assert sim.lead.hold_until == hold
    assert next_wake(sim.lead, BOOK, ST) == hold
    n = len(sim.sent)
    sim.tick_until(hold - timedelta(minutes=1), timedelta(minutes=30))
    assert len(sim.sent) == n  # no emails, no owner tasks while held
    assert sim.lead.automation is Automation.HELD
    sim.now = hold
    d = sim.plan()
    assert sim.lead.automation is Automation.ACTIVE
    assert [s.step for s in d.sends] == ["followup-day1"]  # overdue: goes out at once
    sim.run_until(WED + timedelta(days=120))
    assert [s.step for s in sim.lead_mail()] == list(EMAIL_STEPS)
    assert all(s.at >= hold for s in sim.sent[n:])
    assert_cadence_rules(sim)


def test_hold_ends_on_the_first_business_day_after_the_return_date() -> None:
    """The next touch comes on the first business day after the day they are back.

    As issue 4 asks ("the first business day after it") and users of peer tools ask
    (warmbly #470: the return date plus one business day): nobody answers sales mail in
    the first hours back from a holiday.
    """
    sim = Sim.enquiry(direct_enquiry(WED))
    ooo_at = berlin(2026, 3, 4, 10, 5)
    text = "I am back in the office on Monday, 16 March."
    back = find_return_date(text, ooo_at)
    assert back == date(2026, 3, 16)
    sim.message(out_of_office(sim.lead, back, text), ooo_at)
    assert sim.lead.hold_until == berlin(2026, 3, 17, 9, 0)


def test_hold_is_capped_at_hold_max() -> None:
    sim = Sim.enquiry(direct_enquiry(WED))
    sim.plan()
    ooo_at = berlin(2026, 3, 4, 10, 5)
    sim.message(out_of_office(sim.lead, ooo_at.date() + timedelta(days=60)), ooo_at)
    assert sim.lead.automation is Automation.HELD
    until = sim.lead.hold_until
    assert until is not None
    assert ooo_at + ST.hold_max - timedelta(days=3) <= until <= ooo_at + ST.hold_max
    sim.run_until(ooo_at + timedelta(days=45))
    followups = [s for s in sim.lead_mail() if s.purpose == "followup"]
    assert followups[0].step == "followup-day1"
    assert until <= followups[0].at <= until + timedelta(days=3)
    assert ST.window.is_open(followups[0].at)


# --- bounces, hand-over -----------------------------------------------------------------


def test_hard_bounce_ends_the_lead() -> None:
    sim = Sim.enquiry(direct_enquiry(WED))
    d = sim.message(bounce(sim.lead, hard=True), berlin(2026, 3, 4, 10, 1))
    assert [s.out.purpose for s in d.sends] == ["owner-event"]  # the owner is told (issue 11)
    assert sim.lead.ended is Ended.BOUNCED
    assert sim.lead.undeliverable
    assert sim.lead.conversation is Conversation.CLOSED
    sim.run_until(WED + timedelta(days=120))
    assert [s.step for s in sim.lead_mail()] == ["ack"]


def test_soft_bounce_is_only_an_event() -> None:
    sim = Sim.enquiry(direct_enquiry(WED))
    sim.plan()
    before = next_step(sim.lead, BOOK, ST)
    d = sim.message(bounce(sim.lead, hard=False), berlin(2026, 3, 4, 10, 1))
    assert d.sends == ()
    assert sim.lead.is_active and not sim.lead.undeliverable
    assert sim.lead.events[-1].what == "delivery delayed"
    assert "mailbox busy" in sim.lead.events[-1].detail
    assert next_step(sim.lead, BOOK, ST) == before
    sim.run_until(WED + timedelta(days=100))
    assert [s.step for s in sim.lead_mail()] == list(EMAIL_STEPS)


@pytest.mark.parametrize("how", ["handed_over", "team-mail"])
def test_handed_over_to_a_person(how: str) -> None:
    sim = Sim.enquiry(direct_enquiry(WED))
    sim.plan()
    at = berlin(2026, 3, 4, 11, 0)
    if how == "handed_over":
        sim.now = at
        d = sim.apply(handed_over(sim.lead, at, "a person wrote to the lead (Sent)"))
    else:
        msg = mail("Tom <tom@team.test>", f"Re: {DIRECT_SUBJECT}", "<t1@team.test>", "Hi Jane")
        c = Classification(Kind.OWN, ("sent by the team",), lead_key=JANE.addr, by_team=True)
        d = sim.message(Incoming(msg, str(9), at, c), at)
    assert d.sends == ()
    assert sim.lead.ended is Ended.HANDLED
    assert sim.lead.conversation is Conversation.WAITING_THEM
    sim.run_until(WED + timedelta(days=120))
    assert [s.step for s in sim.lead_mail()] == ["ack"]
    assert len(owner_tasks(sim.sent)) == 1  # no day-3 call task either


def test_our_own_mail_about_a_lead_changes_nothing() -> None:
    sim = Sim.enquiry(direct_enquiry(WED))
    msg = mail(str(ME), f"Re: {DIRECT_SUBJECT}", "<o1@shop.test>", "ours")
    c = Classification(Kind.OWN, ("sent from our own address",), lead_key=JANE.addr)
    d = on_message(Incoming(msg, str(9), WED, c), sim.lead, BOOK, ST, WED, sim.ids)
    assert d.lead is None and d.sends == ()


# --- acknowledgement period -------------------------------------------------------------


def test_no_second_ack_within_the_ack_period() -> None:
    sim = Sim.enquiry(direct_enquiry(WED), last_ack=WED - timedelta(days=2))
    assert sim.lead_mail() == []
    assert [s.purpose for s in sim.sent] == ["owner-alert"]
    assert "not sent" in sim.sent[0].send.out.body
    assert sim.lead.steps_done["ack"] == "skipped"
    assert sim.lead.last_email_at is None
    assert any(e.what == "acknowledgement skipped" for e in sim.lead.events)
    sim.run_until(WED + timedelta(days=100))
    assert [s.step for s in sim.lead_mail()] == list(FOLLOWUPS)  # the ack is never sent late


def test_ack_after_the_ack_period() -> None:
    sim = Sim.enquiry(direct_enquiry(WED), last_ack=WED - timedelta(days=10))
    assert [(s.purpose, s.at) for s in sim.sent] == [("ack", WED), ("owner-alert", WED)]
    assert "sent at once" in sim.sent[1].send.out.body
    assert sim.lead.steps_done["ack"] != "skipped"


# --- live edits, by step name -----------------------------------------------------------


def edited(steps: Iterable[Step], **templates_removed: bool) -> RuleBook:
    seq = dataclasses.replace(BOOK.sequences["default"], steps=tuple(steps))
    templates = {k: v for k, v in BOOK.templates.items() if k not in templates_removed}
    return RuleBook(BOOK.rules, {**BOOK.sequences, "default": seq}, templates)


DEFAULT = BOOK.sequences["default"]


def shipped_steps(*without: str) -> list[Step]:
    return [s for s in DEFAULT.steps if s.name not in without]


def progressed(until: datetime) -> Sim:
    sim = Sim.enquiry(direct_enquiry(WED))
    sim.run_until(until)
    return sim


def test_removed_step_is_never_sent() -> None:
    sim = progressed(berlin(2026, 3, 6, 12, 0))
    assert set(sim.lead.steps_done) == {"ack", "call-day0", "followup-day1"}
    sim.book = edited(shipped_steps("nudge-day3"))
    sim.run_until(WED + timedelta(days=120))
    assert [s.step for s in sim.lead_mail()] == [
        "ack",
        "followup-day1",
        "value-day7",
        "final-day14",
        "reengage-day90",
    ]
    assert sim.lead.ended is Ended.NO_RESPONSE


def test_step_added_behind_the_leads_progress_is_skipped() -> None:
    sim = progressed(berlin(2026, 3, 10, 12, 0))  # nudge-day3 went out Monday
    assert "nudge-day3" in sim.lead.steps_done
    steps = shipped_steps()
    steps.insert(3, Step("extra-day2", 2, "email", "followup-day1"))
    steps.insert(6, Step("extra-day5", 5, "email", "followup-day1"))
    sim.book = edited(steps)
    assert [s.name for s in pending_steps(sim.lead, sim.book.sequences["default"])] == [
        "extra-day5",
        "value-day7",
        "final-day14",
        "reengage-day90",
    ]
    sim.run_until(WED + timedelta(days=120))
    sent = [s.step for s in sim.lead_mail()]
    assert "extra-day2" not in sent  # not sent late
    assert sent.count("extra-day5") == 1
    assert sent[-4:] == ["extra-day5", "value-day7", "final-day14", "reengage-day90"]
    assert_cadence_rules(sim)


def test_renamed_later_step_is_sent_once() -> None:
    sim = progressed(berlin(2026, 3, 10, 12, 0))
    steps = [
        dataclasses.replace(s, name="value-week1") if s.name == "value-day7" else s
        for s in shipped_steps()
    ]
    sim.book = edited(steps)
    sim.run_until(WED + timedelta(days=120))
    sent = [s.step for s in sim.lead_mail()]
    assert sent.count("value-week1") == 1
    assert "value-day7" not in sent
    assert [(s.step, *wall(s.at)) for s in sim.lead_mail()][3] == (
        "value-week1",
        "Fri 2026-03-13",
        "09:00",
    )


def test_step_with_a_missing_template_is_skipped_with_an_event() -> None:
    sim = progressed(berlin(2026, 3, 10, 12, 0))
    sim.book = edited(shipped_steps(), **{"value-day7": True})
    sim.run_until(WED + timedelta(days=120))
    assert [s.step for s in sim.lead_mail()] == [
        "ack",
        "followup-day1",
        "nudge-day3",
        "final-day14",
        "reengage-day90",
    ]
    assert sim.lead.steps_done["value-day7"] == "skipped"
    skipped = [e for e in sim.lead.events if e.what == "value-day7: skipped"]
    assert len(skipped) == 1 and "value-day7" in skipped[0].detail
    assert wall(skipped[0].at) == ("Fri 2026-03-13", "09:00")
    # final-day14 keeps its distance (11 days) from the nudge, the last step actually sent.
    assert wall(sim.lead_mail()[3].at) == ("Fri 2026-03-20", "09:00")


def test_sequence_that_no_longer_exists_stops_the_lead() -> None:
    sim = progressed(berlin(2026, 3, 6, 12, 0))
    sim.book = RuleBook(BOOK.rules, {}, BOOK.templates)
    sim.now = berlin(2026, 3, 6, 13, 0)
    d = sim.plan()
    assert d.sends == ()
    assert sim.lead.ended is Ended.STOPPED
    assert "no longer exists" in sim.lead.events[-1].detail
    assert plan(sim.lead, sim.book, ST, sim.now + timedelta(days=9), sim.ids) == Decision()


def test_next_wake_for_a_vanished_sequence_is_not_never() -> None:
    """plan() ends such a lead whenever it runs, so time alone does change it."""
    sim = progressed(berlin(2026, 3, 6, 12, 0))
    book = RuleBook(BOOK.rules, {}, BOOK.templates)
    wake = next_wake(sim.lead, book, ST)
    assert wake is not None and wake <= sim.now


# --- next_step / next_wake agree with plan ----------------------------------------------


def test_next_step_and_next_wake_agree_with_plan() -> None:
    """At every wake: nothing is sent a second earlier, and the predicted step goes out."""
    sim = Sim.enquiry(direct_enquiry(berlin(2026, 3, 6, 22, 0)))  # Friday night
    seen: list[str] = []
    for _ in range(MAX_WAKES):
        nxt = next_step(sim.lead, BOOK, ST)
        wake = next_wake(sim.lead, BOOK, ST)
        if wake is None:
            break
        if nxt is not None:
            step, due = nxt
            assert wake == due == step_due(sim.lead, step, ST, BOOK.sequences["default"])
        early = plan(sim.lead, BOOK, ST, wake - timedelta(seconds=1), counter_ids())
        assert early.sends == () and early.lead is None, f"plan acts before next_wake {wake}"
        sim.now = max(sim.now, wake)
        done_before = set(sim.lead.steps_done)
        d = sim.plan()
        assert d.lead is not None, f"next_wake {wake} but plan changed nothing"
        if nxt is not None:
            assert nxt[0].name in set(sim.lead.steps_done) - done_before
            if nxt[0].is_email:
                assert [s.step for s in d.sends if s.out.purpose == "followup"] == [nxt[0].name]
        seen += [s.name for s in DEFAULT.steps if s.name in set(sim.lead.steps_done) - done_before]
    else:
        pytest.fail("no end")
    assert seen == [s.name for s in DEFAULT.steps if s.name != "ack"]
    assert sim.lead.ended is Ended.NO_RESPONSE


def test_next_wake_while_held_agrees_with_plan() -> None:
    sim = Sim.enquiry(direct_enquiry(WED))
    sim.run_until(WED + timedelta(days=10))
    ooo_at = berlin(2026, 3, 14, 12, 0)  # Saturday; value-day7 went out on Friday
    sim.message(out_of_office(sim.lead, date(2026, 3, 20)), ooo_at)
    wake = next_wake(sim.lead, BOOK, ST)
    assert wake is not None and sim.lead.hold_until is not None
    assert wake >= sim.lead.hold_until
    sim.now = wake
    assert [s.step for s in sim.plan().sends] == ["final-day14"]


def test_next_wake_while_held_after_the_last_step_agrees_with_plan() -> None:
    """Held with nothing left to send: the wake must not be a time when plan does nothing.

    A daemon sleeps until the earliest next_wake; one in the past that plan ignores makes
    it cycle without pause until the hold ends.
    """
    sim = Sim.enquiry(direct_enquiry(WED))
    sim.run_until(berlin(2026, 6, 4, 12, 0))  # day 90 went out on 4 June
    assert "reengage-day90" in sim.lead.steps_done and sim.lead.is_active
    sim.message(out_of_office(sim.lead, date(2026, 6, 20)), berlin(2026, 6, 4, 12, 0))
    assert sim.lead.automation is Automation.HELD
    wake = next_wake(sim.lead, BOOK, ST)
    assert wake is not None
    d = plan(sim.lead, BOOK, ST, wake, sim.ids)
    assert d.lead is not None, f"next_wake {wake} but plan does nothing (held)"
    sim.run_until(berlin(2026, 7, 31))
    assert sim.lead.ended is Ended.NO_RESPONSE


# --- properties -------------------------------------------------------------------------

ARRIVALS_2026 = st.datetimes(
    min_value=datetime(2026, 1, 1),
    max_value=datetime(2026, 12, 31, 23, 59, 59),
    timezones=st.just(BERLIN),
    allow_imaginary=False,
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    arrived=ARRIVALS_2026,
    reply_after=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=110)),
    opt_out=st.booleans(),
)
def test_no_lead_mail_after_a_reply(
    arrived: datetime, reply_after: timedelta, opt_out: bool
) -> None:
    sim = Sim.enquiry(direct_enquiry(arrived))
    replied_at = arrived + reply_after
    sim.run_until(replied_at)
    was_active = sim.lead.is_active
    ended_before = sim.lead.ended
    d = sim.message(reply(sim.lead, "Thanks, yes.", opt_out=opt_out), replied_at)
    assert not sim.lead.is_active
    assert all(s.out.to.addr == OWNER for s in d.sends)
    # The owner hears of a reply that stops the cadence, and of a closed lead writing again.
    expected = 1 if was_active else int(not opt_out and ended_before is Ended.NO_RESPONSE)
    assert len(d.sends) == expected
    sim.run_until(arrived + timedelta(days=400))
    assert [s for s in sim.sent_after(replied_at) if s.purpose in LEAD_MAIL] == []
    assert [s for s in sim.sent if s.at > replied_at] == []
    assert next_wake(sim.lead, BOOK, ST) is None
    assert_cadence_rules(sim)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(arrived=ARRIVALS_2026)
def test_whole_sequence_invariants_for_any_arrival(arrived: datetime) -> None:
    sim = Sim.enquiry(direct_enquiry(arrived))
    sim.run_until(arrived + timedelta(days=130))
    mails = sim.lead_mail()
    assert [s.step for s in mails] == list(EMAIL_STEPS)
    assert mails[0].at == arrived
    assert_cadence_rules(sim)
    for s in mails[1:]:
        step = DEFAULT.step(s.step)
        assert step is not None
        # Never before its calendar day at the enquiry's wall time, never a week late.
        day = arrived.astimezone(BERLIN).date() + timedelta(days=step.day)
        assert s.at.astimezone(BERLIN).date() >= day
        assert s.at.astimezone(BERLIN).date() <= day + timedelta(days=6)
    tasks = owner_tasks(sim.sent)
    assert len(tasks) == 2 and tasks[0].at == arrived and ST.window.is_open(tasks[1].at)
    assert sim.lead.ended is Ended.NO_RESPONSE
    assert sim.lead.conversation is Conversation.CLOSED
    closed = next(e.at for e in sim.lead.events if e.what == "automation ended: no_response")
    assert closed == day_offset(mails[-1].at, DEFAULT.close_after_days, BERLIN)


def test_an_overdue_follow_up_waits_for_sending_hours() -> None:
    """Down overnight: the day-1 step fell due at 10:00 yesterday; at 03:00 it must wait."""
    sim = Sim.enquiry(direct_enquiry(WED))
    sim.plan()  # the day-0 call task
    sim.now = berlin(2026, 3, 6, 3, 0)  # Friday 03:00, the daemon comes back
    d = sim.plan()
    assert [s for s in d.sends if s.purpose == "followup"] == []
    wake = next_wake(sim.lead, BOOK, ST, sim.now)
    assert wake == berlin(2026, 3, 6, 9, 0)
    sim.now = wake
    d = sim.plan()
    assert [s.step for s in d.sends if s.out.purpose == "followup"] == ["followup-day1"]


def test_a_closed_lead_who_writes_again_is_brought_to_the_owner() -> None:
    sim = Sim.enquiry(direct_enquiry(WED))
    sim.run_until(berlin(2026, 7, 1))
    assert sim.lead.ended is Ended.NO_RESPONSE
    d = sim.message(reply(sim.lead, "Sorry for the silence, still interested!"), berlin(2026, 7, 2))
    assert [s.out.purpose for s in d.sends] == ["owner-reply"]
    assert sim.lead.conversation is Conversation.WAITING_US
