"""IMAP adapter (imapclient). Reads only: EXAMINE and ``BODY.PEEK[]``, so unread stays unread.

The only writes are an optional keyword on processed mail and APPENDing our own
messages to Sent. Connection problems surface as :class:`TransientError` so the daemon
reconnects with back-off; a bad login as :class:`~inboxwatch.adapters.ports.LoginFailed`
(one class for every mail source, so the daemon need not know which one it runs).
:class:`Mailbox` is the connection and its commands; :class:`ImapSource`, built on it, is
the daemon's :class:`~inboxwatch.adapters.ports.MailSource` (refs, cursors, IDLE).
"""

from __future__ import annotations

import contextlib
import imaplib
import logging
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
#: Errors that mean "the connection or server is in trouble": reconnect and retry.
NETWORK_ERRORS = (OSError, socket.timeout, ssl.SSLError, imaplib.IMAP4.abort, EOFError)


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


class Mailbox:
    """One IMAP connection; every method may raise :class:`TransientError`."""

    def __init__(self, cfg: ImapConfig, password: str) -> None:
        self.cfg = cfg
        self._password = password
        self.client: imapclient.IMAPClient | None = None
        self.selected: str = ""
        self.writable = False
        self.idling = False

    # -- connection -----------------------------------------------------------------------
    def connect(self) -> None:
        cfg = self.cfg
        with _translate(f"connect to {cfg.host}:{cfg.port}"):
            ctx = tls_context(cfg) if cfg.tls != "none" else None
            client = imapclient.IMAPClient(
                cfg.host, port=cfg.port, ssl=cfg.tls == "ssl", ssl_context=ctx, timeout=cfg.timeout
            )
            client.normalise_times = False  # keep INTERNALDATE's zone: aware datetimes
            if cfg.tls == "starttls":
                client.starttls(ctx)
            client.login(cfg.username, self._password)
        self.client = client
        self.selected = ""
        self.idling = False
        log.info("connected to %s:%s as %s", cfg.host, cfg.port, cfg.username)

    def close(self) -> None:
        client, self.client = self.client, None
        if client is None:
            return
        try:
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
        with _translate("capabilities"):
            return b"IDLE" in self.c.capabilities()

    # -- folders --------------------------------------------------------------------------
    def select(self, folder: str, writable: bool = False) -> FolderState:
        self._stop_idle()
        with _translate(f"select {folder}"):
            info = self.c.select_folder(folder, readonly=not writable)
        self.selected, self.writable = folder, writable
        return FolderState(int(info.get(b"UIDVALIDITY", 0)), int(info.get(b"UIDNEXT", 0) or 0))

    def sent_folder(self) -> str | None:
        """The configured Sent folder, else the one with the RFC 6154 ``\\Sent`` flag."""
        if self.cfg.sent:
            return self.cfg.sent
        with _translate("find Sent"):
            found = self.c.find_special_folder(SENT)
        return str(found) if found else None

    def uids_after(self, last_uid: int) -> list[int]:
        with _translate("search"):
            uids = self.c.search(["UID", f"{last_uid + 1}:*"])
        # "n:*" also returns the highest UID when n is past it (RFC 3501 §6.4.8).
        return sorted(u for u in uids if u > last_uid)

    def uids_since(self, day: date) -> list[int]:
        with _translate("search"):
            return sorted(self.c.search(["SINCE", day]))

    def has_message_id(self, message_id: str) -> bool:
        """Is a message with this Message-ID in the selected folder?"""
        with _translate("search message-id"):
            return bool(self.c.search(["HEADER", "Message-ID", message_id]))

    def flagged(self) -> set[int]:
        with _translate("search flagged"):
            return set(self.c.search(["FLAGGED"]))

    def fetch(self, uids: Sequence[int], header_only: bool = False) -> Iterator[Fetched]:
        """Messages in batches (one FETCH per batch, not per message); never marks them read."""
        part, key = (
            ("BODY.PEEK[HEADER]", b"BODY[HEADER]") if header_only else ("BODY.PEEK[]", b"BODY[]")
        )
        for start in range(0, len(uids), FETCH_BATCH):
            chunk = list(uids[start : start + FETCH_BATCH])
            with _translate("fetch"):
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
        with _translate("store keyword"):
            self.c.add_flags(uids, [keyword], silent=True)

    def append(self, folder: str, raw: bytes, when: datetime) -> None:
        self._stop_idle()
        with _translate(f"append to {folder}"):
            self.c.append(folder, raw, flags=(imapclient.SEEN,), msg_time=when)

    def noop(self) -> None:
        self._stop_idle()
        with _translate("noop"):
            self.c.noop()

    # -- push -----------------------------------------------------------------------------
    def idle_wait(self, seconds: float) -> bool:
        """IDLE on the selected folder for up to ``seconds``; True if the server said something.

        The caller re-issues IDLE at least every ``idle_renew_seconds``, well inside the
        29-minute limit of RFC 2177.
        """
        with _translate("idle"):
            if not self.idling:
                self.c.idle()
                self.idling = True
            responses = self.c.idle_check(timeout=max(0.05, seconds))
        return bool(responses)

    def _stop_idle(self) -> None:
        if self.idling and self.client is not None:
            self.idling = False
            with _translate("idle done"):
                self.client.idle_done()


# -- the daemon's mail source -----------------------------------------------------------------
#: After a renumbering, mail this recent is read again (the core recognises by Message-ID
#: what it already handled), or the look-back if that is longer.
RESYNC_WINDOW = timedelta(days=2)
#: The longest single IDLE or sleep slice: how soon ``interrupted()`` is noticed.
SLICE = 0.25


def _position(cursor: str | None) -> tuple[int, int] | None:
    """("UIDVALIDITY", "UID") of a cursor or ref; None for none (an empty one included).

    A cursor that cannot be read maps to UIDVALIDITY -1, which no folder has: it is
    treated as a renumbering (recent mail read again), never as a silent first start.
    """
    if not cursor:
        return None
    validity, _, uid = cursor.partition(":")
    try:
        return int(validity), int(uid)
    except ValueError:
        return -1, 0


class ImapSource:
    """The daemon's :class:`~inboxwatch.adapters.ports.MailSource` over one IMAP connection.

    Refs and cursors are ``"UIDVALIDITY:UID"``; nothing outside this class sees a UID.
    Inbox reads use ``BODY.PEEK[]`` on a folder opened with EXAMINE, so unread mail stays
    unread. Every method may raise :class:`TransientError`; ``open`` also
    :class:`LoginFailed`.
    """

    def __init__(self, cfg: ImapConfig, password: str) -> None:
        self.cfg = cfg
        self.mailbox = Mailbox(cfg, password)
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
        """At most ``limit`` messages after ``cursor``, oldest first (see the port)."""
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        folder = self.cfg.inbox if stream is Stream.INBOX else self._sent
        if folder is None:  # no Sent folder: nothing to read, the position stays
            return Batch((), cursor or "", more=False)
        state = self.mailbox.select(folder)
        uids, after, top = self._pending(folder, state, _position(cursor), now, lookback)
        chosen = uids[:limit]
        more = len(uids) > limit
        messages = tuple(
            PortFetched(
                ref=f"{state.uidvalidity}:{f.uid}",
                received=f.internaldate,
                flagged="\\Flagged" in f.flags,
                raw=f.raw,
            )
            for f in self.mailbox.fetch(chosen, header_only=headers_only)
        )
        last = chosen[-1] if chosen else after
        if not more:
            # Mail expunged before we saw it leaves a gap below the top: move past it, or
            # ``wait`` would find "new" mail that is not there and never sleep.
            last = max(last, top)
        if stream is Stream.INBOX:
            self._inbox_at = (state.uidvalidity, last)
        return Batch(messages, f"{state.uidvalidity}:{last}", more)

    def _pending(
        self,
        folder: str,
        state: FolderState,
        at: tuple[int, int] | None,
        now: datetime,
        lookback: timedelta,
    ) -> tuple[list[int], int, int]:
        """UIDs to read, the position before them, and the highest UID that exists now."""
        top = state.uidnext - 1 if state.uidnext else 0
        if at is None:
            # First start: nothing old unless a look-back is asked for.
            if not top:
                top = max(self.mailbox.uids_after(0), default=0)
            uids: list[int] = []
            if lookback > timedelta(0):
                uids = [u for u in self.mailbox.uids_since((now - lookback).date()) if u <= top]
            # Start just before the look-back, so a crash half-way through resumes it.
            start = uids[0] - 1 if uids else top
            log.info("%s: first start at position %s; look-back %s", folder, start, lookback)
            return uids, start, top
        if at[0] != state.uidvalidity:
            # The server renumbered the folder: look at recent mail again; the core
            # recognises what it already handled by Message-ID, so nothing is answered twice.
            log.warning(
                "%s: UIDVALIDITY changed (%s -> %s): re-syncing by Message-ID",
                folder,
                at[0],
                state.uidvalidity,
            )
            since = (now - max(RESYNC_WINDOW, lookback)).date()
            uids = self.mailbox.uids_since(since)
            return uids, (uids[0] - 1 if uids else top), top
        return self.mailbox.uids_after(at[1]), at[1], top

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
        state = self.mailbox.select(cfg.inbox)
        at = self._inbox_at
        if at is not None and (
            at[0] != state.uidvalidity or (state.uidnext and state.uidnext - 1 > at[1])
        ):
            return True
        while not interrupted() and (left := deadline - time.monotonic()) > 0:
            if self.mailbox.idle_wait(min(SLICE, left)):
                return True
        return False
