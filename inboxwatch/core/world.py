"""What every decision shares: the fixed :class:`World`, and a lead-level decision as
the actions the shell carries out (its messages built first, as outbox items)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from inboxwatch.core.actions import Action, PutLead, Queue, RecordAck, Suppress
from inboxwatch.core.cadence import next_wake
from inboxwatch.core.decide import Decision
from inboxwatch.core.lead import Lead
from inboxwatch.core.letters import Send
from inboxwatch.core.mime import to_bytes
from inboxwatch.core.owner_mail import notice_mail
from inboxwatch.core.queue import OutboxItem, Purpose
from inboxwatch.core.settings import Settings
from inboxwatch.userfiles.rulebook import RuleBook


@dataclass(frozen=True)
class World:
    """Everything fixed that a decision needs besides the state, the event and ``now``."""

    book: RuleBook
    settings: Settings
    ids: Callable[[], str]  # new Message-IDs (tests make them predictable)


def wake_of(lead: Lead, world: World, now: datetime) -> datetime | None:
    return next_wake(lead, world.book, world.settings, now)


def queue_item(send: Send, now: datetime) -> OutboxItem:
    """The outbox item for a message; raises ValueError for an address we cannot write."""
    out = send.out
    return OutboxItem(
        id=out.message_id,
        purpose=Purpose(out.purpose),
        lead=out.lead,
        step=send.step,
        mail_from=out.from_.addr,
        rcpt=out.to.addr,
        raw=to_bytes(out),
        created=now,
        next_try=now,
    )


def owner_notice(world: World, subject: str, body: str, now: datetime) -> list[Action]:
    """One plain notice to the owner (a backlog's summary, a delivery problem), queued;
    nothing when owner alerts are off."""
    st = world.settings
    if not st.owner_alerts:
        return []
    mail = notice_mail(
        me=st.me,
        owner=st.owner,
        subject=subject,
        body=body,
        message_id=world.ids(),
        now=now.astimezone(st.window.tz),
    )
    return [Queue(queue_item(Send(mail), now))]


def actions_of(decision: Decision, world: World, now: datetime) -> list[Action]:
    """A lead-level decision as actions. Every message is built first: one that cannot be
    built raises before anything is returned, so no half of a change is applied."""
    items = [queue_item(send, now) for send in decision.sends]
    out: list[Action] = []
    if decision.lead is not None:
        out.append(PutLead(decision.lead, wake_of(decision.lead, world, now)))
    if decision.suppress:
        out.append(Suppress(decision.suppress, decision.note))
    for item in items:
        out.append(Queue(item))
        if item.purpose is Purpose.ACK:
            out.append(RecordAck(item.rcpt))
    return out
