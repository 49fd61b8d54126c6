"""The outbox's rules, pure: what a queued message is, which go now, when to retry.

A message is queued (status ``PENDING``) in the same transaction as the decision that
made it, before anything is sent ("intent first"), with its Message-ID fixed. It then
becomes ``SENT``, ``FAILED`` (refused for good, or given up when it was not out within
its maximum age, see :func:`reschedule`) or ``CANCELLED`` (the lead's state moved on
before it went). Caps are counted over what was sent in the last hour and day; the
excess waits, it is never dropped. The IO around this (the journal, sending, recovery
after a crash) is :mod:`inboxwatch.service.outbox`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from inboxwatch.core.timing import SendingWindow

#: Only for the deprecated :func:`retry`: retries now end by age (:func:`reschedule`).


class Purpose(StrEnum):
    """Why a message is written; also the ``X-Inboxwatch`` header of the message."""

    ACK = "ack"
    FOLLOWUP = "followup"
    OWNER_ALERT = "owner-alert"
    OWNER_REPLY = "owner-reply"
    OWNER_TASK = "owner-task"
    OWNER_NUDGE = "owner-nudge"  # a lead still waits for a person's answer
    OWNER_NOTICE = "owner-notice"  # about inboxwatch itself: sending refused, given up
    OWNER_EVENT = "owner-event"  # what happened to a live lead: a bounce, an absence
    DIGEST = "digest"  # the owner's daily digest (core.digest)

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
    Purpose.OWNER_NUDGE: 1,
    Purpose.OWNER_NOTICE: 1,
    Purpose.OWNER_EVENT: 1,
    Purpose.DIGEST: 4,  # once a day, for reading: after everything about a lead
}


class Outcome(StrEnum):
    """What the server said about one message, as far as the outbox and the lead care.

    ==================  ==========================================================  ========
    outcome             meaning (RFC 5321 §4.2.1 reply classes, RFC 3463 codes)     attempt
    ==================  ==========================================================  ========
    ``ACCEPTED``        250 after the data (RFC 5321 §4.1.1.4): the server has it.  --
    ``REFUSED``         The *recipient* refused for good: 5yz at RCPT TO (§3.3),    yes
                        or 5yz after DATA whose enhanced code is about the
                        recipient (X.1.x addressing, X.2.1 mailbox disabled,
                        X.4.x routing to it; RFC 3463 §3.2, §3.3, §3.5). The only
                        outcome that says anything about the lead's address.
    ``SENDER_REFUSED``  *We* were refused, not the lead: 5yz at MAIL FROM (§3.3,    no
                        the recipient is not named yet), X.1.7/X.1.8 (our
                        sender address), authentication and relaying (530,
                        X.7.0/X.7.8/X.7.9/X.7.11/X.7.13/X.7.14, RFC 4954 §6 and
                        RFC 7372; "relay access denied").
    ``CONTENT_REFUSED`` *Our message* was refused: 5yz after DATA that is not      no
                        about the recipient: policy or spam (X.7.x), media and
                        content (X.6.x), size (X.3.4, X.2.3; 552 at MAIL FROM
                        with SIZE, RFC 1870).
    ``DEFERRED``        Not this time, for this message: a 4yz (§4.2.1), a 421     yes
                        that closed the connection during its transaction
                        (§3.8), an error or timeout mid-message, or the
                        recipient's own quota (X.2.2 "mailbox full", even as a
                        5yz: it passes).
    ``PAUSED``          Our provider's quota or rate limit (X.4.5 as Gmail's       no
                        "550 5.4.5 daily sending quota", 4.7.0/4.7.28 "rate",
                        452 4.5.3 "too many recipients" (§4.5.3.1.10) for a
                        one-recipient message, "submission quota"): every
                        message would get the same answer. Sending pauses for
                        ``Result.retry_after`` (a daily quota: until it can
                        have reset; a rate limit: minutes).
    ``UNREACHABLE``     The server was not reached, or refused the session before  no
                        any message (greeting, EHLO, STARTTLS, login), or the
                        connection dropped and could not be re-established: it
                        says nothing about the message.
    ==================  ==========================================================  ========

    "attempt": whether :func:`reschedule` counts the failure as one of the message's
    attempts (informational: retries end by age, not by count). SENDER_REFUSED and
    CONTENT_REFUSED are ours to fix: the message is held (never a bounce, the lead is
    never suppressed for it) and the owner is told.
    """

    ACCEPTED = "accepted"
    REFUSED = "refused"
    SENDER_REFUSED = "sender-refused"
    CONTENT_REFUSED = "content-refused"
    DEFERRED = "deferred"
    PAUSED = "paused"
    UNREACHABLE = "unreachable"


@dataclass(frozen=True)
class Result:
    """One message's :class:`Outcome`, the server's words, and how long to wait."""

    outcome: Outcome
    error: str = ""
    #: How long to wait before this message (PAUSED: before any message) is tried again;
    #: None: the outbox's own back-off decides.
    retry_after: timedelta | None = None
    #: False when the sender did not try this message at all (stopping, or the batch
    #: was halted by a quota or a refusal of our sender before it): never costs anything.
    attempted: bool = True

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.ACCEPTED

    @property
    def permanent(self) -> bool:
        """The lead's address was refused for good (a hard bounce)."""
        return self.outcome is Outcome.REFUSED

    @property
    def connection(self) -> bool:
        """The server was not reached: nothing is known about the message."""
        return self.outcome is Outcome.UNREACHABLE

    @property
    def ours(self) -> bool:
        """Refused for a reason of ours (sender, content): hold, tell the owner, never
        blame the lead."""
        return self.outcome in (Outcome.SENDER_REFUSED, Outcome.CONTENT_REFUSED)

    @property
    def paused(self) -> bool:
        """A quota or rate limit of our provider: no message should go before
        ``retry_after`` has passed."""
        return self.outcome is Outcome.PAUSED

    @property
    def costs_attempt(self) -> bool:
        """Counted as one of the message's attempts (a failure of this message)."""
        return self.attempted and self.outcome in (Outcome.REFUSED, Outcome.DEFERRED)

    def not_attempted(self, why: str = "") -> Result:
        """The same outcome for a message the sender skipped because of this one."""
        reason = why or self.error
        error = reason if reason.startswith("not attempted") else f"not attempted: {reason}"
        return dataclasses.replace(self, error=error, attempted=False)


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


#: DEFERRED: 30 s, doubling with each attempt, at most an hour.
BACKOFF_FIRST = timedelta(seconds=30)
BACKOFF_MAX = timedelta(hours=1)
#: UNREACHABLE: a tenth of the message's age, between these (an outage of a day is
#: probed every quarter of an hour, a blip after half a minute).
UNREACHABLE_MIN = timedelta(seconds=30)
UNREACHABLE_MAX = timedelta(minutes=15)
#: PAUSED without a time from the sender.
PAUSE_DEFAULT = timedelta(minutes=15)
#: SENDER_REFUSED / CONTENT_REFUSED: time for the owner to fix it before the next try.
HOLD = timedelta(hours=1)


@dataclass(frozen=True)
class MaxAge:
    """How long each kind of message may wait to go out before it is given up.

    The shell builds it from the configuration: ``ack`` from ``[imap] max_age_days``
    (counted from the enquiry), ``followup`` and ``owner`` from ``[sending]
    followup_max_age_days`` and ``owner_mail_max_age_days``. RFC 5321 §4.5.4.1 asks
    for at least 4-5 days of retries for mail in general; a follow-up or an alert that
    late is no longer worth sending, so theirs are shorter.
    """

    ack: timedelta = timedelta(days=7)
    followup: timedelta = timedelta(days=2)
    owner: timedelta = timedelta(days=3)

    def of(self, purpose: Purpose) -> timedelta:
        if purpose is Purpose.ACK:
            return self.ack
        if purpose is Purpose.FOLLOWUP:
            return self.followup
        return self.owner


def deadline(item: OutboxItem, max_age: timedelta, since: datetime | None = None) -> datetime:
    """When ``item`` is given up if it has not gone: ``max_age`` after ``since`` (an
    acknowledgement: the enquiry's arrival) or else after it was queued."""
    return (item.created if since is None else since) + max_age


def _span(age: timedelta) -> str:
    days = age / timedelta(days=1)
    if days >= 1:
        return f"{days:g} day{'' if days == 1 else 's'}"
    hours = age / timedelta(hours=1)
    return f"{hours:g} hour{'' if hours == 1 else 's'}"


def give_up(item: OutboxItem, max_age: timedelta, error: str = "") -> OutboxItem:
    """FAILED: not sent within ``max_age`` (the last error, if any, kept after it)."""
    why = f"given up: not sent within {_span(max_age)}"
    last = error or item.error
    return item.failed(f"{why} (last error: {last})" if last else why)


def _backoff(attempts: int) -> timedelta:
    # The shift is bounded: 30 s << 7 is past the hour already (and no overflow).
    return min(BACKOFF_MAX, BACKOFF_FIRST * (1 << min(7, max(0, attempts - 1))))


def reschedule(
    item: OutboxItem,
    now: datetime,
    result: Result,
    max_age: timedelta,
    since: datetime | None = None,
) -> OutboxItem:
    """The item after a send with ``result``: sent, failed, or queued for later.

    Retries are bounded by age, not by count: an item still not out at
    :func:`deadline` (``max_age`` after ``since`` or its creation) is FAILED
    ("given up: not sent within N days"); until then the next try is never set past
    the deadline, so it gets a last chance there. Otherwise, by outcome:

    - ACCEPTED: SENT at ``now``; REFUSED: FAILED at once (the recipient refused it).
    - DEFERRED: one more attempt, back-off 30 s doubling to at most an hour, or the
      server's ``retry_after`` if longer (a skipped message, "not attempted", costs
      nothing and may go again at once).
    - PAUSED: no attempt used; next try after ``result.retry_after`` (or 15 min).
    - UNREACHABLE: no attempt used; a tenth of the item's age, 30 s to 15 min.
    - SENDER_REFUSED, CONTENT_REFUSED: no attempt used; held ``retry_after`` or an
      hour, time for the owner to fix what is ours.

    ``since`` is for an acknowledgement: the enquiry's arrival (the lead's
    ``arrived``), so "within max_age_days of the enquiry" holds even when the
    acknowledgement was queued late.
    """
    if result.ok:
        return item.sent(now)
    attempts = item.attempts + (1 if result.costs_attempt else 0)
    if result.outcome is Outcome.REFUSED:
        return item.failed(result.error, attempts)
    end = deadline(item, max_age, since)
    if now >= end:
        return dataclasses.replace(give_up(item, max_age, result.error), attempts=attempts)
    match result.outcome:
        case Outcome.DEFERRED:  # a time the server named ("try again in 5 min") is kept
            backoff = _backoff(attempts) if result.attempted else timedelta(0)
            wait = max(backoff, result.retry_after or timedelta(0))
        case Outcome.PAUSED:
            wait = result.retry_after or PAUSE_DEFAULT
        case Outcome.UNREACHABLE:
            age = max(timedelta(0), now - item.created)
            wait = result.retry_after or min(UNREACHABLE_MAX, max(UNREACHABLE_MIN, age / 10))
        case _:  # SENDER_REFUSED, CONTENT_REFUSED
            wait = result.retry_after or HOLD
    return dataclasses.replace(
        item, attempts=attempts, error=result.error, next_try=min(now + wait, end)
    )


def hold(queued: Iterable[OutboxItem], until: datetime, error: str) -> list[OutboxItem]:
    """After a PAUSED result (our provider's quota): the other queued items, moved to
    ``until`` at no cost, so that none is tried before the quota can have reset.
    Only the items that change are returned."""
    return [
        dataclasses.replace(i, next_try=until, error=error)
        for i in queued
        if i.queued and i.next_try < until
    ]
