"""IMAP adapter (imapclient). Reads only: EXAMINE and ``BODY.PEEK[]``, so unread stays unread.

The only writes are an optional keyword on processed mail and APPENDing our own
messages to Sent. Connection problems surface as :class:`TransientError` so the daemon
reconnects with back-off; a bad login as :class:`~inboxwatch.adapters.ports.LoginFailed`
(one class for every mail source, so the daemon need not know which one it runs).
:class:`Mailbox` is the connection and its commands; ``ImapSource``
(:mod:`inboxwatch.adapters.imap_source`), built on it, is the daemon's mail source.

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
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import imapclient
from imapclient.exceptions import IMAPClientError, LoginError
from imapclient.imapclient import SENT
from imapclient.imapclient import _parse_untagged_response as _parse_untagged

from inboxwatch.adapters.oauth import Credential, OAuth2Login
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
#: One MULTIAPPEND carries at most this many messages or (beyond its first) bytes.
APPEND_BATCH, APPEND_BATCH_BYTES = 100, 4_000_000
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


def seconds_of(t: datetime) -> int:
    """POSIX seconds of an arrival time: INTERNALDATE has whole seconds, so nothing is lost."""
    return math.floor(t.timestamp())


def _news(responses: Iterable[Any]) -> bool:
    """Did the server report a change (EXISTS, EXPUNGE, FETCH...), not just its status?"""
    for r in responses:
        head = r[0] if isinstance(r, tuple) and r else r
        if not (isinstance(head, bytes) and head.upper() in _STATUS):
            return True
    return False


#: Lines read from the buffer at once, at most (a server cannot keep us here).
MAX_BUFFERED_LINES = 100


def buffered_lines(file: Any, sock: Any) -> list[bytes]:
    """Complete lines the client has already received but not read (never blocks).

    A server may send its first IDLE notice in the same packet as "+ idling": imaplib
    reads the "+" line and keeps the rest in its buffer (or, over TLS, the SSL layer
    keeps it), where polling the socket cannot see it. Without this, new mail that came
    in that instant would wait for the next liveness check, a minute late.
    """
    lines: list[bytes] = []
    sock.setblocking(False)
    try:
        for _ in range(MAX_BUFFERED_LINES):
            try:  # the buffered bytes, or one non-blocking read (SSL may hold some)
                head = file.peek(1)
            except (BlockingIOError, ssl.SSLWantReadError, InterruptedError):
                head = b""
            if b"\n" not in head:
                break  # nothing, or a partial line: the rest comes with the next read
            lines.append(file.readline())
    finally:
        sock.setblocking(True)
    return lines


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
    """One IMAP connection; every method may raise :class:`TransientError`.

    ``password`` is the password, or an :class:`~inboxwatch.adapters.oauth.OAuth2Login`
    (``auth = "oauth2"``): then the login is SASL XOAUTH2 or OAUTHBEARER with its token.
    """

    def __init__(self, cfg: ImapConfig, password: Credential) -> None:
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
            try:
                if cfg.tls == "starttls":
                    client.starttls(ctx)
                self._login(client)
            except BaseException:  # a refused login or no token: leave no socket open
                with contextlib.suppress(Exception):
                    client.shutdown()
                raise
        self.client = client
        self.selected = ""
        self.idling = False
        self.broken = False
        self.heard = time.monotonic()
        log.info("connected to %s:%s as %s", cfg.host, cfg.port, cfg.username)

    def _login(self, client: imapclient.IMAPClient) -> None:
        """LOGIN with the password, or AUTHENTICATE with an OAuth2 token: a refused token
        is tried once more, fresh from the token command (:class:`LoginError` if that is
        refused too; a failing command raises its own TransientError)."""
        cred, user = self._password, self.cfg.username
        if not isinstance(cred, OAuth2Login):
            client.login(user, cred)
            return
        sasl = client.oauthbearer_login if cred.mechanism == "oauthbearer" else client.oauth2_login
        try:
            cred.login(lambda token: sasl(user, token), LoginError)
        except LoginError as exc:
            raise LoginError(f"{exc} (a fresh token from {cred.where} was refused too)") from None

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

    def has_multiappend(self) -> bool:
        """RFC 3502: many messages in one APPEND (Dovecot, Cyrus; not every server)."""
        with self._command("capabilities"):
            return b"MULTIAPPEND" in self.c.capabilities()

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

    def multiappend(self, folder: str, raws: Sequence[bytes], when: datetime) -> None:
        """One MULTIAPPEND (RFC 3502) of ``raws`` marked \\Seen: atomic, so a failure
        means none of them was saved. The caller keeps batches bounded (the command is
        held in memory whole): :func:`~inboxwatch.adapters.imap_source.append_batches`."""
        self._stop_idle()
        msgs = [{"msg": raw, "flags": (imapclient.SEEN,), "date": when} for raw in raws]
        with self._command(f"multiappend {len(raws)} to {folder}"):
            self.c.multiappend(folder, msgs)

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
        with self._command("idle", answered=False):
            early = self._buffered()
        if early:
            self.heard = time.monotonic()
            return _news(early)
        t0 = time.monotonic()
        with self._command("idle", answered=False):
            responses = self.c.idle_check(timeout=timeout)
        if responses:
            self.heard = time.monotonic()
            return _news(responses)
        # A poll only ends early when the socket is readable: a response, or its end.
        return None if time.monotonic() - t0 < timeout / 2 else False

    def _buffered(self) -> list[Any]:
        """Responses already received while the socket looks quiet (see buffered_lines)."""
        client = self.c
        imap = client._imap
        lines = buffered_lines(imap.file, client.socket())
        client._set_read_timeout()
        out: list[Any] = []
        for line in (raw.rstrip(b"\r\n") for raw in lines):
            # Anything but an untagged response in IDLE is odd: let the caller look.
            out.append(_parse_untagged(line) if line.startswith(b"* ") else (b"?", line))
        return out

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
