"""A local write that fails after the server accepted a message must not send it twice.

The mailbox and the SMTP server are the in-memory twins here; the state is the real
TinyDB file and its journal, whose append is made to fail as a full disk does (ENOSPC).
"""

from __future__ import annotations

import errno
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from test_scenario import ALWAYS_OPEN, _config

from inboxwatch.adapters import journal
from inboxwatch.adapters.memory_mail import MemorySource
from inboxwatch.adapters.memory_sender import MemorySender
from inboxwatch.adapters.tinydb_store import TinyDbStore
from inboxwatch.service import outbox
from inboxwatch.service.clock import FixedClock
from inboxwatch.service.commands import load_all
from inboxwatch.service.daemon import Daemon
from inboxwatch.testing.mailfactory import mail

START = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
SHOP = "shop@shop.test"


def make(tmp_path: Path) -> tuple[Daemon, MemorySource, MemorySender, TinyDbStore]:
    cfg, book = load_all(_config(tmp_path, ALWAYS_OPEN))
    clock = FixedClock(START)
    source, sender = MemorySource(clock=clock.now), MemorySender()
    store = TinyDbStore.open(cfg.state_path)
    journal = cfg.state_path.with_name(cfg.state_path.name + ".sent")
    daemon = Daemon(cfg, book, store, clock, source, sender, journal=journal)
    daemon.connect(START)
    daemon.tick(START)
    return daemon, source, sender, store


def acks(sender: MemorySender, rcpt: str) -> int:
    return sum(1 for e in sender.sent if e.rcpt == rcpt and b"X-Inboxwatch: ack" in e.raw)


def test_a_state_write_that_fails_after_a_send_stops_sending_until_it_is_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    daemon, source, sender, store = make(tmp_path)
    source.deliver(mail("lea@customer.test", SHOP, "Quote?"), received=START)
    real = journal.append
    full = {"on": False}

    def write(path: Path, changes: Any, end: int) -> int:
        if full["on"]:
            raise OSError(errno.ENOSPC, "No space left on device (simulated)")
        return real(path, changes, end)

    monkeypatch.setattr(journal, "append", write)
    real_send = sender.send

    def send_then_fill_the_disk(*args: Any, **kw: Any) -> Any:
        got = real_send(*args, **kw)
        full["on"] = True  # the disk fills up right after the server accepted the ack
        return got

    monkeypatch.setattr(sender, "send", send_then_fill_the_disk)
    with pytest.raises(OSError, match="No space left"):
        daemon.tick(START + timedelta(seconds=1))
    assert acks(sender, "lea@customer.test") == 1
    # Still full: nothing more is sent, whatever is due.
    for n in range(2, 5):
        with pytest.raises(OSError):
            daemon.tick(START + timedelta(seconds=n))
    assert acks(sender, "lea@customer.test") == 1
    # Space is back: what went out is recorded, not sent again.
    full["on"] = False
    monkeypatch.setattr(sender, "send", real_send)
    daemon.tick(START + timedelta(seconds=10))
    daemon.tick(START + timedelta(minutes=10))
    assert acks(sender, "lea@customer.test") == 1
    with store.transaction() as state:
        lead = state.lead("lea@customer.test")
        assert lead is not None and lead.acked is not None
        assert all(i.purpose != "ack" for i in state.queued())


def test_a_journal_that_cannot_be_written_stops_the_batch_after_the_message_in_flight(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    daemon, source, sender, store = make(tmp_path)
    for who in ("a", "b", "c"):
        source.deliver(mail(f"{who}@customer.test", SHOP, "Quote?"), received=START)

    def record(self: outbox.SendJournal, message_id: str) -> None:
        raise OSError(errno.ENOSPC, "No space left on device (simulated)")

    monkeypatch.setattr(outbox.SendJournal, "record", record)
    with pytest.raises(OSError, match="No space left"):
        daemon.tick(START + timedelta(seconds=1))
    # The first accepted message stops the batch; the state records it (that write works).
    assert len(sender.sent) == 1
    with store.transaction() as state:
        assert sender.sent[0].id not in {i.id for i in state.queued()}
        assert len(state.queued()) >= 2
    # While the journal cannot take a line, nothing more is sent.
    for n in range(2, 4):
        with pytest.raises(OSError):
            daemon.tick(START + timedelta(seconds=n))
    assert len(sender.sent) == 1
    monkeypatch.undo()
    for n in range(2, 6):
        daemon.tick(START + timedelta(seconds=60 * n))
    ids = [e.id for e in sender.sent]
    assert len(ids) == len(set(ids))  # nothing twice
    assert {e.rcpt for e in sender.sent} >= {
        "a@customer.test",
        "b@customer.test",
        "c@customer.test",
    }
