"""Events against the state: which lead a message concerns and what follows, as actions.

The three inputs (new inbox mail, new mail in Sent, flags on the inbox), time passing and
delivery results each have one pure function here: ``(view, world, event, now) ->
actions``. The per-lead transitions they call (:mod:`inboxwatch.core.decide`) answer
"what happens to this lead"; this module answers "which lead, and is it ours to act on".
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from inboxwatch.core import autodetect, pause
from inboxwatch.core.actions import (
    Action,
    ClearNotice,
    InboxMail,
    Note,
    Notice,
    PutLead,
    Queue,
    RaiseNotice,
    Reject,
    SentMail,
    StateView,
    Suppress,
)
from inboxwatch.core.backlog import summarize_backlog as summarize_backlog
from inboxwatch.core.backlog import summarize_tasks as summarize_tasks
from inboxwatch.core.backlog import to_summary as to_summary
from inboxwatch.core.cadence import plan
from inboxwatch.core.classify import Classification, Kind, Known, classify
from inboxwatch.core.decide import (
    Decision,
    Incoming,
    handed_over,
    on_enquiry,
    on_message,
    on_orphan_reply,
)
from inboxwatch.core.lead import Lead, message_ids
from inboxwatch.core.message import Message, parse_message
from inboxwatch.core.mime import MARK_HEADER, attachments, made_by_us
from inboxwatch.core.settings import Settings
from inboxwatch.core.suppression import is_suppressed

# World, queue_item and wake_of are used by the shell and tests through this module too.
from inboxwatch.core.world import World as World
from inboxwatch.core.world import actions_of, owner_notice
from inboxwatch.core.world import queue_item as queue_item
from inboxwatch.core.world import wake_of as wake_of
from inboxwatch.errors import MessageError

#: Message-IDs of mail handled for one lead that are kept for recognising re-reads.
MAX_INBOUND = 50
#: The notice about a sender whose notifications a rule does not trust: this + the sender.
UNLISTED = "unlisted-sender:"


def remember(known: Known, actions: Iterable[Action]) -> Known:
    """``known`` after these actions: a batch keeps its lookups current without
    re-reading every lead (a backlog of 1,000 would otherwise cost leads x messages)."""
    by_address = by_mid = suppressed = ours = None
    for a in actions:
        if isinstance(a, PutLead):
            by_address = by_address if by_address is not None else dict(known.by_address)
            by_mid = by_mid if by_mid is not None else dict(known.by_message_id)
            lead = a.lead
            by_address[lead.address] = lead.address
            ids = {"thread": lead.thread, "inbound": lead.inbound, "enquiry_id": lead.enquiry_id}
            for mid in message_ids(ids):
                by_mid[mid] = lead.address
        elif isinstance(a, Suppress):
            suppressed = (suppressed or set(known.suppressed)) | {a.address.lower()}
        elif isinstance(a, Queue) and not a.item.purpose.to_lead:
            ours = (ours or set(known.ours)) | {a.item.id}
    if by_address is None and suppressed is None and ours is None:
        return known
    return Known(
        by_address if by_address is not None else known.by_address,
        by_mid if by_mid is not None else known.by_message_id,
        frozenset(suppressed) if suppressed is not None else known.suppressed,
        frozenset(ours) if ours is not None else known.ours,
    )


# -- the inbox --------------------------------------------------------------------------------


def arrival(mail: InboxMail, st: Settings, now: datetime) -> datetime:
    """First response is measured from arrival in the mailbox. A time-lapse lives in its
    own time line (now); the mailbox's date has whole seconds: the middle is the best guess."""
    if st.simulated:
        return now
    exact = mail.received.microsecond != 0
    return min(mail.received + timedelta(seconds=0 if exact else 0.5), now)


@dataclass(frozen=True)
class Prepared:
    """A message parsed and classified against ``known`` (the slow, lock-free part)."""

    mail: InboxMail
    known: Known
    msg: Message | None = None
    c: Classification | None = None
    arrived: datetime | None = None
    error: str = ""


def prepare(world: World, known: Known, mail: InboxMail, now: datetime) -> Prepared:
    """Parse and classify, with what the state knew a moment ago. The shell runs this
    outside the state's lock: user rules have a time budget per message, and a message
    that takes all of it must not hold ``leads`` and ``stop`` up meanwhile."""
    try:
        msg = parse_message(mail.raw)
        if msg.message_id and msg.message_id in known.by_message_id:
            return Prepared(mail, known, msg)  # seen before: no need to classify
        arrived = arrival(mail, world.settings, now)
        c = classify(msg, world.book, world.settings.context(known), arrived)
    except MessageError as exc:
        return Prepared(mail, known, error=str(exc))
    return Prepared(mail, known, msg, c, arrived)


def _stale(p: Prepared, known: Known) -> bool:
    """Did this batch teach the state something that changes how ``p`` reads? (a second
    message of a new lead, a bounce before an enquiry from the same address)"""
    if known is p.known or p.msg is None:
        return False
    msg = p.msg
    ids = (msg.message_id, *msg.thread_ids)
    if any(m in known.by_message_id and m not in p.known.by_message_id for m in ids if m):
        return True
    addrs = [a.addr for a in (msg.from_, *msg.to, *msg.cc) if a is not None]
    if p.c is not None and p.c.lead is not None:
        addrs.append(p.c.lead.addr)
    new = known.by_address.keys() - p.known.by_address.keys()
    return any(
        a in new
        or (is_suppressed(a, known.suppressed) and not is_suppressed(a, p.known.suppressed))
        for a in addrs
    )


def on_inbox(view: StateView, world: World, mail: InboxMail, now: datetime) -> list[Action]:
    """A new message in the inbox: classify it, find its lead, decide."""
    return on_prepared(view, world, prepare(world, view.known(), mail, now), now)


def on_prepared(
    view: StateView, world: World, p: Prepared, now: datetime, *, summarized: bool = False
) -> list[Action]:
    """Decide on a prepared message, with the state as it is now (inside the transaction).
    ``summarized``: a backlog is being read, so a new lead gets no alert of its own (it
    is not even composed) but a line in the summary (:mod:`inboxwatch.core.backlog`)."""
    known = view.known()
    if _stale(p, known):
        p = prepare(world, known, p.mail, now)
    mail = p.mail
    if p.msg is None:
        note = Note(f"{mail.ref}: malformed message skipped: {p.error}", logging.WARNING)
        return [Reject(mail.ref, p.error), note]
    msg = p.msg
    if msg.message_id and msg.message_id in known.by_message_id:
        return _seen_before(view, world, mail, msg, known.by_message_id[msg.message_id], now)
    if p.c is None or p.arrived is None:  # prepared as seen before, but not any more
        p = prepare(world, known, mail, now)
        if p.c is None or p.arrived is None:
            return [Reject(mail.ref, p.error or "could not classify")]
    st = world.settings
    c, arrived = p.c, p.arrived
    inc = Incoming(msg, mail.ref, arrived, c)
    lead = view.lead(c.lead_key) if c.lead_key else None
    if c.kind is Kind.ENQUIRY and c.lead is not None:
        existing = view.lead(c.lead.addr)
        if existing is not None:  # a known address in a new thread: it is a reply
            lead = existing
            c = dataclasses.replace(c, kind=Kind.REPLY, lead_key=existing.address)
            inc = dataclasses.replace(inc, c=c)
    extra: list[Action] = []
    if c.kind is Kind.ENQUIRY and c.lead is not None and now - arrived > st.max_age:
        # Old mail moved back into the inbox, or a very long outage: an "instant"
        # acknowledgement weeks late would read as a bug. A person decides.
        days = st.max_age.days
        why = f"enquiry from {c.lead.addr} is older than {days} days: not acknowledged"
        decision = Decision(note=why)
    elif c.kind is Kind.ENQUIRY and c.lead is not None:
        decision = on_enquiry(
            inc,
            world.book,
            st,
            now,
            world.ids,
            last_ack=view.last_ack(c.lead.addr),
            simulated=st.simulated,
            files=attachments(mail.raw, st.alert_attachments_max)
            if st.owner_alerts and not summarized
            else ((), ()),
            ack_held=pause.ack_held(view.marker(pause.MARKER), now, st.window.tz),
            alert=not summarized,
        )
        if summarized and decision.lead is not None and st.owner_alerts:
            extra = [to_summary(view, [decision.lead.address])]
        if decision.lead is not None:
            inbound = (msg.message_id,) if msg.message_id else ()
            new = dataclasses.replace(decision.lead, enquiry_flagged=mail.flagged, inbound=inbound)
            decision = dataclasses.replace(decision, lead=new)
    elif lead is None and c.kind is Kind.REPLY and c.lead is not None:
        existing = view.lead(c.lead.addr)
        if existing is None:
            decision = on_orphan_reply(inc, world.book, st, now, world.ids)
        else:
            decision = on_message(inc, existing, world.book, st, now, world.ids)
    elif lead is not None:
        decision = on_message(inc, lead, world.book, st, now, world.ids)
        if decision.lead is not None and msg.message_id:
            kept = (*decision.lead.inbound, msg.message_id)[-MAX_INBOUND:]
            decision = dataclasses.replace(
                decision, lead=dataclasses.replace(decision.lead, inbound=kept)
            )
    else:
        if c.kind is Kind.BOUNCE and c.bounce_hard:
            # Unknown to us, but an address that bounced must never get an acknowledgement.
            extra = [Suppress(addr, "hard bounce") for addr in c.bounced]
        elif c.kind is Kind.COMPLAINT:
            # A complaint is an opt-out of the address, whether or not it was a lead.
            extra = [Suppress(addr, "complaint about our mail") for addr in c.complained]
        elif c.unlisted:
            extra = _unlisted(view, world, c, now)
        decision = Decision(note=f"{c.kind.value}: {'; '.join(c.reasons)}")
    sender = msg.from_.addr if msg.from_ else "?"
    if c.kind is Kind.ENQUIRY and c.lead is not None and c.lead.addr != sender:
        # A notification answered: if its sender was held before, it is listed now.
        extra += [ClearNotice(n.key) for n in view.notices() if n.key == UNLISTED + sender]
    note = Note(f"{mail.ref} from={sender} {c.kind.value}: {decision.note}")
    return [*actions_of(decision, world, now), *extra, note]


def _unlisted(view: StateView, world: World, c: Classification, now: datetime) -> list[Action]:
    """A notification from a sender its rule does not list (see ``classify._unlisted``):
    the owner is told once per sender, by mail (the person it names waits for an answer
    meanwhile) and in ``status`` until a notification from it is answered, or until
    ``forget SENDER`` (a sender the owner does not know)."""
    rule, sender, named = c.unlisted
    key = UNLISTED + sender
    if any(n.key == key for n in view.notices()):
        return []
    text = f"{sender}: {c.reasons[-1]}"
    body = (
        f"inboxwatch received a message from {sender} that looks like a notification of "
        f"your rule {rule!r}: it names {named}. {sender} is not one of the rule's senders, "
        "so inboxwatch answered nobody: such a message could be forged, and answering its "
        "sender would answer a website's robot.\n\n"
        f"If it is your own website's form: {c.reasons[-1].partition('if it is yours, ')[2]}"
        " (inboxwatch reads the edited file by itself; `inboxwatch check` checks it). From "
        f"then on its notifications are answered. Please answer {named}, and any "
        f"notification from {sender} until then, yourself: they are in your inbox.\n\n"
        f"If you do not know {sender} (the message may be forged), nothing needs doing; "
        f"`inboxwatch forget {sender}` ends this notice in `inboxwatch status`. You are told "
        "once per sender."
    )
    return [
        RaiseNotice(Notice(key, text, now)),
        *owner_notice(world, f"Not answered: notifications from {sender}", body, now),
    ]


def _seen_before(
    view: StateView, world: World, mail: InboxMail, msg: Message, address: str, now: datetime
) -> list[Action]:
    """Mail handled before (read again after the server renumbered the folder)."""
    out: list[Action] = [Note(f"{mail.ref} {msg.message_id}: already processed")]
    lead = view.lead(address)
    if lead is not None and lead.enquiry_id == msg.message_id and lead.enquiry_ref != mail.ref:
        # Keep the enquiry's new place, so flagging it still hands the lead over.
        lead = dataclasses.replace(lead, enquiry_ref=mail.ref)
        out.insert(0, PutLead(lead, wake_of(lead, world, now)))
    return out


# -- Sent and flags: a person took over ------------------------------------------------------


def on_sent(view: StateView, world: World, mail: SentMail, now: datetime) -> list[Action]:
    """A person writing to a lead from this mailbox takes the lead over."""
    head = mail.raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0].lower()
    if b"\n" + MARK_HEADER.lower().encode() + b":" in head:
        return []  # our own copy: no need to parse it
    try:
        msg = parse_message(mail.raw)
    except MessageError:
        return []
    known = view.known()
    if msg.message_id and (
        msg.message_id in known.ours
        or (msg.message_id in known.by_message_id and made_by_us(msg.message_id))
    ):
        return []
    if (found := autodetect.detect(msg)) is not None and found.kind == "auto_reply":
        return []  # a vacation responder's copy in Sent is not a person taking over
    addressed = {known.by_address[a.addr] for a in (*msg.to, *msg.cc) if a.addr in known.by_address}
    addressed |= {known.by_message_id[m] for m in msg.thread_ids if m in known.by_message_id}
    out: list[Action] = []
    for address in sorted(addressed):
        lead = view.lead(address)
        if lead is None:
            continue
        decision = handed_over(lead, now, "a person wrote to the lead (Sent)")
        if decision.lead is not None and decision.lead.first_response is None:
            first = dataclasses.replace(decision.lead, first_response=mail.received)
            decision = dataclasses.replace(decision, lead=first)
        out += [*actions_of(decision, world, now), Note(f"Sent {mail.ref}: {decision.note}")]
    return out


def flagged_leads(view: StateView, flagged: frozenset[str]) -> list[Lead]:
    """Active leads whose enquiry a person flagged (not one that came in flagged: that
    was a server rule, not a person)."""
    if not flagged:
        return []
    return [
        lead
        for lead in view.leads()
        if lead.is_active and not lead.enquiry_flagged and lead.enquiry_ref in flagged
    ]


def on_flag(view: StateView, world: World, lead: Lead, now: datetime) -> list[Action]:
    """A person flagging the enquiry takes the lead over."""
    decision = handed_over(lead, now, "the enquiry was flagged in the mailbox")
    return [*actions_of(decision, world, now), Note(f"{lead.address}: enquiry flagged")]


# -- time -------------------------------------------------------------------------------------


def on_due(
    view: StateView, world: World, lead: Lead, now: datetime, *, mail_waiting: bool = False
) -> list[Action]:
    """What time alone makes due for one lead: follow-ups, owner tasks, a hold ending,
    closing. The lead always gets its wake time again, changed or not, so a lead whose
    step waits (sending hours) is not found due on every tick.

    ``mail_waiting``: an earlier message to the lead is still in the outbox (held by the
    owner's pause, a quota, an outage). The owner's tasks (a call on day 0) still go: the
    pause holds mail to leads only. No more mail to the lead is planned until it goes:
    once nothing else is due, the lead has no wake time, and the delivery gives it one
    again, counted from when it really went.
    """
    decision = plan(lead, world.book, world.settings, now, world.ids, mail_waiting=mail_waiting)
    out = actions_of(decision, world, now)
    if decision.lead is None:
        out.insert(0, PutLead(lead, None if mail_waiting else wake_of(lead, world, now)))
    if decision.note:
        out.append(Note(decision.note))
    return out


def rewake(view: StateView, world: World, now: datetime) -> list[Action]:
    """Every lead's wake time again (after a start or an edit of the rules)."""
    return [PutLead(lead, wake_of(lead, world, now)) for lead in view.leads()]
