"""The state's files meddled with under a running daemon, and a clock that jumps.

The state is the real TinyDB file and its journal; the mailbox and the SMTP server are
the in-memory twins, on a clock the test moves (every step is a whole tick, no sleeps).
A user expects a daemon whose state file was deleted by hand to carry on with what it
knows (not to start afresh and forget every lead and opt-out), and a clock set back by
hours or forward by days to send nothing twice and nothing outside the sending hours.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from test_scenario import ALWAYS_OPEN, _config

from inboxwatch.adapters.memory_mail import MemorySource
from inboxwatch.adapters.memory_sender import MemorySender
from inboxwatch.adapters.tinydb_store import TinyDbStore
from inboxwatch.service.clock import FixedClock
from inboxwatch.service.commands import load_all
from inboxwatch.service.daemon import Daemon
from inboxwatch.testing.mailfactory import mail, parse, reply_to

START = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # a Monday
SHOP = "shop@shop.test"
LEAD = "lea@customer.test"
OWNER = "owner@shop.test"
#: Sending hours 09:00-17:00 on weekdays (UTC), so a jump can land outside them.
OFFICE = '[sending]\nwindow_start = "09:00"\nwindow_end = "17:00"\n'


class Rig:
    def __init__(self, tmp_path: Path, extra: str = ALWAYS_OPEN) -> None:
        self.cfg, book = load_all(_config(tmp_path, extra))
        self.clock = FixedClock(START)
        self.source, self.sender = MemorySource(clock=self.clock.now), MemorySender()
        self.store = TinyDbStore.open(self.cfg.state_path)
        journal = self.cfg.state_path.with_name(self.cfg.state_path.name + ".sent")
        self.daemon = Daemon(
            self.cfg, book, self.store, self.clock, self.source, self.sender, journal=journal
        )
        self.daemon.connect(START)
        self.daemon.tick(START)

    def at(self, when: datetime) -> None:
        self.clock.set(when)
        self.daemon.tick(when)

    def to(self, rcpt: str, purpose: str | None = None) -> list[bytes]:
        return [
            e.raw
            for e in self.sender.sent
            if e.rcpt == rcpt and (purpose is None or f"X-Inboxwatch: {purpose}".encode() in e.raw)
        ]

    def digest_days(self) -> list[str]:
        """The subject of each digest the owner got: it names the day it covers."""
        return [str(parse(raw)["Subject"]).split(":")[0] for raw in self.to(OWNER, "digest")]

    def on_disk(self) -> TinyDbStore:
        """What a new process (a restart, `inboxwatch status`) would read."""
        return TinyDbStore.open(self.cfg.state_path, readonly=True)


@pytest.mark.parametrize("what", ["the file", "the whole state folder"])
def test_a_state_deleted_under_the_daemon_is_written_again_from_memory(
    tmp_path: Path, what: str, caplog: pytest.LogCaptureFixture
) -> None:
    rig = Rig(tmp_path)
    enquiry = mail(LEAD, SHOP, "Quote for a kitchen?")
    rig.source.deliver(enquiry, received=START)
    rig.at(START + timedelta(seconds=1))
    assert len(rig.to(LEAD, "ack")) == 1
    with rig.store.transaction() as state:
        state.suppress("gone@customer.test", "opt-out", START)
    path = rig.cfg.state_path
    if what == "the file":
        path.unlink()
    else:
        shutil.rmtree(path.parent)
    # The lead answers: known from memory, so a reply (no second acknowledgement).
    (ack,) = rig.to(LEAD, "ack")
    rig.source.deliver(reply_to(ack, LEAD, "Yes please, next week."))
    rig.at(START + timedelta(minutes=5))
    assert len(rig.to(LEAD, "ack")) == 1
    with rig.on_disk().transaction() as state:
        lead = state.lead(LEAD)
        assert lead is not None and lead.acked is not None
        assert lead.ended is not None or lead.automation.value != "active"
        assert "gone@customer.test" in state.suppressed()
    # Days later: the cadence stopped on the reply, nothing more goes to the lead.
    rig.at(START + timedelta(days=8))
    assert rig.to(LEAD, "followup") == []
    assert "was deleted while running: written again from memory" in caplog.text


def test_a_clock_set_back_by_hours_sends_nothing_twice(tmp_path: Path) -> None:
    rig = Rig(tmp_path, OFFICE)
    rig.source.deliver(mail(LEAD, SHOP, "Quote for a kitchen?"), received=START)
    rig.at(START + timedelta(seconds=1))
    assert len(rig.to(LEAD, "ack")) == 1
    first = START + timedelta(days=1, hours=1)  # the first follow-up's day, inside hours
    rig.at(first)
    sent = len(rig.to(LEAD))
    assert sent == 2, "the day-1 follow-up"
    for back in (timedelta(hours=3), timedelta(hours=12), timedelta(days=1)):
        rig.at(first - back)
        rig.at(first)
    assert len(rig.to(LEAD)) == sent
    days = rig.digest_days()
    assert days and len(days) == len(set(days)), days  # no day's digest twice


def test_a_clock_jumping_days_ahead_sends_no_burst_and_nothing_outside_hours(
    tmp_path: Path,
) -> None:
    rig = Rig(tmp_path, OFFICE)
    rig.source.deliver(mail(LEAD, SHOP, "Quote for a kitchen?"), received=START)
    rig.at(START + timedelta(seconds=1))
    before = len(rig.to(LEAD))
    night = START.replace(hour=2) + timedelta(days=20)  # a Sunday, 02:00: outside hours
    rig.at(night)
    assert len(rig.to(LEAD)) == before, "nothing to the lead outside the sending hours"
    monday = START + timedelta(days=22)  # the Monday after, at 10:00
    rig.at(monday)
    assert len(rig.to(LEAD)) - before == 1, "one follow-up, not every missed step at once"
    rig.at(monday + timedelta(hours=1))
    assert len(rig.to(LEAD)) - before == 1
    # The owner's digest: one for the day the clock landed on, not one per missed day.
    days = rig.digest_days()
    assert len(days) == len(set(days)) == 1, days
