"""The SMTP stand-in for the outgoing MTA: an aiosmtpd server that records every message.

Mail for our own test users is handed on to Dovecot over LMTP before the 250 reply, so
a test lead can read our replies over IMAP as soon as sending returned; every message,
local or not, is recorded as a ``CapturedMail`` (bytes untouched, plus who logged in
with AUTH). Where the mail goes and who may log in is asked of the owner (the
``MailServers`` facade) through the small ``LocalMailboxes`` protocol.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import smtplib
import ssl
import time
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

from inboxwatch.testing.loopback import HOST, free_port

_START_TRIES = 5
# An LMTP hand-off from the SMTP stand-in is retried this long, so that mail sent while
# restart_imap() runs (about 1.2 s) is delivered late instead of refused.
_LMTP_RETRY_FOR = 8.0


@dataclasses.dataclass(frozen=True)
class CapturedMail:
    """One message as the SMTP stand-in received it (bytes untouched)."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    at: float
    auth_login: str | None = None  # who logged in with AUTH, None if nobody did


class LocalMailboxes(Protocol):
    """What the SMTP stand-in needs from its owner (held weakly, so the owner can go)."""

    def is_local(self, address: str) -> bool: ...

    def deliver(self, rcpt: str, raw: bytes, sender: str = "") -> None: ...

    def record(self, mail: CapturedMail) -> None: ...

    def check_login(self, login: str, password: str) -> bool: ...


def start_smtp(
    owner: LocalMailboxes,
    *,
    domain: str,
    tls_files: tuple[Path, Path] | None = None,
    pick_port: Callable[[], int] = free_port,
) -> Iterator[tuple[str, int, Any]]:
    """Start the stand-in on a free port, retrying on a clash; yield (name, port, controller).

    Yields ``"smtp"`` (with STARTTLS when tls_files (cert, key) are given), then with
    tls_files ``"smtps"`` (implicit TLS). Each is yielded as soon as it runs, so the
    caller can register it for stopping before the next one is started.
    """
    from aiosmtpd.controller import Controller

    _quiet_aiosmtpd()
    tls_context = None
    if tls_files is not None:
        tls_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls_context.load_cert_chain(*tls_files)
    handler = _SmtpHandler(owner)
    common: dict[str, Any] = {
        "server_hostname": f"mx.{domain}",
        "auth_required": False,
        "auth_require_tls": False,
        "authenticator": _authenticator(owner),
        "ready_timeout": 5.0,
    }
    variants: list[tuple[str, dict[str, Any]]] = [("smtp", {"tls_context": tls_context})]
    if tls_context is not None:
        variants.append(("smtps", {"ssl_context": tls_context}))
    for name, extra in variants:
        options = {**common, **extra}

        def make(port: int, options: dict[str, Any] = options) -> Any:
            return Controller(handler, hostname=HOST, port=port, **options)

        controller, port = start_controller(make, pick_port)
        yield name, port, controller


def start_controller(
    make: Callable[[int], Any], pick_port: Callable[[], int] = free_port
) -> tuple[Any, int]:
    """Start an aiosmtpd controller ``make(port)`` on a free port, trying another port
    when the one picked was taken meanwhile; (controller, port)."""
    for attempt in range(_START_TRIES):
        port = pick_port()
        controller = make(port)
        try:
            controller.start()
        except OSError:
            with contextlib.suppress(Exception):
                controller.stop(no_assert=True)
            if attempt == _START_TRIES - 1:
                raise
            continue
        return controller, port
    raise RuntimeError("unreachable")


class _QuietLoginData(logging.Filter):
    """aiosmtpd 1.4 warns about its own deprecated Session.login_data on every AUTH."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "login_data is deprecated" not in record.getMessage()


def _quiet_aiosmtpd() -> None:
    logger = logging.getLogger("mail.log")
    if not any(isinstance(f, _QuietLoginData) for f in logger.filters):
        logger.addFilter(_QuietLoginData())


class _SmtpHandler:
    """aiosmtpd handler: record everything, hand local recipients to Dovecot via LMTP."""

    def __init__(self, servers: LocalMailboxes) -> None:
        self._servers = weakref.proxy(servers)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        """Deliver local recipients first, so a 250 means the mail is in their INBOX."""
        data = envelope.original_content or envelope.content or b""
        if isinstance(data, str):
            data = data.encode("utf-8", "surrogateescape")
        mail_from = str(envelope.mail_from or "")
        rcpts = tuple(str(r) for r in envelope.rcpt_tos)
        login = None
        auth = getattr(session, "auth_data", None)
        if session.authenticated and auth is not None and hasattr(auth, "login"):
            login = bytes(auth.login).decode("utf-8", "replace")
        servers = self._servers
        local = [r for r in rcpts if servers.is_local(r)]
        deadline = time.monotonic() + _LMTP_RETRY_FOR
        pending = list(local)
        while pending:
            rcpt = pending[0]
            try:
                # In a thread: concurrent SMTP sessions must not wait for each other.
                await asyncio.to_thread(servers.deliver, rcpt, data, mail_from)
            except (OSError, smtplib.SMTPException) as exc:
                if isinstance(exc, smtplib.SMTPResponseException) and exc.smtp_code >= 500:
                    return f"554 5.3.0 local delivery to {rcpt} failed: {exc}"
                if time.monotonic() >= deadline:
                    return f"451 4.3.0 local delivery to {rcpt} failed: {exc}"
                await asyncio.sleep(0.1)
                continue
            pending.pop(0)
        servers.record(CapturedMail(mail_from, rcpts, bytes(data), time.time(), login))
        return "250 2.0.0 OK"


def _authenticator(servers: LocalMailboxes) -> Callable[..., Any]:
    """AUTH PLAIN/LOGIN succeeds for a known user (address or local part) and password."""
    ref = weakref.ref(servers)

    def authenticate(
        server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> Any:
        from aiosmtpd.smtp import AuthResult

        owner = ref()
        login = getattr(auth_data, "login", None)
        password = getattr(auth_data, "password", None)
        ok = (
            owner is not None
            and isinstance(login, bytes)
            and isinstance(password, bytes)
            and owner.check_login(
                login.decode("utf-8", "replace"), password.decode("utf-8", "replace")
            )
        )
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    return authenticate
