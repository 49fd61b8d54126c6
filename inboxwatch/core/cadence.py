"""What time alone does to a lead: the steps of its sequence, holds ending, closing.

Pure: ``now`` is an argument. :func:`next_wake` is the lead's wake time in the store's
index, so :func:`plan` and it must agree (the tests check that they do).
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta

from inboxwatch.core.decide import Decision, email_step
from inboxwatch.core.lead import Automation, Conversation, Ended, Lead, iso
from inboxwatch.core.letters import Ids, Send
from inboxwatch.core.owner_mail import owner_mail
from inboxwatch.core.settings import Settings
from inboxwatch.core.timing import day_offset, due_at
from inboxwatch.userfiles.rulebook import RuleBook
from inboxwatch.userfiles.sequences import Sequence, Step


def pending_steps(lead: Lead, seq: Sequence) -> list[Step]:
    """Steps still to come, by name; a step added behind the lead's progress is skipped."""
    done_days = [s.day for s in seq.steps if s.name in lead.steps_done]
    reached = max(done_days, default=-1)
    return [s for s in seq.steps if s.name not in lead.steps_done and s.day >= reached]


def last_sent_day(lead: Lead, seq: Sequence) -> int | None:
    """The ``day`` of the latest email step that went out (skipped ones did not)."""
    days = [
        s.day
        for s in seq.steps
        if s.is_email and lead.steps_done.get(s.name, "skipped") != "skipped"
    ]
    return max(days, default=None)


def step_due(lead: Lead, step: Step, st: Settings, seq: Sequence) -> datetime:
    """When ``step`` is due. An email keeps its distance from the email actually sent last:
    at least the difference of the two steps' ``day`` values in calendar days (and
    ``min_gap``) after ``lead.last_email_at``, which the shell sets to the moment the
    server accepted it. So when a step slips (weekend, holiday, hold, caps), the later
    steps slip with it instead of bunching up behind it."""
    if step.is_email:
        prev = last_sent_day(lead, seq)
        return due_at(
            arrival=lead.arrived,
            offset_days=step.day,
            window=st.window,
            last_email_at=lead.last_email_at,
            min_gap=st.min_gap,
            hold_until=lead.hold_until,
            gap_days=max(0, step.day - prev) if prev is not None else 0,
        )
    # Tasks are for the owner: inside working hours, no gap; day 0 at once.
    if step.day == 0:
        return lead.arrived
    return due_at(
        arrival=lead.arrived,
        offset_days=step.day,
        window=st.window,
        last_email_at=None,
        min_gap=timedelta(0),
        hold_until=lead.hold_until,
    )


def next_step(lead: Lead, book: RuleBook, st: Settings) -> tuple[Step, datetime] | None:
    seq = book.sequences.get(lead.sequence)
    if not lead.is_active or seq is None:
        return None
    steps = pending_steps(lead, seq)
    return (steps[0], step_due(lead, steps[0], st, seq)) if steps else None


def next_wake(
    lead: Lead, book: RuleBook, st: Settings, now: datetime | None = None
) -> datetime | None:
    """When time alone will next change something for this lead (as of ``now``, if given)."""
    if not lead.is_active:
        due = nudge_due(lead, st)
        if due is not None and now is not None and due <= now and not nudge_open(st, now):
            return st.window.next_open(now)  # overdue, but it waits for sending hours
        return due
    seq = book.sequences.get(lead.sequence)
    if seq is None:
        return lead.arrived  # plan() ends it at once
    if lead.automation is Automation.HELD and lead.hold_until is not None:
        return lead.hold_until  # the hold ending is itself a change
    if (nxt := next_step(lead, book, st)) is not None:
        step, due = nxt
        if now is not None and due <= now and step.is_email and not st.window.is_open(now):
            return st.window.next_open(now)  # overdue, but it waits for sending hours
        return due
    return close_due(lead, seq, st)


def close_due(lead: Lead, seq: Sequence, st: Settings) -> datetime:
    last = lead.last_email_at or lead.arrived
    return day_offset(last, seq.close_after_days, st.window.tz)


#: Endings after which nobody is reminded: a person acted (``HANDLED``, ``STOPPED``), or
#: nobody should write to the lead again (``OPTED_OUT``, ``BOUNCED``).
NO_NUDGE = frozenset({Ended.HANDLED, Ended.STOPPED, Ended.OPTED_OUT, Ended.BOUNCED})


def waiting_since(lead: Lead) -> datetime | None:
    """Since when the lead's conversation has waited for a person of ours, if it does
    and a nudge may be about it: the automation ended (they replied), the conversation
    waits for us, and no person has acted (Sent, \\Flagged and ``inboxwatch stop`` end
    it as ``HANDLED``/``STOPPED`` or set it ``WAITING_THEM``). Since: their latest reply."""
    if (
        lead.is_active
        or lead.conversation is not Conversation.WAITING_US
        or lead.ended in NO_NUDGE
        or lead.undeliverable
    ):
        return None
    return next((e.at for e in reversed(lead.events) if e.what == "reply"), lead.arrived)


def nudge_open(st: Settings, now: datetime) -> bool:
    return st.nudge_outside_hours or st.window.is_open(now)


def nudge_due(lead: Lead, st: Settings) -> datetime | None:
    """When the owner is next reminded that ``lead`` waits for an answer (None: never).

    The first nudge comes after ``st.nudge_after`` of business time, kept simple: the
    waiting time starts counting at the first moment inside sending hours
    (``window.next_open(since)``), and a nudge that would fall outside them waits for the
    next opening; so an answer at 16:30 (hours 9-17) is nudged at 9:00 the next working
    day, one at 20:00 at 10:00 the next. Later ones follow at most once per
    ``st.nudge_every`` after the last. With ``nudge_outside_hours`` plain hours count."""
    since = waiting_since(lead)
    if since is None or st.nudge_every <= timedelta(0) or not st.owner_alerts:
        return None
    if st.nudge_outside_hours:
        due = since + st.nudge_after
    else:
        due = st.window.next_open(st.window.next_open(since) + st.nudge_after)
    if lead.nudged_at is not None and lead.nudged_at >= since:
        again = lead.nudged_at + st.nudge_every
        due = max(due, again if st.nudge_outside_hours else st.window.next_open(again))
    # Reminding for ever would be noise (and keep the lead out of the archive): after
    # NUDGE_FOR the lead is left to the digest, which lists everyone still waiting.
    return due if due - since <= NUDGE_FOR else None


#: Nudges stop this long after the lead began to wait (the digest still lists them).
NUDGE_FOR = timedelta(days=7)


def nudge(lead: Lead, book: RuleBook, st: Settings, now: datetime, ids: Ids) -> Decision:
    """Remind the owner of a lead waiting for an answer, when :func:`nudge_due` says so.

    The nudge is an answerable alert (``owner-nudge``): its Reply answers the lead in
    their conversation, like the reply alert. ``nudged_at`` is set even when no mail can
    be written (no template, alerts off), so the lead does not wake on every tick."""
    due = nudge_due(lead, st)
    if due is None or due > now or not nudge_open(st, now):
        return Decision()
    since = waiting_since(lead) or lead.arrived
    words = next((e.detail for e in reversed(lead.events) if e.what == "reply"), "")
    sends = owner_mail(
        "owner-nudge",
        lead,
        book,
        st,
        now,
        ids,
        excerpt=words,
        waiting_since=f"{since.astimezone(st.window.tz):%a %d %b %H:%M %Z}",
        answers=lead.inbound[-1] if lead.inbound else "",
    )
    lead = dataclasses.replace(lead, nudged_at=now).log(
        now, "nudge", "owner reminded" if sends else "no owner mail (alerts off or no template)"
    )
    return Decision(lead, sends, f"{lead.address} waits for an answer: owner nudged")


def plan(
    lead: Lead,
    book: RuleBook,
    st: Settings,
    now: datetime,
    ids: Ids,
    *,
    mail_waiting: bool = False,
) -> Decision:
    """What time alone makes due for one lead: follow-ups, owner tasks, the end; once the
    automation ended, reminders (nudges) while the conversation waits for us.

    ``mail_waiting``: an earlier message to the lead is still queued (held by the
    owner's pause, a quota, an outage). The owner's tasks due before the next email are
    still handed over; that email, and the end, wait for it to go (their gaps count from
    when it really went)."""
    if not lead.is_active:
        return nudge(lead, book, st, now, ids)
    seq = book.sequences.get(lead.sequence)
    if seq is None:
        return Decision(
            lead.end(now, Ended.STOPPED, f"sequence {lead.sequence!r} no longer exists")
        )
    changed = False
    if lead.automation is Automation.HELD and lead.hold_until and now >= lead.hold_until:
        lead = dataclasses.replace(lead, automation=Automation.ACTIVE).log(now, "hold over")
        changed = True
    if lead.automation is Automation.HELD:
        return Decision(lead if changed else None)
    sends: list[Send] = []
    notes: list[str] = []
    for step in pending_steps(lead, seq):
        if step_due(lead, step, st, seq) > now:
            break
        if step.is_email and mail_waiting:
            break
        if step.is_email and not st.window.is_open(now):
            break  # overdue (we were down, or woke late) but outside sending hours: wait
        if step.is_email:
            if step.template not in book.templates:
                lead = lead.log(now, f"{step.name}: skipped", f"no template {step.template!r}")
                lead = dataclasses.replace(
                    lead, steps_done={**lead.steps_done, step.name: "skipped"}
                )
                changed = True
                continue
            lead, send = email_step(lead, step, book, st, now, ids, "followup")
            sends.append(send)
            notes.append(f"{step.name} to {lead.address}")
            changed = True
            break  # the next email waits for the gap
        task = "call" if step.channel == "call" else "text"
        sends.extend(owner_mail("owner-task", lead, book, st, now, ids, task=task, step=step.name))
        lead = dataclasses.replace(lead, steps_done={**lead.steps_done, step.name: iso(now) or ""})
        lead = lead.log(now, f"{step.name}: {task} task for the owner")
        notes.append(f"{step.name} ({task} task) for {lead.address}")
        changed = True
    if not mail_waiting and not pending_steps(lead, seq) and now >= close_due(lead, seq, st):
        lead = lead.end(now, Ended.NO_RESPONSE, "every step done, no answer")
        lead = dataclasses.replace(lead, conversation=Conversation.CLOSED)
        notes.append(f"{lead.address} closed: no response")
        changed = True
    return Decision(lead if changed else None, tuple(sends), "; ".join(notes))
