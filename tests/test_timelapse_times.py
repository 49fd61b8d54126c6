"""In a time-lapse (`run --time-scale N`) the network's real milliseconds are simulated
hours: an acknowledgement accepted 30 ms after its tick began must not be recorded as a
first reply hours late (the demo's digest showed "median 4.0 h")."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from inboxwatch.adapters.memory_mail import MemorySource
from inboxwatch.adapters.memory_sender import MemorySender
from inboxwatch.adapters.memory_store import MemoryStore
from inboxwatch.service.clock import FixedClock
from inboxwatch.service.commands import load_all
from inboxwatch.service.daemon import Daemon
from inboxwatch.testing.mailfactory import mail
from tests.test_scenario import START, _config

LEAD = "lea@customer.test"


class SlowNetworkClock(FixedClock):
    """Each look at the clock is two simulated hours later (a real 50 ms at 150,000x)."""

    def now(self) -> datetime:
        at = super().now()
        self.advance(timedelta(hours=2))
        return at


@pytest.mark.parametrize(("scale", "late"), [(150_000.0, False), (1.0, True)])
def test_the_first_reply_is_the_ticks_moment_in_a_time_lapse(
    tmp_path: Path, scale: float, late: bool
) -> None:
    cfg, book = load_all(_config(tmp_path))
    clock = SlowNetworkClock(START)
    source, store = MemorySource(clock=lambda: START), MemoryStore()
    daemon = Daemon(cfg, book, store, clock, source, MemorySender(), journal=None, time_scale=scale)
    daemon.connect(START)
    daemon.tick(START)
    source.deliver(mail(LEAD, cfg.identity.address, "Quote?"), received=START)
    daemon.tick(START + timedelta(seconds=1))
    with store.transaction() as state:
        lead = state.lead(LEAD)
    assert lead is not None and lead.first_response is not None
    waited = lead.first_response - START
    # In real time the moment of acceptance is read from the clock (hours later here);
    # in a time-lapse it is the tick's.
    assert (waited > timedelta(hours=1)) is late
