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
        return None
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


def plan(lead: Lead, book: RuleBook, st: Settings, now: datetime, ids: Ids) -> Decision:
    """What time alone makes due for one lead: follow-ups, owner tasks, the end."""
    if not lead.is_active:
        return Decision()
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
    if not pending_steps(lead, seq) and now >= close_due(lead, seq, st):
        lead = lead.end(now, Ended.NO_RESPONSE, "every step done, no answer")
        lead = dataclasses.replace(lead, conversation=Conversation.CLOSED)
        notes.append(f"{lead.address} closed: no response")
        changed = True
    return Decision(lead if changed else None, tuple(sends), "; ".join(notes))
