"""During `inboxwatch pause` only mail to leads is held: the new-lead alert says the
acknowledgement is held (and until when), and the owner's call tasks still come on time.
In-memory edges (milliseconds); the same daemon as production, ticked on a fixed clock."""

from __future__ import annotations

import dataclasses
import email
import email.policy
from datetime import timedelta
from pathlib import Path

from test_scenario import START, MemoryEdges, purposes

from inboxwatch.core import route
from inboxwatch.core.actions import PutLead, Queue
from inboxwatch.core.pause import MARKER, Pause, ack_held
from inboxwatch.service.apply import Session
from inboxwatch.testing.mailfactory import mail

OWNER = "owner@shop.test"
LEAD = "paula@customer.test"


def body(raw: bytes) -> str:
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    part = msg.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())  # type: ignore[attr-defined]


def paused(edges: MemoryEdges, pause: Pause) -> None:
    with edges.store.transaction() as state:
        state.set_marker(MARKER, pause.dump())


def owner_mail(edges: MemoryEdges, purpose: str) -> list[bytes]:
    return [r for r in edges.outgoing(OWNER) if purposes([r]) == [purpose]]


def test_the_alert_says_the_ack_is_held_and_the_call_task_still_comes(tmp_path: Path) -> None:
    edges = MemoryEdges(tmp_path)
    until = START + timedelta(days=2)
    paused(edges, Pause(START, until, acks=True))
    edges.deliver(mail(LEAD, edges.shop, "Quote for a roof", "What would it cost?"))

    def at(days: float) -> None:
        edges.clock.set(START + timedelta(days=days))
        edges.daemon.tick(edges.clock.now())

    at(0)
    assert edges.outgoing(LEAD) == []  # the acknowledgement is held
    (alert,) = owner_mail(edges, "owner-alert")
    text = " ".join(body(alert).split())
    assert "Our automatic acknowledgement: held by `inboxwatch pause` until 2026-03-04" in text
    assert "sent at once" not in text
    assert len(owner_mail(edges, "owner-task")) == 1  # call-day0, to the owner, not held

    at(1.5)  # day 1's follow-up waits for the held acknowledgement: not even queued
    with edges.store.transaction() as state:
        assert [i.purpose.value for i in state.queued()] == ["ack"]
    at(2.01)  # the pause is over: the acknowledgement goes, alone
    assert purposes(edges.outgoing(LEAD)) == ["ack"]
    at(3.2)  # the follow-up counts its day from when the acknowledgement really went
    assert purposes(edges.outgoing(LEAD)) == ["ack", "followup"]


def test_without_a_pause_the_alert_says_sent_at_once(tmp_path: Path) -> None:
    edges = MemoryEdges(tmp_path)
    edges.deliver(mail(LEAD, edges.shop, "Quote for a roof", "What would it cost?"))
    edges.daemon.tick(edges.clock.now())
    assert purposes(edges.outgoing(LEAD)) == ["ack"]
    (alert,) = owner_mail(edges, "owner-alert")
    assert "Our automatic acknowledgement: sent at once" in body(alert)


def test_what_the_alert_says_of_each_kind_of_pause() -> None:
    tz = START.tzinfo
    assert tz is not None
    forever = Pause(START, None, acks=True).dump()
    assert ack_held(forever, START, tz) == (
        "held by `inboxwatch pause` until `inboxwatch resume`; it goes when the pause ends"
    )
    # Acknowledgements left out of the pause, a pause that ended, no pause: they go.
    assert ack_held(Pause(START, None, acks=False).dump(), START, tz) == ""
    ended = Pause(START, START + timedelta(hours=1), acks=True).dump()
    assert ack_held(ended, START + timedelta(hours=2), tz) == ""
    assert ack_held(None, START, tz) == ack_held("{damaged", START, tz) == ""


def test_mail_waiting_hands_over_tasks_but_plans_no_mail_to_the_lead(tmp_path: Path) -> None:
    """``route.on_due`` with the lead's earlier message still queued: the day-0 call goes
    to the owner, the day-1 email is not planned, and the lead sleeps (no wake time)
    until the delivery gives it one, rather than waking on every tick."""
    edges = MemoryEdges(tmp_path)
    paused(edges, Pause(START, None, acks=True))
    edges.deliver(mail(LEAD, edges.shop, "Quote", "How much?"))
    edges.daemon.tick(edges.clock.now())
    world = edges.daemon.world
    later = START + timedelta(days=1, hours=1)
    with edges.store.transaction() as state:
        view = Session(state)
        handed = state.lead(LEAD)
        # (the daemon handed its call over in the same tick: as before that)
        assert handed is not None and handed.steps_done.get("call-day0")
        lead = dataclasses.replace(handed, steps_done={"ack": handed.steps_done["ack"]})
        acts = route.on_due(view, world, lead, later, mail_waiting=True)
        queued = [a.item.purpose.value for a in acts if isinstance(a, Queue)]
        assert queued == ["owner-task"]
        (put,) = [a for a in acts if isinstance(a, PutLead)]
        assert put.lead.steps_done.get("call-day0")
        # The task handed over, nothing else is due while the mail waits: no wake time.
        again = route.on_due(view, world, put.lead, later, mail_waiting=True)
        assert again == [PutLead(put.lead, None)]
        # Without waiting mail the same lead's day-1 email is planned.
        free = route.on_due(view, world, put.lead, later)
        assert [a.item.purpose.value for a in free if isinstance(a, Queue)] == ["followup"]


def test_a_backlog_during_a_pause_still_lists_the_calls_due_now(tmp_path: Path) -> None:
    """More new leads at once than ``backlog_summary_over`` (20), their acknowledgements
    held: the one summary still lists their day-0 calls, handed over once."""
    edges = MemoryEdges(tmp_path)
    paused(edges, Pause(START, None, acks=True))
    leads = [f"held{i}@customer.test" for i in range(21)]
    for i, lead in enumerate(leads):
        edges.deliver(mail(lead, edges.shop, "Quote?", name=f"Held {i}"))
    edges.daemon.tick(START)
    edges.daemon.tick(START + timedelta(hours=2))
    assert all(edges.outgoing(lead) == [] for lead in leads)
    (summary,) = owner_mail(edges, "owner-notice")
    assert "Calls and texts due now (21)" in body(summary)
    text = " ".join(body(summary).split())
    assert "acknowledgement is held by `inboxwatch pause`" in text
    assert "acknowledged as usual" not in text
    assert owner_mail(edges, "owner-task") == []  # listed there, not once more each
    for lead in leads:
        got = edges.lead(lead)
        assert got is not None and got.steps_done.get("call-day0")
