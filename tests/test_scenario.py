"""One whole cadence, driven by ``tick(now)`` on a fixed clock, over both sets of edges.

``memory``: the in-memory mail source, sender and store (milliseconds, no servers);
``servers``: the real Dovecot, SMTP server and TinyDB file. The same scenario must give
the same mail on both: enquiry → acknowledgement, follow-ups by day, an out-of-office
with a return date holds the cadence, the lead's reply stops it.
"""

from __future__ import annotations

import email
import email.policy
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import pytest
from harness import REPO

from inboxwatch.adapters.memory_mail import MemorySource
from inboxwatch.adapters.memory_sender import MemorySender
from inboxwatch.adapters.memory_store import MemoryStore
from inboxwatch.adapters.ports import CopiesNotSaved, Outcome, Result
from inboxwatch.core import language
from inboxwatch.core.lead import Automation, Conversation, Ended, Lead
from inboxwatch.service.clock import FixedClock
from inboxwatch.service.commands import load_all
from inboxwatch.service.daemon import Daemon
from inboxwatch.service.runner import make_daemon
from inboxwatch.testing.devservers import MailServers
from inboxwatch.testing.mailfactory import mail, reply_to

ALWAYS_OPEN = (
    '[sending]\nwindow_start = "00:00"\nwindow_end = "23:59"\n'
    'days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]\n'
)
START = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # a Monday


class Edges(Protocol):
    daemon: Daemon
    clock: FixedClock
    shop: str

    def deliver(self, raw: bytes) -> None: ...

    def outgoing(self, rcpt: str) -> list[bytes]: ...

    def lead(self, address: str) -> Lead | None: ...


def _config(tmp_path: Path, extra: str = ALWAYS_OPEN) -> Path:
    cfg = tmp_path / "config.toml"
    cfg.write_text(
        f"""timezone = "UTC"
[imap]
host = "127.0.0.1"
port = 1
tls = "none"
username = "shop@shop.test"
password_env = "IW_TEST_PASSWORD"
[smtp]
host = "127.0.0.1"
port = 1
tls = "none"
[identity]
address = "shop@shop.test"
name = "Example Shop"
[owner]
address = "owner@shop.test"
[state]
path = "state/iw.json"
[paths]
rules = "{REPO / "rules"}"
templates = "{REPO / "templates"}"
{extra}"""
    )
    return cfg


class MemoryEdges:
    def __init__(self, tmp_path: Path, extra: str = ALWAYS_OPEN) -> None:
        cfg, book = load_all(_config(tmp_path, extra))
        self.clock = FixedClock(START)
        self.shop = cfg.identity.address
        self.source = MemorySource(clock=self.clock.now)
        self.sender = MemorySender()
        self.store = MemoryStore()
        self.daemon = Daemon(
            cfg, book, self.store, self.clock, self.source, self.sender, journal=None
        )
        self.daemon.connect(self.clock.now())
        self.daemon.tick(self.clock.now())  # first start: mail already there is not answered

    def deliver(self, raw: bytes) -> None:
        self.source.deliver(raw, received=self.clock.now())

    def outgoing(self, rcpt: str) -> list[bytes]:
        return [e.raw for e in self.sender.sent if e.rcpt == rcpt]

    def lead(self, address: str) -> Lead | None:
        with self.store.transaction() as state:
            return state.lead(address)


class ServerEdges:
    def __init__(self, servers: MailServers, shop: str, tmp_path: Path) -> None:
        self.servers, self.user = servers, shop
        self.shop = servers.address(shop)
        config = servers.inboxwatch_config(
            shop,
            tmp_path / "iw",
            rules=REPO / "rules",
            templates=REPO / "templates",
            extra=ALWAYS_OPEN,
            imap_extra="poll_seconds = 3600\nidle_renew_seconds = 600",
        )
        cfg, book = load_all(config)
        pw = cfg.imap.password.resolve()
        # The same fixed start as the memory edges, not the wall clock: the day offsets
        # below (a hold ending at midnight, a window closing at 23:59) assume a mid-morning
        # start, and a run begun at 23:50 would cross them. Mail that Dovecot dates later
        # (its INTERNALDATE is real time) arrives at ``now`` (``route.arrival``).
        self.clock = FixedClock(START)
        self.daemon = make_daemon(cfg, book, (pw, pw), clock=self.clock)
        self.daemon.connect(self.clock.now())
        self.daemon.tick(self.clock.now())  # first start: mail already there is not answered

    def deliver(self, raw: bytes) -> None:
        self.servers.deliver(self.user, raw, sender="lead@customer.test")

    def outgoing(self, rcpt: str) -> list[bytes]:
        return [m.data for m in self.servers.smtp_sent if rcpt in m.rcpt_tos]

    def lead(self, address: str) -> Lead | None:
        with self.daemon.store.transaction() as state:
            return state.lead(address)


@pytest.fixture(params=["memory", "servers"])
def edges(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Edges]:
    made: Any
    if request.param == "memory":
        made = MemoryEdges(tmp_path)
    else:
        servers = request.getfixturevalue("mail_servers")
        made = ServerEdges(servers, request.getfixturevalue("shop"), tmp_path)
    yield made
    made.daemon.source.close()


def purposes(raws: list[bytes]) -> list[str]:
    return [
        str(email.message_from_bytes(r, policy=email.policy.default)["X-Inboxwatch"]) for r in raws
    ]


def test_a_whole_cadence_with_a_hold_and_a_reply(edges: Edges) -> None:
    # The daemon loads the language model beside its first read (about a second of CPU):
    # load it before timing, so the bound below measures the cadence logic, not the model.
    language.warm_up()
    started = time.process_time()  # CPU time: other processes on a busy machine don't count
    lead = f"rita.{time.time_ns()}@customer.test"
    owner = "owner@shop.test" if isinstance(edges, MemoryEdges) else None
    t0 = edges.clock.now()

    def day(n: float) -> None:
        edges.clock.set(t0 + timedelta(days=n))
        edges.daemon.tick(edges.clock.now())

    enquiry = mail(lead, edges.shop, "Quote for a new roof", "What would it cost?", name="Rita")
    edges.deliver(enquiry)
    day(0)
    assert purposes(edges.outgoing(lead)) == ["ack"]
    if owner:
        assert "owner-alert" in purposes(edges.outgoing(owner))
    day(0.5)
    assert purposes(edges.outgoing(lead)) == ["ack"]  # nothing before day 1
    day(1.01)
    assert purposes(edges.outgoing(lead)) == ["ack", "followup"]
    # An out-of-office with a return date: the cadence waits until after it.
    back = (t0 + timedelta(days=5)).date()
    ooo = mail(
        lead,
        edges.shop,
        "Automatic reply: Quote for a new roof",
        f"I am out of the office until {back:%d %B %Y}.",
        headers={"Auto-Submitted": "auto-replied"},
    )
    edges.deliver(ooo)
    day(1.5)
    held = edges.lead(lead)
    assert held is not None and held.automation is Automation.HELD
    for n in (3.01, 6.01):
        day(n)
        assert purposes(edges.outgoing(lead)) == ["ack", "followup"]  # held until back
    day(8.01)  # "until <day 5>": back the day after, next touch the first day after that
    assert purposes(edges.outgoing(lead)) == ["ack", "followup", "followup"]
    # The lead answers: the sequence stops for good.
    edges.deliver(reply_to(edges.outgoing(lead)[-1], lead, "Yes please, call me Thursday."))
    day(6.5)
    for n in (9.01, 14.01, 20.0):  # (a month after ending, a lead moves to the archive)
        day(n)
    assert purposes(edges.outgoing(lead)) == ["ack", "followup", "followup"]
    done = edges.lead(lead)
    assert done is not None and done.ended is Ended.REPLIED
    assert done.conversation is Conversation.WAITING_US
    if isinstance(edges, MemoryEdges):
        assert time.process_time() - started < 1.0  # the logic runs in milliseconds


# -- paths that had no test --------------------------------------------------------------------


def test_an_enquiry_older_than_max_age_is_not_acknowledged(tmp_path: Path) -> None:
    e = MemoryEdges(tmp_path)
    e.source.deliver(
        mail("old@customer.test", e.shop, "Quote?"), received=START - timedelta(days=8)
    )
    e.daemon.tick(START)
    assert e.sender.sent == []
    assert e.lead("old@customer.test") is None


def test_a_reply_to_us_with_no_live_lead_reaches_the_owner_and_gets_no_ack(
    tmp_path: Path,
) -> None:
    e = MemoryEdges(tmp_path)
    ours = mail(e.shop, "gone@customer.test", "Your quote", msgid="<iw.0123abcd@shop.test>")
    e.deliver(reply_to(ours, "gone@customer.test", "Is the offer still open?"))
    e.daemon.tick(START)
    assert e.outgoing("gone@customer.test") == []
    assert purposes(e.outgoing("owner@shop.test")) == ["owner-reply"]
    lead = e.lead("gone@customer.test")
    assert lead is not None and lead.conversation is Conversation.WAITING_US
    assert lead.automation is Automation.ENDED


def test_a_recipient_refused_for_good_at_rcpt_ends_the_lead_and_suppresses_it(
    tmp_path: Path,
) -> None:
    e = MemoryEdges(tmp_path)
    e.sender.script["nobody@customer.test"] = Result(Outcome.REFUSED, "550 5.1.1 no such user")
    e.deliver(mail("nobody@customer.test", e.shop, "Quote?"))
    e.daemon.tick(START)
    lead = e.lead("nobody@customer.test")
    assert lead is not None and lead.ended is Ended.BOUNCED and lead.undeliverable
    with e.store.transaction() as state:
        assert "nobody@customer.test" in state.suppressed()
        assert state.queued() == []
    # Writing again, they are not acknowledged again (the address is suppressed).
    e.deliver(mail("nobody@customer.test", e.shop, "Hello?"))
    e.daemon.tick(START + timedelta(days=10))
    assert e.outgoing("nobody@customer.test") == []


def test_a_deferred_ack_is_retried_with_back_off_and_sent_once(tmp_path: Path) -> None:
    e = MemoryEdges(tmp_path)
    e.sender.script["later@customer.test"] = Result(Outcome.DEFERRED, "451 try later")
    e.deliver(mail("later@customer.test", e.shop, "Quote?"))
    e.daemon.tick(START)
    assert e.outgoing("later@customer.test") == []
    wait = e.daemon.seconds_to_next(START)
    assert 20 <= wait <= 40  # the first retry comes 30 s later, not at once
    del e.sender.script["later@customer.test"]
    e.daemon.tick(START + timedelta(seconds=31))
    e.daemon.tick(START + timedelta(seconds=62))
    assert purposes(e.outgoing("later@customer.test")) == ["ack"]


def test_a_lead_that_trips_a_bug_does_not_stop_the_others_or_spin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from inboxwatch.core import route

    e = MemoryEdges(tmp_path)
    for who in ("poison", "fine"):
        e.deliver(mail(f"{who}@customer.test", e.shop, "Quote?"))
    e.daemon.tick(START)
    real_plan = route.plan

    def plan(lead: Lead, *args: Any, **kwargs: Any) -> Any:
        if lead.address == "poison@customer.test":
            raise RuntimeError("a bug")
        return real_plan(lead, *args, **kwargs)

    monkeypatch.setattr(route, "plan", plan)
    day1 = START + timedelta(days=1, minutes=1)
    e.daemon.tick(day1)
    assert purposes(e.outgoing("fine@customer.test")) == ["ack", "followup"]
    assert purposes(e.outgoing("poison@customer.test")) == ["ack"]
    assert e.daemon.seconds_to_next(day1) >= 3000  # looked at again later, not at once
    monkeypatch.setattr(route, "plan", real_plan)
    e.daemon.tick(day1 + timedelta(hours=1, minutes=1))
    assert purposes(e.outgoing("poison@customer.test")) == ["ack", "followup"]


def test_a_copy_for_sent_that_fails_on_a_dropped_connection_is_saved_on_the_next_tick(
    tmp_path: Path,
) -> None:
    from inboxwatch.errors import TransientError

    e = MemoryEdges(tmp_path)
    e.deliver(mail("lea@customer.test", e.shop, "Quote?"))
    real_save = e.source.save_sent
    calls = {"n": 0}

    def save_once_broken(raws: Sequence[bytes], when: datetime) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise TransientError("IMAP append to Sent: connection reset (simulated)")
        real_save(raws, when)

    e.source.save_sent = save_once_broken  # type: ignore[method-assign]
    e.daemon.tick(START)
    assert purposes(e.outgoing("lea@customer.test")) == ["ack"]
    assert e.source.saved == []
    e.daemon.tick(START + timedelta(minutes=1))
    assert [purposes([raw]) for raw in e.source.saved] == [["ack"]]


def test_copies_for_sent_go_in_one_call_and_after_a_partial_fault_only_the_rest_is_retried(
    tmp_path: Path,
) -> None:
    """Atomic batches (RFC 3502 MULTIAPPEND): a fault after the first batch leaves those
    copies in Sent; the next tick saves the rest, none twice."""
    e = MemoryEdges(tmp_path)
    leads = [f"c{i}@customer.test" for i in range(3)]
    for lead in leads:
        e.deliver(mail(lead, e.shop, "Quote?"))
    real_save, calls = e.source.save_sent, []

    def first_saved_then_broken(raws: Sequence[bytes], when: datetime) -> None:
        calls.append(len(raws))
        if len(calls) == 1:
            real_save(raws[:1], when)
            raise CopiesNotSaved("IMAP multiappend: connection reset (simulated)", 1)
        real_save(raws, when)

    e.source.save_sent = first_saved_then_broken  # type: ignore[method-assign]
    e.daemon.tick(START)
    assert calls == [3] and len(e.source.saved) == 1
    e.daemon.tick(START + timedelta(minutes=1))
    assert calls == [3, 2]
    assert sorted(purposes([raw]) == ["ack"] for raw in e.source.saved) == [True] * 3
    to = sorted(str(email.message_from_bytes(raw)["To"]) for raw in e.source.saved)
    assert to == sorted(leads)


def test_a_backlog_gives_the_owner_one_summary_not_an_alert_per_lead(tmp_path: Path) -> None:
    e = MemoryEdges(tmp_path)
    leads = [f"b{i}@customer.test" for i in range(25)]
    for lead in leads:
        e.deliver(mail(lead, e.shop, "Quote?", name=f"Buyer {lead[:3]}"))
    e.daemon.tick(START)
    assert all(purposes(e.outgoing(lead)) == ["ack"] for lead in leads)
    owner = purposes(e.outgoing("owner@shop.test"))
    assert "owner-alert" not in owner and owner.count("owner-notice") == 1
    (summary,) = [r for r in e.outgoing("owner@shop.test") if b"owner-notice" in r]
    text = email.message_from_bytes(summary, policy=email.policy.default)
    assert text["Subject"] == "inboxwatch: 25 new leads at once"
    assert all(lead in text.get_body(("plain",)).get_content() for lead in leads)
    # A few at a time are alerted one by one, as usual.
    for i in range(3):
        e.deliver(mail(f"later{i}@customer.test", e.shop, "Quote?"))
    e.daemon.tick(START + timedelta(minutes=5))
    e.daemon.tick(START + timedelta(hours=2))  # past the hourly cap the backlog filled
    assert purposes(e.outgoing("owner@shop.test")).count("owner-alert") == 3
