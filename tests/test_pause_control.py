"""The rest of the owner's controls: why `status` says a message waits, and `test-send`
(one sample of each template to the owner, through the real SMTP server)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from harness import REPO

from inboxwatch.cli import main
from inboxwatch.core.queue import OutboxItem, Purpose
from inboxwatch.core.timing import SendingWindow
from inboxwatch.service.pause import HELD
from inboxwatch.service.status_command import why_waiting
from inboxwatch.testing.devservers import MailServers
from inboxwatch.testing.mailfactory import parse
from inboxwatch.userfiles.rulebook import load_rulebook

NOW = datetime(2026, 3, 2, 20, 0, tzinfo=UTC)  # a Monday evening: sending hours are over
WINDOW = SendingWindow(ZoneInfo("UTC"), time(9), time(17))


def item(purpose: Purpose = Purpose.FOLLOWUP, **kw: object) -> OutboxItem:
    base = OutboxItem(
        "<1@shop.test>", purpose, "ann@customer.test", "day1", "shop@shop.test",
        "ann@customer.test", b"raw", NOW - timedelta(hours=1), NOW - timedelta(minutes=1),
    )  # fmt: skip
    return dataclasses.replace(base, **kw)  # type: ignore[arg-type]


def test_status_names_why_each_message_waits() -> None:
    assert why_waiting(item(error=HELD), NOW, 5, WINDOW, None) == "held by inboxwatch pause"
    quota = why_waiting(item(Purpose.ACK), NOW, 5, WINDOW, NOW + timedelta(hours=2))
    assert quota == "provider's sending limit: paused until 2026-03-02 22:00"
    retry = item(Purpose.ACK, next_try=NOW + timedelta(minutes=5), attempts=2, error="421 busy")
    assert why_waiting(retry, NOW, 5, WINDOW, None) == "retry 3 at 03-02 20:05: 421 busy"
    hours = why_waiting(item(), NOW, 5, WINDOW, None)
    assert hours == "outside sending hours (they open Tue 09:00)"
    assert why_waiting(item(Purpose.ACK), NOW, 0, WINDOW, None).startswith("send cap reached")
    assert why_waiting(item(Purpose.ACK), NOW, 5, WINDOW, None) == "due now"


@pytest.mark.servers
def test_test_send_mails_one_sample_of_each_template_to_the_owner(
    mail_servers: MailServers, shop: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = mail_servers.inboxwatch_config(
        shop, tmp_path / "iw", rules=REPO / "rules", templates=REPO / "templates", tls=True
    )
    owner, me = mail_servers.address("owner"), mail_servers.address(shop)
    assert main(["test-send", "--config", str(cfg)]) == 0
    book = load_rulebook(REPO / "rules", REPO / "templates")
    names = sorted([*book.templates, *(f"{k}/{n}" for k, t in book.languages.items() for n in t)])
    got = mail_servers.smtp_wait(len(names), match=lambda m: m.mail_from == me)
    assert all(m.rcpt_tos == (owner,) for m in got)
    subjects = [str(parse(m.data)["Subject"]) for m in got]
    assert sorted(s.split("]")[0].removeprefix("[inboxwatch test: ") for s in subjects) == names
    assert capsys.readouterr().out.count(f"sent to {owner}") == len(names)
    assert not (tmp_path / "iw" / "state").exists()  # no state was made
