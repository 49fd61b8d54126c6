"""Nudges (issue 11): a lead whose conversation waits for our answer reminds the owner
after a business hour, at most once per period, inside sending hours, until a person acts.

Pure: the engine's one-lead simulator (``tests/test_engine.py``) with nudges turned on.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from pathlib import Path

from inboxwatch.core.cadence import next_wake
from inboxwatch.core.decide import handed_over
from inboxwatch.core.lead import Conversation, Ended
from inboxwatch.core.settings import Settings
from inboxwatch.userfiles.config import load_config
from tests.test_config import MINIMAL, write
from tests.test_engine import BOOK, JANE, OWNER, ST, WED, Sent, Sim, berlin, direct_enquiry, reply

NUDGING = dataclasses.replace(ST, nudge_after=timedelta(hours=1), nudge_every=timedelta(hours=24))
TEXT = "Yes please, call me on Monday about the oak kitchen."
FRI_NOON = berlin(2026, 3, 6, 12, 0)  # a Friday; sending hours 9-17, Monday to Friday


def nudges(sim: Sim) -> list[Sent]:
    return [s for s in sim.sent if s.send.out.from_.name.startswith("Still waiting")]


def replied(st: Settings = NUDGING, at: datetime = FRI_NOON, opt_out: bool = False) -> Sim:
    sim = Sim.enquiry(direct_enquiry(WED), st=st)
    sim.run_until(at)
    sim.message(reply(sim.lead, TEXT, opt_out=opt_out), at)
    return sim


def test_a_reply_unanswered_for_a_business_hour_nudges_the_owner_once() -> None:
    sim = replied()
    assert sim.lead.ended is Ended.REPLIED and sim.lead.conversation is Conversation.WAITING_US
    assert next_wake(sim.lead, BOOK, NUDGING, sim.now) == berlin(2026, 3, 6, 13, 0)
    sim.run_until(berlin(2026, 3, 6, 12, 59))
    assert nudges(sim) == []
    sim.run_until(berlin(2026, 3, 6, 13, 0))
    [nudge] = nudges(sim)
    out = nudge.send.out
    assert nudge.at == berlin(2026, 3, 6, 13, 0)
    assert out.to.addr == OWNER and out.reply_to == JANE  # Reply answers the lead
    assert out.subject == sim.lead.thread_subject  # in the lead's own conversation
    assert out.purpose == "owner-nudge"
    assert TEXT in out.body and "has waited for an answer since Fri 06 Mar 12:00" in out.body
    assert sim.lead.nudged_at == berlin(2026, 3, 6, 13, 0)


def test_not_again_within_the_period_and_again_after_it() -> None:
    sim = replied()
    sim.tick_until(berlin(2026, 3, 9, 8, 59), timedelta(minutes=30))
    assert len(nudges(sim)) == 1  # the period ends Saturday 13:00: outside sending hours
    sim.run_until(berlin(2026, 3, 9, 9, 0))
    assert [n.at for n in nudges(sim)] == [berlin(2026, 3, 6, 13, 0), berlin(2026, 3, 9, 9, 0)]
    sim.run_until(berlin(2026, 3, 10, 8, 59))
    assert len(nudges(sim)) == 2
    sim.run_until(berlin(2026, 3, 10, 9, 0))
    assert len(nudges(sim)) == 3


def test_none_outside_sending_hours_unless_configured() -> None:
    late = berlin(2026, 3, 6, 16, 30)  # the business hour would end at 17:30, Friday
    sim = replied(at=late)
    sim.tick_until(berlin(2026, 3, 9, 8, 59), timedelta(minutes=15))
    assert nudges(sim) == []
    sim.run_until(berlin(2026, 3, 9, 9, 0))
    assert [n.at for n in nudges(sim)] == [berlin(2026, 3, 9, 9, 0)]

    anytime = dataclasses.replace(NUDGING, nudge_outside_hours=True)
    sim = replied(st=anytime, at=late)
    sim.run_until(berlin(2026, 3, 6, 23, 0))
    assert [n.at for n in nudges(sim)] == [berlin(2026, 3, 6, 17, 30)]


def test_a_person_answering_ends_the_nudges() -> None:
    sim = replied()
    sim.run_until(berlin(2026, 3, 6, 13, 0))
    assert len(nudges(sim)) == 1
    sim.apply(handed_over(sim.lead, berlin(2026, 3, 6, 14, 0), "a person wrote (Sent)"))
    assert sim.lead.conversation is Conversation.WAITING_THEM
    assert next_wake(sim.lead, BOOK, NUDGING, sim.now) is None
    sim.tick_until(berlin(2026, 3, 20, 12, 0), timedelta(hours=1))
    assert len(nudges(sim)) == 1


def test_a_new_reply_after_an_answer_starts_the_clock_again() -> None:
    sim = replied()
    sim.apply(handed_over(sim.lead, berlin(2026, 3, 6, 12, 30), "a person wrote (Sent)"))
    sim.tick_until(berlin(2026, 3, 9, 9, 30), timedelta(hours=1))
    assert nudges(sim) == []
    # They write again: the conversation waits for us again, counted from their new mail.
    sim.message(reply(sim.lead, "Thanks! One more question."), berlin(2026, 3, 9, 10, 0))
    sim.run_until(berlin(2026, 3, 9, 12, 0))
    [nudge] = nudges(sim)
    assert nudge.at == berlin(2026, 3, 9, 11, 0)
    assert "One more question" in nudge.send.out.body


def test_inboxwatch_stop_ends_the_nudges() -> None:
    sim = replied()
    stopped = sim.lead.end(berlin(2026, 3, 6, 12, 10), Ended.STOPPED, "inboxwatch stop")
    assert stopped.conversation is Conversation.WAITING_US  # stop leaves the conversation
    sim.lead = stopped
    assert next_wake(sim.lead, BOOK, NUDGING, sim.now) is None
    sim.tick_until(berlin(2026, 3, 12, 12, 0), timedelta(hours=1))
    assert nudges(sim) == []


def test_an_opted_out_lead_is_never_nudged() -> None:
    sim = replied(opt_out=True)
    assert sim.lead.ended is Ended.OPTED_OUT
    assert next_wake(sim.lead, BOOK, NUDGING, sim.now) is None
    sim.tick_until(berlin(2026, 3, 20, 12, 0), timedelta(hours=1))
    assert nudges(sim) == []


def test_a_zero_period_turns_nudges_off() -> None:
    off = dataclasses.replace(NUDGING, nudge_every=timedelta(0))
    sim = replied(st=off)
    assert next_wake(sim.lead, BOOK, off, sim.now) is None
    sim.tick_until(berlin(2026, 3, 12, 12, 0), timedelta(hours=1))
    assert nudges(sim) == []


def test_nudged_at_survives_the_state_file() -> None:
    sim = replied()
    sim.run_until(berlin(2026, 3, 6, 13, 0))
    again = type(sim.lead).from_dict(sim.lead.to_dict())
    assert again.nudged_at == sim.lead.nudged_at


def test_config_defaults_and_settings(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path / "a", MINIMAL))
    st = Settings.from_config(cfg)
    assert (st.nudge_after, st.nudge_every) == (timedelta(hours=1), timedelta(hours=24))
    assert st.nudge_outside_hours is False
    text = MINIMAL.replace(
        'address = "owner@shop.example"\n',
        'address = "owner@shop.example"\nnudge_after_hours = 2\nnudge_every_hours = 0\n'
        "nudge_outside_hours = true\n",
    )
    st = Settings.from_config(load_config(write(tmp_path / "b", text)))
    assert (st.nudge_after, st.nudge_every) == (timedelta(hours=2), timedelta(0))
    assert st.nudge_outside_hours is True


def test_nudges_stop_a_week_after_the_lead_began_to_wait() -> None:
    """Daily reminders for ever would be noise; the digest still lists the lead."""
    sim = replied()
    sim.run_until(berlin(2026, 3, 31, 12, 0))
    last = max(n.at for n in nudges(sim))
    assert last <= FRI_NOON + timedelta(days=7)
    assert len(nudges(sim)) == 6  # Fri 13:00, then Mon to Fri at 9:00 (Sat/Sun are closed)
    assert next_wake(sim.lead, BOOK, NUDGING, sim.now) is None
