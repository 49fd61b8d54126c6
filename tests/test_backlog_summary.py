"""Issue 11: a backlog gives the owner one summary alert that lists the enquiries *and*
their calls and texts due now, not an alert per lead or per task; many tasks falling
due later in one pass are one alert too.

On the in-memory edges of ``tests/test_scenario.py`` (the daemon's real ticks, no IO).
"""

from __future__ import annotations

import email
import email.policy
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from inboxwatch.core import backlog, route
from inboxwatch.core.actions import Queue
from inboxwatch.core.queue import Purpose
from inboxwatch.service.daemon import Daemon
from inboxwatch.testing.mailfactory import mail
from tests.test_scenario import START, MemoryEdges, purposes

OWNER = "owner@shop.test"
N = 23  # more than backlog_summary_over (20)


def texts(e: MemoryEdges, purpose: str) -> list[str]:
    out = []
    for raw in e.outgoing(OWNER):
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        if msg["X-Inboxwatch"] == purpose:
            body = msg.get_body(("plain",))
            assert body is not None
            out.append(f"{msg['Subject']}\n{body.get_content()}")
    return out


def form_mail(i: int) -> bytes:
    """A web form's notification with the lead's phone (the shipped form rule reads it)."""
    body = (
        f"Name: Buyer {i}\nEmail: buyer{i}@customer.test\nPhone: +49 30 555 {i:04d}\n"
        "Message: A quote for a new kitchen, please."
    )
    return mail(
        "WordPress <wordpress@shop.test>",
        "shop@shop.test",
        "[Shop] New contact form submission",
        body,
    )


def test_a_backlog_and_its_calls_are_one_alert(tmp_path: Path) -> None:
    e = MemoryEdges(tmp_path)
    leads = [f"b{i}@customer.test" for i in range(N)]
    for i, lead in enumerate(leads):
        e.deliver(mail(lead, e.shop, "Quote?", name=f"Buyer {i}"))
    e.deliver(form_mail(99))  # a form's lead, with a phone number
    e.daemon.tick(START)
    e.daemon.tick(START + timedelta(hours=2))  # past the hourly cap the backlog filled
    owner = purposes(e.outgoing(OWNER))
    assert owner.count("owner-notice") == 1
    assert "owner-alert" not in owner and "owner-task" not in owner  # none one by one
    (summary,) = texts(e, "owner-notice")
    assert summary.startswith(f"inboxwatch: {N + 1} new leads at once")
    assert f"Calls and texts due now ({N + 1})" in summary
    assert "- call Buyer 99 <buyer99@customer.test>: +49 30 555 0099" in summary
    for i, lead in enumerate(leads):
        assert f"- Buyer {i} <{lead}>, arrived" in summary
        assert f"- call Buyer {i} <{lead}>: no phone number yet" in summary
        # The day-0 call is recorded as handed to the owner: not planned a second time.
        got = e.lead(lead)
        assert got is not None and got.steps_done.get("call-day0", "").startswith("2026-03-02")
    # Day 3: the whole backlog's day-3 calls fall due in one pass: one alert for them.
    e.daemon.tick(START + timedelta(days=3, minutes=1))
    e.daemon.tick(START + timedelta(days=3, hours=2))
    owner = purposes(e.outgoing(OWNER))
    assert "owner-task" not in owner and owner.count("owner-notice") == 2
    day3 = texts(e, "owner-notice")[1]
    assert day3.startswith(f"inboxwatch: {N + 1} calls and texts due")
    assert all(f"- call Buyer {i} <{lead}>" in day3 for i, lead in enumerate(leads))


def test_a_few_leads_get_their_alerts_and_tasks_one_by_one(tmp_path: Path) -> None:
    e = MemoryEdges(tmp_path)
    for i in range(3):
        e.deliver(mail(f"few{i}@customer.test", e.shop, "Quote?"))
    e.daemon.tick(START)
    owner = purposes(e.outgoing(OWNER))
    assert owner.count("owner-alert") == 3 and owner.count("owner-task") == 3
    assert "owner-notice" not in owner


def test_past_the_threshold_no_alert_is_even_composed(tmp_path: Path) -> None:
    """The summary is certain once a read has more alerts than backlog_summary_over: the
    rest of the backlog's leads get none composed (it was half the work of a backlog)."""
    e = MemoryEdges(tmp_path)
    queued: list[str] = []

    def hook(what: str, data: Mapping[str, Any]) -> None:
        if what == "applied":
            queued.extend(a.item.purpose for a in data["actions"] if isinstance(a, Queue))

    e.daemon.hooks.append(hook)
    for i in range(60):
        e.deliver(mail(f"m{i}@customer.test", e.shop, "Quote?"))
    for hours in range(3):  # past the hourly cap the backlog fills
        e.daemon.tick(START + timedelta(hours=2 * hours))
    assert queued.count(Purpose.ACK) == 60
    assert queued.count(Purpose.OWNER_ALERT) == 21  # up to the threshold, then none
    (summary,) = texts(e, "owner-notice")
    assert summary.startswith("inboxwatch: 60 new leads at once")
    assert all(f" m{i}@customer.test, arrived" in summary for i in range(60))
    assert "owner-alert" not in purposes(e.outgoing(OWNER))


def test_a_stop_in_the_middle_of_a_backlog_still_gives_one_summary_after_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The leads waiting for the summary are in the state with each chunk's decisions:
    a daemon that dies before the summary is queued sends it after its restart, and no
    alert one by one."""
    e = MemoryEdges(tmp_path)
    for i in range(130):  # two chunks
        e.deliver(mail(f"s{i}@customer.test", e.shop, "Quote?"))

    def die(*args: object, **kwargs: object) -> list[object]:
        raise RuntimeError("killed before the summary (simulated)")

    monkeypatch.setattr(route, "summarize_backlog", die)
    with pytest.raises(RuntimeError, match="simulated"):
        e.daemon.tick(START)
    monkeypatch.undo()
    assert not texts(e, "owner-notice")
    # A new daemon on the same state (a restart): nothing new in the inbox.
    restarted = Daemon(
        e.daemon.cfg, e.daemon.book, e.store, e.clock, e.source, e.sender, journal=None
    )
    restarted.connect(START)
    for hours in range(5):  # past the hourly cap the backlog fills
        restarted.tick(START + timedelta(minutes=1, hours=2 * hours))
    (summary,) = texts(e, "owner-notice")
    assert summary.startswith("inboxwatch: 130 new leads at once")
    assert "owner-alert" not in purposes(e.outgoing(OWNER))
    assert len([r for r in e.sender.sent if r.rcpt.startswith("s")]) == 130  # acks, once
    restarted.tick(START + timedelta(hours=11))
    assert len(texts(e, "owner-notice")) == 1  # the marker is cleared with the summary


def test_a_lead_forgotten_during_a_backlog_is_neither_kept_nor_named(tmp_path: Path) -> None:
    """`inboxwatch forget` is safe beside the running daemon: an address erased between
    two chunks of a backlog must not come back through the summary's list."""
    e = MemoryEdges(tmp_path)
    for i in range(15):  # chunk 1: under the threshold, with 85 robot messages
        e.deliver(mail(f"f{i}@customer.test", e.shop, "Quote?"))
    for i in range(85):
        robot = mail(
            f"noreply{i}@robot.test",
            e.shop,
            "Invoice",
            headers={"Auto-Submitted": "auto-generated"},
        )
        e.deliver(robot)
    for i in range(15, 25):  # chunk 2 passes the threshold
        e.deliver(mail(f"f{i}@customer.test", e.shop, "Quote?"))
    reads: list[int] = []
    markers: list[str] = []

    def hook(what: str, data: Mapping[str, Any]) -> None:
        if what == "read":
            reads.append(data["count"])
            if len(reads) == 2:  # chunk 1 is committed: the privacy request comes now
                assert e.store.erase("f0@customer.test", START).found
        if what == "applied":
            with e.store.transaction() as state:
                markers.append(state.marker(backlog.MARKER) or "")

    e.daemon.hooks.append(hook)
    for hours in range(4):
        e.daemon.tick(START + timedelta(hours=2 * hours))
    assert len(reads) >= 2 and any(markers)
    assert not any("f0@customer.test" in m for m in markers)
    (summary,) = texts(e, "owner-notice")
    assert summary.startswith("inboxwatch: 24 new leads at once")
    assert "f0@customer.test" not in summary and "f1@customer.test" in summary
