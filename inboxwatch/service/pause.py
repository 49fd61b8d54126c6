"""`inboxwatch pause` / `resume`: the owner holds all mail to leads (on holiday, the
office closed) while new leads are still read, recorded and told to the owner.

The pause is a marker in the state (its value: :class:`inboxwatch.core.pause.Pause`),
written in one transaction by the command, which then wakes the running daemon
(``SIGUSR1``); its outbox reads the marker before every send, so it takes effect at once
without a restart.
While it holds, the outbox moves queued mail to leads (the acknowledgement too, unless
``[sending] pause_acknowledgements = false``) to the pause's end (held items wake no
one: the daemon does not spin on them) and does not give them up for age. Mail to the
owner (alerts, tasks, the digest) still goes: someone may answer the leads meanwhile.
The core sees the pause too: the new-lead alert says the acknowledgement is held (and
until when), and a lead's call and text tasks fall due for the owner although its
acknowledgement waits (see ``route.on_due``).

When it ends (``resume``, or ``--until`` passing), held mail is released, except what
has grown too old meanwhile: an acknowledgement of an enquiry older than ``[imap]
max_age_days`` or a follow-up past ``followup_max_age_days``. Those are not sent (a
"thanks for your enquiry" two weeks late reads worse than none); the owner gets one
list of them, to answer in person.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime

from inboxwatch.core.actions import Action, Note, PutLead, Queue, StateView, UpdateOutbox
from inboxwatch.core.letters import Send
from inboxwatch.core.owner_mail import notice_mail
from inboxwatch.core.pause import FOREVER, MARKER, Pause, unreadable
from inboxwatch.core.queue import OutboxItem, Purpose, deadline, give_up
from inboxwatch.core.world import World, queue_item, wake_of

__all__ = ["FOREVER", "HELD", "MARKER", "Pause", "hold_for", "release", "unreadable"]
HELD = "held: inboxwatch pause"


def hold_for(pause: Pause, queued: list[OutboxItem]) -> list[Action]:
    """Queued mail the pause holds, moved to its end at no cost (only what changes)."""
    end = pause.hold_until
    return [UpdateOutbox(_held(i, end)) for i in queued if pause.holds(i) and i.next_try < end]


def _held(item: OutboxItem, until: datetime) -> OutboxItem:
    return dataclasses.replace(item, next_try=until, error=HELD)


def release(view: StateView, world: World, queued: list[OutboxItem], now: datetime) -> list[Action]:
    """The pause is over: held mail goes now, what grew too old is listed for the owner."""
    out: list[Action] = []
    stale: list[str] = []
    for item in queued:
        if item.error != HELD:
            continue
        lead = view.lead(item.lead) if item.lead else None
        age = world.settings.max_ages.of(item.purpose)
        since = lead.arrived if item.purpose is Purpose.ACK and lead is not None else None
        if now < deadline(item, age, since):
            # Due since it was queued: also for a daemon whose clock runs behind ours.
            released = dataclasses.replace(item, next_try=min(now, item.created), error="")
            out.append(UpdateOutbox(released))
            continue
        out.append(UpdateOutbox(give_up(item, age, "held by inboxwatch pause")))
        what = "acknowledgement" if item.purpose is Purpose.ACK else f"follow-up {item.step}"
        if lead is not None:
            lead = lead.log(now, f"{what} not sent", "too old after a pause")
            out.append(PutLead(lead, wake_of(lead, world, now)))
            when = lead.arrived.astimezone(world.settings.window.tz)
            stale.append(
                f"- {lead.name or lead.address} <{lead.address}>, enquiry of {when:%Y-%m-%d}"
            )
        else:
            stale.append(f"- {item.rcpt}: {what}")
        out.append(Note(f"{item.purpose} to {item.rcpt} not sent: too old after a pause"))
    st = world.settings
    if stale and st.owner_alerts and st.owner:
        body = (
            "inboxwatch was paused. These leads were not written to, because it is too\n"
            "late now for an automatic message; please answer them yourself:\n\n"
            + "\n".join(stale)
            + "\n"
        )
        noun = "enquiry" if len(stale) == 1 else "enquiries"
        mail = notice_mail(
            me=st.me,
            owner=st.owner,
            subject=f"{len(stale)} {noun} to answer after the pause",
            body=body,
            message_id=world.ids(),
            now=now.astimezone(st.window.tz),
        )
        out.append(Queue(queue_item(Send(mail), now)))
    return out
