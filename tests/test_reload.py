"""SIGHUP reloads the whole config in a running daemon (real Dovecot and SMTP, the daemon
driven tick by tick): a valid change applies at the next tick, the state path and the
mailbox are kept until a restart (and the log says so), and a config that fails `check`
is refused while the old one goes on working."""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from harness import RunningDaemon, with_signal_handlers

from inboxwatch.service.clock import FixedClock
from inboxwatch.testing.devservers import MailServers
from inboxwatch.testing.mailfactory import mail, parse

pytestmark = pytest.mark.servers


@pytest.fixture
def daemon(mail_servers: MailServers, shop: str, tmp_path: Path) -> Iterator[RunningDaemon]:
    clock = FixedClock(datetime.now(UTC))
    with with_signal_handlers(
        RunningDaemon(mail_servers, shop, tmp_path / "iw", clock=clock, poll_seconds=60)
    ) as rd:
        yield rd


def hup(rd: RunningDaemon) -> None:
    """SIGHUP as systemd's ExecReload sends it; the handler runs in this (main) thread."""
    os.kill(os.getpid(), signal.SIGHUP)
    rd.tick()


def enquiry(servers: MailServers, rd: RunningDaemon, lead: str) -> None:
    servers.deliver(rd.shop, mail(lead, rd.address, "A quote?"), sender=lead)


def test_a_valid_config_is_reloaded_by_sighup(
    mail_servers: MailServers, daemon: RunningDaemon, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="inboxwatch")
    text = daemon.config_path.read_text()
    owner, team = mail_servers.address("owner"), mail_servers.address("team")
    changed = (
        text.replace('name = "Example Shop"', 'name = "Renamed Shop"')
        .replace(f'[owner]\naddress = "{owner}"', f'[owner]\naddress = "{team}"')
        .replace('path = "', 'path = "/elsewhere/')
    )
    assert changed.count("Renamed Shop") == 1 and f'address = "{team}"' in changed
    daemon.config_path.write_text(changed)
    hup(daemon)
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("config reloaded from") for m in messages), messages
    assert any(m.startswith("[state] path changed") and "restart" in m for m in messages)

    lead = "reload.lead@customer.test"
    enquiry(mail_servers, daemon, lead)
    ack = daemon.wait_until(lambda: daemon.sent_to(lead, "ack"), what="ack")
    assert parse(ack[0].data)["From"] == f"Renamed Shop <{daemon.address}>"
    daemon.wait_until(lambda: daemon.sent_to(team, "owner-alert"), what="alert to the new owner")
    assert daemon.sent_to(owner, "owner-alert") == []
    assert daemon.daemon is not None
    assert not str(daemon.daemon.cfg.state_path).startswith("/elsewhere")  # kept


def test_an_invalid_config_is_refused_and_the_old_one_kept(
    mail_servers: MailServers, daemon: RunningDaemon, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="inboxwatch")
    good = daemon.config_path.read_text()
    daemon.config_path.write_text(good + '\n[sending]\nwindow_start = "nine"\n')
    hup(daemon)
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("config not reloaded" in m and "sending.window_start" in m for m in errors)
    assert any("keeping the previous config" in m for m in errors)

    lead = "kept.lead@customer.test"
    enquiry(mail_servers, daemon, lead)
    ack = daemon.wait_until(lambda: daemon.sent_to(lead, "ack"), what="ack on the old config")
    assert parse(ack[0].data)["From"] == f"Example Shop <{daemon.address}>"
    owner = mail_servers.address("owner")
    daemon.wait_until(lambda: daemon.sent_to(owner, "owner-alert"), what="alert, old owner")
    # Fixed, and asked again: now it applies.
    daemon.config_path.write_text(good.replace('name = "Example Shop"', 'name = "Fixed Shop"'))
    hup(daemon)
    assert daemon.daemon is not None and daemon.daemon.cfg.identity.name == "Fixed Shop"
