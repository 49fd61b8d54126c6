"""One lead's transitions on a message: enquiry, reply, automatic reply, bounce, hand-over.

Pure: no IO, no clock (``now`` is an argument), Message-IDs from the ``ids`` callable.
Which lead a message concerns is :mod:`inboxwatch.core.route`'s question; what time
alone does to a lead is :mod:`inboxwatch.core.cadence`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime

from inboxwatch.core.classify import Classification, Kind
from inboxwatch.core.language import choose_language
from inboxwatch.core.lead import Automation, Conversation, Ended, Lead, iso
from inboxwatch.core.letters import (
    Ids,
    Send,
    Thread,
    conversation_values,
    excerpt,
    lead_values,
    thread_start,
    to_lead,
    view_of,
)
from inboxwatch.core.message import Address, Message
from inboxwatch.core.owner_mail import (
    Files,
    answering_writer,
    away_alert,
    bounce_alert,
    complaint_alert,
    opt_out_alert,
    owner_mail,
)
from inboxwatch.core.settings import Settings
from inboxwatch.core.timing import first_business_day_after
from inboxwatch.userfiles.rulebook import RuleBook
from inboxwatch.userfiles.sequences import Step


@dataclass(frozen=True)
class Decision:
    lead: Lead | None = None
    sends: tuple[Send, ...] = ()
    note: str = ""
    suppress: str = ""


@dataclass(frozen=True)
class Incoming:
    msg: Message
    ref: str  # where it sits in the mailbox (opaque)
    arrived: datetime
    c: Classification


def email_step(
    lead: Lead, step: Step, book: RuleBook, st: Settings, now: datetime, ids: Ids, purpose: str
) -> tuple[Lead, Send]:
    tpl = book.template(step.template, lead.language)
    assert tpl is not None  # the caller checked that the default template exists
    now = now.astimezone(st.window.tz)  # the Date header in the business's own zone
    # Time words are computed now, at queue time: a step is queued when it falls due and
    # sent at once (only a sending cap can hold it, by hours).
    extra = {"step": step.name, **conversation_values(lead, st.me, st.signature, now, st.window.tz)}
    out, thread = to_lead(
        purpose=purpose,
        template=tpl,
        values=lead_values(view_of(lead), st.me, st.owner, extra),
        me=st.me,
        to=Address(lead.address, lead.name),
        thread=Thread(lead.thread_subject, lead.thread),
        message_id=ids(),
        now=now,
        answers_lead_message=purpose == "ack" and lead.answers_own_message,
    )
    lead = dataclasses.replace(
        lead,
        thread=thread.message_ids,
        thread_subject=thread.subject,
        steps_done={**lead.steps_done, step.name: iso(now) or ""},
        last_email_at=now,
        conversation=Conversation.WAITING_THEM,
        dormant=lead.dormant or step.then == "dormant",
    )
    return lead.log(now, f"{step.name}: email queued", out.message_id), Send(out, step.name)


def on_enquiry(
    inc: Incoming,
    book: RuleBook,
    st: Settings,
    now: datetime,
    ids: Ids,
    last_ack: datetime | None = None,
    simulated: bool = False,
    files: Files = ((), ()),
    ack_held: str = "",
    alert: bool = True,
) -> Decision:
    """A new lead: store it, acknowledge at once (unless acked recently), alert the owner
    (with the enquiry's ``files``: see :func:`inboxwatch.core.mime.attachments`).
    ``ack_held``: what holds the acknowledgement (the owner's pause), said in the alert.
    ``alert=False``: no alert of its own (a backlog's summary lists the lead instead)."""
    c, msg = inc.c, inc.msg
    assert c.lead is not None  # classify() guarantees a lead for an enquiry
    own = bool(msg.from_) and msg.from_ is not None and c.lead.addr == msg.from_.addr
    start = thread_start(msg, c.lead.addr)
    fields = dict(c.fields)
    if own and not fields.get("message"):
        # Their own words, bounded, for follow-ups to quote and name. (A notification's
        # body is not the lead's: only a rule's `message` field is kept for those.)
        fields["message"] = excerpt(c.new_text or msg.body_text, 2000)
    language = lead_language(inc, fields.get("message", ""), own, book)
    lead = Lead(
        address=c.lead.addr,
        name=c.lead.name,
        source=c.source,
        rule=c.rule,
        sequence=c.sequence,
        arrived=inc.arrived,
        enquiry_id=msg.message_id,
        subject=start.subject,
        thread_subject=start.subject,
        thread=start.message_ids,
        answers_own_message=own,
        phone=fields.pop("phone", ""),
        fields=fields,
        enquiry_ref=inc.ref,
        simulated=simulated,
        language=language,
    ).log(inc.arrived, "enquiry", f"{c.source} via rule {c.rule!r}: {msg.subject}")
    if language:
        lead = lead.log(inc.arrived, "language", language)
    sends: list[Send] = []
    seq = book.sequences.get(c.sequence)
    ack = seq.ack if seq else None
    tpl_name = c.template or (ack.template if ack else "")
    note = f"enquiry from {lead.address} ({c.source}, rule {c.rule!r})"
    if last_ack is not None and now - last_ack < st.ack_period:
        lead = lead.log(now, "acknowledgement skipped", f"acknowledged {iso(last_ack)}")
        if ack:
            lead = dataclasses.replace(lead, steps_done={**lead.steps_done, ack.name: "skipped"})
        note += ": not acknowledged again (acknowledged recently)"
    elif tpl_name in book.templates:
        step = ack or Step("ack", 0, "email", tpl_name)
        step = dataclasses.replace(step, template=tpl_name)
        lead, send = email_step(lead, step, book, st, now, ids, "ack")
        sends.append(send)
        note += ": acknowledgement queued"
    if sends:
        acked = ack_held or "sent at once"
    elif last_ack is not None and now - last_ack < st.ack_period:
        acked = "not sent (acknowledged recently)"
    else:
        acked = f"not sent: no template {tpl_name!r}"
    arrived = f"{inc.arrived.astimezone(st.window.tz):%Y-%m-%d %H:%M:%S %Z}"
    extra = {"excerpt": excerpt(c.new_text or msg.body_text), "arrived": arrived, "acked": acked}
    if alert:
        sends.extend(owner_mail("owner-alert", lead, book, st, now, ids, files, **extra))
    return Decision(lead, tuple(sends), note)


def lead_language(inc: Incoming, message: str, own: bool, book: RuleBook) -> str:
    """The template set to write to the lead in ("" for the default): the rule's
    ``language``, else that of their own words (see :mod:`inboxwatch.core.language`).

    Their words: the message they wrote, with its subject; for a notification, only the
    form's message field (the rest, labels and footer, is the form tool's)."""
    rule = next((r for r in book.rules if r.name == inc.c.rule), None)
    text = f"{inc.msg.subject}\n{inc.c.new_text or inc.msg.body_text}" if own else message
    return choose_language(rule.language if rule else "", text, book.languages)


def on_message(
    inc: Incoming, lead: Lead, book: RuleBook, st: Settings, now: datetime, ids: Ids
) -> Decision:
    """A message about a known lead: reply, automatic reply, bounce, complaint, or a team
    member's mail."""
    c = inc.c
    if c.kind is Kind.COMPLAINT:
        return on_complaint(lead, c, book, st, now, ids)
    if c.kind is Kind.REPLY:
        lead = dataclasses.replace(lead, conversation=Conversation.WAITING_US).log(
            now, "reply", excerpt(c.new_text, 300)
        )
        mid = inc.msg.message_id  # the owner's Reply to the alert answers this message
        was_active = lead.is_active
        if c.opt_out:
            # Honoured whatever the automation's state: nobody should write again.
            lead = dataclasses.replace(lead, conversation=Conversation.CLOSED)
            if was_active:
                lead = lead.end(now, Ended.OPTED_OUT, "the lead asked not to be contacted")
            note = f"opt-out from {lead.address}: address suppressed"
            sends = opt_out_alert(lead, c.new_text, st, now, ids) if was_active else ()
            return Decision(lead, sends, note, suppress=lead.address)
        if not was_active:
            note = f"reply from {lead.address} (automation already ended)"
            if lead.ended in (Ended.REPLIED, Ended.HANDLED):
                return Decision(lead, (), note)  # a person is already on this conversation
            excerpt_text = excerpt(c.new_text)
            sends = owner_mail(
                "owner-reply", lead, book, st, now, ids, excerpt=excerpt_text, answers=mid
            )
            sends = answering_writer(sends, c.lead, lead)
            return Decision(lead, sends, note + "; owner alerted")
        lead = lead.end(now, Ended.REPLIED)
        told = excerpt(c.new_text)
        sends = owner_mail("owner-reply", lead, book, st, now, ids, excerpt=told, answers=mid)
        sends = answering_writer(sends, c.lead, lead)
        return Decision(lead, sends, f"reply from {lead.address}: sequence stopped")
    if c.kind is Kind.AUTO_REPLY:
        if any(r.startswith(CHALLENGE) for r in c.reasons):
            return _challenged(lead, now)
        if not lead.is_active:
            return Decision(lead.log(now, "automatic reply"), (), "automatic reply (ended lead)")
        if c.return_date is None:
            lead = lead.log(now, "automatic reply", "no return date: cadence carries on")
            return Decision(lead, (), f"automatic reply from {lead.address}: cadence carries on")
        until = min(first_business_day_after(c.return_date, st.window), now + st.hold_max)
        # Told once per absence: the same notice again (a second responder, a re-read)
        # holds no longer and is no news.
        again = lead.automation is Automation.HELD and lead.hold_until == until
        lead = dataclasses.replace(lead, automation=Automation.HELD, hold_until=until)
        lead = lead.log(
            now, "held", f"out of office, back {c.return_date}; next touch {iso(until)}"
        )
        sends = () if again else away_alert(lead, c.return_date, until, st, now, ids)
        note = f"automatic reply from {lead.address}: held until {iso(until)}"
        return Decision(lead, sends, note)
    if c.kind is Kind.BOUNCE:
        if not c.bounce_hard:
            return Decision(
                lead.log(now, "delivery delayed", "; ".join(c.reasons)), (), "soft bounce"
            )
        was_active = lead.is_active
        lead = undeliverable(lead, now, "; ".join(c.reasons))
        note = f"bounce for {lead.address}: marked undeliverable"
        # The owner hears of a live lead's bounce (someone must reach them another way);
        # a lead that had ended (or a second report of the same bounce) is no news.
        sends = bounce_alert(lead, "; ".join(c.reasons), st, now, ids) if was_active else ()
        return Decision(lead, sends, note, suppress=lead.address)
    if c.kind is Kind.OWN and c.by_team:
        return handed_over(lead, now, "a team member wrote in the thread")
    return Decision(None, (), f"{c.kind.value}: nothing to do")


#: The reason prefix :mod:`inboxwatch.core.autodetect` gives a challenge-response filter.
CHALLENGE = "challenge-response filter"  # autodetect.CHALLENGE starts so
_CHALLENGE_EVENT = "behind a challenge-response filter"


def _challenged(lead: Lead, now: datetime) -> Decision:
    """Boxbe, BoxTrapper, MailInBlack ... ask us to prove we are human. Never answered
    (it is an automatic reply); the owner is told once, as a lead event and a note: our
    mail may not reach the lead until a person passes the challenge."""
    if any(e.what == _CHALLENGE_EVENT for e in lead.events):
        return Decision(lead.log(now, "automatic reply", CHALLENGE), (), f"{CHALLENGE} again")
    lead = lead.log(now, _CHALLENGE_EVENT, "a person must answer the challenge for mail to arrive")
    note = f"{lead.address} sits behind a {CHALLENGE}: not answered; the owner must pass it"
    return Decision(lead, (), note)


def on_complaint(
    lead: Lead, c: Classification, book: RuleBook, st: Settings, now: datetime, ids: Ids
) -> Decision:
    """The lead reported our mail as spam/abuse: an opt-out, however it was said.

    The lead ends as opted out, the address is suppressed, and the owner is told once
    (:func:`~inboxwatch.core.owner_mail.complaint_alert`). Never answered.
    """
    was_active = lead.is_active
    # One alert per complaint: a second report of it (ARF and the provider's older
    # complaint mail both come) is no news.
    known = any(e.what == "complaint" for e in lead.events)
    lead = dataclasses.replace(lead, conversation=Conversation.CLOSED)
    lead = lead.log(now, "complaint", "; ".join(c.reasons))
    if was_active:
        lead = lead.end(now, Ended.OPTED_OUT, "reported our mail as spam/abuse")
    sends = () if known else complaint_alert(lead, "; ".join(c.reasons), st, now, ids)
    note = f"complaint about our mail to {lead.address}: address suppressed, lead ended"
    return Decision(lead, sends, note, suppress=lead.address)


def on_orphan_reply(
    inc: Incoming, book: RuleBook, st: Settings, now: datetime, ids: Ids
) -> Decision:
    """A person answers a message of ours but no live lead matches (e.g. closed long ago).

    Never acknowledged again (that would read as if we forgot them); the owner is told,
    and the person is kept as a lead whose conversation waits for us.
    """
    c, msg = inc.c, inc.msg
    assert c.lead is not None
    lead = Lead(
        address=c.lead.addr,
        name=c.lead.name,
        source="reply",
        rule="",
        sequence="",
        arrived=inc.arrived,
        enquiry_id=msg.message_id,
        subject=msg.subject,
        thread_subject=msg.subject,
        thread=msg.thread_ids[::-1],
        enquiry_ref=inc.ref,
        automation=Automation.ENDED,
        ended=Ended.REPLIED,
        conversation=Conversation.WAITING_US,
    ).log(now, "reply", excerpt(c.new_text, 300))
    if c.opt_out:
        lead = dataclasses.replace(lead, ended=Ended.OPTED_OUT, conversation=Conversation.CLOSED)
        return Decision(lead, (), f"opt-out from {lead.address}", suppress=lead.address)
    told = excerpt(c.new_text)
    sends = owner_mail(
        "owner-reply", lead, book, st, now, ids, excerpt=told, answers=msg.message_id
    )
    return Decision(lead, sends, f"reply from {lead.address} to an earlier message of ours")


def undeliverable(lead: Lead, now: datetime, why: str) -> Lead:
    """A hard bounce, or the SMTP server refusing the address for good: no more mail."""
    lead = dataclasses.replace(lead, undeliverable=True, conversation=Conversation.CLOSED)
    return lead.end(now, Ended.BOUNCED, why) if lead.is_active else lead


def handed_over(lead: Lead, now: datetime, why: str) -> Decision:
    """A person took over (wrote to the lead, flagged the enquiry): automation stops."""
    lead = dataclasses.replace(lead, conversation=Conversation.WAITING_THEM)
    if lead.is_active:
        lead = lead.end(now, Ended.HANDLED, why)
        return Decision(lead, (), f"{lead.address}: handed to a person ({why})")
    return Decision(lead.log(now, "person wrote", why), (), f"{lead.address}: {why}")
