"""What a test does with the private mail servers once they run, whoever started them.

The users and their passwords, delivering mail (LMTP) and reading or appending it
(IMAP) as a user, and waiting for what the SMTP stand-in captured. ``MailServers`` in
``devservers.py`` adds running the servers on top of this; keeping the two apart keeps
each readable on its own: this side only needs the ports, never the processes.
"""

from __future__ import annotations

import contextlib
import re
import secrets
import smtplib
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from inboxwatch.testing.inboxwatch_config import write_inboxwatch_config
from inboxwatch.testing.loopback import HOST
from inboxwatch.testing.smtp_capture import CapturedMail

_IO_TIMEOUT = 10.0


class MailAccess:
    """The mailboxes ``user@domain`` (random passwords) and the ports they are reached on.

    The ports are 0 (None for the TLS ones) until ``MailServers.start`` sets them.
    """

    imap_host: str = HOST

    def __init__(self, users: Sequence[str], domain: str) -> None:
        if not users:
            raise ValueError("at least one user is needed")
        for user in users:
            if not re.fullmatch(r"[A-Za-z0-9._+-]+(@[A-Za-z0-9.-]+)?", user):
                raise ValueError(
                    f"user {user!r}: use a local part (letters, digits, ._+-), optionally "
                    "with @domain for a mailbox in another domain"
                )
        self.users: tuple[str, ...] = tuple(dict.fromkeys(users))
        self.domain = domain
        self._passwords = {self.address(u).lower(): secrets.token_hex(8) for u in self.users}
        self.imap_port = 0
        self.lmtp_port = 0
        self.smtp_port = 0
        self.imaps_port: int | None = None
        self.smtps_port: int | None = None
        self.cafile: Path | None = None
        self.smtp_sent: list[CapturedMail] = []
        self._smtp_cond = threading.Condition()

    # ------------------------------------------------------------------- users

    def address(self, user: str) -> str:
        """``user@domain`` for a local part (an address is returned as it is)."""
        return user if "@" in user else f"{user}@{self.domain}"

    def password(self, user: str) -> str:
        """The password of a user (local part or address)."""
        address = self.address(user).lower()
        if address not in self._passwords:
            raise KeyError(f"unknown user {user!r}; known: {', '.join(self.users)}")
        return self._passwords[address]

    def is_local(self, address: str) -> bool:
        """True for ``known-user@domain`` (what the SMTP stand-in delivers into Dovecot)."""
        return address.strip().strip("<>").lower() in self._passwords

    def check_login(self, login: str, password: str) -> bool:
        """SMTP AUTH check: a known user's address or local part with its password."""
        try:
            expected = self.password(login)
        except KeyError:
            return False
        return secrets.compare_digest(expected.encode(), password.encode())

    def inboxwatch_config(
        self,
        user: str,
        folder: Path,
        *,
        rules: Path,
        templates: Path,
        owner: str = "owner",
        team: Sequence[str] = ("team",),
        tls: bool = False,
        extra: str = "",
        imap_extra: str = "",
        timezone: str = "UTC",
    ) -> Path:
        """Write a config.toml (and password files) that points inboxwatch at this user."""
        return write_inboxwatch_config(
            self,
            user,
            folder,
            rules=rules,
            templates=templates,
            owner=owner,
            team=team,
            tls=tls,
            extra=extra,
            imap_extra=imap_extra,
            timezone=timezone,
        )

    # -------------------------------------------------------------------- mail

    def deliver(self, rcpt: str, raw: bytes, sender: str = "") -> None:
        """Deliver raw bytes into a user's INBOX over LMTP, as an MTA would."""
        with smtplib.LMTP(
            HOST, self.lmtp_port, local_hostname="localhost", timeout=_IO_TIMEOUT
        ) as lmtp:
            lmtp.sendmail(sender, [self.address(rcpt)], raw)

    def imap_client(self, user: str | None = None, *, tls: bool = False) -> Any:
        """A connected IMAPClient (logged in as user, if given); the caller logs out.

        ``tls=True`` uses the IMAPS port and trusts ``cafile``.
        """
        from imapclient import IMAPClient

        if tls:
            if self.imaps_port is None:
                raise RuntimeError("MailServers was made without tls=True")
            client = IMAPClient(
                HOST,
                self.imaps_port,
                ssl=True,
                ssl_context=self.client_ssl_context(),
                timeout=_IO_TIMEOUT,
            )
        else:
            client = IMAPClient(HOST, self.imap_port, ssl=False, timeout=_IO_TIMEOUT)
        if user is not None:
            try:
                client.login(self.address(user), self.password(user))
            except BaseException:
                client.shutdown()
                raise
        return client

    @contextlib.contextmanager
    def _imap(self, user: str) -> Iterator[Any]:
        client = self.imap_client(user)
        try:
            yield client
        finally:
            with contextlib.suppress(Exception):
                client.logout()

    def client_ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts our self-signed certificate."""
        if self.cafile is None:
            raise RuntimeError("MailServers was made without tls=True")
        return ssl.create_default_context(cafile=str(self.cafile))

    def append(
        self,
        user: str,
        folder: str,
        raw: bytes,
        flags: Sequence[str] = (),
        when: datetime | None = None,
    ) -> int:
        """IMAP APPEND as the user (creating the folder if needed); returns the new UID."""
        with self._imap(user) as client:
            if not client.folder_exists(folder):
                client.create_folder(folder)
            response = client.append(folder, raw, flags=tuple(flags), msg_time=when)
            text = (
                response.decode("ascii", "replace")
                if isinstance(response, bytes)
                else str(response)
            )
            match = re.search(r"\[APPENDUID \d+ (\d+)\]", text)
            if match:
                return int(match.group(1))
            client.select_folder(folder, readonly=True)  # no UIDPLUS: the newest UID
            uids = [int(u) for u in client.search("ALL")]
            return max(uids) if uids else 0

    @staticmethod
    def _fetch_raw(client: Any) -> list[bytes]:
        uids = sorted(int(u) for u in client.search("ALL"))
        if not uids:
            return []
        response = client.fetch(uids, ["BODY.PEEK[]"])
        return [bytes(response[u][b"BODY[]"]) for u in uids if u in response]

    def fetch_all(self, user: str, folder: str = "INBOX") -> list[bytes]:
        """Raw messages of a folder, oldest (lowest UID) first, without setting \\Seen."""
        with self._imap(user) as client:
            client.select_folder(folder, readonly=True)
            return self._fetch_raw(client)

    def wait_for(
        self, user: str, count: int, folder: str = "INBOX", timeout: float = 5.0
    ) -> list[bytes]:
        """Poll until the folder holds at least count messages, then return them all.

        A folder that does not exist yet counts as empty.
        """
        from imapclient.exceptions import IMAPClientError

        deadline = time.monotonic() + timeout
        seen = 0
        with self._imap(user) as client:
            selected = False
            while True:
                if not selected:
                    try:
                        client.select_folder(folder, readonly=True)
                        selected = True
                    except IMAPClientError:
                        selected = False
                if selected:
                    seen = len(client.search("ALL"))
                    if seen >= count:
                        return self._fetch_raw(client)
                if time.monotonic() >= deadline:
                    raise TimeoutError(
                        f"folder {folder!r} of {self.address(user)} has {seen} message(s)"
                        f"{'' if selected else ' (folder does not exist)'}, "
                        f"wanted >= {count} within {timeout} s"
                    )
                time.sleep(0.03)
                if selected:
                    client.noop()

    def record(self, mail: CapturedMail) -> None:
        """Add a message to smtp_sent and wake smtp_wait (called from the SMTP thread)."""
        with self._smtp_cond:
            self.smtp_sent.append(mail)
            self._smtp_cond.notify_all()

    def smtp_wait(
        self,
        count: int,
        timeout: float = 5.0,
        match: Callable[[CapturedMail], bool] | None = None,
    ) -> list[CapturedMail]:
        """Wait until smtp_sent holds at least count messages (that match, if given)."""
        deadline = time.monotonic() + timeout
        with self._smtp_cond:
            while True:
                found = [m for m in self.smtp_sent if match is None or match(m)]
                if len(found) >= count:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"SMTP stand-in received {len(found)} matching message(s), "
                        f"wanted >= {count} within {timeout} s"
                    )
                self._smtp_cond.wait(left)

    def smtp_clear(self) -> None:
        """Forget what the SMTP stand-in received so far."""
        with self._smtp_cond:
            self.smtp_sent.clear()
