"""Delivery, owned in one place: what goes now, sending it, recording it, and crash recovery.

The guarantee "nothing the SMTP server accepted is sent twice" lives here:

1. a message is stored (PENDING, Message-ID fixed) before it is sent (the core queues it);
2. each acceptance ("250 OK") is appended to a journal and fsynced the moment it arrives,
   so a crash in the middle of a batch repeats nothing that was accepted;
3. the results are written to the state in one transaction, then the journal is cleared;
4. after a crash, PENDING items named in the journal, or found in Sent by Message-ID (our
   copy, or the provider's own copy of SMTP mail), are marked sent, not sent again.

The one case left is a crash after the server has the whole message but before its
"250 OK" is journalled (RFC 1047): the server's own time to answer plus the reply's trip,
measured at under a millisecond locally and ~0.1 s with a provider that scans mail
(``bench/kill_during_data.py``; README, "Known limits").
What a result *means* for the lead (a first response, a bounce) is the core's decision.
"""

from __future__ import annotations

import contextlib
import dataclasses
import email.header
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from pathlib import Path

from inboxwatch.adapters.ports import Envelope, MailSource, Sender, StateStore
from inboxwatch.core.actions import Delivered, Note, Notice, UpdateOutbox
from inboxwatch.core.delivery import (
    PAUSED,
    SMTP_UNREACHABLE,
    cancel_obsolete,
    expire,
    on_delivery,
    unreachable,
)
from inboxwatch.core.mime import restamp
from inboxwatch.core.queue import (
    PAUSE_DEFAULT,
    Caps,
    OutboxItem,
    Outcome,
    Purpose,
    Result,
    due,
    hold,
)
from inboxwatch.core.route import World
from inboxwatch.core.timing import SendingWindow
from inboxwatch.service.apply import Session
from inboxwatch.service.pause import MARKER as PAUSE_MARKER
from inboxwatch.service.pause import Pause, hold_for, release, unreadable

log = logging.getLogger("inboxwatch")
#: At most this many queued items are looked up in Sent after a crash (one search each).
RECOVERY_SEARCH_LIMIT = 200


class SendJournal:
    """Message-IDs the SMTP server accepted, one line each, written the moment each
    "250 OK" arrives.

    Writing the whole state after every message would be slow; this file is what makes a
    crash in the middle of a batch repeat nothing that was accepted. Each line is written
    at once (a killed or crashed daemon loses none: the kernel has it); the fsync that
    makes it survive a power cut is grouped: at most :attr:`sync_every` seconds after a
    line (in a timer's thread, so the sending goes on meanwhile), and always before the
    batch's results are written to the state (a backlog of 1,000 spent 0.6 s
    in one fsync per message). ``path=None`` keeps it in memory (a dry run writes
    nothing).
    """

    #: Longest time a written line waits for its fsync while a batch is being sent.
    SYNC_EVERY = 0.05

    def __init__(self, path: Path | None, sync_every: float = SYNC_EVERY) -> None:
        self.path = path
        self.sync_every = sync_every
        self._memory: set[str] = set()
        self._fd: int | None = None
        self._unsynced = False
        self._synced_at = float("-inf")
        self._lock = threading.Lock()  # the descriptor and the flags
        self._timer: threading.Timer | None = None
        #: Held while the timer's thread fsyncs (outside ``_lock``, so sending goes on).
        self._fsyncing = threading.Lock()
        self._sync_failed = False

    def record(self, message_id: str) -> None:
        if self.path is None:
            self._memory.add(message_id)
            return
        with self._lock:
            if self._fd is None:
                self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            os.write(self._fd, (message_id + "\n").encode())
            self._unsynced = True
            if self._timer is None:  # the fsync runs in the timer's thread, not here
                wait = self.sync_every - (time.monotonic() - self._synced_at)
                self._timer = threading.Timer(max(0.0, wait), self._on_timer)
                self._timer.daemon = True
                self._timer.start()

    def _on_timer(self) -> None:
        """The fsync runs on a copy of the descriptor, outside the lock: the next
        acceptance is written meanwhile (a slow disk's fsync must not hold up the
        sending). One that fails leaves the lines unsynced: close() tries again and
        raises."""
        with self._lock:
            self._timer = None
            if self._fd is None or not self._unsynced:
                return
            fd = os.dup(self._fd)
            self._unsynced = False
            self._synced_at = time.monotonic()  # the next timer counts from here
            self._fsyncing.acquire()  # close() waits for this fsync before it trusts it
        failed: OSError | None = None
        try:
            os.fsync(fd)
        except OSError as exc:
            failed = exc
            self._sync_failed = True  # (before close() can look: see there)
        finally:
            os.close(fd)
            self._fsyncing.release()
        if failed is not None:
            log.error("cannot fsync the send journal: %s", failed)

    def _sync(self) -> None:
        if self._fd is not None and self._unsynced:
            os.fsync(self._fd)
            self._unsynced = False
            self._synced_at = time.monotonic()

    def close(self) -> None:
        """Make every line written so far survive a power cut, and close the file (a
        later line opens it again). Raises if the disk cannot take them: a full disk may
        show only here."""
        with self._lock:
            self._cancel_timer()
        with self._fsyncing:  # one running in the timer's thread ends first
            pass
        with self._lock:
            if self._fd is None:
                return
            if self._sync_failed:  # what the timer took is not on disk: again
                self._unsynced, self._sync_failed = True, False
            try:
                self._sync()
            finally:
                fd, self._fd, self._unsynced = self._fd, None, False
                os.close(fd)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def read(self) -> set[str]:
        if self.path is None:
            return set(self._memory)
        try:
            return {line.strip() for line in self.path.read_text().splitlines() if line.strip()}
        except FileNotFoundError:
            return set()

    def clear(self) -> None:
        self._memory.clear()
        with self._lock:
            self._cancel_timer()
            self._sync_failed = False
            if self._fd is not None:  # its lines are in the state now: no fsync needed
                fd, self._fd, self._unsynced = self._fd, None, False
                os.close(fd)
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
        clock: Callable[[], datetime] | None,
        stop: Callable[[], bool] = lambda: False,
        alert: Callable[[Notice], None] | None = None,
    ) -> None:
        self.store, self.sender, self.journal = store, sender, journal
        self.caps, self.window = caps, window
        #: Reads the moment of each acceptance: a fact recorded as it happens (the first
        #: response time), while every decision uses the tick's ``now``. None (a
        #: time-lapse): the tick's ``now``, since the network's real milliseconds are
        #: hours there and would show as a first reply hours late.
        self.clock = clock
        #: Asked before each message: once true, the one in flight is finished, no other starts.
        self.stop = stop
        self.alert = alert
        self.recovered = False
        #: Accepted by the server but not yet in the state (a failed write): nothing is
        #: sent until they are (fail closed; otherwise they would go out twice).
        self.unrecorded: set[str] = set()
        #: The journal could not be written: it must take a line again before any send.
        self.journal_failed = False
        #: Since when the SMTP server has been out of reach (None: it answers).
        self.smtp_down: datetime | None = None

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
            session = Session(state, self.alert)
            for item in queued:
                if item.id in found:
                    done = Delivered(item, Result(Outcome.ACCEPTED))
                    note = Note(f"{item.purpose} to {item.rcpt} was accepted before a crash")
                    session.apply([*on_delivery(session, world, done, now), note], now)
        self.journal.clear()

    def reconcile(self, world: World, now: datetime) -> None:
        """Bring what the server accepted into the state before anything else is sent.

        Normally there is nothing to do (the journal is cleared after each batch). After
        a failed write (a full disk) the journal or :attr:`unrecorded` names what went
        out: it is marked sent here, or this raises and nothing is sent this time.
        """
        if self.journal_failed:  # raises while the disk is still full
            self.journal.record("<probe>")
            self.journal.close()  # the fsync: a full disk may only say so there
            self.journal.clear()
            self.journal_failed = False
        accepted = self.unrecorded | self.journal.read()
        if not accepted:
            return
        with self.store.transaction() as state:
            session = Session(state, self.alert)
            for item in state.queued():
                if item.id in accepted:
                    done = Delivered(item, Result(Outcome.ACCEPTED))
                    session.apply(on_delivery(session, world, done, now), now)
        self.journal.clear()
        self.unrecorded.clear()
        log.info("recorded %d message(s) sent before a failed write", len(accepted))

    def send_due(
        self, world: World, now: datetime, only: Purpose | None = None
    ) -> list[OutboxItem]:
        """Send what is due now (within caps and sending hours); the accepted items back.

        Fails closed: if what a batch sent cannot be recorded (journal or state), this
        raises, and the next call sends nothing until :meth:`reconcile` succeeds.
        """
        self.reconcile(world, now)
        with self.store.transaction() as state:
            session = Session(state, self.alert)
            if paused_until(state.notices(), now) is not None:
                return []  # our provider's quota: nothing is tried before it can have reset
            held = self._owner_pause(session, world, now)
            for item in state.queued():  # one at a time: two may concern one lead
                if held is None or not held.holds(item):  # held mail is not given up for age
                    session.apply(expire(session, world, item, now), now)
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
        broken: list[OSError] = []

        def on_accepted(item_id: str) -> None:
            accepted_at[item_id] = self.clock() if self.clock is not None else now
            self.unrecorded.add(item_id)
            try:
                self.journal.record(item_id)
            except OSError as exc:  # the disk is full: send no more until it is recorded
                log.error("cannot write the send journal: %s; sending stops", exc)
                broken.append(exc)

        envelopes = [Envelope(i.id, i.mail_from, i.rcpt, i.raw) for i in ready]
        results = self.sender.send(envelopes, on_accepted, lambda: bool(broken) or self.stop())
        try:
            self.journal.close()  # every acceptance durable before the state is written
        except OSError as exc:
            log.error("cannot write the send journal: %s; sending stops", exc)
            broken.append(exc)
        with self.store.transaction() as state:
            session = Session(state, self.alert)
            for item in ready:
                if state.outbox_item(item.id) is None:
                    continue  # erased while it was sent (`inboxwatch forget`): not written back
                res = results.get(item.id) or Result(
                    Outcome.DEFERRED, "not attempted", attempted=False
                )
                at = accepted_at.get(item.id, now) if res.ok else now
                session.apply(on_delivery(session, world, Delivered(item, res), at), at)
            down = all(r.connection for r in results.values()) if results else False
            if down:
                self.smtp_down = self.smtp_down or now
                since, after = self.smtp_down, world.settings.unreachable_after
                err = next(iter(results.values())).error
                what = "The SMTP server"
                key = SMTP_UNREACHABLE
                session.apply(unreachable(key, what, since, err, now, after), now)
            elif any(r.ok for r in results.values()):
                self.smtp_down = None  # (the notice ends with the first accepted message)
            if paused := [r for r in results.values() if r.paused and r.attempted]:
                # One quota reply holds the whole queue, not just this batch.
                until = now + max(r.retry_after or PAUSE_DEFAULT for r in paused)
                why = f"sending paused: {paused[0].error}"
                session.apply([UpdateOutbox(i) for i in hold(state.queued(), until, why)], now)
        # The results are in the state now (a failed write raised above, leaving
        # `unrecorded` and the journal for reconcile()).
        self.unrecorded.clear()
        self.journal.clear()
        for item in ready:
            if (got := results.get(item.id)) is not None and got.ok:
                log.info("sent %s to %s (%s)", item.purpose, item.rcpt, item.id)
        if broken:
            self.journal_failed = True
            raise broken[0]
        return [i for i in ready if (r := results.get(i.id)) is not None and r.ok]

    def _owner_pause(self, session: Session, world: World, now: datetime) -> Pause | None:
        """`inboxwatch pause` (a state marker, read on every call, so a running daemon
        follows it): hold mail to leads while it lasts, release it when it is over."""
        state = session.state
        marker = state.marker(PAUSE_MARKER)
        pause = Pause.load(marker)
        if pause is None:
            if unreadable(marker):
                log.error("the pause marker in the state cannot be read (%r): ignored", marker)
            return None
        if not pause.active(now):
            session.apply(release(session, world, state.queued(), now), now)
            state.set_marker(PAUSE_MARKER, "")
            log.info("the pause has ended: mail to leads goes again")
            return None
        session.apply(hold_for(pause, state.queued()), now)
        return pause


def paused_until(notices: Iterable[Notice], now: datetime) -> datetime | None:
    """The end of a quota pause still running at ``now``, if any."""
    ends = [n.until for n in notices if n.key == PAUSED and n.until is not None]
    end = max(ends, default=None)
    return end if end is not None and end > now else None


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
