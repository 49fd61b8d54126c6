"""The daemon's mail source over IMAP: refs, opaque cursors with an arrival mark, IDLE.

Nothing outside this module sees a UID: a ref and a cursor are ``"UIDVALIDITY:UID"``
(a cursor adds the newest INTERNALDATE it has moved past, so a renumbering never brings
back old mail). Built on :class:`~inboxwatch.adapters.imap.Mailbox`, the connection.
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from inboxwatch.adapters import backlog
from inboxwatch.adapters.imap import (
    APPEND_BATCH,
    APPEND_BATCH_BYTES,
    LIVENESS,
    PROBE_TIMEOUT,
    FolderState,
    Mailbox,
    seconds_of,
)
from inboxwatch.adapters.oauth import Credential
from inboxwatch.adapters.ports import Batch, CopiesNotSaved, Stream
from inboxwatch.adapters.ports import Fetched as PortFetched
from inboxwatch.errors import TransientError
from inboxwatch.userfiles.config import ImapConfig

log = logging.getLogger("inboxwatch.imap")

#: After a renumbering, mail this recent is looked at again (or the look-back if that is
#: longer); only what arrived after the cursor's arrival mark is returned.
RESYNC_WINDOW = timedelta(days=2)
#: The longest single IDLE or sleep slice: how soon ``interrupted()`` is noticed.
SLICE = 0.25
#: Early wake-ups without a response tolerated in one ``wait`` before reconnecting.
MAX_SUSPECT_WAKEUPS = 3
#: The Message-ID of a message we wrote (one line: we fold no header of ours there).
_MESSAGE_ID = re.compile(rb"^Message-ID:[ \t]*(<[^>\r\n]+>)", re.IGNORECASE | re.MULTILINE)


def _position(ref: str | None) -> tuple[int, int] | None:
    """("UIDVALIDITY", "UID") of a ref; None for none (an empty one included).

    A ref that cannot be read maps to UIDVALIDITY -1, which no folder has.
    """
    if not ref:
        return None
    validity, _, uid = ref.partition(":")
    try:
        return int(validity), int(uid)
    except ValueError:
        return -1, 0


def append_batches(
    raws: Sequence[bytes], most: int = APPEND_BATCH, size: int = APPEND_BATCH_BYTES
) -> list[Sequence[bytes]]:
    """``raws`` cut in order into runs of at most ``most`` messages and ``size`` bytes
    (a message larger than ``size`` goes alone): one MULTIAPPEND each, so no command
    holds a whole backlog in memory or outlasts the connection's timeout."""
    batches: list[Sequence[bytes]] = []
    start, total = 0, 0
    for i, raw in enumerate(raws):
        if i > start and (i - start >= most or total + len(raw) > size):
            batches.append(raws[start:i])
            start, total = i, 0
        total += len(raw)
    if start < len(raws):
        batches.append(raws[start:])
    return batches


@dataclass(frozen=True)
class Cursor:
    """A reading position: ``"UIDVALIDITY:UID:MARK"``.

    ``MARK`` is the arrival-time high-water mark (POSIX seconds): after a renumbering,
    when UIDs mean nothing, only mail that arrived after it is returned. Mail skipped on
    purpose (before the first start, below the position) counts with its own INTERNALDATE,
    mail returned with its INTERNALDATE minus one second, so a message arriving in the
    same second as the last one read is not lost (the one read comes back, and the core
    recognises it by Message-ID). ``None``: an old cursor without a mark.
    """

    validity: int
    uid: int
    mark: int | None
    #: UIDs above ``uid`` already read: new mail served ahead of a backlog (:mod:`.backlog`).
    done: tuple[int, ...] = ()

    def __str__(self) -> str:
        return f"{self.validity}:{self.uid}:{self.mark or 0}{backlog.done_text(self.done)}"


def parse_cursor(text: str | None) -> Cursor | None:
    """None for no cursor; an unreadable one is UIDVALIDITY -1 (which no folder has): a
    renumbering, recent mail read again, never a silent first start."""
    if not text:
        return None
    parts = text.split(":")
    with contextlib.suppress(ValueError):
        if len(parts) == 2:  # before arrival marks
            return Cursor(int(parts[0]), int(parts[1]), None)
        if len(parts) in (3, 4):
            done = backlog.parse_done(parts[3]) if len(parts) == 4 else ()
            return Cursor(int(parts[0]), int(parts[1]), int(parts[2]), done)
    return Cursor(-1, 0, None)


def resync_chunk(pending: Sequence[int], second: Callable[[int], int], limit: int) -> list[int]:
    """The first ``limit`` of ``pending`` (in arrival order) without splitting a second
    between two reads, because the next read continues by arrival time; a single second
    holding more than ``limit`` messages is returned whole."""
    if len(pending) <= limit:
        return list(pending)
    edge = second(pending[limit])
    cut = limit
    while cut > 0 and second(pending[cut - 1]) == edge:
        cut -= 1
    if cut == 0:
        cut = limit
        while cut < len(pending) and second(pending[cut]) == edge:
            cut += 1
    return list(pending[:cut])


class ImapSource:
    """The daemon's :class:`~inboxwatch.adapters.ports.MailSource` over one IMAP connection.

    Refs are ``"UIDVALIDITY:UID"`` and cursors ``"UIDVALIDITY:UID:MARK"`` (see
    :class:`Cursor`); nothing outside this class sees a UID. Inbox reads use
    ``BODY.PEEK[]`` on a folder opened with EXAMINE, so unread mail stays unread. Every
    method may raise :class:`TransientError`; ``open`` also :class:`LoginFailed`.
    ``liveness`` is :data:`LIVENESS` (tests make it short).
    """

    def __init__(
        self, cfg: ImapConfig, password: Credential, *, liveness: float = LIVENESS
    ) -> None:
        self.cfg = cfg
        self.mailbox = Mailbox(cfg, password)
        self.liveness = liveness
        self._sent: str | None = None
        self._idle = False
        #: The server takes many messages in one APPEND (RFC 3502), found out at ``open``.
        self._multiappend = False
        #: The inbox position the last inbox read returned: ``wait`` compares UIDNEXT
        #: with it, because mail that arrived before IDLE began is not announced by IDLE.
        self._inbox_at: tuple[int, int] | None = None
        #: The highest inbox UID the last read saw: above it is new mail (:mod:`.backlog`).
        self._seen_top: int | None = None
        #: An APPEND to Sent failed without the server's answer: it may have been done.
        self._copies_uncertain = False

    # -- connection -----------------------------------------------------------------------
    def open(self) -> None:
        """Connect and log in; find out about IDLE and the Sent folder (once per connection)."""
        self.mailbox.close()  # a reconnect: never leave the old connection behind
        self._seen_top = None  # a new connection has seen nothing yet
        self.mailbox.connect()
        self._idle = self.cfg.idle and self.mailbox.has_idle()
        self._multiappend = self.mailbox.has_multiappend()
        self._sent = self.mailbox.sent_folder()
        if self._sent is None:
            log.warning("no Sent folder found (no \\Sent flag): set [imap] sent to watch it")

    def close(self) -> None:
        self.mailbox.close()

    @property
    def has_sent(self) -> bool:
        return self._sent is not None

    # -- reading --------------------------------------------------------------------------
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
        """At most ``limit`` messages after ``cursor``, oldest first (see the port).

        After a renumbering only mail that arrived after the cursor's mark comes back,
        oldest first by arrival; such a read may exceed ``limit`` only when more than
        ``limit`` messages arrived within one second.
        """
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        folder = self.cfg.inbox if stream is Stream.INBOX else self._sent
        if folder is None:  # no Sent folder: nothing to read, the position stays
            return Batch((), cursor or "", more=False)
        state = self.mailbox.select(folder)
        at = parse_cursor(cursor)
        top = state.uidnext - 1 if state.uidnext else 0
        if at is not None and at.validity != state.uidvalidity:
            return self._resync(stream, folder, state, at, top, now, lookback, limit, headers_only)
        done: tuple[int, ...] = ()
        if at is None:
            uids, after, top = self._first_start(folder, top, now, lookback)
            mark = self._newest(after, now)  # the mail skipped on purpose
        else:
            done = at.done
            uids, after = self.mailbox.uids_after(at.uid), at.uid
            uids = [u for u in uids if u not in done] if done else uids
            mark = at.mark if at.mark is not None else self._newest(at.uid, now)
        seen = self._seen_top if stream is Stream.INBOX and at is not None else None
        chosen, fresh = backlog.choose(uids, seen, limit, done)
        messages = self._fetch(state, chosen, headers_only)
        if not fresh:  # the mark follows the backlog: new mail above it is in ``done``
            mark = max([mark, *(seconds_of(m.received) - 1 for m in messages)])
        # Past gaps that mail expunged before we saw it leaves (or ``wait`` would find
        # "new" mail that is not there and never sleep).
        last, done = backlog.advance(uids, chosen, done, after, top)
        if stream is Stream.INBOX:
            self._inbox_at = (state.uidvalidity, last)
            self._seen_top = max([top, *uids])
        position = Cursor(state.uidvalidity, last, mark, done)
        return Batch(messages, str(position), more=len(chosen) < len(uids))

    def _first_start(
        self, folder: str, top: int, now: datetime, lookback: timedelta
    ) -> tuple[list[int], int, int]:
        """UIDs to read at a first start, the position before them, and the top UID."""
        if not top:
            top = max(self.mailbox.uids_after(0), default=0)
        uids: list[int] = []
        if lookback > timedelta(0):
            uids = [u for u in self.mailbox.uids_since((now - lookback).date()) if u <= top]
        # Start just before the look-back, so a crash half-way through resumes it.
        start = uids[0] - 1 if uids else top
        log.info("%s: first start at position %s; look-back %s", folder, start, lookback)
        return uids, start, top

    def _resync(
        self,
        stream: Stream,
        folder: str,
        state: FolderState,
        at: Cursor,
        top: int,
        now: datetime,
        lookback: timedelta,
        limit: int,
        headers_only: bool,
    ) -> Batch:
        """The server renumbered the folder: UIDs mean nothing now, so recent mail is
        looked at again and only what arrived after the mark is returned, by arrival.

        Until the last of it is read, the cursor keeps the old numbering (so the next
        read goes on by arrival time) with the mark raised to the newest second read.
        """
        log.warning(
            "%s: UIDVALIDITY changed (%s -> %s): re-reading mail that arrived after %s",
            folder,
            at.validity,
            state.uidvalidity,
            "the last position" if at.mark is not None else "the re-sync window began",
        )
        since = (now - max(RESYNC_WINDOW, lookback)).date()
        dates = self.mailbox.dates(self.mailbox.uids_since(since))
        seconds = {uid: seconds_of(t) for uid, t in dates.items()}
        floor = at.mark if at.mark is not None else -1
        pending = sorted(
            (u for u, s in seconds.items() if s > floor), key=lambda u: (seconds[u], u)
        )
        chosen = resync_chunk(pending, seconds.__getitem__, limit)
        messages = self._fetch(state, chosen, headers_only)
        mark = max(floor, 0)
        if len(chosen) < len(pending):  # more to come: every message of these seconds is read
            cursor = Cursor(at.validity, at.uid, max([mark, *(seconds[u] for u in chosen)]))
            position = (at.validity, at.uid)
        else:
            mark = max([mark, *(seconds_of(m.received) - 1 for m in messages)])
            last = max([top, *chosen])
            cursor, position = Cursor(state.uidvalidity, last, mark), (state.uidvalidity, last)
        if stream is Stream.INBOX:
            self._inbox_at, self._seen_top = position, None
        return Batch(messages, str(cursor), len(chosen) < len(pending))

    def _fetch(
        self, state: FolderState, uids: Sequence[int], headers_only: bool
    ) -> tuple[PortFetched, ...]:
        return tuple(
            PortFetched(
                ref=f"{state.uidvalidity}:{f.uid}",
                received=f.internaldate,
                flagged="\\Flagged" in f.flags,
                raw=f.raw,
            )
            for f in self.mailbox.fetch(uids, header_only=headers_only)
        )

    def _newest(self, last_uid: int, now: datetime) -> int:
        """The newest INTERNALDATE (POSIX seconds) of the mail up to UID ``last_uid``; 0
        for none. Recent mail is searched first (SINCE days compare like the instants, so
        if any is found, the newest is among it); the whole folder only if none is."""
        uids = self.mailbox.uids_upto(last_uid, since=(now - RESYNC_WINDOW).date())
        if not uids:
            uids = self.mailbox.uids_upto(last_uid)
        return max((seconds_of(t) for t in self.mailbox.dates(uids).values()), default=0)

    def flagged(self) -> frozenset[str]:
        state = self.mailbox.select(self.cfg.inbox)
        return frozenset(f"{state.uidvalidity}:{uid}" for uid in self.mailbox.flagged())

    def in_sent(self, message_id: str) -> bool:
        if self._sent is None:
            return False
        self.mailbox.select(self._sent)
        return self.mailbox.has_message_id(message_id)

    # -- the two writes -------------------------------------------------------------------
    def save_sent(self, raws: Sequence[bytes], when: datetime) -> None:
        """APPEND copies marked \\Seen: a MULTIAPPEND per :func:`append_batches` run when
        the server offers it (a backlog's 800 copies took 3.3 s one APPEND each), else one
        APPEND each. Without a Sent folder there is nowhere to keep them."""
        if self._sent is None or not raws:
            return
        todo = list(range(len(raws)))  # indices into raws still to be saved
        saved = 0
        try:
            if self._copies_uncertain:
                todo = [i for i in todo if not self._in_sent(raws[i])]
            if self._multiappend:
                for batch in append_batches([raws[i] for i in todo]):
                    self._copies_uncertain = True  # until the server's OK
                    self.mailbox.multiappend(self._sent, batch, when)
                    saved += len(batch)  # RFC 3502: all of a batch or none of it
            else:
                for i in todo:
                    self._copies_uncertain = True
                    self.mailbox.append(self._sent, raws[i], when)
                    saved += 1
            self._copies_uncertain = False
        except TransientError as exc:
            # ``saved`` counts in ``raws``: all before the first one not known saved.
            first_unsaved = todo[saved] if saved < len(todo) else len(raws)
            raise CopiesNotSaved(str(exc), first_unsaved) from exc

    def _in_sent(self, raw: bytes) -> bool:
        """Is this copy in Sent already? An APPEND cut off by a timeout (a server that
        hung for a while) may still have been carried out when the server came back:
        saving it again would show the owner every such message twice."""
        m = _MESSAGE_ID.search(raw.split(b"\r\n\r\n", 1)[0])
        if m is None or self._sent is None:
            return False
        self.mailbox.select(self._sent)
        return self.mailbox.has_message_id(m.group(1).decode("ascii", "replace"))

    def mark_processed(self, refs: Sequence[str]) -> None:
        """Add the configured keyword; a server without custom keywords only gets a warning.

        Refs of another UIDVALIDITY name other messages now, so they are left alone.
        """
        keyword = self.cfg.processed_keyword
        if not keyword or not refs:
            return
        try:
            state = self.mailbox.select(self.cfg.inbox, writable=True)
            uids = [p[1] for p in map(_position, refs) if p and p[0] == state.uidvalidity]
            self.mailbox.add_keyword(uids, keyword)
        except TransientError as exc:
            log.warning("could not set the keyword %s on processed mail: %s", keyword, exc)

    # -- waiting --------------------------------------------------------------------------
    def refresh(self) -> None:
        self.mailbox.noop()

    def heard_ago(self) -> float | None:
        mailbox = self.mailbox
        if mailbox.client is None or not mailbox.heard:
            return None
        return max(0.0, time.monotonic() - mailbox.heard)

    def wait(self, seconds: float, interrupted: Callable[[], bool]) -> bool:
        """IDLE (or sleep, when polling) until new mail, ``interrupted()``, or the deadline.

        The deadline is also capped by ``idle_renew_seconds`` (IDLE is re-issued well
        inside RFC 2177's 29 minutes) or ``poll_seconds``. Without IDLE the answer at the
        end is True: a poll is due. Slices of at most :data:`SLICE` keep a stop prompt.
        While IDLE-ing, a server silent for ``liveness`` seconds gets a DONE + NOOP (one
        a minute at most): a dead connection raises :class:`TransientError` within
        ``liveness`` + :data:`PROBE_TIMEOUT` seconds of the last sign of life.
        """
        cfg = self.cfg
        cap = cfg.idle_renew_seconds if self._idle else cfg.poll_seconds
        span = min(seconds, cap) if seconds > 0 else 0.0  # also NaN: no wait at all
        deadline = time.monotonic() + span
        if not self._idle:
            while not interrupted() and (left := deadline - time.monotonic()) > 0:
                time.sleep(min(SLICE, left))
            return True
        # Mail that arrived since the last read shows in SELECT, not in IDLE.
        mailbox = self.mailbox
        state = mailbox.select(cfg.inbox)
        at = self._inbox_at
        if at is not None and (
            at[0] != state.uidvalidity or (state.uidnext and state.uidnext - 1 > at[1])
        ):
            return True
        probe_timeout = min(PROBE_TIMEOUT, cfg.timeout)
        suspects = 0
        while not interrupted() and (left := deadline - time.monotonic()) > 0:
            quiet = time.monotonic() - mailbox.heard
            if quiet >= self.liveness:
                if mailbox.probe(probe_timeout):
                    return True
                continue
            got = mailbox.idle_wait(min(SLICE, left, self.liveness - quiet))
            if got is None:  # woken without a response: closed? the probe raises if so
                suspects += 1
                if suspects > MAX_SUSPECT_WAKEUPS:
                    mailbox.broken = True
                    raise TransientError("IMAP idle: the connection wakes up but says nothing")
                if mailbox.probe(probe_timeout):
                    return True
            elif got:
                return True
        return False
