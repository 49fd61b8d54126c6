"""A server that accepts the connection and then says nothing: no greeting, no TLS
handshake. This is what a hung mail server, a half-dead load balancer or a firewall
that swallows packets looks like; a daemon that waits on it for ever stops answering
leads without a word. Each adapter must give up within its configured ``timeout``,
as a temporary fault (retried with back-off), naming the server.
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator

import pytest

from inboxwatch.adapters.imap import Mailbox
from inboxwatch.adapters.ports import Envelope, Outcome
from inboxwatch.adapters.smtp import SmtpSender
from inboxwatch.errors import TransientError
from inboxwatch.userfiles.config import Secret, ServerConfig
from inboxwatch.userfiles.servers import ImapConfig

TIMEOUT = 0.5
#: Connect, then each wait on the silent server: a bound with room for a loaded machine.
BOUND = 4 * TIMEOUT + 2.0


@pytest.fixture(scope="module")
def silent() -> Iterator[int]:
    """A loopback port that accepts every connection and never sends a byte."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    held: list[socket.socket] = []
    done = threading.Event()

    def accept() -> None:
        while not done.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                return
            held.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield int(server.getsockname()[1])
    finally:
        done.set()
        server.close()
        thread.join(5)
        for conn in held:
            conn.close()


def envelope() -> Envelope:
    mid = f"<iw.{uuid.uuid4().hex[:12]}@example.test>"
    raw = f"From: shop@example.test\r\nMessage-ID: {mid}\r\n\r\nHello\r\n".encode()
    return Envelope(mid, "shop@example.test", "lead@customer.test", raw)


@pytest.mark.parametrize("tls", ["none", "ssl", "starttls"])
def test_an_smtp_server_that_never_greets_is_unreachable_within_the_timeout(
    silent: int, tls: str
) -> None:
    cfg = ServerConfig("127.0.0.1", silent, tls, "", Secret("test", "smtp"), timeout=TIMEOUT)
    env = envelope()
    t0 = time.monotonic()
    result = SmtpSender(cfg, "").send([env], lambda: False)[env.id]
    assert time.monotonic() - t0 < BOUND
    assert result.outcome is Outcome.UNREACHABLE  # costs the message nothing; retried
    assert f"127.0.0.1:{silent}" in result.error


@pytest.mark.parametrize("tls", ["none", "ssl", "starttls"])
def test_an_imap_server_that_never_greets_is_a_temporary_fault_within_the_timeout(
    silent: int, tls: str
) -> None:
    cfg = ImapConfig("127.0.0.1", silent, tls, "u", Secret("test", "imap"), timeout=TIMEOUT)
    t0 = time.monotonic()
    with pytest.raises(TransientError, match=f"127.0.0.1:{silent}"):
        Mailbox(cfg, "pw").connect()
    assert time.monotonic() - t0 < BOUND
