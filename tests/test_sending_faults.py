"""What the daemon does with SMTP refusals that are ours, and with a provider's quota.

On the in-memory twins (the SMTP reply classes themselves are tested against a real
SMTP server in test_smtp_faults.py): the lead is never blamed, the queue is held, the
owner is told once (log, status, alert command) and by mail once sending works again.
"""

from __future__ import annotations

import contextlib
import dataclasses
import email
import email.policy
import json
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from test_scenario import START, MemoryEdges, purposes

from inboxwatch.adapters.memory_store import MemoryStore
from inboxwatch.adapters.smtp import Stage
from inboxwatch.core.actions import Notice
from inboxwatch.core.delivery import PAUSED, SENDER_REFUSED
from inboxwatch.core.lead import Automation
from inboxwatch.testing.mailfactory import mail

OWNER = "owner@shop.test"


def notices(e: MemoryEdges) -> dict[str, object]:
    with e.store.transaction() as state:
        return {n.key: n for n in state.notices()}


def test_our_sender_refused_holds_the_queue_blames_no_lead_and_tells_the_owner_once(
    tmp_path: Path,
) -> None:
    out = tmp_path / "alerts.txt"
    e = MemoryEdges(tmp_path)
    e.daemon.cfg = dataclasses.replace(e.daemon.cfg, alert_command=f"sh -c 'cat >> {out}'")
    e.sender.reply(e.shop, "550 5.7.1 sender address rejected: not owned by user", "mail")
    for who in ("ann", "bob"):
        e.deliver(mail(f"{who}@customer.test", e.shop, "Quote?"))
    e.daemon.tick(START)
    assert e.sender.sent == []
    for who in ("ann", "bob"):
        lead = e.lead(f"{who}@customer.test")
        assert lead is not None and lead.automation is Automation.ACTIVE and not lead.undeliverable
    with e.store.transaction() as state:
        assert state.suppressed() == frozenset()
        assert {i.rcpt for i in state.queued()} >= {"ann@customer.test", "bob@customer.test"}
    assert SENDER_REFUSED in notices(e)
    # Told once: more ticks and more refusals raise nothing new.
    for minutes in (5, 70, 140):
        e.deliver(mail(f"c{minutes}@customer.test", e.shop, "Quote?"))
        e.daemon.tick(START + timedelta(minutes=minutes))
    assert out.read_text().count("refuses our sender") == 1
    # The owner fixes the account: everything waiting goes, and the owner hears by mail.
    del e.sender.replies[(Stage.MAIL, e.shop)]
    e.daemon.tick(START + timedelta(hours=4))
    assert purposes(e.outgoing("ann@customer.test")) == ["ack"]
    assert purposes(e.outgoing("bob@customer.test")) == ["ack"]
    assert SENDER_REFUSED not in notices(e)
    e.daemon.tick(START + timedelta(hours=4, minutes=1))
    told = [
        email.message_from_bytes(r, policy=email.policy.default)
        for r in e.outgoing(OWNER)
        if b"X-Inboxwatch: owner-notice" in r
    ]
    assert [m["Subject"] for m in told] == ["inboxwatch: Sending works again"]


def test_a_daily_quota_pauses_all_sending_at_no_cost_until_it_can_have_reset(
    tmp_path: Path,
) -> None:
    e = MemoryEdges(tmp_path)
    e.sender.reply("ann@customer.test", "550 5.4.5 Daily user sending quota exceeded", "rcpt")
    e.deliver(mail("ann@customer.test", e.shop, "Quote?"))
    e.daemon.tick(START)
    notice = notices(e)[PAUSED]
    assert notice.until is not None and notice.until - START >= timedelta(hours=20)  # type: ignore[attr-defined]
    del e.sender.replies[(Stage.RCPT, "ann@customer.test")]
    e.deliver(mail("bob@customer.test", e.shop, "Quote?"))
    tried = len(e.sender.tried)
    for hours in (1, 6, 12):
        e.daemon.tick(START + timedelta(hours=hours))
    assert len(e.sender.tried) == tried  # nothing is even tried while paused
    assert e.daemon.seconds_to_next(START + timedelta(hours=12)) >= 3600
    e.daemon.tick(START + timedelta(hours=25))
    assert purposes(e.outgoing("ann@customer.test")) == ["ack"]
    assert purposes(e.outgoing("bob@customer.test")) == ["ack"]
    with e.store.transaction() as state:
        assert all(i.attempts == 0 for i in state.queued())


def test_status_shows_an_open_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from inboxwatch.cli import main

    e = MemoryEdges(tmp_path)
    e.sender.reply(e.shop, "550 5.7.1 sender rejected", "mail")
    e.deliver(mail("ann@customer.test", e.shop, "Quote?"))
    e.daemon.tick(START)
    # The memory store is not the file `status` reads: copy the notice there.
    from inboxwatch.adapters.tinydb_store import TinyDbStore

    with TinyDbStore.open(e.daemon.cfg.state_path).transaction() as state:
        for n in notices(e).values():
            state.put_notice(n)  # type: ignore[arg-type]
    assert main(["status", "--json", "--config", str(e.daemon.cfg.file)]) == 1
    report = json.loads(capsys.readouterr().out)
    assert [p["key"] for p in report["problems"]] == [SENDER_REFUSED]


def test_an_smtp_server_out_of_reach_is_told_once_after_the_configured_time(
    tmp_path: Path,
) -> None:
    from inboxwatch.core.delivery import SMTP_UNREACHABLE

    e = MemoryEdges(tmp_path)
    e.sender.reachable = False
    e.deliver(mail("ann@customer.test", e.shop, "Quote?"))
    e.daemon.tick(START)
    e.daemon.tick(START + timedelta(minutes=10))
    assert SMTP_UNREACHABLE not in notices(e)  # a blip is not worth an alert
    e.daemon.tick(START + timedelta(minutes=20))
    assert SMTP_UNREACHABLE in notices(e)
    e.sender.reachable = True
    e.daemon.tick(START + timedelta(minutes=40))
    assert purposes(e.outgoing("ann@customer.test")) == ["ack"]
    assert SMTP_UNREACHABLE not in notices(e)
    e.daemon.tick(START + timedelta(minutes=41))
    subjects = [
        email.message_from_bytes(r, policy=email.policy.default)["Subject"]
        for r in e.outgoing(OWNER)
        if b"X-Inboxwatch: owner-notice" in r
    ]
    assert subjects == ["inboxwatch: Sending works again"]


def wait_for(cond: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    """Poll ``cond`` (a daemon thread works meanwhile); the bound is generous because a
    busy machine may be slow, and a condition met returns at once."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


def test_the_memory_store_read_from_another_thread_sees_only_what_was_committed() -> None:
    """The test below reads the twin's state while the daemon's thread writes it. A reader
    that joined the writer's open transaction saw rows that were then rolled back, and one
    that began beside it could overwrite what the writer committed: they take turns."""
    store = MemoryStore()
    inside, release, entered = threading.Event(), threading.Event(), threading.Event()
    seen: list[list[str]] = []

    def writer() -> None:
        with contextlib.suppress(RuntimeError), store.transaction() as state:
            state.put_notice(Notice("half-done", "rolled back", START))
            inside.set()
            release.wait(60)
            raise RuntimeError("the writer fails: nothing it wrote stays")

    def reader() -> None:
        with store.transaction() as state:
            entered.set()
            seen.append([n.key for n in state.notices()])

    w = threading.Thread(target=writer, daemon=True)
    w.start()
    assert inside.wait(60)
    r = threading.Thread(target=reader, daemon=True)
    r.start()
    # Without turns the reader comes in at once (and reads the row about to be dropped);
    # with them it waits for the writer, however long this wait is.
    entered.wait(0.5)
    release.set()
    w.join(60)
    r.join(60)
    assert not w.is_alive() and not r.is_alive()
    assert seen == [[]]


def test_a_mailbox_out_of_reach_is_told_once_and_its_return_too(tmp_path: Path) -> None:
    from inboxwatch.core.delivery import MAILBOX_UNREACHABLE
    from inboxwatch.errors import TransientError

    e = MemoryEdges(tmp_path)
    e.daemon.source.close()
    real_open = e.source.open
    tries: list[bool] = []  # each connection attempt: whether the mailbox was broken then
    broken = True
    lock = threading.Lock()  # an attempt and the test's "fixed now" do not interleave

    def open_maybe() -> None:
        nonlocal broken
        with lock:
            tries.append(broken)
            e.clock.set(START + timedelta(minutes=20 * len(tries)))  # each retry: 20 min later
            failing = broken
        if failing:
            raise TransientError("IMAP connect: connection refused (simulated)")
        real_open()

    def owner_notices() -> list[bytes]:
        return [r for r in e.outgoing(OWNER) if b"X-Inboxwatch: owner-notice" in r]

    e.source.open = open_maybe  # type: ignore[method-assign]
    e.daemon.connected = False
    runner = threading.Thread(target=e.daemon.run, daemon=True)
    runner.start()
    try:
        wait_for(lambda: MAILBOX_UNREACHABLE in notices(e), "the notice")
        with lock:
            told = len(tries)
            broken = False
        wait_for(lambda: MAILBOX_UNREACHABLE not in notices(e), "the notice to end")
        assert tries == [True] * told + [False]  # the first attempt after the fix ends it
        # "Reachable again" is queued as the notice ends and goes out on the next tick.
        wait_for(lambda: len(owner_notices()) >= 2, "the owner's mail")
    finally:
        e.daemon.stop_event.set()
        runner.join(timeout=60)
    assert not runner.is_alive()
    with e.store.transaction() as state:
        queued = [i for i in state.queued() if i.purpose == "owner-notice"]
    sent = owner_notices()
    # "cannot be reached" at once (SMTP works), and "reachable again", each once
    assert queued == [] and len(sent) == 2
    assert [b"cannot be reached" in sent[0], b"Reachable again" in sent[1]] == [True, True]
