"""Turn a lead and a template into an :class:`Outgoing` message. Pure: time and IDs come in.

Threading rule: when the lead wrote the message we answer, we reply in *their* thread
(``Re: <their subject>``, In-Reply-To their Message-ID). When the lead came through a
notification (web form, marketplace), they never saw that message: the template's
subject starts a new thread and later steps reply under our own first message.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from inboxwatch.core.lead import Lead
from inboxwatch.core.message import SYNTHETIC_ID_DOMAIN, Address, Message
from inboxwatch.core.mime import Outgoing, clean_header, reply_subject
from inboxwatch.userfiles.templates import Template, render

_TITLES = frozenset(
    [
        "mr",
        "mrs",
        "ms",
        "miss",
        "mx",
        "dr",
        "prof",
        "sir",
        "madam",
        "herr",
        "frau",
        "mme",
        "mlle",
        "m",
        "sr",
        "sra",
        "srta",
        "dott",
        "ing",
    ]
)


def first_name(name: str) -> str:
    """A polite first name from a display name: "Doe, Jane" → "Jane", "Dr. Jane Doe" → "Jane"."""
    name = clean_header(name, 100).strip("\"' ")
    if "@" in name or not name:
        return ""
    surname_first = "," in name
    if surname_first:
        name = name.split(",", 1)[1]
    all_words = name.replace(".", ". ").split()
    words = [w for w in all_words if w.strip(".").lower() not in _TITLES]
    if not words or (len(words) == 1 and len(all_words) > 1 and not surname_first):
        return ""  # "Mr Smith", "Frau Dr. Meier": only a surname is left
    word = words[0].strip(".")
    return word.title() if word.islower() or word.isupper() else word


#: Makes new Message-IDs (tests pass predictable ones).
Ids = Callable[[], str]


@dataclass(frozen=True)
class Send:
    out: Outgoing
    step: str = ""


@dataclass(frozen=True)
class Thread:
    """Where the conversation with a lead stands, as far as threading headers go."""

    subject: str  # the subject of the thread, without "Re:"
    message_ids: tuple[str, ...] = ()  # oldest first: their enquiry (if they wrote it), ours

    @property
    def last(self) -> str:
        return self.message_ids[-1] if self.message_ids else ""


def thread_start(msg: Message, lead_address: str) -> Thread:
    """Where our first message to a lead goes: under their own message if they wrote it,
    else (a form notification they never saw) a new thread, subject from the template.

    A stand-in Message-ID (the message had none) means nothing to the lead: not used.
    """
    if not msg.from_ or msg.from_.addr != lead_address:
        return Thread("")
    mid = "" if msg.message_id.endswith(f"@{SYNTHETIC_ID_DOMAIN}>") else msg.message_id
    return Thread(msg.subject, (mid,) if mid else ())


@dataclass(frozen=True)
class LeadView:
    """The lead's facts that templates may show."""

    address: Address
    source: str
    rule: str
    subject: str = ""
    fields: Mapping[str, str] = field(default_factory=dict)


def view_of(lead: Lead) -> LeadView:
    """What templates may show of a lead (its phone among the fields)."""
    fields = dict(lead.fields)
    if lead.phone:
        fields["phone"] = lead.phone
    return LeadView(Address(lead.address, lead.name), lead.source, lead.rule, lead.subject, fields)


def lead_values(
    lead: LeadView, me: Address, owner: str, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    values = {k: clean_header(v, 500) if k != "message" else v for k, v in lead.fields.items()}
    values.update(
        name=clean_header(lead.address.name, 100),
        first_name=first_name(lead.address.name),
        email=lead.address.addr,
        source=lead.source,
        rule=lead.rule,
        subject=clean_header(lead.subject, 250),
        our_name=me.name,
        our_address=me.addr,
        owner_address=owner,
    )
    values.update(extra or {})
    return values


def to_lead(
    *,
    purpose: str,
    template: Template,
    values: Mapping[str, str],
    me: Address,
    to: Address,
    thread: Thread,
    message_id: str,
    now: datetime,
    answers_lead_message: bool,
) -> tuple[Outgoing, Thread]:
    """The message to the lead and the thread as it stands after it."""
    rendered = render(template, values)
    if thread.message_ids:
        subject = reply_subject(thread.subject)
    else:
        subject = rendered.subject or reply_subject(thread.subject)
    out = Outgoing(
        purpose=purpose,
        from_=me,
        to=to,
        subject=subject,
        body=rendered.body,
        html=rendered.html,
        message_id=message_id,
        date=now,
        in_reply_to=thread.last,
        references=thread.message_ids[-20:],
        auto_submitted="auto-replied" if answers_lead_message else "auto-generated",
        lead=to.addr,
    )
    new_subject = thread.subject if thread.message_ids else rendered.subject
    return out, Thread(new_subject, (*thread.message_ids, message_id))


def excerpt(text: str, limit: int = 1200) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + " [...]"
