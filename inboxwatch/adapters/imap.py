"""IMAP adapter (imapclient). Reads only: EXAMINE and ``BODY.PEEK[]``, so unread stays unread.

The only writes are an optional keyword on processed mail and APPENDing our own
messages to Sent. Connection problems surface as :class:`TransientError` so the daemon
reconnects with back-off.
"""

from __future__ import annotations

import contextlib
import imaplib
import logging
import socket
import ssl
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import imapclient
from imapclient.exceptions import IMAPClientError, LoginError
from imapclient.imapclient import SENT

from inboxwatch.adapters.smtp import tls_context
from inboxwatch.errors import InboxwatchError, TransientError
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


class LoginFailed(InboxwatchError):
    """Wrong credentials are not transient: say so and stop rather than hammer the server."""


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
