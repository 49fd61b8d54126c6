"""One suite for every Sender: SMTP (aiosmtplib against aiosmtpd) and its in-memory twin.

The outbox trusts these outcomes to decide between "sent", "never again" and "later",
and whether a failure costs a message one of its attempts; both senders must agree.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from typing import Any, Protocol

import pytest

from inboxwatch.adapters.memory_sender import MemorySender
from inboxwatch.adapters.ports import Envelope, Outcome, Result, Sender
from inboxwatch.adapters.smtp import SmtpSender
from inboxwatch.testing.devservers import MailServers
from inboxwatch.userfiles.config import Secret, ServerConfig

FROM = "shop@example.test"
REFUSED = "gone@customer.test"  # 550 5.1.1: the address does not exist
BUSY = "busy@customer.test"  # 450 4.2.1: try later
FULL = "full@customer.test"  # 552 5.2.2: a full mailbox is a quota, not a refusal


def envelope(rcpt: str) -> Envelope:
    mid = f"<iw.{uuid.uuid4().hex[:12]}@example.test>"
    raw = (
        f"From: {FROM}\r\nTo: {rcpt}\r\nSubject: Thanks\r\nMessage-ID: {mid}\r\n\r\nHello\r\n"
    ).encode()
    return Envelope(mid, FROM, rcpt, raw)


class _Refusing:
    """aiosmtpd handler: refuses the three addresses above as real servers do; records
    what it accepts, in order."""

    def __init__(self) -> None:
        self.accepted: list[str] = []

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        replies = {
            REFUSED: "550 5.1.1 no such user",
            BUSY: "450 4.2.1 mailbox busy, try later",
            FULL: "552 5.2.2 mailbox full",
        }
        if address in replies:
            return replies[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        data = envelope.original_content or envelope.content or b""
        mid = next(
            (
                line.split(b":", 1)[1].strip().decode()
                for line in data.splitlines()
                if line.lower().startswith(b"message-id:")
            ),
            "",
        )
        self.accepted.append(mid)
        return "250 OK"


@pytest.fixture(scope="module")
def refusing_server() -> Iterator[tuple[int, _Refusing]]:
    from aiosmtpd.controller import Controller

    handler = _Refusing()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    controller = Controller(handler, hostname="127.0.0.1", port=port, ready_timeout=5)
    controller.start()
    try:
        yield port, handler
    finally:
        controller.stop()


def smtp_config(port: int, **kw: Any) -> ServerConfig:
    return ServerConfig("127.0.0.1", port, "none", "", Secret("test", "smtp"), timeout=5, **kw)


class Kit(Protocol):
    @property
    def sender(self) -> Sender: ...

    def accepted(self) -> list[str]:
        """Ids the server took, in order (all time: compare the tail)."""
        ...

    def unreachable(self) -> Sender: ...


class SmtpKit:
    def __init__(self, port: int, handler: _Refusing) -> None:
        self.sender = SmtpSender(smtp_config(port), "")
        self.handler = handler

    def accepted(self) -> list[str]:
        return list(self.handler.accepted)

    def unreachable(self) -> Sender:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))  # bound, not listening: connecting is refused at once
            return SmtpSender(smtp_config(int(s.getsockname()[1])), "")


class MemoryKit:
    def __init__(self) -> None:
        self.memory = MemorySender(
            {
                REFUSED: Result(Outcome.REFUSED, "550 5.1.1 no such user"),
                BUSY: Result(Outcome.DEFERRED, "450 4.2.1 mailbox busy, try later"),
            }
        )
        self.sender = self.memory

    def accepted(self) -> list[str]:
        return [e.id for e in self.memory.sent]

    def unreachable(self) -> Sender:
        down = MemorySender()
        down.reachable = False
        return down


@pytest.fixture(params=["smtp", "memory"])
def kit(request: pytest.FixtureRequest) -> Kit:
    if request.param == "smtp":
        return SmtpKit(*request.getfixturevalue("refusing_server"))
    return MemoryKit()


def test_accepted_messages_are_reported_one_by_one_in_order(kit: Kit) -> None:
    batch = [envelope(f"lead{i}@customer.test") for i in range(3)]
    before = len(kit.accepted())
    seen: list[str] = []
    results = kit.sender.send(batch, seen.append)
    ids = [e.id for e in batch]
    assert seen == ids
    assert kit.accepted()[before:] == ids
    assert all(results[i] == Result(Outcome.ACCEPTED) for i in ids)
    assert all(results[i].ok and not results[i].permanent for i in ids)
    assert kit.sender.send([]) == {}


def test_a_refused_recipient_is_refused_and_the_batch_goes_on(kit: Kit) -> None:
    gone, fine = envelope(REFUSED), envelope("fine@customer.test")
    seen: list[str] = []
    results = kit.sender.send([gone, fine], seen.append)
    assert results[gone.id].outcome is Outcome.REFUSED and results[gone.id].permanent
    assert "550" in results[gone.id].error
    assert results[fine.id].ok and seen == [fine.id]


def test_a_4xx_is_deferred_and_counts_as_an_attempt(kit: Kit) -> None:
    busy, fine = envelope(BUSY), envelope("fine2@customer.test")
    results = kit.sender.send([busy, fine])
    res = results[busy.id]
    assert res.outcome is Outcome.DEFERRED
    assert not res.permanent and not res.connection and "450" in res.error
    assert results[fine.id].ok


def test_an_unreachable_server_makes_every_item_unreachable_without_raising(kit: Kit) -> None:
    batch = [envelope("a@customer.test"), envelope("b@customer.test")]
    seen: list[str] = []
    results = kit.unreachable().send(batch, seen.append)
    assert set(results) == {e.id for e in batch}
    assert all(r.outcome is Outcome.UNREACHABLE and r.connection for r in results.values())
    assert all(r.error for r in results.values())
    assert seen == []


# -- SMTP only ------------------------------------------------------------------------------
def test_smtp_quota_reply_is_deferred_even_as_5xx(refusing_server: tuple[int, _Refusing]) -> None:
    full = envelope(FULL)
    res = SmtpSender(smtp_config(refusing_server[0]), "").send([full])[full.id]
    assert res.outcome is Outcome.DEFERRED and "5.2.2" in res.error


def test_smtp_through_the_session_server_with_starttls_and_login(
    mail_servers: MailServers,
) -> None:
    """The real path: STARTTLS with a verified certificate, AUTH, then a bad password."""
    user = mail_servers.address("team")
    cfg = ServerConfig(
        "127.0.0.1",
        mail_servers.smtp_port,
        "starttls",
        user,
        Secret("test", "smtp"),
        cafile=str(mail_servers.cafile),
        timeout=5,
    )
    env = envelope("someone@customer.test")
    seen: list[str] = []
    results = SmtpSender(cfg, mail_servers.password("team")).send([env], seen.append)
    assert results[env.id].ok and seen == [env.id]
    got = mail_servers.smtp_wait(1, match=lambda m: env.id.encode() in m.data)
    assert got[0].auth_login == user
    bad = SmtpSender(cfg, "wrong password").send([env])[env.id]
    assert bad.outcome is Outcome.UNREACHABLE and "login failed" in bad.error
