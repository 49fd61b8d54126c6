"""Pure tests of the spacing rule: a step that slips pushes the later ones back.

The rule (core/cadence.py ``step_due``): the gap between two emails actually sent is at
least the difference of their ``day`` values in calendar days (and ``min_gap``), counted
from when the earlier one really went out (``lead.last_email_at``, which the shell sets
when the SMTP server accepts it), then moved into sending hours. Weekends, holidays,
out-of-office holds and sending caps all make a step slip; none may make two follow-ups
land on consecutive days.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inboxwatch.core.cadence import next_wake, plan
from inboxwatch.core.classify import Classification, Kind
from inboxwatch.core.decide import Incoming, on_enquiry
from inboxwatch.core.lead import Automation, Lead
from inboxwatch.core.message import Address, parse_message
from inboxwatch.core.settings import Settings
from inboxwatch.core.timing import SendingWindow, day_offset, due_at
from inboxwatch.userfiles.rulebook import load_rulebook

ROOT = Path(__file__).resolve().parent.parent
BOOK = load_rulebook(ROOT / "rules", ROOT / "templates")
SEQ = BOOK.sequences["default"]
DAYS = {s.name: s.day for s in SEQ.steps}
BERLIN = ZoneInfo("Europe/Berlin")
JANE = Address("jane@customer.test", "Jane Doe")


def berlin(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=BERLIN)


def settings_(holidays: frozenset[date] = frozenset()) -> Settings:
    return Settings(
        me=Address("sales@shop.test", "Shop Ltd"),
        owner="owner@shop.test",
        owner_alerts=True,
        window=SendingWindow(BERLIN, holidays=holidays),
        min_gap=timedelta(hours=20),
        ack_period=timedelta(days=7),
        hold_max=timedelta(days=30),
    )


def enquiry(arrived: datetime) -> Incoming:
    raw = (
        "From: Jane Doe <jane@customer.test>\r\nTo: sales@shop.test\r\n"
        "Subject: Quote for a kitchen\r\nMessage-ID: <enq@customer.test>\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\nWhat would an oak kitchen cost?\r\n"
    )
    c = Classification(
        Kind.ENQUIRY,
        ("matched rule 'direct-email'",),
        rule="direct-email",
        source="direct-email",
        lead=JANE,
        sequence="default",
        new_text="What would an oak kitchen cost?",
    )
    return Incoming(parse_message(raw.encode()), "1", arrived, c)


@dataclass
class Run:
    """One lead through time; ``delay`` says how long after queueing each email is
    accepted by the server (sending caps), and the shell's update is applied then."""

    lead: Lead
    now: datetime
    st: Settings
    delay: Callable[[str], timedelta] = lambda step: timedelta(0)
    sent: list[tuple[str, datetime]] = field(default_factory=list)  # (step, accepted at)

    @classmethod
    def start(cls, arrived: datetime, st: Settings, **kw: object) -> Run:
        ids = itertools.count(1)
        d = on_enquiry(enquiry(arrived), BOOK, st, arrived, lambda: f"<iw.{next(ids)}@s>")
        assert d.lead is not None
        run = cls(d.lead, arrived, st, **kw)  # type: ignore[arg-type]
        run._sent(d.sends[0].step if d.sends else "")
        return run

    def _sent(self, step: str) -> None:
        if not step:
            return
        at = self.now + self.delay(step)
        self.sent.append((step, at))
        # What core/delivery.py's on_delivery does when the server accepts the message.
        self.lead = dataclasses.replace(self.lead, last_email_at=at)

    def run(self, days: int = 120) -> Run:
        until = self.lead.arrived + timedelta(days=days)
        ids = itertools.count(100)
        for _ in range(100):
            d = plan(self.lead, BOOK, self.st, self.now, lambda: f"<iw.{next(ids)}@s>")
            if d.lead is not None:
                self.lead = d.lead
            for send in d.sends:
                if send.out.purpose == "followup":
                    self._sent(send.step)
            wake = next_wake(self.lead, BOOK, self.st, self.now)
            if wake is None or wake > until:
                return self
            self.now = max(self.now, wake)
        pytest.fail("next_wake does not move on")

    def at(self, step: str) -> datetime:
        return dict(self.sent)[step]


def local(t: datetime) -> tuple[str, str]:
    lt = t.astimezone(BERLIN)
    return f"{lt:%a %Y-%m-%d}", f"{lt:%H:%M}"


def assert_spaced(run: Run) -> None:
    """Every pair of consecutive emails keeps the rule, and follow-ups are in hours."""
    for (a, ta), (b, tb) in itertools.pairwise(run.sent):
        gap = DAYS[b] - DAYS[a]
        assert tb >= day_offset(ta, gap, BERLIN), f"{b} at {tb} too soon after {a} at {ta}"
        assert tb - ta >= run.st.min_gap
        queued = tb - run.delay(b)
        assert run.st.window.is_open(queued), f"{b} queued at {queued} outside hours"


# --- the four causes of a slip ----------------------------------------------------------


def test_weekend_day1_on_monday_pushes_day3_to_wednesday() -> None:
    """The issue's case: acknowledged on Friday, day 1 slips to Monday; day 3 used to go
    on Tuesday ("in case my earlier emails got buried" the day after the last one)."""
    run = Run.start(berlin(2026, 3, 6, 16, 30), settings_()).run()
    assert local(run.at("followup-day1")) == ("Mon 2026-03-09", "09:00")
    assert local(run.at("nudge-day3")) == ("Wed 2026-03-11", "09:00")
    # Four days after Wednesday is a Sunday: Monday, sending hours.
    assert local(run.at("value-day7")) == ("Mon 2026-03-16", "09:00")
    assert_spaced(run)


def test_holidays_are_not_sending_days_and_push_the_next_step() -> None:
    """Easter 2026: Good Friday 3 April and Easter Monday 6 April are closed."""
    easter = frozenset({date(2026, 4, 3), date(2026, 4, 6)})
    run = Run.start(berlin(2026, 4, 2, 10, 0), settings_(easter)).run()
    assert local(run.at("ack")) == ("Thu 2026-04-02", "10:00")  # at once, as always
    assert local(run.at("followup-day1")) == ("Tue 2026-04-07", "09:00")
    assert local(run.at("nudge-day3")) == ("Thu 2026-04-09", "09:00")  # not Wednesday
    assert_spaced(run)
    without = Run.start(berlin(2026, 4, 2, 10, 0), settings_()).run()
    assert local(without.at("followup-day1")) == ("Fri 2026-04-03", "10:00")


def test_holiday_window() -> None:
    w = SendingWindow(BERLIN, holidays=frozenset({date(2026, 12, 24), date(2026, 12, 25)}))
    assert not w.is_open(berlin(2026, 12, 24, 10, 0))
    assert w.is_open(berlin(2026, 12, 23, 10, 0))
    assert w.next_open(berlin(2026, 12, 23, 17, 0)) == berlin(2026, 12, 28, 9, 0)
    # A long closure (more days than a week) is still crossed.
    shut = frozenset(date(2026, 12, 21) + timedelta(days=i) for i in range(14))
    w = SendingWindow(BERLIN, holidays=shut)
    assert w.next_open(berlin(2026, 12, 21, 8, 0)) == berlin(2027, 1, 4, 9, 0)


def test_hold_day1_after_the_hold_pushes_day3() -> None:
    """Out of office until Tuesday: day 1 goes on Tuesday, day 3 not before Thursday."""
    run = Run.start(berlin(2026, 3, 2, 10, 0), settings_())  # Monday
    run.lead = dataclasses.replace(
        run.lead, automation=Automation.HELD, hold_until=berlin(2026, 3, 10, 9, 0)
    )
    run.run()
    assert local(run.at("followup-day1")) == ("Tue 2026-03-10", "09:00")
    assert local(run.at("nudge-day3")) == ("Thu 2026-03-12", "09:00")
    assert local(run.at("value-day7")) == ("Mon 2026-03-16", "09:00")
    assert_spaced(run)


def test_sending_cap_counts_from_when_the_server_accepted_it() -> None:
    """Day 1 queued Tuesday 10:00 but held by the hourly cap until Wednesday 11:00:
    day 3 (Thursday by the calendar) waits until Friday 11:00."""
    cap = {"followup-day1": timedelta(hours=25)}
    run = Run.start(
        berlin(2026, 3, 2, 10, 0), settings_(), delay=lambda s: cap.get(s, timedelta(0))
    ).run()
    assert local(run.at("followup-day1")) == ("Wed 2026-03-04", "11:00")
    assert local(run.at("nudge-day3")) == ("Fri 2026-03-06", "11:00")
    assert_spaced(run)


def test_no_slip_no_change() -> None:
    """A Monday enquiry: every step on its own day at the enquiry's wall time."""
    run = Run.start(berlin(2026, 3, 2, 10, 0), settings_()).run()
    got = [(s, *local(t)) for s, t in run.sent]
    assert got[:4] == [
        ("ack", "Mon 2026-03-02", "10:00"),
        ("followup-day1", "Tue 2026-03-03", "10:00"),
        ("nudge-day3", "Thu 2026-03-05", "10:00"),
        ("value-day7", "Mon 2026-03-09", "10:00"),
    ]
    assert_spaced(run)


def test_a_skipped_acknowledgement_is_not_a_sent_step() -> None:
    """Acknowledged recently (no ack this time): day 1 counts from arrival alone."""
    arrived = berlin(2026, 3, 2, 10, 0)
    d = on_enquiry(enquiry(arrived), BOOK, settings_(), arrived, lambda: "<x@s>", last_ack=arrived)
    assert d.lead is not None and d.lead.steps_done["ack"] == "skipped"
    run = Run(d.lead, arrived, settings_()).run()
    assert local(run.at("followup-day1")) == ("Tue 2026-03-03", "10:00")


def test_due_at_gap_days() -> None:
    w = SendingWindow(BERLIN)
    monday = berlin(2026, 3, 9, 9, 0)
    kw = {"arrival": berlin(2026, 3, 6, 16, 0), "offset_days": 3, "window": w}
    old = due_at(**kw, last_email_at=monday, min_gap=timedelta(hours=20))  # type: ignore[arg-type]
    new = due_at(**kw, last_email_at=monday, min_gap=timedelta(hours=20), gap_days=2)  # type: ignore[arg-type]
    assert (old, new) == (berlin(2026, 3, 10, 9, 0), berlin(2026, 3, 11, 9, 0))
    with pytest.raises(ValueError, match="gap_days"):
        due_at(**kw, last_email_at=monday, min_gap=timedelta(0), gap_days=-1)  # type: ignore[arg-type]


# --- any arrival, any slips ---------------------------------------------------------------


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    arrived=st.datetimes(
        min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
    ),
    delays=st.lists(st.integers(min_value=0, max_value=40 * 60), min_size=6, max_size=6),
    holidays=st.sets(
        st.dates(min_value=date(2026, 1, 1), max_value=date(2028, 6, 30)), max_size=40
    ),
)
def test_spacing_holds_for_any_arrival_and_any_slip(
    arrived: datetime, delays: list[int], holidays: set[date]
) -> None:
    by_step = dict(zip([s.name for s in SEQ.steps if s.is_email], delays, strict=True))
    run = Run.start(
        arrived,
        settings_(frozenset(holidays)),
        delay=lambda s: timedelta(minutes=by_step[s]) if s != "ack" else timedelta(0),
    ).run(days=200)
    assert [s for s, _ in run.sent] == [s.name for s in SEQ.steps if s.is_email]
    assert_spaced(run)


def test_settings_take_holidays_and_signature_from_the_config(tmp_path: Path) -> None:
    from inboxwatch.userfiles.config import load_config
    from tests.test_config import MINIMAL, write

    cfg = load_config(write(tmp_path / "a", MINIMAL))
    cfg = dataclasses.replace(
        cfg,
        sending=dataclasses.replace(cfg.sending, holidays=frozenset({date(2026, 12, 25)})),
        identity=dataclasses.replace(cfg.identity, signature="Anna\nExample Ltd"),
    )
    st = Settings.from_config(cfg)
    assert st.window.holidays == frozenset({date(2026, 12, 25)})
    assert st.signature == "Anna\nExample Ltd"
