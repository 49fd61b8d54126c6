"""A backlog's messages over several SMTP connections at once (issue 12, target 2), on a
real aiosmtpd server (:mod:`inboxwatch.testing.faultysmtp`).

The batch rules stay those of one connection (tests/test_smtp_faults.py); what is new:
a large batch is shared by ``[smtp] connections`` connections, every message goes once,
and a provider's limit on connections (Microsoft 365's "432 4.3.2" beyond three) costs
speed, never a pause of the queue.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from pathlib import Path

import pytest

from inboxwatch.adapters.ports import Envelope, Outcome
from inboxwatch.adapters.smtp import PER_CONNECTION, SmtpSender, connections_for
from inboxwatch.testing.faultysmtp import FaultySmtp
from inboxwatch.userfiles.config import Secret, ServerConfig, load_config
from tests.test_config import MINIMAL, only, write

FROM = "shop@example.test"


def sender(server: FaultySmtp, connections: int) -> SmtpSender:
    cfg = ServerConfig(
        "127.0.0.1", server.port, "none", "", Secret("test", "smtp"), connections=connections
    )
    return SmtpSender(cfg, "")


def batch(n: int) -> list[Envelope]:
    out = []
    for i in range(n):
        mid = f"<iw.{uuid.uuid4().hex[:12]}@example.test>"
        raw = f"From: {FROM}\r\nTo: l{i}@c.test\r\nMessage-ID: {mid}\r\n\r\nHi\r\n".encode()
        out.append(Envelope(mid, FROM, f"l{i}@c.test", raw))
    return out


def test_a_few_messages_use_one_connection_and_a_backlog_several() -> None:
    assert connections_for(1, 3) == 1
    assert connections_for(2 * PER_CONNECTION - 1, 3) == 1
    assert connections_for(2 * PER_CONNECTION, 3) == 2
    assert connections_for(100, 3) == 3
    assert connections_for(100, 1) == 1


def test_a_large_batch_goes_over_three_connections_each_message_once(server: FaultySmtp) -> None:
    server.on("data", delay=0.01)  # a server that takes a moment: the connections overlap
    envs = batch(60)
    seen: list[str] = []
    res = sender(server, 3).send(envs, seen.append)
    assert all(res[e.id].ok for e in envs)
    assert sorted(seen) == sorted(e.id for e in envs)  # each acceptance journalled once
    assert Counter(server.accepted_ids()) == Counter(e.id for e in envs)
    assert server.connections == 3
    assert server.most_in_data == 3
    assert len({r.connection for r in server.received}) == 3


def test_one_connection_configured_sends_a_backlog_over_one(server: FaultySmtp) -> None:
    envs = batch(40)
    res = sender(server, 1).send(envs)
    assert all(res[e.id].ok for e in envs)
    assert server.connections == 1
    assert server.accepted_ids() == [e.id for e in envs]  # in order, as before


def test_a_limit_on_connections_costs_speed_not_a_pause(server: FaultySmtp) -> None:
    """Microsoft 365 answers a fourth submission at once "432 4.3.2": read alone, that
    is a rate limit that pauses the whole queue; here the extra connections step down."""
    server.busy_limit = 1
    server.on("data", delay=0.02)
    envs = batch(40)
    res = sender(server, 3).send(envs)
    assert server.refused_busy >= 1  # the limit was met
    assert all(res[e.id].ok for e in envs), Counter(r.outcome for r in res.values())
    assert Counter(server.accepted_ids()) == Counter(e.id for e in envs)


def test_a_quota_on_every_connection_still_pauses_and_stops_the_batch(server: FaultySmtp) -> None:
    server.on("mail", "451 4.7.0 daily sending quota exceeded")
    envs = batch(40)
    res = sender(server, 3).send(envs)
    outcomes = Counter(r.outcome for r in res.values())
    assert set(res) == {e.id for e in envs}
    assert outcomes[Outcome.ACCEPTED] == 0
    attempted = [r for r in res.values() if r.attempted]
    assert attempted and all(r.outcome is Outcome.PAUSED for r in attempted)
    assert len(server.tried("mail")) <= 5  # no hammering: each connection asked once or so
    assert server.received == []


def test_a_refusal_for_one_recipient_costs_only_it(server: FaultySmtp) -> None:
    envs = batch(30)
    server.on("rcpt", "550 5.1.1 no such user", address=envs[7].rcpt)
    res = sender(server, 3).send(envs)
    assert res[envs[7].id].outcome is Outcome.REFUSED
    assert all(res[e.id].ok for e in envs if e is not envs[7])


def test_stop_mid_batch_finishes_what_is_in_flight_and_starts_nothing_more(
    server: FaultySmtp,
) -> None:
    server.on("data", delay=0.2)
    envs = batch(40)
    stopping = threading.Event()
    server.data_begun.clear()

    def stop() -> bool:
        if server.data_begun.is_set():
            stopping.set()
        return stopping.is_set()

    res = sender(server, 3).send(envs, stop=stop)
    accepted = {e.id for e in envs if res[e.id].ok}
    assert 1 <= len(accepted) <= 3  # at most one message per connection was under way
    assert set(server.accepted_ids()) == accepted
    rest = [res[e.id] for e in envs if e.id not in accepted]
    assert all(r.outcome is Outcome.DEFERRED and not r.attempted for r in rest)


@pytest.mark.parametrize(
    ("value", "problem"), [("0", True), ("11", True), ("1", False), ("10", False)]
)
def test_the_connections_key_is_checked_with_its_line(
    tmp_path: Path, value: str, problem: bool
) -> None:
    text = MINIMAL.replace(
        'host = "smtp.example.com"', f'host = "smtp.example.com"\nconnections = {value}'
    )
    path = write(tmp_path, text)
    if not problem:
        assert load_config(path).smtp.connections == int(value)
        return
    p = only(path)
    assert (p.key, p.message) == ("smtp.connections", f"must be between 1 and 10, got {value}")
    assert p.line == text.splitlines().index(f"connections = {value}") + 1


def test_three_connections_by_default(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, MINIMAL)).smtp.connections == 3


def test_a_server_that_is_down_is_tried_once_not_once_per_connection(server: FaultySmtp) -> None:
    """The extra connections wait for the first one's login: a server that refuses (or
    a wrong password) is met once, not three times (lockouts count failed logins)."""
    server.down = True
    envs = batch(40)
    res = sender(server, 3).send(envs)
    assert server.connections == 1
    assert all(not r.ok for r in res.values()) and set(res) == {e.id for e in envs}


def test_stop_before_anything_ends_at_once_with_every_message_not_attempted(
    server: FaultySmtp,
) -> None:
    envs = batch(40)
    res = sender(server, 3).send(envs, stop=lambda: True)
    assert all(r.outcome is Outcome.DEFERRED and not r.attempted for r in res.values())
    assert set(res) == {e.id for e in envs} and server.connections == 0


def test_an_error_on_one_connection_lets_the_others_finish_their_message(
    server: FaultySmtp,
) -> None:
    """A DATA cut short may be delivered all the same and then sent again: when one
    connection's work raises, the others still finish (and report) what they began."""
    envs = batch(30)
    server.on("data", delay=0.3)
    seen: list[str] = []

    def on_accepted(mid: str) -> None:
        seen.append(mid)
        if len(seen) == 1:
            raise RuntimeError("the journal failed (simulated)")

    with pytest.raises(RuntimeError, match="simulated"):
        sender(server, 3).send(envs, on_accepted)
    accepted = server.accepted_ids()
    assert len(accepted) >= 2  # the other connections had begun theirs
    assert set(accepted) == set(seen)  # every message the server took was reported
    assert len(accepted) <= 3  # and none was begun after the error
