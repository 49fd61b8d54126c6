"""`inboxwatch pause` / `resume` beside a running daemon (real Dovecot and SMTP; the
daemon driven tick by tick on a fixed clock): mail to leads is held, new leads are still
recorded and told to the owner, and what grew too old meanwhile is listed, not sent."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from harness import RunningDaemon

from inboxwatch.cli import main
from inboxwatch.service.clock import FixedClock
from inboxwatch.testing.devservers import MailServers
from inboxwatch.testing.mailfactory import mail, parse

pytestmark = pytest.mark.servers
Capsys = pytest.CaptureFixture[str]


@pytest.fixture
def daemon(mail_servers: MailServers, shop: str, tmp_path: Path) -> Iterator[RunningDaemon]:
    rd = RunningDaemon(
        mail_servers, shop, tmp_path / "iw", clock=FixedClock(datetime.now(UTC)), poll_seconds=60
    )
    rd.start()
    yield rd
    rd.stop()


def status(rd: RunningDaemon, capsys: Capsys) -> dict[str, object]:
    capsys.readouterr()
    main(["status", "--json", "--config", str(rd.config_path)])
    report: dict[str, object] = json.loads(capsys.readouterr().out)
    return report


def enquiry(servers: MailServers, rd: RunningDaemon, lead: str, subject: str) -> None:
    servers.deliver(rd.shop, mail(lead, rd.address, subject, name="Lea Lead"), sender=lead)


def test_a_pause_holds_mail_to_leads_records_new_ones_and_resume_sends_it(
    mail_servers: MailServers, daemon: RunningDaemon, capsys: Capsys
) -> None:
    cfg = str(daemon.config_path)
    owner = mail_servers.address("owner")
    assert main(["pause", "--config", cfg]) == 0
    assert "paused until resumed" in capsys.readouterr().out
    lead = "paused.lead@customer.test"
    enquiry(mail_servers, daemon, lead, "Kitchen quote")
    # The running daemon follows the marker on its next tick: no restart.
    daemon.wait_until(lambda: daemon.lead(lead), what="the lead recorded")
    daemon.wait_until(lambda: daemon.sent_to(owner, "owner-alert"), what="owner alert")
    for _ in range(3):
        daemon.tick()
    assert daemon.sent_to(lead) == []  # no acknowledgement while paused
    report = status(daemon, capsys)
    assert report["paused"] is not None
    assert report["outbox"] == [
        {
            "purpose": "ack",
            "to": lead,
            "lead": lead,
            "queued": report["outbox"][0]["queued"],  # type: ignore[index]
            "why": "held by inboxwatch pause",
        }
    ]
    assert report["last_heard"] is not None
    # A held message wakes no one: the daemon sleeps until its own next work.
    assert daemon.daemon is not None
    assert daemon.daemon.seconds_to_next(daemon.clock.now()) > 60

    assert main(["resume", "--config", cfg]) == 0
    assert "resumed" in capsys.readouterr().out
    acks = daemon.wait_until(lambda: daemon.sent_to(lead, "ack"), what="the ack after resume")
    assert parse(acks[0].data)["Subject"] == "Re: Kitchen quote"
    assert status(daemon, capsys)["paused"] is None
    assert main(["resume", "--config", cfg]) == 1  # not paused any more
    assert "not paused" in capsys.readouterr().err


def test_a_pause_that_ends_lists_enquiries_too_old_to_acknowledge(
    mail_servers: MailServers, daemon: RunningDaemon, capsys: Capsys
) -> None:
    cfg = str(daemon.config_path)
    owner = mail_servers.address("owner")
    until = date.today() + timedelta(days=3)
    assert main(["pause", "--until", until.isoformat(), "--config", cfg]) == 0
    lead = "holiday.lead@customer.test"
    enquiry(mail_servers, daemon, lead, "While you were away")
    daemon.wait_until(lambda: daemon.lead(lead), what="the lead recorded")
    assert daemon.sent_to(lead) == []
    # The holiday is over, the enquiry is older than max_age_days (7): not acknowledged.
    assert isinstance(daemon.clock, FixedClock)
    daemon.clock.advance(timedelta(days=8))
    notice = daemon.wait_until(
        lambda: [
            m
            for m in daemon.sent_to(owner, "owner-notice")
            if "after the pause" in str(parse(m.data)["Subject"])
        ],
        what="the owner's list",
    )
    body = parse(notice[0].data).get_body(("plain",))
    assert body is not None and lead in body.get_content()
    for _ in range(3):
        daemon.tick()
    assert daemon.sent_to(lead) == []
    stored = daemon.lead(lead)
    assert stored is not None and any("not sent" in e.what for e in stored.events)
    assert status(daemon, capsys)["paused"] is None


def test_pause_until_a_past_date_is_refused(daemon: RunningDaemon, capsys: Capsys) -> None:
    past = (date.today() - timedelta(days=1)).isoformat()
    assert main(["pause", "--until", past, "--config", str(daemon.config_path)]) == 2
    assert "--until" in capsys.readouterr().err
    assert main(["pause", "--until", "soon", "--config", str(daemon.config_path)]) == 2
    assert 'expected "YYYY-MM-DD"' in capsys.readouterr().err


def test_a_dry_run_beside_a_paused_daemon_holds_what_it_holds(
    daemon: RunningDaemon, capsys: Capsys
) -> None:
    from inboxwatch.service.pause import MARKER
    from inboxwatch.service.runner import dry_run_state
    from inboxwatch.userfiles.config import load_config

    assert main(["pause", "--config", str(daemon.config_path)]) == 0
    with dry_run_state(load_config(daemon.config_path)).transaction() as state:
        pause = state.marker(MARKER)
    assert pause is not None and json.loads(pause)["until"] is None
