"""Many at once: a backlog of new leads (after a start or an outage) and the calls and
texts that fall due with it become one alert for the owner, not one mail per lead or task.

A backlog is more than ``[owner] backlog_summary_over`` new-lead alerts from one read of
the inbox. Its leads are acknowledged as usual, and the summary lists them. Once a read
has passed that count the summary is certain: the alerts composed so far are cancelled
before they go, and later leads get none composed at all (in a backlog of 1,000 that was
half the work of answering it). Their addresses are kept in the state (:data:`MARKER`)
with each chunk's decisions, so a stop in the middle of a backlog loses none: the next
read ends with the summary. Their call and text tasks due at once (a day-0 call) are
planned right here, at the same ``now`` as the time step of the tick would plan them,
and listed in the same summary instead of one task alert each. Later, many tasks falling
due in one pass (the backlog's day-3 calls) are folded into one alert the same way.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from datetime import datetime

from inboxwatch.core import pause
from inboxwatch.core.actions import Action, Note, SetMarker, StateView, UpdateOutbox
from inboxwatch.core.cadence import plan
from inboxwatch.core.lead import Lead, iso
from inboxwatch.core.mime import clean_header, made_by_us
from inboxwatch.core.queue import OutboxItem, Purpose
from inboxwatch.core.world import World, actions_of, owner_notice, wake_of

#: Lines listed per summary; the rest are counted (`inboxwatch leads` has them all).
MAX_LISTED = 200
#: The state marker naming the leads the next backlog summary lists, one per line.
MARKER = "backlog-summary"


def awaiting(view: StateView) -> list[str]:
    """The leads waiting for the backlog's summary, in the order they came."""
    return list(dict.fromkeys(a for a in (view.marker(MARKER) or "").split("\n") if a))


def to_summary(view: StateView, addresses: Sequence[str]) -> SetMarker:
    """These leads' new-lead alerts are (or go) into the backlog's summary."""
    old = view.marker(MARKER) or ""
    new = "\n".join(addresses)
    return SetMarker(MARKER, f"{old}\n{new}" if old and new else old or new)


def _who(lead: Lead | None, address: str) -> str:
    name = clean_header(lead.name, 100) if lead is not None else ""
    return f"{name} <{address}>" if name else address


def _listed(lines: Sequence[str]) -> list[str]:
    more = len(lines) - MAX_LISTED
    return [*lines[:MAX_LISTED], *([f"- ... and {more} more"] if more > 0 else [])]


def tasks_at(lead: Lead, world: World, now: datetime) -> list[str]:
    """One line per call or text of ``lead`` handed to the owner at ``now``."""
    seq = world.book.sequences.get(lead.sequence)
    stamp = iso(now)
    phone = clean_header(lead.phone, 40) or "no phone number yet"
    return [
        f"- {step.channel} {_who(lead, lead.address)}: {phone}"
        for step in (seq.steps if seq else ())
        if not step.is_email and lead.steps_done.get(step.name) == stamp
    ]


def _mail_waiting(view: StateView, lead: Lead) -> bool:
    """A message of ours to the lead is still queued (its acknowledgement, held by the
    owner's pause or an outage): its tasks still go to the owner, but no more mail to
    the lead is planned until it goes (as ``route.on_due`` does)."""
    for mid in lead.thread:
        item = view.outbox_item(mid) if made_by_us(mid) else None
        if item is not None and item.queued and item.purpose.to_lead:
            return True
    return False


def fold_tasks(
    view: StateView, world: World, leads: Sequence[Lead], now: datetime
) -> tuple[list[Action], list[str]]:
    """What time makes due now for ``leads`` (as ``route.on_due`` would plan it), with
    the task alerts left out: (the other actions, one line per task)."""
    actions: list[Action] = []
    lines: list[str] = []
    for lead in leads:
        if not lead.is_active:
            continue
        wake = wake_of(lead, world, now)
        if wake is None or wake > now:
            continue
        waiting = _mail_waiting(view, lead)
        decision = plan(lead, world.book, world.settings, now, world.ids, mail_waiting=waiting)
        tasks = [s for s in decision.sends if s.out.purpose == Purpose.OWNER_TASK]
        if not tasks or decision.lead is None:
            continue
        others = tuple(s for s in decision.sends if s not in tasks)
        actions += actions_of(dataclasses.replace(decision, sends=others), world, now)
        if decision.note:
            actions.append(Note(decision.note))
        lines += tasks_at(decision.lead, world, now)
    return actions, lines


def summarize_backlog(
    view: StateView, world: World, queued: Callable[[], Sequence[OutboxItem]], now: datetime
) -> list[Action]:
    """The leads of a backlog (:func:`awaiting`): one summary for the owner, which also
    lists their calls and texts due now (see the module docstring); their alerts still
    queued (``queued()``: the outbox) are cancelled. Nothing when no lead waits."""
    st = world.settings
    waiting = awaiting(view)
    if not waiting:
        return []
    # A lead erased meanwhile (`inboxwatch forget`) is not named, nor counted.
    leads = [lead for a in waiting if (lead := view.lead(a)) is not None]
    if not leads:
        return [SetMarker(MARKER, "")]
    listed = {lead.address for lead in leads}
    alerts = [
        i for i in queued() if i.purpose is Purpose.OWNER_ALERT and i.queued and i.lead in listed
    ]
    tz = st.window.tz
    lines = [
        f"- {_who(lead, lead.address)}, arrived {lead.arrived.astimezone(tz):%a %d %b %H:%M}"
        for lead in leads
    ]
    planned, tasks = fold_tasks(view, world, leads, now)
    n = len(leads)
    held = pause.ack_held(view.marker(pause.MARKER), now, tz)
    acked = (
        f"Each one's acknowledgement is {held}" if held else "Each has been acknowledged as usual"
    )
    body = (
        f"{n} new enquiries were found at once (after a start or an outage). {acked}; "
        f"instead of {n} alerts, here they are together. "
        "`inboxwatch leads` lists them with their details.\n\n" + "\n".join(_listed(lines))
    )
    if tasks:
        body += (
            f"\n\nCalls and texts due now ({len(tasks)}), here instead of an alert each:\n"
            + "\n".join(_listed(tasks))
        )
    out: list[Action] = [UpdateOutbox(a.cancelled()) for a in alerts]
    out += planned
    out += owner_notice(world, f"{n} new leads at once", body, now)
    note = f"{n} new leads at once ({len(tasks)} tasks): one summary alert for the owner"
    return [*out, SetMarker(MARKER, ""), Note(note)]


def summarize_tasks(
    view: StateView, world: World, tasks: Sequence[OutboxItem], now: datetime
) -> list[Action]:
    """More task alerts from one pass over the due leads than a backlog's worth: one
    alert that lists them (their alerts are cancelled before they go)."""
    if len(tasks) <= world.settings.backlog_summary_over:
        return []
    lines: list[str] = []
    for address in dict.fromkeys(t.lead for t in tasks):
        lead = view.lead(address)
        lines += tasks_at(lead, world, now) if lead is not None else [f"- {address}"]
    body = (
        f"{len(lines)} calls and texts fell due at once (many leads came in together). "
        "Here they are together instead of an alert each; `inboxwatch leads` has the "
        "details.\n\n" + "\n".join(_listed(lines))
    )
    out: list[Action] = [UpdateOutbox(t.cancelled()) for t in tasks]
    out += owner_notice(world, f"{len(lines)} calls and texts due", body, now)
    return [*out, Note(f"{len(tasks)} task alerts at once: one summary for the owner")]
