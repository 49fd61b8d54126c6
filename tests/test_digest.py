"""The owner's daily digest: when it is due (pure), what it says, and the daemon's step."""

from __future__ import annotations

import dataclasses
import email
import email.policy
from datetime import UTC, date, datetime, time, timedelta
from html.parser import HTMLParser
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from test_metrics import acked_lead, make
from test_scenario import ALWAYS_OPEN, _config

from inboxwatch.adapters.memory_mail import MemorySource
from inboxwatch.adapters.memory_sender import MemorySender
from inboxwatch.adapters.memory_store import MemoryStore
from inboxwatch.cli import main
from inboxwatch.core import digest
from inboxwatch.core.digest_page import duration
from inboxwatch.core.lead import Conversation, Ended, Lead
from inboxwatch.core.message import Address
from inboxwatch.core.mime import to_bytes
from inboxwatch.core.settings import Settings
from inboxwatch.core.timing import SendingWindow
from inboxwatch.errors import ConfigError
from inboxwatch.service.clock import FixedClock
from inboxwatch.service.commands import load_all
from inboxwatch.service.daemon import Daemon
from inboxwatch.testing.mailfactory import mail
from inboxwatch.userfiles.config import load_config
from inboxwatch.userfiles.rulebook import load_rulebook

BERLIN = ZoneInfo("Europe/Berlin")
REPO = Path(__file__).resolve().parent.parent
WEEKDAYS = frozenset(range(5))
EVERY_DAY = frozenset(range(7))


def settings(at: time = time(8, 0), days: frozenset[int] = WEEKDAYS, **kw: object) -> Settings:
    return Settings(
        me=Address("shop@shop.test", "Example Shop"),
        owner="owner@shop.test",
        owner_alerts=True,
        window=SendingWindow(BERLIN, time(9, 0), time(17, 0), days, **kw),  # type: ignore[arg-type]
        min_gap=timedelta(hours=20),
        ack_period=timedelta(days=7),
        hold_max=timedelta(days=30),
        digest=True,
        digest_time=at,
    )


def berlin(y: int, m: int, d: int, hh: int, mm: int = 0, fold: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=BERLIN, fold=fold)


MON = date(2026, 11, 2)  # a Monday, CET (UTC+1)


# -- when ----------------------------------------------------------------------------------


def test_due_at_digest_time_once_a_day() -> None:
    st = settings()
    assert not digest.due(None, berlin(2026, 11, 2, 7, 59), st)
    assert digest.next_at(None, berlin(2026, 11, 2, 7, 0), st) == berlin(2026, 11, 2, 8, 0)
    # At 08:00 although sending hours start at 09:00: the owner chose the time.
    assert digest.due(None, berlin(2026, 11, 2, 8, 0), st)
    assert digest.due(date(2026, 10, 30), berlin(2026, 11, 2, 8, 5), st)
    # Sent today: not again, whatever the hour (a restart reads the same marker).
    for hh in (8, 9, 12, 16, 23):
        assert not digest.due(MON, berlin(2026, 11, 2, hh, 1), st)
    assert digest.next_at(MON, berlin(2026, 11, 2, 8, 1), st) == berlin(2026, 11, 3, 8, 0)


def test_down_at_digest_time_it_goes_at_the_next_moment_inside_sending_hours() -> None:
    st = settings()
    last = date(2026, 10, 30)  # Friday's
    # Back at 08:45: too late to be "on time", and sending hours start at 09:00.
    assert not digest.due(last, berlin(2026, 11, 2, 8, 45), st)
    assert digest.next_at(last, berlin(2026, 11, 2, 8, 45), st) == berlin(2026, 11, 2, 9, 0)
    assert digest.due(last, berlin(2026, 11, 2, 9, 0), st)
    assert digest.due(last, berlin(2026, 11, 2, 16, 59), st)
    # Back after sending hours: none that day; tomorrow's at 08:00 covers the gap.
    assert not digest.due(last, berlin(2026, 11, 2, 17, 30), st)
    assert digest.next_at(last, berlin(2026, 11, 2, 17, 30), st) == berlin(2026, 11, 3, 8, 0)
    # A restart a few minutes after the digest time, nothing sent yet: it goes now.
    assert digest.due(last, berlin(2026, 11, 2, 8, 20), st)


def test_weekends_and_holidays_have_no_digest_monday_covers_them() -> None:
    st = settings(holidays=frozenset({date(2026, 11, 3)}))
    friday = date(2026, 10, 30)
    assert not digest.due(friday, berlin(2026, 10, 31, 12, 0), st)  # Saturday
    assert digest.next_at(friday, berlin(2026, 10, 31, 12, 0), st) == berlin(2026, 11, 2, 8, 0)
    assert digest.next_at(MON, berlin(2026, 11, 2, 12, 0), st) == berlin(2026, 11, 4, 8, 0)
    assert not digest.due(MON, berlin(2026, 11, 3, 9, 0), st)  # the holiday
    # An evening digest, after sending hours: on time it goes; late, not that day.
    late = settings(time(18, 30))
    assert digest.due(friday, berlin(2026, 11, 2, 18, 30), late)
    assert not digest.due(friday, berlin(2026, 11, 2, 19, 30), late)


def test_switched_off_never_due() -> None:
    st = dataclasses.replace(settings(), digest=False)
    assert digest.next_at(None, berlin(2026, 11, 2, 8, 0), st) is None
    assert not digest.due(None, berlin(2026, 11, 2, 12, 0), st)


def test_dst_days_keep_the_local_time() -> None:
    st = settings(days=EVERY_DAY)
    # The day after the clocks went forward (CEST, UTC+2): 08:00 local is 06:00 UTC.
    assert digest.next_at(date(2026, 3, 29), berlin(2026, 3, 29, 20), st) == datetime(
        2026, 3, 30, 6, 0, tzinfo=UTC
    )
    # The day the clocks go back: 08:00 CET is 07:00 UTC.
    assert digest.next_at(date(2026, 10, 24), berlin(2026, 10, 24, 20), st) == datetime(
        2026, 10, 25, 7, 0, tzinfo=UTC
    )
    # 02:30 does not exist on 29 March: the first instant the clock reads it or later.
    gap = settings(time(2, 30), days=EVERY_DAY)
    assert digest.next_at(date(2026, 3, 28), berlin(2026, 3, 29, 0, 0), gap) == datetime(
        2026, 3, 29, 1, 0, tzinfo=UTC
    )
    # 02:30 happens twice on 25 October: the first; the second is the same day.
    first = datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    assert digest.next_at(date(2026, 10, 24), berlin(2026, 10, 25, 0, 0), gap) == first
    assert digest.due(date(2026, 10, 24), first, gap)
    assert not digest.due(date(2026, 10, 25), first + timedelta(hours=1), gap)


def test_a_digest_covers_since_the_previous_one() -> None:
    now = berlin(2026, 11, 2, 8)
    before = now - timedelta(days=3)
    assert digest.window_start(before, now) == before
    assert digest.window_start(None, now) == now - timedelta(days=1)
    assert digest.window_start(now + timedelta(hours=1), now) == now - timedelta(days=1)
    assert digest.read_day("garbage") is None and digest.read_at("garbage") is None


# -- what ----------------------------------------------------------------------------------

HOSTILE = '<script>alert("x")</script><img src="https://evil.test/p.gif">'
NOW = datetime(2026, 11, 3, 7, 0, tzinfo=UTC)  # Tuesday 08:00 in Berlin
SINCE = NOW - timedelta(days=1)


def leads_of_a_day() -> list[Lead]:
    t = SINCE + timedelta(hours=2)
    hostile = dataclasses.replace(
        acked_lead("mallory@x.test", t, 30, source="website-form"),
        name=HOSTILE,
        subject=f"Re: {HOSTILE}",
        phone="+49 30 <b>1</b>",
    )
    replied = acked_lead(
        "rita@x.test",
        t + timedelta(hours=1),
        45,
        (600, "reply", "yes please"),
        (600, "automation ended: replied", ""),
        source="email",
    )
    replied = dataclasses.replace(replied, name="Rita Roof", conversation=Conversation.WAITING_US)
    bounced = dataclasses.replace(
        acked_lead("gone@x.test", t, 20, (900, "automation ended: bounced", "550")),
        undeliverable=True,
        conversation=Conversation.CLOSED,
        ended=Ended.BOUNCED,
    )
    quiet = make("quiet@x.test", t + timedelta(hours=3), source="email")  # never answered
    old = acked_lead("old@x.test", NOW - timedelta(days=10), 60)
    old = dataclasses.replace(old, conversation=Conversation.WAITING_THEM)
    return [hostile, replied, bounced, quiet, old]


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs += [(k, v or "") for k, v in attrs]

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parsed(page: str) -> Tags:
    p = Tags()
    p.feed(page)
    p.close()
    return p


def test_the_figures_are_in_both_parts() -> None:
    subject, text, page = digest.build(leads_of_a_day(), [], SINCE, NOW, settings(), BERLIN)
    assert subject.startswith("Digest Tue 03 Nov: 3 waiting for you, 4 new leads")
    shown = " | ".join(parsed(page).text)
    assert "new leads: 4 (email 2, website-form 2)" in text
    assert "new leads | 4 (email 2, website-form 2)" in shown
    assert "replies: 1 (from 1 lead)" in text and "replies | 1 (from 1 lead)" in shown
    for part in (text, shown):
        assert "replied 1" in part and "bounced 1" in part
        assert "Rita Roof <rita@x.test>" in part
        assert "not answered" in part
    # The person's first response: one of four never answered, so it is counted as such.
    assert "4 not answered" in text  # nobody wrote to any of the four
    assert "source: email" in text and "source: website-form" in text
    # Waiting for us, oldest first (mallory and the never-answered lead, and Rita's reply).
    waiting = text.split("WAITING FOR YOU (3), oldest first:")[1].split("TODAY'S")[0]
    # Rita waits since her reply (3 h 10 min after the last digest), not her enquiry.
    assert waiting.index("mallory@") < waiting.index("rita@") < waiting.index("quiet@")
    assert "22 h 0 min" in waiting and "20 h 50 min" in waiting and "19 h 0 min" in waiting
    assert text.count("\n  ") > 30 and "Tue 03 Nov    0" in text  # the 30-day chart


def test_the_html_has_no_remote_content_no_script_and_escapes_lead_text() -> None:
    _, text, page = digest.build(leads_of_a_day(), [], SINCE, NOW, settings(), BERLIN)
    p = parsed(page)
    assert not {"script", "img", "iframe", "object", "embed", "link", "style", "form"} & set(p.tags)
    for name, value in p.attrs:
        assert name not in ("src", "href", "background", "srcset", "action"), name
        assert not name.startswith("on"), name
        low = value.lower()
        assert "http" not in low and "//" not in low and "url(" not in low, (name, value)
    assert "<script" not in page and "evil.test/p.gif&quot;" in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert HOSTILE in " ".join(p.text)  # shown as text, not markup
    # The chart: 30 day rows of table cells, today's bar as wide as the busiest day's.
    assert page.count('bgcolor="#2563eb"') == 2  # 10 days ago and yesterday
    assert 'width="100%" bgcolor' in page
    assert "<script>" in text  # the plain text is plain: shown as written


def test_tasks_due_today_with_phone_numbers() -> None:
    book = load_rulebook(REPO / "rules", REPO / "templates")
    st = settings()
    arrived = datetime(2026, 10, 30, 10, 0, tzinfo=UTC)  # Friday; day 3 is Monday
    lead = dataclasses.replace(
        acked_lead("call@x.test", arrived, 10),
        name="Carl Caller",
        phone="+49 30 1234567",
        steps_done={"ack": "2026-10-30T10:00:10+00:00", "call-day0": "2026-10-30T10:00:10+00:00"},
    )
    now = berlin(2026, 11, 2, 8, 0)
    tasks = digest.tasks_today([lead], book, st, now)
    assert [(t.step, t.channel, t.done) for t in tasks] == [("call-day3", "call", False)]
    assert tasks[0].at == berlin(2026, 11, 2, 11, 0)  # the enquiry's local time, day 3
    _, text, page = digest.build([lead], [], None, now, st, BERLIN, tasks)
    assert (
        "call Carl Caller <call@x.test>, +49 30 1234567 (call-day3, due Mon 02 Nov 11:00)" in text
    )
    assert "+49 30 1234567" in page
    # Handed to the owner this morning: still on today's list, as done.
    done = dataclasses.replace(
        lead, steps_done={**lead.steps_done, "call-day3": "2026-11-02T08:00:00+00:00"}
    )
    later = digest.tasks_today([done], book, st, berlin(2026, 11, 2, 12))
    assert [(t.step, t.done) for t in later] == [("call-day3", True)]


def test_a_time_lapse_digest_counts_the_trials_leads() -> None:
    trial = [dataclasses.replace(x, simulated=True) for x in leads_of_a_day()]
    st = dataclasses.replace(settings(), simulated=True)
    subject, text, _ = digest.build(trial, [], SINCE, NOW, st, BERLIN)
    assert "(time-lapse)" in subject and "new leads: 4" in text
    _, text, _ = digest.build(trial, [], SINCE, NOW, settings(), BERLIN)
    assert "new leads: 0" in text  # outside a trial, trial leads never count


def test_the_mail_is_multipart_to_the_owner_without_reply_to() -> None:
    subject, text, page = digest.build(leads_of_a_day(), [], SINCE, NOW, settings(), BERLIN)
    out = digest.mail(subject, text, page, settings(), "<iw.1@shop.test>", NOW)
    msg = email.message_from_bytes(to_bytes(out), policy=email.policy.default)
    assert msg.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    assert msg["To"] == "owner@shop.test" and msg["Reply-To"] is None
    assert msg["X-Inboxwatch"] == "digest" and msg["Auto-Submitted"] == "auto-generated"


# -- config --------------------------------------------------------------------------------


def test_config_keys(tmp_path: Path) -> None:
    cfg = load_config(_config(tmp_path, ALWAYS_OPEN))
    assert cfg.digest is True and cfg.digest_time == time(8, 0)
    st = Settings.from_config(cfg)
    assert st.digest and st.digest_time == time(8, 0)
    path = _config(tmp_path, "")
    text = path.read_text().replace(
        '[owner]\naddress = "owner@shop.test"',
        '[owner]\naddress = "owner@shop.test"\ndigest = "yes"\ndigest_time = "8 am"',
    )
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    found = {(p.key, p.line) for p in info.value.problems}
    lines = text.splitlines()
    assert found == {
        ("owner.digest", lines.index('digest = "yes"') + 1),
        ("owner.digest_time", lines.index('digest_time = "8 am"') + 1),
    }


# -- the daemon ----------------------------------------------------------------------------


class Shop:
    """The daemon on the in-memory edges and a fixed clock; restart keeps the store."""

    def __init__(self, tmp_path: Path, start: datetime) -> None:
        self.path = _config(tmp_path, ALWAYS_OPEN)
        owner = '[owner]\naddress = "owner@shop.test"'
        self.path.write_text(
            self.path.read_text().replace(owner, owner + '\ndigest_time = "08:00"')
        )
        self.clock = FixedClock(start)
        self.store = MemoryStore()
        self.sender = MemorySender()
        self.source = MemorySource(clock=self.clock.now)
        self.daemon = self.make()

    def make(self) -> Daemon:
        cfg, book = load_all(self.path)
        d = Daemon(cfg, book, self.store, self.clock, self.source, self.sender, journal=None)
        d.connect(self.clock.now())
        return d

    def at(self, t: datetime) -> None:
        self.clock.set(t)
        self.daemon.tick(t)

    def digests(self) -> list[bytes]:
        return [e.raw for e in self.sender.sent if b"X-Inboxwatch: digest" in e.raw]


def test_the_daemon_sends_one_digest_a_day_across_restarts(tmp_path: Path) -> None:
    start = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)  # a Monday, UTC config
    shop = Shop(tmp_path, start)
    shop.at(start)
    shop.source.deliver(
        mail("lead@customer.test", "shop@shop.test", "A quote", "Hello", name="Lena"),
        received=start,
    )
    shop.at(start + timedelta(minutes=1))
    assert shop.digests() == []
    # The daemon wakes for the digest: the next wake is 08:00 at the latest.
    assert shop.daemon.seconds_to_next(start + timedelta(minutes=1)) <= 2 * 3600 - 60
    for minutes in (120, 121, 125):  # 08:00, and two ticks after it
        shop.at(start + timedelta(minutes=minutes))
    assert len(shop.digests()) == 1
    first = email.message_from_bytes(shop.digests()[0], policy=email.policy.default)
    assert first["To"] == "owner@shop.test"
    assert "Lena <lead@customer.test>" in first.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    shop.daemon = shop.make()  # a restart around the digest time
    shop.at(start + timedelta(minutes=130))
    assert len(shop.digests()) == 1
    # The next day: one more, covering since the first.
    for hours in (23, 26, 26.1, 30):
        shop.at(start + timedelta(hours=hours))
        if hours == 26.1:
            shop.daemon = shop.make()
    assert len(shop.digests()) == 2
    second = email.message_from_bytes(shop.digests()[1], policy=email.policy.default)
    body = second.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "Covers Mon 02 Mar 08:00 to Tue 03 Mar 08:00" in body
    assert "new leads: 0" in body  # Lena was in the first one


def test_commands_print_and_html(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _config(tmp_path, ALWAYS_OPEN)
    assert main(["digest", "--print", "-c", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Digest ") and "WAITING FOR YOU (0)" in out
    page = tmp_path / "digest.html"
    assert main(["digest", "--html", str(page), "-c", str(path)]) == 0
    assert page.read_text().startswith("<!DOCTYPE html>")
    assert main(["digest", "-c", str(path)]) == 2  # one of --print, --send, --html


def test_a_first_start_after_the_digest_time_waits_for_tomorrows(tmp_path: Path) -> None:
    st = settings()
    assert digest.first_day(berlin(2026, 11, 2, 10), st) == MON
    assert digest.first_day(berlin(2026, 11, 2, 8, 10), st) == MON - timedelta(days=1)
    start = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # Monday, after 08:00
    shop = Shop(tmp_path, start)
    for hours in (0, 1, 6, 21.9):
        shop.at(start + timedelta(hours=hours))
    assert shop.digests() == []
    shop.at(start + timedelta(hours=22))  # Tuesday 08:00
    assert len(shop.digests()) == 1


def test_durations_read_in_words_in_the_digest_and_short_in_the_terminal() -> None:
    cases = [(3.0, "3 s", "3s"), (240.0, "4 min", "4m"), (7200.0, "2.0 h", "2.0h")]
    cases += [(200000.0, "2.3 days", "2.3d")]
    for seconds, long, short in cases:
        assert (duration(seconds), duration(seconds, short=True)) == (long, short)
    assert (duration(None, 0), duration(None, 3, short=True)) == ("-", "never")
