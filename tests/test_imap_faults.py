"""Dead IMAP connections: a path that NAT or a load balancer dropped without a word, and a
server that closed the connection under IDLE, are found within a bounded time.

A small TCP relay sits between the source and the session's Dovecot, so a test can stop
it forwarding (a silent drop: no FIN, no RST, as NAT does), close it (FIN), or put a
line of its own into the server's stream. The liveness time is lowered to a fraction of
a second through the constructor, so nothing here sleeps for a minute.
"""

from __future__ import annotations

import contextlib
import selectors
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from inboxwatch.adapters import imap
from inboxwatch.adapters.imap_source import ImapSource
from inboxwatch.adapters.ports import Stream
from inboxwatch.errors import TransientError
from inboxwatch.testing.devservers import MailServers
from inboxwatch.userfiles.config import ImapConfig, Secret

pytestmark = pytest.mark.servers

#: The configured I/O timeout in these tests: it also caps the liveness probe's wait.
TIMEOUT = 1.0
ZERO = timedelta(0)


def never() -> bool:
    return False


class Relay:
    """Forwards TCP connections from a loopback port to ``target``, one thread in all.

    ``drop()`` stops forwarding on the connections open now, both ways, while keeping
    their sockets open (what a NAT box that forgot the mapping looks like from here);
    ``cut()`` closes them; ``inject(data)`` sends ``data`` to the clients as if the
    server had. ``sent`` is everything the clients sent.
    """

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.sent = bytearray()
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._frozen: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._sel = selectors.DefaultSelector()
        self._sel.register(self.listener, selectors.EVENT_READ)
        self._thread = threading.Thread(target=self._run, name="relay", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for key, _ in self._sel.select(timeout=0.05):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                with self._lock:
                    if sock is self.listener:
                        self._accept()
                    elif sock not in self._frozen:
                        self._forward(sock, key.data)

    def _accept(self) -> None:
        client, _ = self.listener.accept()
        server = socket.create_connection(self.target, timeout=5)
        self._pairs.append((client, server))
        self._sel.register(client, selectors.EVENT_READ, (server, True))
        self._sel.register(server, selectors.EVENT_READ, (client, False))

    def _forward(self, sock: socket.socket, data: tuple[socket.socket, bool]) -> None:
        other, from_client = data
        try:
            chunk = sock.recv(65536)
        except OSError:
            chunk = b""
        if not chunk:
            self._close(sock, other)
            return
        if from_client:
            self.sent += chunk
        try:
            other.sendall(chunk)
        except OSError:
            self._close(sock, other)

    def _close(self, *socks: socket.socket) -> None:
        for s in socks:
            with contextlib.suppress(KeyError, ValueError):
                self._sel.unregister(s)
            s.close()

    def drop(self) -> None:
        with self._lock:
            for client, server in self._pairs:
                self._frozen |= {client, server}
                for s in (client, server):
                    with contextlib.suppress(KeyError, ValueError):
                        self._sel.unregister(s)

    def cut(self) -> None:
        with self._lock:
            for client, server in self._pairs:
                for s in (client, server):
                    if s.fileno() != -1:
                        with contextlib.suppress(KeyError, ValueError):
                            self._sel.unregister(s)
                        s.shutdown(socket.SHUT_RDWR)
                        s.close()

    def inject(self, data: bytes) -> None:
        with self._lock:
            for client, _ in self._pairs:
                client.sendall(data)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        with self._lock:
            for client, server in self._pairs:
                client.close()
                server.close()
            self.listener.close()
            self._sel.close()


@pytest.fixture
def relay(mail_servers: MailServers) -> Iterator[Relay]:
    made = Relay(("127.0.0.1", mail_servers.imap_port))
    try:
        yield made
    finally:
        made.close()


def source_via(
    servers: MailServers, user: str, port: int, liveness: float = 0.5, tls: str = "none"
) -> ImapSource:
    config = ImapConfig(
        "127.0.0.1",
        port,
        tls,
        servers.address(user),
        Secret("test", "imap"),
        str(servers.cafile or ""),
        timeout=TIMEOUT,
    )
    return ImapSource(config, servers.password(user), liveness=liveness)


@pytest.mark.parametrize("tls", ["none", "ssl"])
def test_the_imap_socket_has_tcp_keepalive(mail_servers: MailServers, shop: str, tls: str) -> None:
    port = mail_servers.imap_port if tls == "none" else mail_servers.imaps_port
    assert port is not None
    source = source_via(mail_servers, shop, port, tls=tls)
    source.open()
    try:
        sock = source.mailbox.c.socket()
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) != 0
        for name, value in (
            ("TCP_KEEPIDLE", imap.KEEPALIVE_IDLE),
            ("TCP_KEEPINTVL", imap.KEEPALIVE_INTERVAL),
            ("TCP_KEEPCNT", imap.KEEPALIVE_COUNT),
        ):
            if hasattr(socket, name):
                assert sock.getsockopt(socket.IPPROTO_TCP, getattr(socket, name)) == value
    finally:
        source.close()
    # Sooner than a cloud load balancer forgets an idle connection (AWS: 350 s).
    assert imap.KEEPALIVE_IDLE + imap.KEEPALIVE_INTERVAL * imap.KEEPALIVE_COUNT < 350


def test_a_silently_dropped_connection_fails_wait_within_the_liveness_time(
    mail_servers: MailServers, shop: str, relay: Relay
) -> None:
    source = source_via(mail_servers, shop, relay.port, liveness=0.5)
    source.open()
    try:
        cursor = source.read(
            Stream.INBOX, None, now=datetime.now(UTC), lookback=timedelta(0), limit=10
        ).cursor
        threading.Timer(0.3, relay.drop).start()  # while IDLE-ing
        t0 = time.monotonic()
        with pytest.raises(TransientError, match="liveness"):
            source.wait(30, never)
        # the drop + liveness (0.5 s) + the probe's wait (TIMEOUT), not the 30 s asked for
        assert 0.8 <= time.monotonic() - t0 < 0.3 + 0.5 + TIMEOUT + 1.0
        t0 = time.monotonic()
        source.close()
        assert time.monotonic() - t0 < 0.5  # no LOGOUT waiting on a dead connection
        # The daemon reconnects: a new connection works.
        source.open()
        again = source.read(
            Stream.INBOX, cursor, now=datetime.now(UTC), lookback=timedelta(0), limit=10
        )
        assert again.messages == ()
    finally:
        source.close()


def test_a_connection_closed_under_idle_fails_wait_at_once(
    mail_servers: MailServers, shop: str, relay: Relay
) -> None:
    source = source_via(mail_servers, shop, relay.port, liveness=60)
    source.open()
    try:
        source.read(Stream.INBOX, None, now=datetime.now(UTC), lookback=timedelta(0), limit=10)
        threading.Timer(0.3, relay.cut).start()
        t0 = time.monotonic()
        with pytest.raises(TransientError):
            source.wait(30, never)
        assert time.monotonic() - t0 < 2  # found at once, not spinning until the deadline
    finally:
        source.close()


def test_a_quiet_healthy_connection_gets_one_noop_per_liveness_time_and_stays(
    mail_servers: MailServers, shop: str, relay: Relay
) -> None:
    source = source_via(mail_servers, shop, relay.port, liveness=0.3)
    source.open()
    try:
        cursor = source.read(
            Stream.INBOX, None, now=datetime.now(UTC), lookback=timedelta(0), limit=10
        ).cursor
        before = relay.sent.count(b" NOOP\r\n")
        t0 = time.monotonic()
        assert source.wait(1.5, never) is False
        assert 1.4 <= time.monotonic() - t0 < 2.5
        noops = relay.sent.count(b" NOOP\r\n") - before
        assert 3 <= noops <= 1.5 / 0.3 + 1  # about one per liveness time, never more
        raw = b"From: a@customer.test\r\nSubject: after probes\r\n\r\nhi\r\n"
        threading.Timer(0.2, mail_servers.deliver, (shop, raw)).start()
        assert source.wait(5, never) is True  # IDLE still reports new mail
        batch = source.read(
            Stream.INBOX, cursor, now=datetime.now(UTC), lookback=timedelta(0), limit=10
        )
        assert len(batch.messages) == 1
    finally:
        source.close()


def test_a_status_line_from_the_server_is_life_not_news(
    mail_servers: MailServers, shop: str, relay: Relay
) -> None:
    source = source_via(mail_servers, shop, relay.port, liveness=60)
    source.open()
    try:
        source.read(Stream.INBOX, None, now=datetime.now(UTC), lookback=timedelta(0), limit=10)
        heard: list[float] = []

        def still_here() -> None:
            relay.inject(b"* OK Still here\r\n")
            heard.append(time.monotonic())

        threading.Timer(0.4, still_here).start()
        t0 = time.monotonic()
        assert source.wait(1.0, never) is False  # Dovecot's "* OK Still here" is no mail
        assert time.monotonic() - t0 >= 0.9
        assert heard and source.mailbox.heard >= heard[0]  # but it counts as a sign of life
    finally:
        source.close()


def test_dovecot_ending_the_session_under_idle_is_found_at_once(
    mail_servers: MailServers, shop: str
) -> None:
    doveadm = shutil.which("doveadm")
    if doveadm is None:
        pytest.skip("doveadm is not installed")
    assert mail_servers.imap_port is not None
    source = source_via(mail_servers, shop, mail_servers.imap_port, liveness=60)
    source.open()
    kick = [doveadm, "-c", str(mail_servers.config_path), "kick", mail_servers.address(shop)]
    try:
        cursor = source.read(
            Stream.INBOX, None, now=datetime.now(UTC), lookback=timedelta(0), limit=10
        ).cursor
        timer = threading.Timer(
            0.3, subprocess.run, (kick,), {"check": True, "capture_output": True, "timeout": 10}
        )
        timer.start()
        t0 = time.monotonic()
        with pytest.raises(TransientError):  # at once, or at the next call
            source.wait(30, never)
            source.read(Stream.INBOX, cursor, now=datetime.now(UTC), lookback=ZERO, limit=10)
        assert time.monotonic() - t0 < 3
        timer.join()
    finally:
        source.close()


def test_an_idle_notice_that_came_with_the_continuation_is_not_missed() -> None:
    """The server's first notice in the same packet as "+ idling" sits in the reader's
    buffer, where polling the socket cannot see it: it is read from there, at once."""
    import select

    from inboxwatch.adapters.imap import buffered_lines

    ours, server = socket.socketpair()
    try:
        server.sendall(b"+ idling\r\n* 3 EXISTS\r\n* 1 RECE")
        reader = ours.makefile("rb")
        assert reader.readline() == b"+ idling\r\n"  # what imaplib reads for IDLE
        assert select.select([ours], [], [], 0)[0] == []  # the socket looks quiet
        # Complete lines only: a partial one stays for the next read.
        assert buffered_lines(reader, ours) == [b"* 3 EXISTS\r\n"]
        started = time.monotonic()
        assert buffered_lines(reader, ours) == []  # nothing more: and it does not block
        assert time.monotonic() - started < 0.5
    finally:
        ours.close()
        server.close()
