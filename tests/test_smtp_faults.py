"""SMTP replies told apart (issue 8, item 2) and a stop mid-batch (item 5), over real SMTP.

A controllable server (:mod:`inboxwatch.testing.faultysmtp`) answers on cue; the sender
must say whose problem each refusal is (RFC 5321 stages, RFC 3463 enhanced codes), carry
on after a 421, stop hammering after a quota, and finish the message in flight when
asked to stop. The last part checks the outbox's rule that retries end by age.
"""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from inboxwatch.adapters.ports import Envelope, Outcome, Result
from inboxwatch.adapters.smtp import MAX_RECONNECTS, SmtpSender, Stage, classify_reply
from inboxwatch.core import queue
from inboxwatch.core.queue import MaxAge, OutboxItem, Purpose, Status
from inboxwatch.testing.faultysmtp import FaultySmtp
from inboxwatch.userfiles.config import Secret, ServerConfig

FROM = "shop@example.test"


def sender(server: FaultySmtp, timeout: float = 5) -> SmtpSender:
    cfg = ServerConfig(
        "127.0.0.1", server.port, "none", "", Secret("test", "smtp"), timeout=timeout
    )
    return SmtpSender(cfg, "")


def envelope(rcpt: str, mail_from: str = FROM) -> Envelope:
    mid = f"<iw.{uuid.uuid4().hex[:12]}@example.test>"
    raw = (
        f"From: {mail_from}\r\nTo: {rcpt}\r\nSubject: Thanks\r\nMessage-ID: {mid}\r\n\r\nHello\r\n"
    ).encode()
    return Envelope(mid, mail_from, rcpt, raw)


def batch(n: int) -> list[Envelope]:
    return [envelope(f"lead{i}@customer.test") for i in range(n)]


# -- whose problem is it ---------------------------------------------------------------------
def test_550_at_mail_from_refuses_our_sender_for_the_whole_batch(server: FaultySmtp) -> None:
    server.on("mail", "550 5.7.1 sender address not allowed")
    envs = batch(3)
    seen: list[str] = []
    res = sender(server).send(envs, seen.append)
    first, rest = res[envs[0].id], [res[e.id] for e in envs[1:]]
    assert first.outcome is Outcome.SENDER_REFUSED and first.attempted and "550" in first.error
    assert not first.permanent and first.ours and not first.costs_attempt
    assert all(r.outcome is Outcome.SENDER_REFUSED and not r.attempted for r in rest)
    assert all(r.error.startswith("not attempted") and not r.permanent for r in rest)
    assert server.tried("mail") == [FROM]  # the rest were not even tried
    assert server.received == [] and seen == []


def test_554_571_after_data_refuses_our_content_not_the_lead(server: FaultySmtp) -> None:
    envs = batch(3)
    server.on("data", "554 5.7.1 message rejected as spam", address=envs[0].rcpt)
    res = sender(server).send(envs)
    bad = res[envs[0].id]
    assert bad.outcome is Outcome.CONTENT_REFUSED and bad.ours and not bad.permanent
    assert "5.7.1" in bad.error and "DATA" in bad.error
    assert all(res[e.id].ok for e in envs[1:])  # it costs only this message
    assert server.accepted_ids() == [e.id for e in envs[1:]]


def test_550_511_at_rcpt_refuses_the_recipient_for_good(server: FaultySmtp) -> None:
    gone, fine = envelope("gone@customer.test"), envelope("fine@customer.test")
    server.on("rcpt", "550 5.1.1 no such user", address=gone.rcpt)
    res = sender(server).send([gone, fine])
    assert res[gone.id].outcome is Outcome.REFUSED and res[gone.id].permanent
    assert "no such user" in res[gone.id].error and res[gone.id].costs_attempt
    assert res[fine.id].ok and server.accepted_ids() == [fine.id]


def test_a_full_mailbox_defers_that_recipient_only(server: FaultySmtp) -> None:
    envs = batch(3)
    server.on("rcpt", "452 4.2.2 mailbox full", address=envs[1].rcpt)
    res = sender(server).send(envs)
    full = res[envs[1].id]
    assert full.outcome is Outcome.DEFERRED and full.costs_attempt and "4.2.2" in full.error
    assert res[envs[0].id].ok and res[envs[2].id].ok
    assert server.connections == 1  # not a reason to drop the connection


# -- 421 and dropped connections ---------------------------------------------------------------
def test_421_for_one_recipient_costs_only_it_and_the_batch_goes_on(server: FaultySmtp) -> None:
    envs = batch(4)
    server.on("rcpt", "421 4.3.2 closing connection", address=envs[1].rcpt)
    seen: list[str] = []
    res = sender(server).send(envs, seen.append)
    poison = res[envs[1].id]
    assert poison.outcome is Outcome.DEFERRED and poison.costs_attempt and "421" in poison.error
    assert [e.id for e in envs if res[e.id].ok] == seen == [envs[0].id, envs[2].id, envs[3].id]
    assert server.connections == 2  # reconnected once
    assert [r.connection for r in server.received] == [1, 2, 2]


def test_when_reconnecting_fails_the_rest_are_unreachable(server: FaultySmtp) -> None:
    envs = batch(4)
    server.on("rcpt", "421 4.3.2 shutting down", address=envs[1].rcpt, down_after=True)
    res = sender(server).send(envs)
    assert res[envs[0].id].ok
    assert res[envs[1].id].outcome is Outcome.DEFERRED
    for e in envs[2:]:
        assert res[e.id].outcome is Outcome.UNREACHABLE and res[e.id].connection
        assert "421" in res[e.id].error and not res[e.id].costs_attempt
    assert server.connections == 2 and len(server.tried("mail")) == 2


def test_reconnects_are_bounded_per_batch(server: FaultySmtp) -> None:
    server.on("rcpt", "421 4.3.2 closing connection")  # every recipient
    envs = batch(MAX_RECONNECTS + 3)
    res = sender(server).send(envs)
    tried = envs[: MAX_RECONNECTS + 1]
    assert all(res[e.id].outcome is Outcome.DEFERRED for e in tried)
    rest = [res[e.id] for e in envs[MAX_RECONNECTS + 1 :]]
    assert all(r.outcome is Outcome.UNREACHABLE and not r.attempted for r in rest)
    assert server.connections == MAX_RECONNECTS + 1


def test_a_connection_closed_between_messages_is_opened_again_at_no_cost(
    server: FaultySmtp,
) -> None:
    envs = batch(2)
    server.on("data", address=envs[0].rcpt, close=True)  # 250, then the server hangs up
    res = sender(server).send(envs)
    assert all(res[e.id].ok for e in envs)
    assert server.accepted_ids() == [e.id for e in envs] and server.connections == 2


def test_a_timeout_mid_message_defers_only_it_and_the_next_goes_on_a_new_connection(
    server: FaultySmtp,
) -> None:
    envs = batch(2)
    server.on("data", address=envs[0].rcpt, delay=1.5)  # longer than the client waits
    res = sender(server, timeout=0.5).send(envs)
    late = res[envs[0].id]
    assert late.outcome is Outcome.DEFERRED and late.costs_attempt and "DATA" in late.error
    assert res[envs[1].id].ok and server.connections == 2


def test_an_address_beyond_ascii_goes_with_smtputf8(server: FaultySmtp) -> None:
    env = envelope("jörg@customer.test")
    assert sender(server).send([env])[env.id].ok
    assert server.received[0].rcpt_tos == ("jörg@customer.test",)


def test_a_server_that_is_down_makes_every_message_unreachable(server: FaultySmtp) -> None:
    server.down = True
    envs = batch(2)
    res = sender(server).send(envs)
    assert all(r.outcome is Outcome.UNREACHABLE and "421" in r.error for r in res.values())
    assert server.connections == 1 and server.tried("mail") == []


# -- quotas and rate limits ---------------------------------------------------------------------
def test_a_daily_quota_pauses_sending_for_a_day_and_the_rest_are_not_attempted(
    server: FaultySmtp,
) -> None:
    envs = batch(3)
    server.on("mail", "550 5.4.5 Daily user sending quota exceeded.")
    res = sender(server).send(envs)
    first = res[envs[0].id]
    assert first.outcome is Outcome.PAUSED and first.paused and not first.permanent
    assert first.retry_after is not None and timedelta(hours=23) <= first.retry_after
    assert first.retry_after <= timedelta(hours=25) and not first.costs_attempt
    for e in envs[1:]:
        r = res[e.id]
        assert r.outcome is Outcome.PAUSED and not r.attempted
        assert r.retry_after == first.retry_after and r.error.startswith("not attempted")
    assert len(server.tried("mail")) == 1 and server.received == []


@pytest.mark.parametrize(
    ("stage", "reply", "pause"),
    [
        ("rcpt", "421 4.7.0 rate limit exceeded, closing connection", timedelta(minutes=15)),
        ("rcpt", "452 4.5.3 Too many recipients", timedelta(minutes=15)),
        ("mail", "451 4.7.0 Hourly sending limit reached", timedelta(hours=1)),
        ("data", "450 4.7.0 too many messages, try again in 10 minutes", timedelta(minutes=10)),
    ],
)
def test_rate_limits_pause_for_minutes_at_no_cost(
    server: FaultySmtp, stage: str, reply: str, pause: timedelta
) -> None:
    envs = batch(2)
    server.on(stage, reply, times=1)
    res = sender(server).send(envs)
    assert res[envs[0].id].outcome is Outcome.PAUSED and res[envs[0].id].retry_after == pause
    assert res[envs[1].id] == res[envs[0].id].not_attempted()
    assert server.received == []


# -- stopping --------------------------------------------------------------------------------
def test_stop_during_a_slow_data_finishes_that_message_and_starts_no_other(
    server: FaultySmtp,
) -> None:
    envs = batch(3)
    delay = 1.5
    server.on("data", address=envs[0].rcpt, delay=delay)  # 250, but slowly
    seen: list[str] = []
    began = time.monotonic()
    res = sender(server).send(envs, seen.append, stop=server.data_begun.is_set)
    took = time.monotonic() - began
    assert res[envs[0].id].ok and seen == [envs[0].id]  # finished, never cut short
    for e in envs[1:]:
        r = res[e.id]
        assert r.outcome is Outcome.DEFERRED and not r.attempted and not r.costs_attempt
        assert "not attempted" in r.error
    assert server.accepted_ids() == [envs[0].id] and server.tried("mail") == [FROM]
    assert delay * 0.9 <= took < delay + 1.0, took  # promptly after the slow reply


def test_stop_while_waiting_for_rcpt_gives_up_at_once_and_sends_nothing(
    server: FaultySmtp,
) -> None:
    server.on("rcpt", delay=10)
    stopping = threading.Event()
    timer = threading.Timer(0.3, stopping.set)
    timer.start()
    envs = batch(2)
    began = time.monotonic()
    try:
        res = sender(server, timeout=20).send(envs, stop=stopping.is_set)
    finally:
        timer.cancel()
    assert time.monotonic() - began < 2.0
    assert all(r.outcome is Outcome.DEFERRED and not r.attempted for r in res.values())
    assert server.received == []


# -- reading replies ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("stage", "reply", "outcome"),
    [
        ("mail", "550 5.1.8 bad sender's system address", Outcome.SENDER_REFUSED),
        ("mail", "552 5.3.4 message size exceeds fixed limit", Outcome.CONTENT_REFUSED),
        ("rcpt", "550 5.1.1 no such user", Outcome.REFUSED),
        ("rcpt", "550 no such user here", Outcome.REFUSED),
        ("rcpt", "554 5.7.1 <a@b>: Relay access denied", Outcome.SENDER_REFUSED),
        ("rcpt", "553 5.7.1 Sender address rejected: not owned by user", Outcome.SENDER_REFUSED),
        ("rcpt", "550 5.7.1 Recipient address rejected: Access denied", Outcome.REFUSED),
        ("rcpt", "530 5.7.0 Authentication required", Outcome.SENDER_REFUSED),
        ("rcpt", "552 5.2.2 mailbox full", Outcome.DEFERRED),
        ("rcpt", "550 5.2.2 sender's submission quota was exceeded", Outcome.PAUSED),
        ("rcpt", "450 4.2.1 mailbox busy", Outcome.DEFERRED),
        ("data", "550 5.1.1 user unknown", Outcome.REFUSED),
        ("data", "552 5.2.2 Quota exceeded (mailbox for user is full)", Outcome.DEFERRED),
        ("data", "550 5.6.0 content rejected", Outcome.CONTENT_REFUSED),
        ("data", "554 Transaction failed", Outcome.CONTENT_REFUSED),
        ("data", "550 5.7.26 unauthenticated email from example.test", Outcome.SENDER_REFUSED),
        ("data", "421 4.7.28 unusual rate of unsolicited mail", Outcome.PAUSED),
        ("connect", "535 5.7.8 authentication credentials invalid", Outcome.UNREACHABLE),
        ("connect", "454 4.7.0 Too many login attempts", Outcome.PAUSED),
    ],
)
def test_replies_are_read_by_stage_and_enhanced_code(
    stage: str, reply: str, outcome: Outcome
) -> None:
    code, _, text = reply.partition(" ")
    res = classify_reply(Stage(stage), int(code), text)
    assert res.outcome is outcome, res
    assert reply in res.error


def test_a_server_named_wait_is_kept_for_a_deferral() -> None:
    res = classify_reply(Stage.RCPT, 451, "4.7.1 Greylisted, please try again in 5 minutes")
    assert res.outcome is Outcome.DEFERRED and res.retry_after == timedelta(minutes=5)


# -- the outbox: retries end by age, not by count ------------------------------------------------
T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
WEEK = timedelta(days=7)


def item(purpose: Purpose = Purpose.ACK, created: datetime = T0) -> OutboxItem:
    return OutboxItem(
        "<a@t>", purpose, "lead@customer.test", "", FROM, "lead@customer.test", b"x",
        created, created,
    )  # fmt: skip


def test_deferred_backs_off_and_costs_an_attempt() -> None:
    it, waits = item(), []
    for _ in range(10):
        now = it.next_try
        it = queue.reschedule(it, now, Result(Outcome.DEFERRED, "450 busy"), WEEK)
        waits.append(it.next_try - now)
    assert waits[:3] == [timedelta(seconds=30), timedelta(seconds=60), timedelta(seconds=120)]
    assert max(waits) == timedelta(hours=1) and it.attempts == 10 and it.queued


def test_unreachable_paused_and_skipped_messages_cost_nothing() -> None:
    it = item()
    down = queue.reschedule(it, T0, Result(Outcome.UNREACHABLE, "cannot connect"), WEEK)
    assert down.attempts == 0 and down.queued and down.next_try > T0
    pause = timedelta(hours=24)
    paused = queue.reschedule(it, T0, Result(Outcome.PAUSED, "5.4.5", pause), WEEK)
    assert paused.attempts == 0 and paused.next_try == T0 + pause
    skipped = Result(Outcome.DEFERRED, "not attempted: stopping", attempted=False)
    again = queue.reschedule(it, T0, skipped, WEEK)
    assert again.attempts == 0 and again.next_try == T0 and again.queued
    held = queue.reschedule(it, T0, Result(Outcome.SENDER_REFUSED, "550 at MAIL"), WEEK)
    assert held.queued and held.attempts == 0 and held.next_try == T0 + queue.HOLD


def test_a_refusal_of_the_recipient_fails_at_once() -> None:
    it = queue.reschedule(item(), T0, Result(Outcome.REFUSED, "550 5.1.1"), WEEK)
    assert it.status is Status.FAILED and it.attempts == 1 and it.error == "550 5.1.1"


def test_a_long_outage_does_not_give_up_a_message_before_its_age() -> None:
    """A quota of a day and a server down for three more: the ack still goes out."""
    it = queue.reschedule(item(), T0, Result(Outcome.PAUSED, "5.4.5", timedelta(days=1)), WEEK)
    while it.next_try < T0 + timedelta(days=4):
        it = queue.reschedule(it, it.next_try, Result(Outcome.UNREACHABLE, "down"), WEEK)
        assert it.queued
    it = queue.reschedule(it, it.next_try, Result(Outcome.ACCEPTED), WEEK)
    assert it.status is Status.SENT and it.attempts == 0


def test_a_message_not_out_within_its_max_age_is_given_up() -> None:
    it = item()
    tries = 0
    while it.queued:
        it = queue.reschedule(it, it.next_try, Result(Outcome.DEFERRED, "450 busy"), WEEK)
        tries += 1
    assert it.status is Status.FAILED
    assert it.error == "given up: not sent within 7 days (last error: 450 busy)"
    assert tries > 100  # a week of hourly tries: bounded by age, not by a count of 12
    # The last try was at the deadline itself, never past it.
    assert it.next_try == T0 + WEEK


def test_the_age_of_an_ack_counts_from_the_enquiry() -> None:
    enquiry = T0 - timedelta(days=6, hours=23)
    it = queue.reschedule(
        item(), T0, Result(Outcome.PAUSED, "quota", timedelta(days=1)), WEEK, enquiry
    )
    assert it.queued and it.next_try == enquiry + WEEK  # a last chance at the deadline
    it = queue.reschedule(it, it.next_try, Result(Outcome.PAUSED, "quota"), WEEK, enquiry)
    assert it.status is Status.FAILED and it.error.startswith("given up: not sent within 7 days")


def test_max_age_per_purpose_and_hold() -> None:
    ages = MaxAge(ack=WEEK, followup=timedelta(days=2), owner=timedelta(days=3))
    assert ages.of(Purpose.ACK) == WEEK and ages.of(Purpose.FOLLOWUP) == timedelta(days=2)
    assert ages.of(Purpose.OWNER_ALERT) == ages.of(Purpose.OWNER_TASK) == timedelta(days=3)
    assert queue.give_up(item(), timedelta(hours=12)).error == (
        "given up: not sent within 12 hours"
    )
    a, b = item(), item(created=T0 + timedelta(days=2))
    until = T0 + timedelta(days=1)
    assert [i.next_try for i in queue.hold([a, b], until, "paused")] == [until]
