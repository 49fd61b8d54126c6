"""The mailbox as a plain Python object: the twin of the IMAP adapter.

Tests of the core and the daemon drive it instead of a server: deliver a message, flag
it, expunge it, renumber the folder, all in microseconds and with a fixed clock (the
SMTP twin is :mod:`~inboxwatch.adapters.memory_sender`). ``tests/contract/`` holds it to
the same behaviour as the real adapter, so what passes here means the same with Dovecot:
refs are ``"UIDVALIDITY:UID"`` and cursors ``"UIDVALIDITY:UID:MARK"`` (an arrival-time
high-water mark, POSIX seconds) with the same first-start, look-back, renumbering and gap
rules as :class:`~inboxwatch.adapters.imap_source.ImapSource`; arrival times count in whole
seconds, as IMAP's INTERNALDATE does.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.parser import BytesHeaderParser

from inboxwatch.adapters import backlog
from inboxwatch.adapters.ports import Batch, CopiesNotSaved, Fetched, Stream
from inboxwatch.errors import TransientError

log = logging.getLogger("inboxwatch.memory")
#: As for IMAP: after a renumbering, mail this recent (or the look-back) is looked at again
#: and what arrived after the cursor's mark returned.
RESYNC_WINDOW = timedelta(days=2)
_validities = itertools.count(1000)  # every folder and renumbering gets a new UIDVALIDITY


def _position(ref: str | None) -> tuple[int, int] | None:
    """As IMAP's: None for no ref, UIDVALIDITY -1 (no folder has it) for a garbled one."""
    if not ref:
        return None
    validity, _, uid = ref.partition(":")
    try:
        return int(validity), int(uid)
    except ValueError:
        return -1, 0


def _cursor_done(text: str | None) -> tuple[int, int, int | None, tuple[int, ...]] | None:
    """As IMAP's ``parse_cursor``: (UIDVALIDITY, UID, mark, UIDs read above the position
    (:mod:`.backlog`)), the mark None for an old ``"V:U"`` cursor; a garbled one is
    UIDVALIDITY -1 (a renumbering)."""
    if not text:
        return None
    parts = text.split(":")
    try:
        if len(parts) == 2:
            return int(parts[0]), int(parts[1]), None, ()
        if len(parts) in (3, 4):
            done = backlog.parse_done(parts[3]) if len(parts) == 4 else ()
            return int(parts[0]), int(parts[1]), int(parts[2]), done
    except ValueError:
        pass
    return -1, 0, None, ()


def _second(m: _Message) -> int:
    """Arrival in whole POSIX seconds, as IMAP's INTERNALDATE has it."""
    return math.floor(m.received.timestamp())


def _chunk(pending: list[_Message], limit: int) -> list[_Message]:
    """As IMAP's ``resync_chunk``: ``limit`` messages without splitting a second, or the
    whole of a second that holds more than ``limit``."""
    if len(pending) <= limit:
        return pending
    edge = _second(pending[limit])
    cut = limit
    while cut > 0 and _second(pending[cut - 1]) == edge:
        cut -= 1
    if cut == 0:
        cut = limit
        while cut < len(pending) and _second(pending[cut]) == edge:
            cut += 1
    return pending[:cut]


def _header(raw: bytes) -> bytes:
    """The header block with its blank line, as IMAP's ``BODY[HEADER]`` returns it."""
    for sep in (b"\r\n\r\n", b"\n\n"):
        head, found, _ = raw.partition(sep)
        if found:
            return head + sep
    return raw


@dataclass
class _Message:
    uid: int
    raw: bytes
    received: datetime
    flags: set[str] = field(default_factory=set)  # "\\Flagged", "\\Seen" and keywords


@dataclass
class _Folder:
    uidvalidity: int
    uidnext: int = 1
    messages: list[_Message] = field(default_factory=list)  # in UID order

    def add(self, raw: bytes, received: datetime, flags: set[str]) -> str:
        self.messages.append(_Message(self.uidnext, bytes(raw), received, flags))
        self.uidnext += 1
        return f"{self.uidvalidity}:{self.uidnext - 1}"

    def find(self, ref: str) -> _Message | None:
        at = _position(ref)
        if at is None or at[0] != self.uidvalidity:
            return None
        return next((m for m in self.messages if m.uid == at[1]), None)


class MemorySource:
    """A :class:`~inboxwatch.adapters.ports.MailSource` in memory, with handles for tests.

    ``received`` defaults to ``clock()`` (real time unless a test passes its own clock).
    ``fail_next`` is raised by the next call of a port method, once (a network fault,
    or :class:`~inboxwatch.adapters.ports.LoginFailed` for ``open``).
    """

    def __init__(
        self,
        *,
        sent: bool = True,
        processed_keyword: str = "",
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.processed_keyword = processed_keyword
        self.clock = clock or (lambda: datetime.now(UTC))
        self.folders: dict[Stream, _Folder] = {Stream.INBOX: _Folder(next(_validities))}
        if sent:
            self.folders[Stream.SENT] = _Folder(next(_validities))
        #: Copies saved in Sent by :meth:`save_sent`, in order.
        self.saved: list[bytes] = []
        self.fail_next: Exception | None = None
        self.is_open = False
        self.refreshes = 0
        self._inbox_at: tuple[int, int] | None = None
        self._seen_top: int | None = None  # as IMAP's: above it is new mail

    # -- handles for tests ----------------------------------------------------------------
    def deliver(
        self, raw: bytes, *, received: datetime | None = None, flagged: bool = False
    ) -> str:
        """A message arrives in the inbox; its ref."""
        return self._add(Stream.INBOX, raw, received, {"\\Flagged"} if flagged else set())

    def deliver_sent(
        self, raw: bytes, *, received: datetime | None = None, flagged: bool = False
    ) -> str:
        """A person's mail lands in Sent (written in a mail client); its ref."""
        flags = {"\\Seen", "\\Flagged"} if flagged else {"\\Seen"}
        return self._add(Stream.SENT, raw, received, flags)

    def flag(self, ref: str) -> None:
        self._message(ref).flags.add("\\Flagged")

    def flags(self, ref: str) -> frozenset[str]:
        """IMAP-style flags and keywords of a message (``\\Seen``, ``\\Flagged``, ...)."""
        return frozenset(self._message(ref).flags)

    def expunge(self, ref: str) -> None:
        for folder in self.folders.values():
            if (msg := folder.find(ref)) is not None:
                folder.messages.remove(msg)
                return
        raise KeyError(ref)

    def renumber(self, stream: Stream = Stream.INBOX) -> None:
        """What a server rebuilding its index does: a new UIDVALIDITY, every UID new."""
        old = self.folders[stream]
        new = _Folder(next(_validities))
        for msg in old.messages:
            new.add(msg.raw, msg.received, msg.flags)
        self.folders[stream] = new

    def find(self, message_id: str, stream: Stream = Stream.INBOX) -> list[str]:
        """Refs of the messages whose Message-ID header contains ``message_id``."""
        folder = self.folders.get(stream)
        if folder is None:
            return []
        return [
            f"{folder.uidvalidity}:{m.uid}"
            for m in folder.messages
            if message_id.lower() in _message_id(m.raw).lower()
        ]

    @property
    def keywords(self) -> dict[str, set[str]]:
        """Keywords (flags that are not system flags) by ref, for messages that have any."""
        out: dict[str, set[str]] = {}
        for folder in self.folders.values():
            for m in folder.messages:
                if words := {f for f in m.flags if not f.startswith("\\")}:
                    out[f"{folder.uidvalidity}:{m.uid}"] = words
        return out

    # -- the port -------------------------------------------------------------------------
    def open(self) -> None:
        self._check(opening=True)
        self.is_open = True
        self._seen_top = None  # as IMAP's: a new connection has seen nothing yet

    def close(self) -> None:
        self.is_open = False

    @property
    def has_sent(self) -> bool:
        return Stream.SENT in self.folders

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
        self._check()
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        folder = self.folders.get(stream)
        if folder is None:
            return Batch((), cursor or "", more=False)
        top = folder.uidnext - 1
        full = _cursor_done(cursor)
        if full is not None and full[0] != folder.uidvalidity:
            return self._resync(stream, folder, full[:3], now, lookback, limit, headers_only)
        done: tuple[int, ...] = ()
        if full is None:  # first start: nothing old unless a look-back is asked for
            pending = []
            if lookback > timedelta(0):
                since = (now - lookback).date()
                pending = [m for m in folder.messages if m.received.date() >= since]
            after = pending[0].uid - 1 if pending else top
            mark = self._newest(folder, after)  # the mail skipped on purpose
        else:
            done = full[3]
            pending = [m for m in folder.messages if m.uid > full[1] and m.uid not in done]
            after = full[1]
            mark = full[2] if full[2] is not None else self._newest(folder, full[1])
        uids = [m.uid for m in pending]
        seen = self._seen_top if stream is Stream.INBOX and full is not None else None
        picked, fresh = backlog.choose(uids, seen, limit, done)
        chosen = [m for m in pending if m.uid in set(picked)]
        if not fresh:  # as IMAP: the mark follows the backlog
            mark = max([mark, *(_second(m) - 1 for m in chosen)])
        last, done = backlog.advance(uids, picked, done, after, top)  # past expunged gaps
        if stream is Stream.INBOX:
            self._inbox_at = (folder.uidvalidity, last)
            self._seen_top = max([top, *uids])
        messages = self._fetched(folder, chosen, headers_only)
        cursor = f"{folder.uidvalidity}:{last}:{mark}{backlog.done_text(done)}"
        return Batch(messages, cursor, more=len(chosen) < len(pending))

    def _resync(
        self,
        stream: Stream,
        folder: _Folder,
        at: tuple[int, int, int | None],
        now: datetime,
        lookback: timedelta,
        limit: int,
        headers_only: bool,
    ) -> Batch:
        """As IMAP: only mail that arrived after the mark, by arrival; until the last of
        it is read, the cursor keeps the old numbering with the mark raised."""
        log.warning(
            "%s: UIDVALIDITY changed (%s -> %s): re-reading mail that arrived after %s",
            stream,
            at[0],
            folder.uidvalidity,
            "the last position" if at[2] is not None else "the re-sync window began",
        )
        since = (now - max(RESYNC_WINDOW, lookback)).date()
        floor = at[2] if at[2] is not None else -1
        pending = sorted(
            (m for m in folder.messages if m.received.date() >= since and _second(m) > floor),
            key=lambda m: (_second(m), m.uid),
        )
        chosen = _chunk(pending, limit)
        more = len(chosen) < len(pending)
        mark = max(floor, 0)
        if more:
            cursor = f"{at[0]}:{at[1]}:{max([mark, *(_second(m) for m in chosen)])}"
            position = (at[0], at[1])
        else:
            mark = max([mark, *(_second(m) - 1 for m in chosen)])
            last = max([folder.uidnext - 1, *(m.uid for m in chosen)])
            cursor, position = f"{folder.uidvalidity}:{last}:{mark}", (folder.uidvalidity, last)
        if stream is Stream.INBOX:
            self._inbox_at, self._seen_top = position, None
        return Batch(self._fetched(folder, chosen, headers_only), cursor, more)

    @staticmethod
    def _newest(folder: _Folder, last_uid: int) -> int:
        """The newest arrival (POSIX seconds) of the mail up to UID ``last_uid``; 0 for none."""
        return max((_second(m) for m in folder.messages if m.uid <= last_uid), default=0)

    @staticmethod
    def _fetched(
        folder: _Folder, chosen: list[_Message], headers_only: bool
    ) -> tuple[Fetched, ...]:
        return tuple(
            Fetched(
                ref=f"{folder.uidvalidity}:{m.uid}",
                received=m.received,
                flagged="\\Flagged" in m.flags,
                raw=_header(m.raw) if headers_only else m.raw,
            )
            for m in chosen
        )

    def flagged(self) -> frozenset[str]:
        self._check()
        inbox = self.folders[Stream.INBOX]
        return frozenset(
            f"{inbox.uidvalidity}:{m.uid}" for m in inbox.messages if "\\Flagged" in m.flags
        )

    def in_sent(self, message_id: str) -> bool:
        self._check()
        return bool(self.find(message_id, Stream.SENT))

    def save_sent(self, raws: Sequence[bytes], when: datetime) -> None:
        """All or none, as one MULTIAPPEND (a fault is injected before any is saved)."""
        try:
            self._check()
        except TransientError as exc:
            raise CopiesNotSaved(str(exc), 0) from exc
        if Stream.SENT in self.folders:
            for raw in raws:
                self.saved.append(bytes(raw))
                self._add(Stream.SENT, raw, when, {"\\Seen"})

    def mark_processed(self, refs: Sequence[str]) -> None:
        """As IMAP: only refs of the current numbering; a fault is a warning, not an error."""
        if not self.processed_keyword or not refs:
            return
        try:
            self._check()
        except TransientError as exc:
            log.warning("could not set the keyword %s: %s", self.processed_keyword, exc)
            return
        inbox = self.folders[Stream.INBOX]
        for ref in refs:
            if (msg := inbox.find(ref)) is not None:
                msg.flags.add(self.processed_keyword)

    def refresh(self) -> None:
        self._check()
        self.refreshes += 1

    def heard_ago(self) -> float | None:
        """Always just now while open (it answers at once)."""
        return 0.0 if self.is_open else None

    def wait(self, seconds: float, interrupted: Callable[[], bool]) -> bool:
        """True at once when inbox mail waits past the last read; else False, without
        sleeping (tests move a fixed clock instead of waiting)."""
        self._check()
        at, inbox = self._inbox_at, self.folders[Stream.INBOX]
        if at is None:
            return False
        return at[0] != inbox.uidvalidity or any(m.uid > at[1] for m in inbox.messages)

    # -- inside ---------------------------------------------------------------------------
    def _add(self, stream: Stream, raw: bytes, received: datetime | None, flags: set[str]) -> str:
        folder = self.folders.get(stream)
        if folder is None:
            raise KeyError(f"this source has no {stream} folder")
        when = received if received is not None else self.clock()
        return folder.add(raw, when if when.tzinfo else when.replace(tzinfo=UTC), flags)

    def _message(self, ref: str) -> _Message:
        for folder in self.folders.values():
            if (msg := folder.find(ref)) is not None:
                return msg
        raise KeyError(ref)

    def _check(self, opening: bool = False) -> None:
        if self.fail_next is not None:
            exc, self.fail_next = self.fail_next, None
            raise exc
        if not opening and not self.is_open:
            raise TransientError("not connected")


def _message_id(raw: bytes) -> str:
    """The Message-ID header as written (IMAP's HEADER search also matches a part of it)."""
    return str(BytesHeaderParser().parsebytes(_header(raw)).get("Message-ID", ""))
