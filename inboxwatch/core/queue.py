"""The outbox's rules, pure: what a queued message is, which go now, when to retry.

A message is queued (status ``PENDING``) in the same transaction as the decision that
made it, before anything is sent ("intent first"), with its Message-ID fixed. It then
becomes ``SENT``, ``FAILED`` (refused for good, or given up after ``MAX_ATTEMPTS``) or
``CANCELLED`` (the lead's state moved on before it went). Caps are counted over what was
sent in the last hour and day; the excess waits, it is never dropped. The IO around this
(the journal, sending, recovery after a crash) is :mod:`inboxwatch.service.outbox`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from inboxwatch.core.timing import SendingWindow

MAX_ATTEMPTS = 12


class Purpose(StrEnum):
    """Why a message is written; also the ``X-Inboxwatch`` header of the message."""

    ACK = "ack"
    FOLLOWUP = "followup"
    OWNER_ALERT = "owner-alert"
    OWNER_REPLY = "owner-reply"
    OWNER_TASK = "owner-task"

    @property
    def to_lead(self) -> bool:
        """Mail the lead reads (a copy goes to Sent; its sending is a first response)."""
        return self in (Purpose.ACK, Purpose.FOLLOWUP)


#: Lower goes first: a lead's acknowledgement before alerts, follow-ups and tasks.
PRIORITY = {
    Purpose.ACK: 0,
    Purpose.OWNER_ALERT: 1,
    Purpose.OWNER_REPLY: 1,
    Purpose.FOLLOWUP: 2,
    Purpose.OWNER_TASK: 3,
}


class Outcome(StrEnum):
    ACCEPTED = "accepted"
    #: Refused for good (5xx for this message): do not try again.
    REFUSED = "refused"
    #: Not this time (4xx, an error mid-message): try again later.
    DEFERRED = "deferred"
    #: The server was not reached, or refused us before the message (login): says
    #: nothing about the message, so it does not use up one of its attempts.
    UNREACHABLE = "unreachable"


@dataclass(frozen=True)
class Result:
    outcome: Outcome
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.ACCEPTED

    @property
    def permanent(self) -> bool:
        return self.outcome is Outcome.REFUSED

    @property
    def connection(self) -> bool:
        return self.outcome is Outcome.UNREACHABLE


class Status(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class Caps:
    per_hour: int
    per_day: int


@dataclass(frozen=True)
class OutboxItem:
    """One message in the outbox. ``raw`` is emptied once sent (the copy is in Sent)."""

    id: str  # the Message-ID, fixed when queued
    purpose: Purpose
    lead: str  # the lead's address ("" for mail about no lead)
    step: str
    mail_from: str
    rcpt: str
    raw: bytes
    created: datetime
    next_try: datetime
    status: Status = Status.PENDING
    attempts: int = 0
    error: str = ""
    sent_at: datetime | None = None

    @property
    def queued(self) -> bool:
        return self.status is Status.PENDING

    @property
    def save_sent(self) -> bool:
        return self.purpose.to_lead

    def sent(self, at: datetime) -> OutboxItem:
        return dataclasses.replace(self, status=Status.SENT, sent_at=at, raw=b"", error="")

    def failed(self, error: str, attempts: int | None = None) -> OutboxItem:
        n = self.attempts if attempts is None else attempts
        return dataclasses.replace(self, status=Status.FAILED, error=error, attempts=n)

    def cancelled(self) -> OutboxItem:
        return dataclasses.replace(self, status=Status.CANCELLED, raw=b"")


def _blocked(item: OutboxItem, now: datetime, window: SendingWindow | None) -> bool:
    """A follow-up held back (caps, retries) waits for sending hours again: it must not
    go out at 3 a.m. because it was due at 4 p.m."""
    return window is not None and item.purpose is Purpose.FOLLOWUP and not window.is_open(now)


def room(sent_times: Iterable[datetime], now: datetime, caps: Caps) -> int:
    """How many more messages the caps allow right now."""
    day = [t for t in sent_times if t > now - timedelta(days=1)]
    hour = sum(1 for t in day if t > now - timedelta(hours=1))
    return max(0, min(caps.per_hour - hour, caps.per_day - len(day)))


def due(
    queued: Iterable[OutboxItem],
    sent_times: Iterable[datetime],
    now: datetime,
    caps: Caps,
    window: SendingWindow | None = None,
) -> list[OutboxItem]:
    """Queued items to send now, in priority then queue order, within the caps."""
    ready = [i for i in queued if i.queued and i.next_try <= now and not _blocked(i, now, window)]
    ready.sort(key=lambda i: (PRIORITY.get(i.purpose, 5), i.created))
    return ready[: room(sent_times, now, caps)]


def next_send_time(
    queued: Sequence[OutboxItem],
    sent_times: Iterable[datetime],
    now: datetime,
    caps: Caps,
    window: SendingWindow | None = None,
) -> datetime | None:
    """When the next queued item may go: its retry time, or when a full cap has room again.

    Without this a capped queue would look due at once and the daemon would spin.
    """
    waiting = [i for i in queued if i.queued]
    if not waiting:
        return None

    def ready_at(item: OutboxItem) -> datetime:
        at = item.next_try
        if window is not None and item.purpose is Purpose.FOLLOWUP:
            at = window.next_open(max(at, now))
        return at

    earliest = min(ready_at(i) for i in waiting)
    sent = sorted(sent_times)
    for per, span in ((caps.per_hour, timedelta(hours=1)), (caps.per_day, timedelta(days=1))):
        if per <= 0:
            return None  # sending switched off: nothing will ever be due
        recent = [t for t in sent if t > now - span]
        if len(recent) >= per:
            # Room again when enough of the recent sends have aged out of the window.
            earliest = max(earliest, recent[len(recent) - per] + span)
    return earliest


def retry(item: OutboxItem, now: datetime, error: str, *, counts: bool = True) -> OutboxItem:
    """Back off exponentially (30 s doubling, at most an hour); FAILED after MAX_ATTEMPTS.

    ``counts=False`` (the server was not reached at all) retries without using up the
    message's attempts: an outage of a day must not lose the queue.
    """
    attempts = item.attempts + (1 if counts else 0)
    if attempts >= MAX_ATTEMPTS:
        return item.failed(error, attempts)
    delay = timedelta(seconds=min(3600, 30 * 2 ** max(0, attempts - 1)))
    return dataclasses.replace(item, attempts=attempts, error=error, next_try=now + delay)
