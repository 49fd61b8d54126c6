"""The three narrow interfaces between the shell and the world: mail source, sender, store.

Each has a real implementation (IMAP, SMTP, TinyDB) and an in-memory twin
(``memory_mail``, ``memory_store``); ``tests/contract/`` runs one suite over both, so a new
backend (Gmail API, Microsoft Graph, PostgreSQL) only has to pass the same suite.
Nothing here names IMAP: a message's place in the mailbox is an opaque ``ref`` and a
reading position an opaque ``cursor`` string, which the store keeps without looking in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

from inboxwatch.adapters.erasure import Erased
from inboxwatch.core.actions import Notice
from inboxwatch.core.classify import Known
from inboxwatch.core.lead import Lead
from inboxwatch.core.queue import OutboxItem
from inboxwatch.core.queue import Outcome as Outcome
from inboxwatch.core.queue import Result as Result
from inboxwatch.errors import InboxwatchError, TransientError

# -- mail source ----------------------------------------------------------------------------


class Stream(StrEnum):
    """What the daemon reads: mail to the business, and what people sent from it."""

    INBOX = "inbox"
    SENT = "sent"


@dataclass(frozen=True)
class Fetched:
    """One message as the source holds it."""

    #: Opaque, stable while the source's numbering holds (IMAP: "UIDVALIDITY:UID").
    ref: str
    #: When the mailbox received it (IMAP INTERNALDATE); aware.
    received: datetime
    flagged: bool
    raw: bytes  # the whole message, or only its header for ``headers_only`` reads


@dataclass(frozen=True)
class Batch:
    messages: tuple[Fetched, ...]
    #: The position after these messages: store it in the transaction with their effects
    #: ("" when the stream does not exist: then there is nothing to store).
    cursor: str
    #: More new messages wait after this batch.
    more: bool


class CopiesNotSaved(TransientError):
    """Saving copies in Sent failed after the first ``saved`` of them were saved."""

    def __init__(self, message: str, saved: int) -> None:
        super().__init__(message)
        self.saved = saved


class LoginFailed(InboxwatchError):
    """Wrong credentials are not transient: say so and stop rather than hammer the server."""


class MailSource(Protocol):
    """A mailbox we read (never alter) plus the two writes we allow ourselves.

    Every method may raise :class:`~inboxwatch.errors.TransientError` (the daemon
    reconnects with back-off) and ``open`` also :class:`LoginFailed`.
    """

    def open(self) -> None: ...

    def close(self) -> None: ...

    @property
    def has_sent(self) -> bool:
        """A Sent folder is there to read and to save copies in."""
        ...

    def read(
        self,
        stream: Stream,
        cursor: str | None,
        *,
        now: datetime,
        lookback: timedelta,
        limit: int,
        headers_only: bool = False,
    ) -> Batch:
        """At most ``limit`` messages after ``cursor``, oldest first.

        With no cursor (first start) the reading begins ``lookback`` before ``now``, in
        whole days as IMAP's SINCE counts them (zero: only mail that arrives from now
        on). After the server renumbered the folder
        (an IMAP UIDVALIDITY change) only mail that arrived after the newest message
        already read or skipped is returned: the cursor keeps an arrival-time mark.
        """
        ...

    def flagged(self) -> frozenset[str]:
        """Refs of the inbox messages a person flagged."""
        ...

    def in_sent(self, message_id: str) -> bool:
        """Is a message with this Message-ID in Sent? (a witness after a crash)"""
        ...

    def save_sent(self, raws: Sequence[bytes], when: datetime) -> None:
        """Keep copies of messages we sent in Sent, marked read, in order.

        Many at once because a backlog sends hundreds: a server that can takes them in
        one round trip (IMAP MULTIAPPEND). A fault raises :class:`CopiesNotSaved`, whose
        ``saved`` counts the leading copies that are in Sent all the same (the caller
        retries only the rest, so Sent gets no duplicates).
        """
        ...

    def mark_processed(self, refs: Sequence[str]) -> None:
        """Tag processed inbox mail (if the user asked for a keyword); never required."""
        ...

    def refresh(self) -> None:
        """Ask the server to report mail that arrived meanwhile (before a follow-up goes)."""
        ...

    def wait(self, seconds: float, interrupted: Callable[[], bool]) -> bool:
        """Wait up to ``seconds`` (or less, at the source's own renewal limit) for new mail.

        True when the inbox may hold new mail (a poll that ran its time is True); False
        when ``interrupted()`` ended it or nothing came. ``interrupted()`` is asked at
        least every quarter of a second: a stop or a wake-up signal is prompt.
        """
        ...

    def heard_ago(self) -> float | None:
        """Seconds since the server last answered anything (a read, IDLE's start or a
        notice in it, a keep-alive NOOP); None while not connected."""
        ...


# -- sender ---------------------------------------------------------------------------------
# Outcome and Result are the core's (it decides what a refusal means): re-exported here.


@dataclass(frozen=True)
class Envelope:
    id: str
    mail_from: str
    rcpt: str
    raw: bytes


class Sender(Protocol):
    def send(
        self,
        batch: Sequence[Envelope],
        on_accepted: Callable[[str], None] | None = None,
        stop: Callable[[], bool] | None = None,
    ) -> dict[str, Result]:
        """Send every envelope; a result per id. Never raises for a network fault.

        ``on_accepted(id)`` runs right after the server accepted each message, so the
        caller can record it before the next one (a crash mid-batch then repeats nothing).
        ``stop()`` is asked before each message: once it is true, the message in flight
        is finished (a DATA is never cut short: that would send it twice) and the rest
        come back DEFERRED, "not attempted", at no cost to their attempts.
        """
        ...


# -- state store ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Rejected:
    """A message we could not process: recorded, logged, left alone in the mailbox."""

    ref: str
    error: str
    at: datetime


class State(Protocol):
    """The state inside one transaction: reads see the writes made before them.

    Addresses are keys in lower case (the store lowers what it is given). Times come
    back to the millisecond (the file keeps no more). A transaction opened inside
    another joins it.
    """

    # leads (active ones; closed leads move to the archive)
    def lead(self, address: str) -> Lead | None: ...

    def leads(self) -> list[Lead]: ...

    def put_lead(self, lead: Lead, wake: datetime | None) -> None:
        """Store ``lead``; ``wake`` is when time alone next changes it (None: never)."""
        ...

    def due(self, before: datetime) -> list[Lead]:
        """Leads whose wake time is at or before ``before``, earliest first, without
        reading every lead (the store keeps an index of wake times)."""
        ...

    def next_wake(self) -> datetime | None: ...

    def known(self) -> Known:
        """Lookups for classification: addresses, Message-IDs, suppressions, our own IDs."""
        ...

    # suppression list
    def suppressed(self) -> frozenset[str]: ...

    def suppress(self, address: str, why: str, at: datetime) -> None: ...

    def unsuppress(self, address: str) -> bool: ...

    # acknowledgement period
    def last_ack(self, address: str) -> datetime | None: ...

    def record_ack(self, address: str, at: datetime) -> None: ...

    # reading positions (opaque to the store)
    def cursor(self, stream: str) -> str | None: ...

    def set_cursor(self, stream: str, cursor: str) -> None: ...

    # messages we could not process; our own Message-IDs outside a lead's thread
    def reject(self, ref: str, error: str, at: datetime) -> None: ...

    def rejects(self) -> list[Rejected]: ...

    def add_ours(self, message_id: str, at: datetime) -> None: ...

    # the outbox
    def outbox_item(self, item_id: str) -> OutboxItem | None: ...

    def put_outbox(self, item: OutboxItem) -> None:
        """Add or update an item; an update keeps the item's place in the queue."""
        ...

    def queued(self) -> list[OutboxItem]:
        """Items still PENDING, in the order they were queued."""
        ...

    def sent_times(self, since: datetime) -> list[datetime]:
        """When the items sent after ``since`` went out (for the caps)."""
        ...

    # small named facts of the daemon's own (the day of the last digest, ...)
    def marker(self, name: str) -> str | None: ...

    def set_marker(self, name: str, value: str) -> None: ...

    # problems the owner is told about once
    def notices(self) -> list[Notice]: ...

    def put_notice(self, notice: Notice) -> None: ...

    def clear_notice(self, key: str) -> bool: ...

    # housekeeping
    def archive_closed(self, now: datetime) -> int:
        """Move leads closed long ago to the archive; how many moved."""
        ...

    def prune(self, now: datetime) -> None:
        """Forget what no longer matters (old acks, own IDs, rejects, sent items)."""
        ...


class StateStore(Protocol):
    """Where the state lives. One transaction = one atomic write of everything changed."""

    @property
    def simulated(self) -> bool:
        """Written by a time-lapse run (its times are not real)."""
        ...

    def transaction(self) -> AbstractContextManager[State]: ...

    def archived(self) -> Iterator[Lead]: ...

    def maintain(self) -> None:
        """The daemon has nothing to do for a moment: housekeeping that may take a while
        (the file store folds its journal into a new snapshot). Never raises for a
        failure it can try again."""
        ...

    def erase(self, address: str, now: datetime, *, keep_suppression: bool = False) -> Erased:
        """A privacy request: every record of ``address`` gone, active and archived, and
        no trace left in what the store keeps (for a file store: no file holds it).

        Records of others that mention it keep their place with it taken out; mail
        already sent stays as an anonymous row for the caps. ``keep_suppression`` leaves
        only a hash of the address on the suppression list (see
        :mod:`inboxwatch.adapters.erasure`)."""
        ...

    def purge_archive(self, closed_before: datetime) -> int:
        """Remove archived leads that closed before ``closed_before``; how many."""
        ...
