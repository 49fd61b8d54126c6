"""What a delivery result means: a first response, a bounce, our own problem, or later.

Read with RFC 5321 and the enhanced status codes of RFC 3463 (the sender's
:class:`~inboxwatch.core.queue.Outcome` says which party a refusal is about):

- accepted: the message is sent; for mail to a lead it is their first response;
- refused for good (the recipient's address): as good as a hard bounce, the lead ends
  and the address is suppressed;
- refused because of *us* (our sender, our content): never the lead's fault, so no lead
  is touched; the queue is held and the owner is told once (a notice: log, status,
  alert command), and by mail as soon as sending works again;
- a quota or rate limit of our provider: sending pauses until it can have reset, at no
  cost to any message;
- anything else transient: tried again with back-off, until the message's age limit; a
  message given up is recorded on the lead and, for mail to a lead, brought to the owner.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable
from datetime import datetime, timedelta

from inboxwatch.core.actions import (
    Action,
    ClearNotice,
    Delivered,
    Note,
    Notice,
    PutLead,
    Queue,
    RaiseNotice,
    StateView,
    Suppress,
    UpdateOutbox,
)
from inboxwatch.core.decide import undeliverable
from inboxwatch.core.lead import Ended, Lead, iso
from inboxwatch.core.owner_mail import bounce_alert
from inboxwatch.core.queue import (
    PAUSE_DEFAULT,
    OutboxItem,
    Outcome,
    Purpose,
    deadline,
    give_up,
    reschedule,
)
from inboxwatch.core.world import World, owner_notice, queue_item, wake_of

#: Notices about sending; cleared by the next message the server accepts.
SENDER_REFUSED = "smtp-sender-refused"
CONTENT_REFUSED = "smtp-content-refused"
PAUSED = "smtp-paused"
SMTP_UNREACHABLE = "smtp-unreachable"
SENDING_NOTICES = (SENDER_REFUSED, CONTENT_REFUSED, PAUSED, SMTP_UNREACHABLE)
#: The mailbox could not be reached: cleared by the next tick that could read it.
MAILBOX_UNREACHABLE = "mailbox-unreachable"

_WHAT = {Purpose.ACK: "acknowledgement", Purpose.FOLLOWUP: "follow-up"}


def obsolete(item: OutboxItem, lead: Lead | None) -> bool:
    """A queued message to a lead that must no longer go out (the lead's state moved on)."""
    if item.purpose is Purpose.FOLLOWUP:
        return lead is None or not lead.is_active
    if item.purpose is Purpose.ACK and lead is not None:
        return lead.ended in (Ended.OPTED_OUT, Ended.BOUNCED, Ended.HANDLED, Ended.STOPPED)
    return False


def cancel_obsolete(
    view: StateView, items: Iterable[OutboxItem]
) -> tuple[list[OutboxItem], list[Action]]:
    """Split what is due into what still goes and the cancellations of the rest."""
    ready: list[OutboxItem] = []
    out: list[Action] = []
    for item in items:
        if obsolete(item, view.lead(item.lead) if item.lead else None):
            note = f"{item.purpose} {item.step} to {item.lead} cancelled: automation ended"
            out += [UpdateOutbox(item.cancelled()), Note(note)]
        else:
            ready.append(item)
    return ready, out


def _since(item: OutboxItem, lead: Lead | None) -> datetime | None:
    """An acknowledgement's age counts from the enquiry, not from when it was queued."""
    return lead.arrived if item.purpose is Purpose.ACK and lead is not None else None


def expire(view: StateView, world: World, item: OutboxItem, now: datetime) -> list[Action]:
    """A queued item past its age limit before it could go (the daemon was down, the
    provider refused us for days): given up instead of sent late."""
    if not item.queued:
        return []
    lead = view.lead(item.lead) if item.lead else None
    age = world.settings.max_ages.of(item.purpose)
    if now < deadline(item, age, _since(item, lead)):
        return []
    return _given_up(world, give_up(item, age), lead, now)


def _given_up(world: World, failed: OutboxItem, lead: Lead | None, now: datetime) -> list[Action]:
    out: list[Action] = [
        UpdateOutbox(failed),
        Note(f"{failed.purpose} to {failed.rcpt}: {failed.error}", logging.ERROR),
    ]
    if lead is not None:
        lead = lead.log(now, f"{failed.purpose} not delivered", failed.error)
        out.append(PutLead(lead, wake_of(lead, world, now)))
    if failed.purpose.to_lead:
        what = _WHAT.get(failed.purpose, str(failed.purpose))
        who = f"{lead.name} <{failed.rcpt}>" if lead is not None and lead.name else failed.rcpt
        out += owner_notice(
            world,
            f"Not sent: the {what} to {who}",
            f"inboxwatch could not send the {what} to {who}.\n\n{failed.error}\n\n"
            "Please write to them yourself; inboxwatch will not try again.",
            now,
        )
    return out


def unreachable(
    key: str,
    what: str,
    since: datetime,
    error: str,
    now: datetime,
    after: timedelta,
    *,
    mail: tuple[StateView, World] | None = None,
) -> list[Action]:
    """A server out of reach for ``after`` or longer: the owner is told (once: the notice
    is stored once per key), so the daemon never goes quiet without anyone knowing.

    ``mail`` (the state and the world): the owner is also told by mail, once, when the
    mail can go (the mailbox is out of reach, the SMTP server is not); the mail about its
    return follows (:func:`reachable_again`)."""
    if now - since < after:
        return []
    text = f"{what} cannot be reached since {iso(since)}: {error}. inboxwatch keeps trying"
    out: list[Action] = [RaiseNotice(Notice(key, text, since))]
    if mail is not None:
        view, world = mail
        if not any(n.key == key for n in view.notices()):
            out += owner_notice(
                world,
                f"{what} cannot be reached",
                f"{text}.\n\nNothing is lost: what arrives meanwhile is read when it is back,"
                " and you will get a mail then. If it lasts, check the server and the"
                " account in the config.",
                now,
            )
    return out


def reachable_again(view: StateView, world: World, key: str, now: datetime) -> list[Action]:
    """The server answers again: the notice ends and the owner hears of it by mail."""
    out: list[Action] = []
    for notice in view.notices():
        if notice.key == key:
            out.append(ClearNotice(key))
            out += owner_notice(
                world,
                "Reachable again",
                f"From {iso(notice.since)} to {iso(now)}:\n\n{notice.text}\n\n"
                "It works again; what waited is being handled now.",
                now,
            )
    return out


def _sending_works_again(view: StateView, world: World, now: datetime) -> list[Action]:
    """The first message accepted after a refusal or a pause: over, and the owner hears
    of it by mail now that mail works (the log, status and alert command had it at once)."""
    out: list[Action] = []
    for notice in view.notices():
        if notice.key not in SENDING_NOTICES:
            continue
        out.append(ClearNotice(notice.key))
        out += owner_notice(
            world,
            "Sending works again",
            f"From {iso(notice.since)} to {iso(now)} mail could not go out:\n\n{notice.text}\n\n"
            "Nothing was lost: what waited is being sent now, and no lead was blamed.",
            now,
        )
    return out


def _notice_for(item: OutboxItem, d: Delivered, now: datetime) -> RaiseNotice | None:
    res = d.result
    if res.outcome is Outcome.SENDER_REFUSED:
        text = (
            f"the SMTP server refuses our sender ({item.mail_from}): {res.error}. Mail is "
            "held, nothing is lost and no lead is blamed; check the [smtp] account and "
            "[identity] address"
        )
        return RaiseNotice(Notice(SENDER_REFUSED, text, now))
    if res.outcome is Outcome.CONTENT_REFUSED:
        text = (
            f"the SMTP server refuses our {item.purpose} as content ({res.error}); the "
            "message is held and retried, no lead is blamed; check the template"
        )
        return RaiseNotice(Notice(CONTENT_REFUSED, text, now))
    if res.paused:
        until = now + (res.retry_after or PAUSE_DEFAULT)
        text = f"sending paused until {iso(until)} (a quota or rate limit): {res.error}"
        return RaiseNotice(Notice(PAUSED, text, now, until))
    return None


def on_delivery(view: StateView, world: World, d: Delivered, now: datetime) -> list[Action]:
    """What the server said about one message, as actions (see the module docstring)."""
    item, res = d.item, d.result
    lead = view.lead(item.lead) if item.lead else None
    if res.ok:
        out: list[Action] = [UpdateOutbox(item.sent(now))]
        if lead is not None and item.purpose.to_lead:
            if item.purpose is Purpose.ACK and lead.acked is None:
                lead = dataclasses.replace(lead, acked=now)
            if lead.first_response is None:
                lead = dataclasses.replace(lead, first_response=now)
            if lead.last_email_at is None or lead.last_email_at < now:
                # Spacing counts from when mail really went (a quota may have held it).
                lead = dataclasses.replace(lead, last_email_at=now)
            lead = lead.log(now, f"{item.step or item.purpose}: sent", item.id)
            out.append(PutLead(lead, wake_of(lead, world, now)))
        return out + _sending_works_again(view, world, now)
    if res.permanent:  # the recipient, for good
        out = [
            UpdateOutbox(item.failed(res.error)),
            Note(f"{item.purpose} to {item.rcpt} failed permanently: {res.error}", logging.WARNING),
        ]
        if lead is not None:
            was_active = lead.is_active
            lead = lead.log(now, f"{item.purpose} not delivered", res.error)
            if item.purpose.to_lead:  # the server refused the lead's address: a hard bounce
                lead = undeliverable(lead, now, res.error)
                out.append(Suppress(item.lead, "refused by the SMTP server"))
                if was_active:  # a live lead: someone must reach them another way
                    st = world.settings
                    sends = bounce_alert(lead, res.error, st, now, world.ids)
                    out += [Queue(queue_item(s, now)) for s in sends]
            out.insert(1, PutLead(lead, wake_of(lead, world, now)))
        return out
    age = world.settings.max_ages.of(item.purpose)
    again = reschedule(item, now, res, age, _since(item, lead))
    out = []
    if (notice := _notice_for(item, d, now)) is not None:
        out.append(notice)
    if again.queued:
        level = logging.WARNING if res.attempted else logging.INFO
        note = Note(f"{item.purpose} to {item.rcpt} will be retried: {res.error}", level)
        return [UpdateOutbox(again), *out, note]
    return out + _given_up(world, again, lead, now)
