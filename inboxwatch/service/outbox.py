"""Delivery, owned in one place: what goes now, sending it, recording it, and crash recovery.

The guarantee "nothing the SMTP server accepted is sent twice" lives here:

1. a message is stored (PENDING, Message-ID fixed) before it is sent (the core queues it);
2. each acceptance ("250 OK") is appended to a journal and fsynced the moment it arrives,
   so a crash in the middle of a batch repeats nothing that was accepted;
3. the results are written to the state in one transaction, then the journal is cleared;
4. after a crash, PENDING items named in the journal, or found in Sent by Message-ID (our
   copy, or the provider's own copy of SMTP mail), are marked sent, not sent again.

The one case left is a crash in the microseconds between a "250 OK" and its journal line.
What a result *means* for the lead (a first response, a bounce) is the core's decision.
"""

from __future__ import annotations

import contextlib
import dataclasses
import email.header
import logging
import os
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path

from inboxwatch.adapters.ports import Envelope, MailSource, Sender, StateStore
from inboxwatch.core.actions import Delivered, Note
from inboxwatch.core.mime import restamp
from inboxwatch.core.queue import Caps, OutboxItem, Outcome, Purpose, Result, due
from inboxwatch.core.route import World, cancel_obsolete, on_delivery
from inboxwatch.core.timing import SendingWindow
from inboxwatch.service.apply import Session

log = logging.getLogger("inboxwatch")
#: At most this many queued items are looked up in Sent after a crash (one search each).
RECOVERY_SEARCH_LIMIT = 200


class SendJournal:
    """Message-IDs the SMTP server accepted, one line each, fsynced at once.

    Writing the whole state after every message would be slow; this file is what makes a
    crash in the middle of a batch repeat nothing that was accepted. ``path=None`` keeps
    it in memory (a dry run writes nothing).
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._memory: set[str] = set()

    def record(self, message_id: str) -> None:
        if self.path is None:
            self._memory.add(message_id)
            return
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, (message_id + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)

    def read(self) -> set[str]:
        if self.path is None:
            return set(self._memory)
        try:
            return {line.strip() for line in self.path.read_text().splitlines() if line.strip()}
        except FileNotFoundError:
            return set()

    def clear(self) -> None:
        self._memory.clear()
        if self.path is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)


class Outbox:
    """Sends what is due through a :class:`Sender` and records every result."""

    def __init__(
        self,
        store: StateStore,
        sender: Sender,
        journal: SendJournal,
        caps: Caps,
        window: SendingWindow,
        clock: Callable[[], datetime],
    ) -> None:
        self.store, self.sender, self.journal = store, sender, journal
        self.caps, self.window = caps, window
        #: Reads the moment of each acceptance: a fact recorded as it happens (the first
        #: response time), while every decision uses the tick's ``now``.
        self.clock = clock
        self.recovered = False

    def recover(self, world: World, source: MailSource, now: datetime) -> None:
        """After a crash: what the server accepted that the state does not show yet."""
        if self.recovered:
            return
        self.recovered = True
        accepted = self.journal.read()
        with self.store.transaction() as state:
            queued = state.queued()
        if not queued:
            self.journal.clear()
            return
        found = {i.id for i in queued if i.id in accepted}
        if source.has_sent:
            for item in queued[:RECOVERY_SEARCH_LIMIT]:
                if item.id not in found and source.in_sent(item.id):
                    found.add(item.id)
        with self.store.transaction() as state:
            session = Session(state)
            for item in queued:
                if item.id in found:
                    done = Delivered(item, Result(Outcome.ACCEPTED))
                    note = Note(f"{item.purpose} to {item.rcpt} was accepted before a crash")
                    session.apply([*on_delivery(session, world, done, now), note], now)
        self.journal.clear()

    def send_due(
        self, world: World, now: datetime, only: Purpose | None = None
    ) -> list[OutboxItem]:
        """Send what is due now (within caps and sending hours); the accepted items back."""
        with self.store.transaction() as state:
            session = Session(state)
            sent_times = state.sent_times(now - timedelta(days=1))
            items = due(state.queued(), sent_times, now, self.caps, self.window)
            if only is not None:
                items = [i for i in items if i.purpose is only]
            ready, cancels = cancel_obsolete(session, items)
            session.apply(cancels, now)
        if not ready:
            return []
        # The Date header is the moment of sending, in the business's own zone.
        stamp = now.astimezone(self.window.tz)
        ready = [dataclasses.replace(i, raw=restamp(i.raw, stamp)) for i in ready]
        accepted_at: dict[str, datetime] = {}

        def on_accepted(item_id: str) -> None:
            self.journal.record(item_id)
            accepted_at[item_id] = self.clock()

        envelopes = [Envelope(i.id, i.mail_from, i.rcpt, i.raw) for i in ready]
        results = self.sender.send(envelopes, on_accepted)
        with self.store.transaction() as state:
            session = Session(state)
            for item in ready:
                res = results.get(item.id) or Result(Outcome.DEFERRED, "not attempted")
                at = accepted_at.get(item.id, now) if res.ok else now
                session.apply(on_delivery(session, world, Delivered(item, res), at), at)
        self.journal.clear()  # the results are in the state now
        for item in ready:
            if (got := results.get(item.id)) is not None and got.ok:
                log.info("sent %s to %s (%s)", item.purpose, item.rcpt, item.id)
        return [i for i in ready if (r := results.get(i.id)) is not None and r.ok]


class DryRunSender:
    """Logs each message it would send (recipient and subject) and sends nothing."""

    def send(
        self,
        batch: Sequence[Envelope],
        on_accepted: Callable[[str], None] | None = None,
        stop: Callable[[], bool] | None = None,
    ) -> dict[str, Result]:
        for env in batch:
            head = env.raw.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
            subject = _header(head, "Subject")
            purpose = _header(head, "X-Inboxwatch")
            log.info("dry run: would send %s to %s: %s", purpose, env.rcpt, subject)
            if on_accepted is not None:
                on_accepted(env.id)
        return {env.id: Result(Outcome.ACCEPTED) for env in batch}


def _header(head: str, name: str) -> str:
    for line in head.replace("\r\n ", " ").replace("\r\n\t", " ").split("\r\n"):
        key, _, value = line.partition(":")
        if key.strip().lower() == name.lower():
            return str(email.header.make_header(email.header.decode_header(value.strip())))
    return ""
