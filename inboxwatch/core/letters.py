"""Turn a lead and a template into an :class:`Outgoing` message. Pure: time and IDs come in.

Threading rule: when the lead wrote the message we answer, we reply in *their* thread
(``Re: <their subject>``, In-Reply-To their Message-ID). When the lead came through a
notification (web form, marketplace), they never saw that message: the template's
subject starts a new thread and later steps reply under our own first message.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from inboxwatch.core.lead import Lead
from inboxwatch.core.message import SYNTHETIC_ID_DOMAIN, Address, Message
from inboxwatch.core.mime import Outgoing, clean_header, reply_subject
from inboxwatch.core.timewords import attribution, when_words
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


def greeting(name: str, language: str = "") -> str:
    """The opening words of a mail to the lead, without the comma: "Hi Jane" ("Hi there"
    without a name); in German, formal and with the whole name as given, "Guten Tag Jane
    Doe", "Guten Tag Frau Dr. Meier" ("Guten Tag" without a name)."""
    if language == "de":
        full = clean_header(name, 100).strip("\"' ")
        if "@" in full:
            full = ""
        if "," in full:  # "Doe, Jane" → "Jane Doe"
            last, _, first = full.partition(",")
            full = f"{first.strip()} {last.strip()}".strip()
        if full.islower() or full.isupper():
            full = full.title()
        return f"Guten Tag {' '.join(full.split())}".strip()
    return f"Hi {first_name(name) or 'there'}"


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


# --- what a follow-up says about the conversation so far ------------------------------

_REPLY_PREFIX = re.compile(r"^(?:\s*(?:re|fwd?|aw|wg|sv|vs|tr|rif)\s*(?:\[\d+\])?\s*:)+\s*", re.I)
#: Subjects that say nothing about the enquiry: a phrase from the message says more.
_EMPTY_SUBJECTS = frozenset(
    [
        "hello",
        "hi",
        "hey",
        "hallo",
        "enquiry",
        "inquiry",
        "question",
        "request",
        "contact",
        "message",
        "info",
        "information",
        "help",
        "quote",
        "anfrage",
        "frage",
        "website",
        "contact-form",
        "contact-us",
        "(no-subject)",
        "no-subject",
        "new-message",
    ]
)
_GREETING = re.compile(
    r"^(?:hi|hello|hey|hallo|dear\b[^,.!?\n]{0,40}|good (?:morning|afternoon|evening)"
    r"|guten (?:tag|morgen|abend)|sehr geehrte\w*\b[^,.!?\n]{0,40}|moin|servus"
    r"|to whom it may concern)(?:\s+there)?\s*[,!.:]?\s*",
    re.I,
)
_SENTENCE_END = re.compile(r"(?<=[.?!])\s|\n")
ENQUIRY_LIMIT = 70
QUOTE_LINES = 15
QUOTE_CHARS = 900


def _shorten(text: str, limit: int) -> str:
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0].rstrip(",;:-") + "..."


def enquiry_phrase(subject: str, message: str) -> str:
    """What the lead asked about, in quotes for a sentence ("your message about ..."):
    their subject, or the first sentence of their message when the subject says nothing
    (or they never saw it: a form's notification). "" when there is neither."""
    subj = " ".join(_REPLY_PREFIX.sub("", clean_header(subject, 250)).split())
    key = "-".join(subj.lower().strip(" .!?:").split())
    if subj and key not in _EMPTY_SUBJECTS:
        return f'"{_shorten(subj, ENQUIRY_LIMIT)}"'
    for line in message.strip().splitlines():
        line = _GREETING.sub("", line.strip(), count=1).strip()
        if len(line) < 3 or line.startswith(">"):
            continue  # a greeting on its own line, or a quote
        first = _SENTENCE_END.split(line, maxsplit=1)[0].strip().rstrip(".")
        first = first[:1].upper() + first[1:]
        return f'"{_shorten(first, ENQUIRY_LIMIT)}"'
    return ""


def quoted(text: str, attribution: str) -> str:
    """The lead's own words below a reply, as a mail client quotes them ("> "), bounded:
    a follow-up read alone (Outlook, Apple Mail) still shows what it is about."""
    lines = [ln.rstrip() for ln in text.strip().splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    if not lines:
        return ""
    kept: list[str] = []
    size = 0
    for ln in lines:
        if len(kept) >= QUOTE_LINES or size + len(ln) > QUOTE_CHARS:
            kept.append("[...]")
            break
        kept.append(ln)
        size += len(ln) + 1
    body = "\n".join(f"> {ln}" if ln else ">" for ln in kept)
    return f"{attribution}\n{body}"


def conversation_values(
    lead: Lead, me: Address, signature: str, now: datetime, tz: ZoneInfo
) -> dict[str, str]:
    """Template values about the conversation so far, as seen at ``now`` (when the
    message is queued: a follow-up is queued when it is due and sent at once, so this is
    sending time unless sending caps hold it).

    ``greeting`` ("Hi Jane", "Guten Tag Jane Doe": see :func:`greeting`), ``signature``
    (the configured one, else our name), ``enquiry`` (see
    :func:`enquiry_phrase`), ``their_message`` (their words, quoted), ``you_wrote``
    (when the lead wrote, in words: "yesterday", "on Friday") and ``we_wrote`` (when our
    last email went out; "" before the first), in the lead's language.
    """
    message = lead.fields.get("message", "")
    who = clean_header(lead.name, 100) or lead.address
    lang = lead.language
    last = lead.last_email_at
    return {
        "greeting": greeting(lead.name, lang),
        "signature": signature.strip("\n") or me.name,
        "enquiry": enquiry_phrase(lead.subject, message),
        "their_message": quoted(message, attribution(lead.arrived, who, tz, lang)),
        "you_wrote": when_words(lead.arrived, now, tz, lang),
        "we_wrote": when_words(last, now, tz, lang) if last else "",
    }
