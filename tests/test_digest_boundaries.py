"""Issue 11, the digest bug of the time-lapse ("replies: 0" after a reply; days without a
digest): the digest's window and the state's clock precision, and a time-lapse's lateness.

Pure: the digest's functions on constructed leads.
"""

from __future__ import annotations

import dataclasses
from datetime import date, datetime

from test_digest import BERLIN, MON, berlin, settings

from inboxwatch.core import digest
from inboxwatch.core.lead import Ended, Lead

ARRIVED = berlin(2026, 11, 1, 18, 0)
#: The tick that makes Monday's digest; its clock has microseconds, as a real clock does.
TICK = berlin(2026, 11, 2, 8, 0).replace(microsecond=123456)
TUESDAY = berlin(2026, 11, 3, 8, 0).replace(microsecond=654321)


def stored(lead: Lead) -> Lead:
    """The lead as the state file gives it back (times kept to the millisecond)."""
    return Lead.from_dict(lead.to_dict())


def replied_in_the_digests_tick() -> Lead:
    """A lead whose reply was read in the very tick that made the digest (before it)."""
    lead = Lead("ben@customer.test", "Ben", "direct-email", "direct-email", "default", ARRIVED)
    lead = lead.log(ARRIVED, "enquiry")
    return lead.log(TICK, "reply", "Yes please").end(TICK, Ended.REPLIED)


def replies_in(lead: Lead, since: datetime | None, now: datetime) -> int:
    st = settings()
    return digest.figures([lead], [], since, now, st, BERLIN).period.replies


def test_an_event_of_the_digests_own_tick_is_counted_once_whatever_the_precision() -> None:
    """The marker of the last digest is stored to the millisecond, like every time in the
    state; the digest's window must end on the same grid, or an event of its own tick is
    counted in two digests (read back from the file) or in none."""
    for first, second in (
        (replied_in_the_digests_tick(), replied_in_the_digests_tick()),  # in memory
        (stored(replied_in_the_digests_tick()), stored(replied_in_the_digests_tick())),
        (replied_in_the_digests_tick(), stored(replied_in_the_digests_tick())),  # a restart
    ):
        monday = replies_in(first, None, TICK)
        marker = digest.read_at(digest.marker_of(TICK))
        tuesday = replies_in(second, marker, TUESDAY)
        assert monday + tuesday == 1, (monday, tuesday)
        assert tuesday == 1  # the reply came in Monday's tick: Tuesday's digest has it


def test_the_window_ends_on_the_stores_grid() -> None:
    assert digest.marker_of(TICK) == "2026-11-02T07:00:00.123+00:00"
    d = digest.figures([], [], None, TICK, settings(), BERLIN)
    assert d.period.until == TICK.replace(microsecond=123000)


def test_a_time_lapse_never_skips_a_days_digest() -> None:
    """In a time-lapse a real hiccup of a fraction of a second is hours of simulated time:
    a digest that missed its day's sending hours goes at the next tick instead of never."""
    real = settings()
    lapse = dataclasses.replace(real, simulated=True)
    evening = berlin(2026, 11, 3, 18, 0)  # Tuesday, after sending hours
    assert not digest.due(MON, evening, real)  # a real day's late digest waits for the next
    assert digest.due(MON, evening, lapse)
    assert digest.next_at(MON, berlin(2026, 11, 3, 7, 0), lapse) == berlin(2026, 11, 3, 8, 0)
    assert not digest.due(date(2026, 11, 3), evening, lapse)  # still one a day
    saturday = berlin(2026, 11, 7, 12, 0)
    assert not digest.due(date(2026, 11, 6), saturday, lapse)  # and only on sending days
    assert digest.due(date(2026, 11, 5), saturday, lapse)  # Friday's, late
