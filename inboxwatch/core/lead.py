"""A lead and its two separate facts: where the automation stands, where the conversation stands.

Stored as plain JSON in the state file; times are ISO 8601 UTC strings there and aware
datetimes here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

#: Events kept per lead: enough for any cadence, bounded for a customer who writes weekly.
MAX_EVENTS = 200


class Automation(StrEnum):
    ACTIVE = "active"
    HELD = "held"  # out of office until hold_until
    ENDED = "ended"


class Ended(StrEnum):
    REPLIED = "replied"
    HANDLED = "handled"  # a person took over (Sent, \Flagged)
    OPTED_OUT = "opted_out"
    BOUNCED = "bounced"
    NO_RESPONSE = "no_response"
    STOPPED = "stopped"  # `inboxwatch stop`


class Conversation(StrEnum):
    WAITING_US = "waiting_us"
    WAITING_THEM = "waiting_them"
    CLOSED = "closed"


def iso(t: datetime | None) -> str | None:
    return t.astimezone(UTC).isoformat(timespec="milliseconds") if t else None


def from_iso(s: str | None) -> datetime | None:
    return datetime.fromisoformat(s) if s else None


def message_ids(row: Mapping[str, Any]) -> Iterator[str]:
    """Every Message-ID that ties mail to a lead (its thread, mail handled, the enquiry).

    Takes the stored form (``Lead.to_dict()``), which the store reads without building
    a Lead; the daemon's incremental index uses the same definition.
    """
    for mid in (*row.get("thread", ()), *row.get("inbound", ()), row.get("enquiry_id")):
        if mid:
            yield mid


@dataclass(frozen=True)
class Event:
    at: datetime
    what: str
    detail: str = ""

    def to_dict(self) -> dict[str, str]:
        return {"at": iso(self.at) or "", "what": self.what, "detail": self.detail}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Event:
        return cls(datetime.fromisoformat(d["at"]), d["what"], d.get("detail", ""))


@dataclass(frozen=True)
class Lead:
    address: str
    name: str
    source: str
    rule: str
    sequence: str
    arrived: datetime
    enquiry_id: str = ""
    subject: str = ""
    #: Subject of the conversation as the lead sees it (theirs, or our first message's).
    thread_subject: str = ""
    #: Message-IDs of the conversation, oldest first (their enquiry if they wrote it, ours).
    thread: tuple[str, ...] = ()
    answers_own_message: bool = True
    phone: str = ""
    fields: Mapping[str, str] = field(default_factory=dict)
    #: Where the enquiry sits in the mailbox (opaque to everything but the mail source).
    enquiry_ref: str = ""
    #: The enquiry was already \Flagged when it arrived (a server rule): not a hand-over.
    enquiry_flagged: bool = False
    #: Message-IDs of incoming mail already handled for this lead (dedupe after re-syncs).
    inbound: tuple[str, ...] = ()
    automation: Automation = Automation.ACTIVE
    ended: Ended | None = None
    hold_until: datetime | None = None
    dormant: bool = False
    conversation: Conversation = Conversation.WAITING_US
    steps_done: Mapping[str, str] = field(default_factory=dict)  # step name → ISO time
    last_email_at: datetime | None = None
    acked: datetime | None = None
    first_response: datetime | None = None
    #: When the owner was last reminded that this lead waits for an answer (a nudge).
    nudged_at: datetime | None = None
    undeliverable: bool = False
    simulated: bool = False
    #: The template set the lead is written to in ("de"); "" is the default (English).
    language: str = ""
    events: tuple[Event, ...] = ()

    @property
    def is_active(self) -> bool:
        return self.automation is not Automation.ENDED

    @property
    def first_response_seconds(self) -> float | None:
        if self.first_response is None:
            return None
        return max(0.0, (self.first_response - self.arrived).total_seconds())

    def log(self, at: datetime, what: str, detail: str = "") -> Lead:
        """Add to the timeline; a long conversation keeps its first and latest events."""
        events = (*self.events, Event(at, what, detail))
        if len(events) > MAX_EVENTS:
            events = (*events[:20], *events[-(MAX_EVENTS - 20) :])
        return dataclasses.replace(self, events=events)

    def end(self, at: datetime, why: Ended, detail: str = "") -> Lead:
        lead = dataclasses.replace(self, automation=Automation.ENDED, ended=why, hold_until=None)
        return lead.log(at, f"automation ended: {why.value}", detail)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, datetime):
                value = iso(value)
            elif isinstance(value, StrEnum):
                value = value.value
            elif f.name == "events":
                value = [e.to_dict() for e in value]
            elif isinstance(value, tuple):
                value = list(value)
            elif isinstance(value, Mapping):
                value = dict(value)
            d[f.name] = value
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Lead:
        kw: dict[str, Any] = {}
        names = {f.name for f in dataclasses.fields(cls)}
        for key, value in d.items():
            if key not in names:
                continue  # written by a newer version: keep going rather than fail
            kw[key] = value
        for key in (
            "arrived",
            "hold_until",
            "last_email_at",
            "acked",
            "first_response",
            "nudged_at",
        ):
            kw[key] = from_iso(kw.get(key))
        if kw["arrived"] is None or not isinstance(kw.get("address"), str):
            raise ValueError("a lead needs an address and an arrival time")
        kw["automation"] = Automation(kw.get("automation", "active"))
        kw["ended"] = Ended(kw["ended"]) if kw.get("ended") else None
        kw["conversation"] = Conversation(kw.get("conversation", "waiting_us"))
        kw["thread"] = tuple(kw.get("thread", ()))
        kw["inbound"] = tuple(kw.get("inbound", ()))
        kw["events"] = tuple(Event.from_dict(e) for e in kw.get("events", ()))
        return cls(**kw)
