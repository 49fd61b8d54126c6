"""Mail to the owner: alerts about a lead (from the owner's templates) and notices about
inboxwatch itself. Pure: the time and the Message-ID come in.

An alert the owner may answer (a new lead, a lead's reply) is written so that the mail
client's plain Reply is a good message *to the lead* (RFC 5322 §3.6.4): Reply-To is the
lead, the Subject is the conversation's subject as the lead knows it (so "Re: " + it
reads right and threads in their mailbox), and References carry the lead's conversation
(their enquiry, our messages). The body opens with the lead's own words, which a reply
quotes, and keeps the owner's facts below a signature separator ("-- "), which many
clients leave out of the quote; what is there is plain enough for the lead to read.

The owner still tells alerts apart by the From display name ("New lead: Jane Doe"): it
is the one thing the inbox list shows that a Reply does not copy into its headers (only
into the "... wrote:" line of the quote), while any marker in the Subject would reach
the lead as "Re: New lead: ...".

Alerts about what happened to a lead that nobody should answer to the lead (a bounce,
an opt-out, a complaint, an absence: :func:`event_mail`) are in the same conversation
(its Subject and References, so the owner's mail client groups every alert about one
lead, Gmail and Outlook by subject too), never with Reply-To the lead; the From name says
what happened ("Bounced: Jane Doe") and the text what inboxwatch did and what to do;
Reply-To is the owner (see :func:`event_mail`).
Owner tasks keep a subject of their own that says what to do.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING

from inboxwatch.core.lead import Conversation, Lead
from inboxwatch.core.letters import Ids, Send, enquiry_phrase, excerpt, lead_values, view_of
from inboxwatch.core.message import SYNTHETIC_ID_DOMAIN, Address
from inboxwatch.core.mime import Attachment, Outgoing, clean_header, size_words
from inboxwatch.core.timing import first_business_day_after
from inboxwatch.userfiles.rulebook import RuleBook
from inboxwatch.userfiles.templates import Template, render

if TYPE_CHECKING:
    from inboxwatch.core.settings import Settings

#: Alerts whose Reply goes to the lead, in the lead's own conversation.
ANSWERABLE = frozenset({"owner-alert", "owner-reply", "owner-nudge"})
#: References kept on an alert (as on our own mail to the lead).
MAX_REFERENCES = 20
#: The enquiry's attachments carried on, and (name, size) of those that were not.
Files = tuple[tuple[Attachment, ...], tuple[tuple[str, int], ...]]
#: File names listed in an alert's text; the rest are counted.
MAX_NAMED = 20


def _sender_name(me: Address) -> str:
    return f"inboxwatch ({me.name})" if me.name else "inboxwatch"


def to_owner(
    *,
    purpose: str,
    template: Template,
    values: Mapping[str, str],
    me: Address,
    owner: str,
    lead: Address | None,
    message_id: str,
    now: datetime,
    subject: str = "",
    label: bool = False,
    references: tuple[str, ...] = (),
) -> Outgoing:
    """An alert for the owner; Reply-To ``lead``, so answering it answers the lead.

    By default the template's subject is the Subject. An answerable alert passes the
    conversation's ``subject`` and its ``references`` instead; with ``label`` the
    template's subject becomes the From display name (the owner's marker, see above).
    """
    rendered = render(template, values)
    name = _sender_name(me)
    if label and rendered.subject:
        name = rendered.subject
    refs = tuple(r for r in references if r)[-MAX_REFERENCES:]
    return Outgoing(
        purpose=purpose,
        from_=Address(me.addr, name),
        to=Address(owner),
        subject=subject or rendered.subject,
        body=rendered.body,
        html=rendered.html,
        message_id=message_id,
        date=now,
        in_reply_to=refs[-1] if refs else "",
        references=refs,
        reply_to=lead,
        lead=lead.addr if lead else "",
    )


def notice_mail(
    *, me: Address, owner: str, subject: str, body: str, message_id: str, now: datetime
) -> Outgoing:
    """Mail to the owner about inboxwatch itself (sending refused, a message given up):
    written here, not from a template, since it is about the service, not a lead."""
    return Outgoing(
        purpose="owner-notice",
        from_=Address(me.addr, _sender_name(me)),
        to=Address(owner),
        subject=f"inboxwatch: {subject}",
        body=body,
        message_id=message_id,
        date=now,
    )


def answerable(purpose: str, lead: Lead) -> bool:
    """Is the owner's Reply to this alert meant for the lead? Not once the lead opted
    out, complained or cannot be reached: then nobody should write to them."""
    return (
        purpose in ANSWERABLE
        and lead.conversation is not Conversation.CLOSED
        and not lead.undeliverable
    )


def conversation(lead: Lead, answers: str = "") -> tuple[str, ...]:
    """The lead's conversation as their mailbox knows it, oldest first: their enquiry
    (if they wrote it), our messages, and the message of theirs the alert is about."""
    ids = [m for m in lead.thread if m]
    if lead.answers_own_message and lead.enquiry_id and lead.enquiry_id not in ids:
        ids.insert(0, lead.enquiry_id)
    if answers and answers not in ids:
        ids.append(answers)
    # A stand-in ID (the message had none) means nothing to the lead's mail client.
    return tuple(m for m in ids if not m.endswith(f"@{SYNTHETIC_ID_DOMAIN}>"))


def thread_subject(lead: Lead, me: Address) -> str:
    """The subject the lead knows the conversation by: theirs, or our first message's."""
    subject = clean_header(lead.thread_subject or lead.subject, 250)
    return subject or (f"Your enquiry to {me.name}" if me.name else "Your enquiry")


def _closed_subject(lead: Lead) -> str:
    """What happened, for an alert nobody answers to the lead."""
    who = clean_header(lead.name, 100) or lead.address
    if lead.undeliverable:
        return f"{who}: mail to {lead.address} cannot be delivered"
    if any(e.what == "complaint" for e in lead.events[-3:]):
        return f"{who} reported our mail as spam: no more mail to them"
    return f"{who} asked for no more mail: nothing more will be sent"


def owner_mail(
    purpose: str,
    lead: Lead,
    book: RuleBook,
    st: Settings,
    now: datetime,
    ids: Ids,
    files: Files = ((), ()),
    **extra: str,
) -> tuple[Send, ...]:
    """The owner's mail about ``lead``. ``extra`` fills the template's extra variables;
    ``answers`` (not a template variable) is the Message-ID of the lead's message the
    alert is about, so a Reply to the alert answers that message. ``files``: the
    enquiry's attachments to carry, and the (name, size) of those left behind."""
    tpl = book.templates.get(purpose)
    now = now.astimezone(st.window.tz)  # the Date header in the business's own zone
    if not st.owner_alerts or tpl is None:
        return ()
    answers = extra.pop("answers", "")
    subject = thread_subject(lead, st.me)
    extra = {"subject": subject, **extra}
    message = lead.fields.get("message", "").strip()
    if purpose == "owner-alert" and not lead.answers_own_message and message:
        # A form's notification is not the lead's writing: their message field is.
        extra["excerpt"] = excerpt(message)
    values = lead_values(view_of(lead), st.me, st.owner, extra)
    lead_address = Address(lead.address, lead.name)
    if answerable(purpose, lead):
        out = to_owner(
            purpose=purpose,
            template=tpl,
            values=values,
            me=st.me,
            owner=st.owner,
            lead=lead_address,
            message_id=ids(),
            now=now,
            subject=subject,
            label=True,
            references=conversation(lead, answers),
        )
        if st.owner not in st.own:
            # The owner reads mail elsewhere: the business mailbox is put beside the lead
            # in Reply-To, so their answer reaches the watched inbox too (the lead is
            # handed over, and the lead's reply-all comes back to it).
            out = dataclasses.replace(out, reply_to_also=(Address(st.me.addr, st.me.name),))
    else:
        out = to_owner(
            purpose=purpose,
            template=tpl,
            values=values,
            me=st.me,
            owner=st.owner,
            lead=None,
            message_id=ids(),
            now=now,
            subject="" if purpose == "owner-task" else _closed_subject(lead),
        )
        out = dataclasses.replace(out, lead=lead.address)
    kept, left = files
    if kept or left:
        lines = files_text(kept, left, st.alert_attachments_max)
        out = dataclasses.replace(out, attachments=kept, body=f"{out.body.rstrip()}\n{lines}\n")
    return (Send(out),)


def answering_writer(
    sends: tuple[Send, ...], writer: Address | None, lead: Lead
) -> tuple[Send, ...]:
    """The alerts, answerable to ``writer`` when someone other than the lead's address
    wrote in the lead's conversation (another address of theirs, a colleague the lead
    passed our mail to): the owner's Reply reaches the one who wrote, with the lead (and
    the business mailbox, if it was there) beside them in Reply-To."""
    if writer is None or writer.addr == lead.address:
        return sends
    return tuple(
        dataclasses.replace(
            s,
            out=dataclasses.replace(
                s.out, reply_to=writer, reply_to_also=(s.out.reply_to, *s.out.reply_to_also)
            ),
        )
        if s.out.reply_to is not None
        else s
        for s in sends
    )


def _named(files: Sequence[tuple[str, int]]) -> str:
    words = [f"{clean_header(name, 120)} ({size_words(size)})" for name, size in files[:MAX_NAMED]]
    more = len(files) - MAX_NAMED
    return ", ".join(words) + (f" and {more} more" if more > 0 else "")


def files_text(kept: Sequence[Attachment], left: Sequence[tuple[str, int]], limit: int) -> str:
    """What the alert says about the enquiry's files: which are attached, which are not
    and why (they stay in the enquiry, in the mailbox)."""
    lines = []
    if kept:
        lines.append(f"Attached: {_named([(a.filename, len(a.data)) for a in kept])}.")
    if left:
        why = (
            f"alerts carry at most {size_words(limit)} of files"
            if limit
            else "[owner] alert_attachments_max_kb = 0"
        )
        lines.append(
            f"Not attached ({why}): {_named(left)}. They are in the enquiry in the mailbox."
        )
    return "\n".join(lines)


# -- what happened to a lead: what inboxwatch did, and what to do ----------------------------


def event_mail(
    purpose: str, label: str, lead: Lead, st: Settings, now: datetime, ids: Ids, body: str
) -> tuple[Send, ...]:
    """An alert about ``lead`` that is not for answering to them (see the module
    docstring): in their conversation, labelled by its From name. Its Reply-To is the
    owner: a Reply must reach neither the lead nor the watched mailbox, where mail from
    the owner in the lead's thread reads as a person taking the lead over."""
    if not st.owner_alerts:
        return ()
    refs = conversation(lead)[-MAX_REFERENCES:]
    out = Outgoing(
        purpose=purpose,
        from_=Address(st.me.addr, clean_header(label, 100)),
        to=Address(st.owner),
        subject=thread_subject(lead, st.me),
        body=body,
        message_id=ids(),
        date=now.astimezone(st.window.tz),
        in_reply_to=refs[-1] if refs else "",
        references=refs,
        reply_to=Address(st.owner),
        lead=lead.address,
    )
    return (Send(out),)


def _name(lead: Lead) -> str:
    return clean_header(lead.name, 100) or lead.address


def _who(lead: Lead) -> str:
    name = clean_header(lead.name, 100)
    return f"{name} <{lead.address}>" if name else lead.address


def _phone(lead: Lead) -> str:
    phone = clean_header(lead.phone, 40)
    if phone:
        return f"Phone: {phone}."
    return "No phone number is known for them; the enquiry in the mailbox may give another way."


def _about(lead: Lead, st: Settings) -> str:
    """The enquiry in one line, so the owner knows who this is without searching."""
    when = f"{lead.arrived.astimezone(st.window.tz):%a %d %b %H:%M}"
    what = enquiry_phrase(lead.subject, lead.fields.get("message", ""))
    return f"Their enquiry ({lead.source}, {when}){': ' + what if what else ''}"


def _quote(words: str) -> str:
    lines = excerpt(words, 600).splitlines() or [""]
    return "\n".join(f"> {ln}".rstrip() for ln in lines[:12])


def bounce_alert(lead: Lead, why: str, st: Settings, now: datetime, ids: Ids) -> tuple[Send, ...]:
    """Mail to a live lead bounced for good: their follow-ups have stopped."""
    said = clean_header(why, 300)
    body = "\n".join(
        [
            f"Mail to {_who(lead)} cannot be delivered: the address does not take mail.",
            *([f"The mail system said: {said}"] if said else []),
            "",
            f"inboxwatch has stopped the follow-ups for {_name(lead)} and will send nothing"
            f" more to {lead.address}.",
            "",
            f"What to do: reach them another way. {_phone(lead)}",
            "",
            _about(lead, st),
        ]
    )
    return event_mail("owner-event", f"Bounced: {_name(lead)}", lead, st, now, ids, body)


def opt_out_alert(
    lead: Lead, words: str, st: Settings, now: datetime, ids: Ids
) -> tuple[Send, ...]:
    """A live lead asked for no more mail: honoured, and the owner knows why it went quiet."""
    body = "\n".join(
        [
            f"{_who(lead)} asked not to be contacted again:",
            "",
            _quote(words),
            "",
            "The follow-ups have stopped and inboxwatch will never write to this address again",
            f"(if that was a misunderstanding: inboxwatch unsuppress {lead.address}).",
            "",
            "What to do: nothing. Please do not write to them unless they write first.",
            "",
            _about(lead, st),
        ]
    )
    return event_mail("owner-reply", f"Opted out: {_name(lead)}", lead, st, now, ids, body)


def complaint_alert(
    lead: Lead, why: str, st: Settings, now: datetime, ids: Ids
) -> tuple[Send, ...]:
    """The lead reported our mail as spam or abuse: an opt-out that also costs reputation."""
    said = clean_header(why, 300)
    body = "\n".join(
        [
            f"COMPLAINT: {_who(lead)} reported our mail as spam or abuse to their mail provider.",
            *([f"The report: {said}"] if said else []),
            "",
            "The follow-ups have stopped and inboxwatch will never write to this address again.",
            "",
            "What to do: please do not write to them unless they write first. Complaints harm"
            " the delivery of all your mail: check that your follow-ups (rules/sequences.toml)"
            " are wanted and that the enquiry was theirs.",
            "",
            _about(lead, st),
        ]
    )
    return event_mail("owner-reply", f"Spam report: {_name(lead)}", lead, st, now, ids, body)


def away_alert(
    lead: Lead, back: date, until: datetime, st: Settings, now: datetime, ids: Ids
) -> tuple[Send, ...]:
    """A live lead's automatic reply names a return date: the follow-ups wait for it."""
    tz = st.window.tz
    capped = until < first_business_day_after(back, st.window)  # by [sending] hold_max_days
    wait = f"inboxwatch holds their follow-ups until {until.astimezone(tz):%a %d %b %H:%M}" + (
        f" (at most {st.hold_max.days} days: [sending] hold_max_days)."
        if capped
        else ", the first business day after they are back."
    )
    body = "\n".join(
        [
            f"{_who(lead)} is away: their automatic reply says they are back on"
            f" {back:%a %d %b %Y}.",
            "",
            wait,
            "",
            f"What to do: nothing. If it cannot wait, try another way. {_phone(lead)}",
            "",
            _about(lead, st),
        ]
    )
    label = f"Away, back {back:%d %b}: {_name(lead)}"
    return event_mail("owner-event", label, lead, st, now, ids, body)
