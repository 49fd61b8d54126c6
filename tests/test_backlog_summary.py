"""Issue 11: a backlog gives the owner one summary alert that lists the enquiries *and*
their calls and texts due now, not an alert per lead or per task; many tasks falling
due later in one pass are one alert too.

On the in-memory edges of ``tests/test_scenario.py`` (the daemon's real ticks, no IO).
"""

from __future__ import annotations

import email
import email.policy
from datetime import timedelta
from pathlib import Path

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
