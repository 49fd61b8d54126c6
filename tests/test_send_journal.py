"""The send journal (issue 12): every acceptance is written at once (a crash loses none),
and its fsync, which makes it survive a power cut, is grouped instead of one per message:
at most ``sync_every`` after the line, even when no other line follows."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from inboxwatch.service import outbox
from inboxwatch.service.outbox import SendJournal


@pytest.fixture
def fsyncs(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    calls: list[float] = []
    real = os.fsync
    lock = threading.Lock()

    def counting(fd: int) -> None:
        with lock:
            calls.append(time.monotonic())
        real(fd)

    monkeypatch.setattr(outbox.os, "fsync", counting)
    return calls


def wait_for(fsyncs: list[float], count: int) -> None:
    deadline = time.monotonic() + 5.0
    while len(fsyncs) < count and time.monotonic() < deadline:
        time.sleep(0.005)
    assert len(fsyncs) == count


def test_each_line_is_written_at_once_and_fsyncs_are_grouped(
    tmp_path: Path, fsyncs: list[float]
) -> None:
    journal = SendJournal(tmp_path / "sent", sync_every=60.0)
    for i in range(50):
        journal.record(f"<m{i}@shop.test>")
        assert journal.read() == {f"<m{j}@shop.test>" for j in range(i + 1)}  # on disk now
    journal.close()  # every line on disk now
    assert 1 <= len(fsyncs) <= 2  # the timer's (right away) and close()'s: not one each
    journal.clear()
    assert not (tmp_path / "sent").exists()


def test_a_line_alone_is_fsynced_by_the_timer(tmp_path: Path, fsyncs: list[float]) -> None:
    journal = SendJournal(tmp_path / "sent", sync_every=0.05)
    journal.record("<a@shop.test>")
    wait_for(fsyncs, 1)
    journal.record("<b@shop.test>")  # within 50 ms of the first one's fsync
    wait_for(fsyncs, 2)  # no third line came, the timer did it
    journal.close()
    assert len(fsyncs) == 2  # nothing left to sync


def test_a_failed_fsync_is_raised_by_close(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fsyncs: list[float]
) -> None:
    journal = SendJournal(tmp_path / "sent", sync_every=60.0)
    journal.record("<a@shop.test>")
    wait_for(fsyncs, 1)
    journal.record("<b@shop.test>")  # waits for the next timer, a minute away

    def full(fd: int) -> None:
        raise OSError(28, "No space left on device (simulated)")

    monkeypatch.setattr(outbox.os, "fsync", full)
    with pytest.raises(OSError, match="No space"):
        journal.close()
