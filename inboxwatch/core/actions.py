"""What the core hands the shell: events in, typed actions out.

The core never does IO. It takes the state (read through :class:`StateView`), one event
and ``now``, and returns a list of actions; the shell's single ``apply``
(:mod:`inboxwatch.service.apply`) carries them out inside one transaction. A dry run is
the same decisions applied to a throw-away copy of the state with a sender that only logs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from inboxwatch.core.classify import Known
from inboxwatch.core.lead import Lead
from inboxwatch.core.queue import OutboxItem, Result

# -- events: what happened --------------------------------------------------------------------


@dataclass(frozen=True)
class InboxMail:
    """A new message in the watched inbox."""

    ref: str  # the mail source's opaque reference
    received: datetime  # when the mailbox got it
    flagged: bool
    raw: bytes


@dataclass(frozen=True)
class SentMail:
    """A new message in Sent (only its header): a person may have written to a lead."""

    ref: str
    received: datetime
    raw: bytes


@dataclass(frozen=True)
class Delivered:
    """What the SMTP server said about one queued message (or a witness after a crash)."""

    item: OutboxItem
    result: Result


@dataclass(frozen=True)
class Notice:
    """A problem the owner must know about, told once: sending refused, a quota, ...

    ``key`` names the problem (one notice per key at a time); ``until`` is when it is
    expected to be over by itself (a quota resets), if known.
    """

    key: str
    text: str
    since: datetime
    until: datetime | None = None


# -- actions: what to do ----------------------------------------------------------------------


@dataclass(frozen=True)
class PutLead:
    """Store the lead; ``wake`` is when time alone next changes it (None: never)."""

    lead: Lead
    wake: datetime | None


@dataclass(frozen=True)
class Queue:
    """Put a message in the outbox (intent first: stored before it is sent). Mail that is
    not to a lead (alerts) is also remembered as ours, so an answer to it is not a lead."""

    item: OutboxItem


@dataclass(frozen=True)
class UpdateOutbox:
    """An outbox item changed: sent, failed, cancelled, or due for another try."""

    item: OutboxItem


@dataclass(frozen=True)
class Suppress:
    """Never write to this address again (bounce, opt-out, refused by the server)."""

    address: str
    why: str


@dataclass(frozen=True)
class RecordAck:
    """The address was acknowledged now: no second acknowledgement within the period."""

    address: str


@dataclass(frozen=True)
class Reject:
    """A message that could not be processed: recorded, left alone in the mailbox."""

    ref: str
    error: str


@dataclass(frozen=True)
class MoveCursor:
    """The mail source's reading position, stored with the effects of what was read."""

    stream: str
    cursor: str


@dataclass(frozen=True)
class RaiseNotice:
    """Tell the owner about a problem, once: in the log, ``inboxwatch status`` and the
    alert command now (a mail about it is queued too; it goes once sending works)."""

    notice: Notice


@dataclass(frozen=True)
class ClearNotice:
    """The problem is over."""

    key: str


@dataclass(frozen=True)
class SetMarker:
    """A named value kept in the state with the rest of the transaction (the leads a
    backlog's summary will list, a day's digest done)."""

    name: str
    value: str


@dataclass(frozen=True)
class Note:
    """A line for the log: what was decided and why."""

    text: str
    level: int = logging.INFO


Action = (
    PutLead
    | Queue
    | UpdateOutbox
    | Suppress
    | RecordAck
    | Reject
    | MoveCursor
    | RaiseNotice
    | ClearNotice
    | SetMarker
    | Note
)


class StateView(Protocol):
    """The reads the core makes (the store's transaction provides them)."""

    def lead(self, address: str) -> Lead | None: ...

    def leads(self) -> list[Lead]: ...

    def due(self, before: datetime) -> list[Lead]: ...

    def last_ack(self, address: str) -> datetime | None: ...

    def outbox_item(self, item_id: str) -> OutboxItem | None: ...

    def known(self) -> Known: ...

    def notices(self) -> list[Notice]: ...

    def marker(self, name: str) -> str | None: ...
