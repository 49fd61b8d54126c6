"""A backlog does not hold up the customer who writes now (issue 12), and a crash in the
middle of one neither repeats nor loses an acknowledgement.

The daemon on the in-memory mailbox and SMTP twins, with the real file state.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from test_fail_closed import SHOP, START
from test_scenario import ALWAYS_OPEN, _config

from inboxwatch.adapters.memory_mail import MemorySource
from inboxwatch.adapters.memory_sender import MemorySender
from inboxwatch.adapters.tinydb_store import TinyDbStore
from inboxwatch.service.clock import FixedClock
from inboxwatch.service.commands import load_all
from inboxwatch.service.daemon import CHUNK, Daemon
from inboxwatch.testing.mailfactory import mail

BACKLOG = 2 * CHUNK + CHUNK // 2
#: A big shop's caps: the backlog's acknowledgements all go in one tick.
CAPS = "max_per_hour = 10000\nmax_per_day = 100000\n"


def make(tmp_path: Path) -> tuple[Daemon, MemorySource, MemorySender, TinyDbStore]:
    cfg, book = load_all(_config(tmp_path, ALWAYS_OPEN + CAPS))
    source, sender = MemorySource(clock=FixedClock(START).now), MemorySender()
    store = TinyDbStore.open(cfg.state_path)
    journal = cfg.state_path.with_name(cfg.state_path.name + ".sent")
    daemon = Daemon(cfg, book, store, FixedClock(START), source, sender, journal=journal)
    daemon.connect(START)
    daemon.tick(START)  # the first start: the position is taken, nothing old is read
    return daemon, source, sender, store


def ack_order(sender: MemorySender) -> list[str]:
    return [e.rcpt for e in sender.sent if b"X-Inboxwatch: ack" in e.raw]


def deliver_backlog(source: MemorySource) -> list[str]:
    leads = [f"waiting{i}@customer.test" for i in range(BACKLOG)]
    for lead in leads:
        source.deliver(mail(lead, SHOP, "Quote?"), received=START)
    return leads


def test_an_enquiry_during_a_backlog_is_acknowledged_before_the_rest_of_it(
    tmp_path: Path,
) -> None:
    daemon, source, sender, _ = make(tmp_path)
    deliver_backlog(source)
    reads: list[int] = []

    def arrive_after_the_first_chunk(what: str, data: Mapping[str, Any]) -> None:
        if what == "read":
            reads.append(int(data["count"]))
            if len(reads) == 1:
                source.deliver(mail("now@customer.test", SHOP, "Urgent: quote today?"))

    daemon.hooks.append(arrive_after_the_first_chunk)
    daemon.tick(START + timedelta(seconds=1))
    order = ack_order(sender)
    assert len(order) == BACKLOG + 1 and len(set(order)) == len(order)
    # Read alone, right after the chunk in progress; acknowledged before the rest.
    assert reads[:2] == [CHUNK, 1]
    assert order.index("now@customer.test") == CHUNK


def test_a_crash_in_the_middle_of_a_backlog_repeats_and_loses_nothing(
    tmp_path: Path,
) -> None:
    daemon, source, sender, store = make(tmp_path)
    leads = deliver_backlog(source)
    reads = 0

    class Crash(Exception):
        pass

    def crash_on_the_third_read(what: str, data: Mapping[str, Any]) -> None:
        nonlocal reads
        if what == "read":
            reads += 1
            if reads == 1:
                source.deliver(mail("now@customer.test", SHOP, "Urgent: quote today?"))
            if reads == 3:
                raise Crash  # the third chunk read, not yet decided or recorded

    daemon.hooks.append(crash_on_the_third_read)
    with pytest.raises(Crash):
        daemon.tick(START + timedelta(seconds=1))
    # The first chunk went out; the new enquiry was decided and its acknowledgement
    # queued, but the crash came while the next chunk was read, before it was sent.
    assert len(ack_order(sender)) == CHUNK
    with TinyDbStore.open(daemon.cfg.state_path, readonly=True).transaction() as state:
        assert [i.rcpt for i in state.queued() if i.purpose == "ack"] == ["now@customer.test"]
    source.close()
    # A new process: the state from the files, the same mailbox and SMTP server.
    later = START + timedelta(seconds=30)
    again = Daemon(
        daemon.cfg,
        daemon.book,
        TinyDbStore.open(daemon.cfg.state_path),
        FixedClock(later),
        source,
        sender,
        journal=daemon.cfg.state_path.with_name(daemon.cfg.state_path.name + ".sent"),
    )
    again.connect(later)
    again.tick(later)
    again.tick(later + timedelta(seconds=1))
    order = ack_order(sender)
    assert sorted(order) == sorted([*leads, "now@customer.test"])  # each exactly once
    with store.transaction() as state:
        assert state.queued() == [] or all(i.purpose != "ack" for i in state.queued())
