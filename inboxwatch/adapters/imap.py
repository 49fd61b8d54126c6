"""IMAP adapter (imapclient). Reads only: EXAMINE and ``BODY.PEEK[]``, so unread stays unread.

The only writes are an optional keyword on processed mail and APPENDing our own
messages to Sent. Connection problems surface as :class:`TransientError` so the daemon
reconnects with back-off; a bad login as :class:`~inboxwatch.adapters.ports.LoginFailed`
(one class for every mail source, so the daemon need not know which one it runs).
:class:`Mailbox` is the connection and its commands; :class:`ImapSource`, built on it, is
the daemon's :class:`~inboxwatch.adapters.ports.MailSource` (refs, cursors, IDLE).

A connection that NAT or a load balancer dropped silently (no FIN, no RST) is found in
two ways: TCP keepalive on the socket (:data:`KEEPALIVE`, which also keeps such a path
open), and, while IDLE-ing, a DONE + NOOP whenever the server has been silent for
:data:`LIVENESS` seconds, answered within :data:`PROBE_TIMEOUT` or the connection is
given up as :class:`TransientError` (the daemon reconnects).
"""

from __future__ import annotations

import contextlib
import imaplib
import logging
import math
import socket
import ssl
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import imapclient
from imapclient.exceptions import IMAPClientError, LoginError
from imapclient.imapclient import SENT

from inboxwatch.adapters.ports import Batch, Stream
from inboxwatch.adapters.ports import Fetched as PortFetched
from inboxwatch.adapters.ports import LoginFailed as LoginFailed
from inboxwatch.adapters.smtp import tls_context
from inboxwatch.errors import TransientError
from inboxwatch.userfiles.config import ImapConfig

log = logging.getLogger("inboxwatch.imap")
FETCH_BATCH = 200
#: INTERNALDATE alone is small: this many per FETCH.
DATES_BATCH = 1000
#: Errors that mean "the connection or server is in trouble": reconnect and retry.
NETWORK_ERRORS = (OSError, socket.timeout, ssl.SSLError, imaplib.IMAP4.abort, EOFError)
#: TCP keepalive: first probe after this many idle seconds, then every INTERVAL seconds,
#: given up after COUNT unanswered probes (~90 s). It also keeps NAT mappings and cloud
#: load balancers (AWS: 350 s) from forgetting an idle connection.
KEEPALIVE_IDLE, KEEPALIVE_INTERVAL, KEEPALIVE_COUNT = 60, 10, 3
KEEPALIVE = (KEEPALIVE_IDLE, KEEPALIVE_INTERVAL, KEEPALIVE_COUNT)
#: While IDLE-ing, a server silent this long (seconds) is asked for a sign of life.
LIVENESS = 60.0
#: How long that sign of life may take (capped by the configured ``timeout``).
PROBE_TIMEOUT = 10.0
#: Untagged status responses: a server's "* OK Still here" is life, not news.
_STATUS = frozenset({b"OK", b"NO", b"BAD"})


@dataclass(frozen=True)
class Fetched:
    uid: int
    internaldate: datetime
    flags: tuple[str, ...]
    raw: bytes


@dataclass(frozen=True)
class FolderState:
    uidvalidity: int
    uidnext: int


@contextmanager
def _translate(what: str) -> Iterator[None]:
    try:
        yield
    except LoginError as exc:
        raise LoginFailed(f"IMAP login failed: {exc}") from None
    except NETWORK_ERRORS as exc:
        raise TransientError(f"IMAP {what}: {type(exc).__name__}: {exc}") from exc
    except IMAPClientError as exc:
        raise TransientError(f"IMAP {what}: {exc}") from exc


def _aware(t: Any) -> datetime:
    if isinstance(t, datetime):
        return t if t.tzinfo else t.replace(tzinfo=UTC)
    return datetime.now(UTC)


def _seconds(t: datetime) -> int:
    """POSIX seconds of an arrival time: INTERNALDATE has whole seconds, so nothing is lost."""
    return math.floor(t.timestamp())


def _news(responses: Iterable[Any]) -> bool:
    """Did the server report a change (EXISTS, EXPUNGE, FETCH...), not just its status?"""
    for r in responses:
        head = r[0] if isinstance(r, tuple) and r else r
        if not (isinstance(head, bytes) and head.upper() in _STATUS):
            return True
    return False


def keepalive(sock: Any) -> None:
    """TCP keepalive on ``sock`` with :data:`KEEPALIVE`'s timing where the platform allows
    it (Linux, BSD; macOS calls the idle time ``TCP_KEEPALIVE``); never raises."""
    with contextlib.suppress(OSError, AttributeError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    idle = getattr(socket, "TCP_KEEPIDLE", None) or getattr(socket, "TCP_KEEPALIVE", None)
    options = zip(
        (idle, getattr(socket, "TCP_KEEPINTVL", None), getattr(socket, "TCP_KEEPCNT", None)),
        KEEPALIVE,
        strict=True,
    )
    for option, value in options:
        if option is not None:
            with contextlib.suppress(OSError, AttributeError):
                sock.setsockopt(socket.IPPROTO_TCP, option, value)


class Mailbox:
    """One IMAP connection; every method may raise :class:`TransientError`."""

    def __init__(self, cfg: ImapConfig, password: str) -> None:
        self.cfg = cfg
        self._password = password
        self.client: imapclient.IMAPClient | None = None
        self.selected: str = ""
        self.writable = False
        self.idling = False
        #: ``time.monotonic()`` when the server last answered or said anything.
        self.heard = 0.0
        #: A network error broke the connection: closing it must not wait for a LOGOUT.
        self.broken = False

    @contextmanager
    def _command(self, what: str, answered: bool = True) -> Iterator[None]:
        """:func:`_translate`, noting that the server ``answered`` (or that the link broke)."""
        try:
            with _translate(what):
                yield
        except TransientError as exc:
            if isinstance(exc.__cause__, NETWORK_ERRORS):
                self.broken = True
            raise
        if answered:
            self.heard = time.monotonic()

    # -- connection -----------------------------------------------------------------------
    def connect(self) -> None:
        cfg = self.cfg
        with _translate(f"connect to {cfg.host}:{cfg.port}"):
            ctx = tls_context(cfg) if cfg.tls != "none" else None
            client = imapclient.IMAPClient(
                cfg.host, port=cfg.port, ssl=cfg.tls == "ssl", ssl_context=ctx, timeout=cfg.timeout
            )
            keepalive(client.socket())
            client.normalise_times = False  # keep INTERNALDATE's zone: aware datetimes
            if cfg.tls == "starttls":
                client.starttls(ctx)
            client.login(cfg.username, self._password)
        self.client = client
        self.selected = ""
        self.idling = False
        self.broken = False
        self.heard = time.monotonic()
        log.info("connected to %s:%s as %s", cfg.host, cfg.port, cfg.username)

    def close(self) -> None:
        client, self.client = self.client, None
        if client is None:
            return
        try:
            if self.broken:  # a LOGOUT on a dead connection would only wait for its timeout
                client.shutdown()
            else:
                if self.idling:
                    client.idle_done()
                client.logout()
        except Exception:  # closing a broken connection: nothing useful to report
            with contextlib.suppress(Exception):
                client.shutdown()
        self.idling = False

    @property
    def c(self) -> imapclient.IMAPClient:
        if self.client is None:
            raise TransientError("not connected")
        return self.client

    def has_idle(self) -> bool:
        with self._command("capabilities"):
            return b"IDLE" in self.c.capabilities()

    # -- folders --------------------------------------------------------------------------
    def select(self, folder: str, writable: bool = False) -> FolderState:
        self._stop_idle()
        with self._command(f"select {folder}"):
            info = self.c.select_folder(folder, readonly=not writable)
        self.selected, self.writable = folder, writable
        return FolderState(int(info.get(b"UIDVALIDITY", 0)), int(info.get(b"UIDNEXT", 0) or 0))

    def sent_folder(self) -> str | None:
        """The configured Sent folder, else the one with the RFC 6154 ``\\Sent`` flag."""
        if self.cfg.sent:
            return self.cfg.sent
        with self._command("find Sent"):
            found = self.c.find_special_folder(SENT)
        return str(found) if found else None

    def uids_after(self, last_uid: int) -> list[int]:
        with self._command("search"):
            uids = self.c.search(["UID", f"{last_uid + 1}:*"])
        # "n:*" also returns the highest UID when n is past it (RFC 3501 §6.4.8).
        return sorted(u for u in uids if u > last_uid)

    def uids_since(self, day: date) -> list[int]:
        with self._command("search"):
            return sorted(self.c.search(["SINCE", day]))

    def uids_upto(self, last_uid: int, since: date | None = None) -> list[int]:
        """UIDs up to ``last_uid`` (only those that arrived on or after ``since``, if given)."""
        if last_uid < 1:
            return []
        criteria: list[Any] = ["UID", f"1:{last_uid}"]
        if since is not None:
            criteria += ["SINCE", since]
        with self._command("search"):
            return sorted(u for u in self.c.search(criteria) if u <= last_uid)

    def has_message_id(self, message_id: str) -> bool:
        """Is a message with this Message-ID in the selected folder?"""
        with self._command("search message-id"):
            return bool(self.c.search(["HEADER", "Message-ID", message_id]))

    def flagged(self) -> set[int]:
        with self._command("search flagged"):
            return set(self.c.search(["FLAGGED"]))

    def dates(self, uids: Sequence[int]) -> dict[int, datetime]:
        """INTERNALDATE by UID (expunged messages are missing), a few FETCHes in all."""
        out: dict[int, datetime] = {}
        for start in range(0, len(uids), DATES_BATCH):
            chunk = list(uids[start : start + DATES_BATCH])
            with self._command("fetch dates"):
                data = self.c.fetch(chunk, ["INTERNALDATE"])
            for uid in chunk:
                if (item := data.get(uid)) is not None:
                    out[uid] = _aware(item.get(b"INTERNALDATE"))
        return out

    def fetch(self, uids: Sequence[int], header_only: bool = False) -> Iterator[Fetched]:
        """Messages in batches (one FETCH per batch, not per message); never marks them read."""
        part, key = (
            ("BODY.PEEK[HEADER]", b"BODY[HEADER]") if header_only else ("BODY.PEEK[]", b"BODY[]")
        )
        for start in range(0, len(uids), FETCH_BATCH):
            chunk = list(uids[start : start + FETCH_BATCH])
            with self._command("fetch"):
                data = self.c.fetch(chunk, [part, "INTERNALDATE", "FLAGS"])
            for uid in chunk:
                item = data.get(uid)
                if item is None:  # expunged meanwhile
                    continue
                raw = item.get(key) or b""
                flags = tuple(
                    f.decode() if isinstance(f, bytes) else str(f) for f in item.get(b"FLAGS", ())
                )
                yield Fetched(uid, _aware(item.get(b"INTERNALDATE")), flags, bytes(raw))

    def add_keyword(self, uids: Iterable[int], keyword: str) -> None:
        uids = list(uids)
        if not uids or not keyword:
            return
        if not self.writable:
            self.select(self.selected, writable=True)
        with self._command("store keyword"):
            self.c.add_flags(uids, [keyword], silent=True)

    def append(self, folder: str, raw: bytes, when: datetime) -> None:
        self._stop_idle()
        with self._command(f"append to {folder}"):
            self.c.append(folder, raw, flags=(imapclient.SEEN,), msg_time=when)

    def noop(self) -> None:
        self._stop_idle()
        with self._command("noop"):
            self.c.noop()

    # -- push -----------------------------------------------------------------------------
    def idle_wait(self, seconds: float) -> bool | None:
        """IDLE on the selected folder for up to ``seconds``: True if the server reported a
        change, False if it reported none, None if the socket woke up but no response
        came (the server closed the connection, most likely: :meth:`probe` finds out).

        The caller re-issues IDLE at least every ``idle_renew_seconds``, well inside the
        29-minute limit of RFC 2177.
        """
        timeout = max(0.05, seconds)
        if not self.idling:
            with self._command("idle"):  # "+ idling" is an answer
                self.c.idle()
            self.idling = True
        t0 = time.monotonic()
        with self._command("idle", answered=False):
            responses = self.c.idle_check(timeout=timeout)
        if responses:
            self.heard = time.monotonic()
            return _news(responses)
        # A poll only ends early when the socket is readable: a response, or its end.
        return None if time.monotonic() - t0 < timeout / 2 else False

    def probe(self, timeout: float) -> bool:
        """End IDLE and NOOP, each answered within ``timeout`` seconds or the connection
        is given up (:class:`TransientError`); True if the server reported a change."""
        client = self.c
        news = False
        with self._command("liveness check"):
            sock = client.socket()
            sock.settimeout(timeout)
            try:
                if self.idling:
                    self.idling = False
                    _, responses = client.idle_done()
                    news = _news(responses)
                _, responses = client.noop()
                news = news or _news(responses)
            finally:
                sock.settimeout(self.cfg.timeout)
        return news

    def _stop_idle(self) -> None:
        if self.idling and self.client is not None:
            self.idling = False
            with self._command("idle done"):
                self.client.idle_done()


# -- the daemon's mail source -----------------------------------------------------------------
#: After a renumbering, mail this recent is looked at again (or the look-back if that is
#: longer); only what arrived after the cursor's arrival mark is returned.
RESYNC_WINDOW = timedelta(days=2)
#: The longest single IDLE or sleep slice: how soon ``interrupted()`` is noticed.
SLICE = 0.25
#: Early wake-ups without a response tolerated in one ``wait`` before reconnecting.
MAX_SUSPECT_WAKEUPS = 3


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

    def __str__(self) -> str:
        return f"{self.validity}:{self.uid}:{self.mark or 0}"


def parse_cursor(text: str | None) -> Cursor | None:
    """None for no cursor; an unreadable one is UIDVALIDITY -1 (which no folder has): a
    renumbering, recent mail read again, never a silent first start."""
    if not text:
        return None
    parts = text.split(":")
    with contextlib.suppress(ValueError):
        if len(parts) == 2:  # before arrival marks
            return Cursor(int(parts[0]), int(parts[1]), None)
        if len(parts) == 3:
            return Cursor(int(parts[0]), int(parts[1]), int(parts[2]))
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

    def __init__(self, cfg: ImapConfig, password: str, *, liveness: float = LIVENESS) -> None:
        self.cfg = cfg
        self.mailbox = Mailbox(cfg, password)
        self.liveness = liveness
        self._sent: str | None = None
        self._idle = False
        #: The inbox position the last inbox read returned: ``wait`` compares UIDNEXT
        #: with it, because mail that arrived before IDLE began is not announced by IDLE.
        self._inbox_at: tuple[int, int] | None = None

    # -- connection -----------------------------------------------------------------------
    def open(self) -> None:
        """Connect and log in; find out about IDLE and the Sent folder (once per connection)."""
        self.mailbox.close()  # a reconnect: never leave the old connection behind
        self.mailbox.connect()
        self._idle = self.cfg.idle and self.mailbox.has_idle()
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
        if at is None:
            uids, after, top = self._first_start(folder, top, now, lookback)
            mark = self._newest(after, now)  # the mail skipped on purpose
        else:
            uids, after = self.mailbox.uids_after(at.uid), at.uid
            mark = at.mark if at.mark is not None else self._newest(at.uid, now)
        chosen = uids[:limit]
        more = len(uids) > limit
        messages = self._fetch(state, chosen, headers_only)
        mark = max([mark, *(_seconds(m.received) - 1 for m in messages)])
        last = chosen[-1] if chosen else after
        if not more:
            # Mail expunged before we saw it leaves a gap below the top: move past it, or
            # ``wait`` would find "new" mail that is not there and never sleep.
            last = max(last, top)
        if stream is Stream.INBOX:
            self._inbox_at = (state.uidvalidity, last)
        return Batch(messages, str(Cursor(state.uidvalidity, last, mark)), more)

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
        seconds = {uid: _seconds(t) for uid, t in dates.items()}
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
            mark = max([mark, *(_seconds(m.received) - 1 for m in messages)])
            last = max([top, *chosen])
            cursor, position = Cursor(state.uidvalidity, last, mark), (state.uidvalidity, last)
        if stream is Stream.INBOX:
            self._inbox_at = position
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
        return max((_seconds(t) for t in self.mailbox.dates(uids).values()), default=0)

    def flagged(self) -> frozenset[str]:
        state = self.mailbox.select(self.cfg.inbox)
        return frozenset(f"{state.uidvalidity}:{uid}" for uid in self.mailbox.flagged())

    def in_sent(self, message_id: str) -> bool:
        if self._sent is None:
            return False
        self.mailbox.select(self._sent)
        return self.mailbox.has_message_id(message_id)

    # -- the two writes -------------------------------------------------------------------
    def save_sent(self, raw: bytes, when: datetime) -> None:
        """APPEND a copy marked \\Seen; without a Sent folder there is nowhere to keep it."""
        if self._sent is not None:
            self.mailbox.append(self._sent, raw, when)

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
