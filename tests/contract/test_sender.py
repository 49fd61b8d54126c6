"""One suite for every Sender: SMTP (aiosmtplib against a faulty aiosmtpd) and its twin.

The outbox trusts these outcomes to decide between "sent", "never again", "ours to fix",
"pause" and "later", and whether a failure costs a message one of its attempts; both
senders must agree, down to which messages of a batch are not attempted. The SMTP side
scripts :class:`~inboxwatch.testing.faultysmtp.FaultySmtp`; the memory side
:meth:`MemorySender.reply` (the same reply text, read by the same rules).
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any, Protocol

import pytest

from inboxwatch.adapters.memory_sender import MemorySender
from inboxwatch.adapters.ports import Envelope, Outcome, Result, Sender
from inboxwatch.adapters.smtp import MAX_RECONNECTS, SmtpSender, Stage
from inboxwatch.testing.devservers import MailServers
from inboxwatch.testing.faultysmtp import FaultySmtp
from inboxwatch.userfiles.config import Secret, ServerConfig

FROM = "shop@example.test"
REFUSED = "gone@customer.test"  # 550 5.1.1: the address does not exist
BUSY = "busy@customer.test"  # 450 4.2.1: try later
FULL = "full@customer.test"  # 552 5.2.2: a full mailbox is a quota, not a refusal


def envelope(rcpt: str, mail_from: str = FROM) -> Envelope:
    mid = f"<iw.{uuid.uuid4().hex[:12]}@example.test>"
    raw = (
        f"From: {mail_from}\r\nTo: {rcpt}\r\nSubject: Thanks\r\nMessage-ID: {mid}\r\n\r\nHello\r\n"
    ).encode()
    return Envelope(mid, mail_from, rcpt, raw)


#: What the stand-in server answers these recipients at RCPT TO, as real servers do.
BASE_REPLIES = {
    REFUSED: "550 5.1.1 no such user",
    BUSY: "450 4.2.1 mailbox busy, try later",
    FULL: "552 5.2.2 mailbox full",
}


@pytest.fixture(scope="module")
def faulty_server() -> Iterator[FaultySmtp]:
    with FaultySmtp() as server:
        yield server


def smtp_config(port: int, **kw: Any) -> ServerConfig:
    return ServerConfig("127.0.0.1", port, "none", "", Secret("test", "smtp"), timeout=5, **kw)


class Kit(Protocol):
    @property
    def sender(self) -> Sender: ...

    def accepted(self) -> list[str]:
        """Ids the server took, in order (all time: compare the tail)."""
        ...

    def unreachable(self) -> Sender: ...

    def reply(self, address: str, reply: str, stage: Stage, *, down_after: bool = False) -> None:
        """Answer ``reply`` at ``stage`` for ``address`` (MAIL: the sender); with
        ``down_after`` the server cannot be reached again after it."""
        ...


class SmtpKit:
    def __init__(self, server: FaultySmtp) -> None:
        server.reset()
        for address, reply in BASE_REPLIES.items():
            server.on("rcpt", reply, address=address)
        self.server = server
        self.sender = SmtpSender(smtp_config(server.port), "")

    def accepted(self) -> list[str]:
        return self.server.accepted_ids()

    def unreachable(self) -> Sender:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))  # bound, not listening: connecting is refused at once
            return SmtpSender(smtp_config(int(s.getsockname()[1])), "")

    def reply(self, address: str, reply: str, stage: Stage, *, down_after: bool = False) -> None:
        self.server.on(stage, reply, address=address, down_after=down_after)


class MemoryKit:
    def __init__(self) -> None:
        self.memory = MemorySender(
            {
                REFUSED: Result(Outcome.REFUSED, "550 5.1.1 no such user"),
                BUSY: Result(Outcome.DEFERRED, "450 4.2.1 mailbox busy, try later"),
            }
        )
        self.memory.reply(FULL, BASE_REPLIES[FULL])
        self.sender = self.memory

    def accepted(self) -> list[str]:
        return [e.id for e in self.memory.sent]

    def unreachable(self) -> Sender:
        down = MemorySender()
        down.reachable = False
        return down

    def reply(self, address: str, reply: str, stage: Stage, *, down_after: bool = False) -> None:
        self.memory.reply(address, reply, stage)
        if down_after:
            self.memory.reconnects = False


@pytest.fixture(params=["smtp", "memory"])
def kit(request: pytest.FixtureRequest) -> Kit:
    if request.param == "smtp":
        return SmtpKit(request.getfixturevalue("faulty_server"))
    return MemoryKit()


def unique(name: str, domain: str = "customer.test") -> str:
    return f"{name}.{uuid.uuid4().hex[:8]}@{domain}"


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


def test_a_full_mailbox_is_deferred_even_as_5xx(kit: Kit) -> None:
    full, fine = envelope(FULL), envelope(unique("fine"))
    res = kit.sender.send([full, fine])
    assert res[full.id].outcome is Outcome.DEFERRED and "5.2.2" in res[full.id].error
    assert res[full.id].costs_attempt and res[fine.id].ok


def test_a_refusal_at_mail_from_is_our_sender_for_the_whole_batch(kit: Kit) -> None:
    ours = unique("shop", "example.test")
    kit.reply(ours, "550 5.7.1 sender not allowed", Stage.MAIL)
    batch = [envelope(unique("lead"), ours) for _ in range(3)]
    before = len(kit.accepted())
    res = kit.sender.send(batch)
    assert all(r.outcome is Outcome.SENDER_REFUSED and r.ours for r in res.values())
    assert not any(r.permanent or r.costs_attempt for r in res.values())
    assert [r.attempted for r in (res[e.id] for e in batch)] == [True, False, False]
    assert "550" in res[batch[0].id].error and kit.accepted()[before:] == []


def test_a_policy_refusal_after_data_is_our_content_and_the_batch_goes_on(kit: Kit) -> None:
    spam, fine = envelope(unique("spam")), envelope(unique("fine"))
    kit.reply(spam.rcpt, "554 5.7.1 message rejected as spam", Stage.DATA)
    res = kit.sender.send([spam, fine])
    assert res[spam.id].outcome is Outcome.CONTENT_REFUSED and not res[spam.id].permanent
    assert res[fine.id].ok


def test_a_421_costs_only_its_message_and_the_rest_go_after_a_reconnect(kit: Kit) -> None:
    batch = [envelope(unique(f"lead{i}")) for i in range(4)]
    kit.reply(batch[1].rcpt, "421 4.3.2 closing connection", Stage.RCPT)
    seen: list[str] = []
    res = kit.sender.send(batch, seen.append)
    assert res[batch[1].id].outcome is Outcome.DEFERRED and res[batch[1].id].costs_attempt
    assert seen == [batch[0].id, batch[2].id, batch[3].id]


def test_when_the_server_cannot_be_reached_again_the_rest_are_unreachable(kit: Kit) -> None:
    batch = [envelope(unique(f"lead{i}")) for i in range(3)]
    kit.reply(batch[0].rcpt, "421 4.3.2 shutting down", Stage.RCPT, down_after=True)
    res = kit.sender.send(batch)
    assert res[batch[0].id].outcome is Outcome.DEFERRED
    assert all(res[e.id].outcome is Outcome.UNREACHABLE for e in batch[1:])
    assert all(res[e.id].error and not res[e.id].costs_attempt for e in batch[1:])


def test_reconnects_are_bounded(kit: Kit) -> None:
    batch = [envelope(unique(f"lead{i}")) for i in range(MAX_RECONNECTS + 2)]
    for e in batch:
        kit.reply(e.rcpt, "421 4.3.2 closing connection", Stage.RCPT)
    res = kit.sender.send(batch)
    outcomes = [res[e.id].outcome for e in batch]
    assert outcomes == [Outcome.DEFERRED] * (MAX_RECONNECTS + 1) + [Outcome.UNREACHABLE]


def test_a_daily_quota_pauses_for_a_day_and_the_rest_are_not_attempted(kit: Kit) -> None:
    ours = unique("shop", "example.test")
    kit.reply(ours, "550 5.4.5 Daily user sending quota exceeded", Stage.MAIL)
    batch = [envelope(unique("lead"), ours) for _ in range(3)]
    res = kit.sender.send(batch)
    first = res[batch[0].id]
    assert first.outcome is Outcome.PAUSED and first.retry_after == timedelta(days=1)
    assert all(res[e.id] == first.not_attempted() for e in batch[1:])
    assert not any(r.costs_attempt for r in res.values())


def test_stop_finishes_the_message_in_flight_and_starts_no_other(kit: Kit) -> None:
    batch = [envelope(unique(f"lead{i}")) for i in range(3)]
    seen: list[str] = []
    res = kit.sender.send(batch, seen.append, stop=lambda: bool(seen))
    assert seen == [batch[0].id] and res[batch[0].id].ok
    for e in batch[1:]:
        assert res[e.id].outcome is Outcome.DEFERRED and not res[e.id].attempted
        assert "not attempted" in res[e.id].error and not res[e.id].costs_attempt


# -- SMTP only ------------------------------------------------------------------------------


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
