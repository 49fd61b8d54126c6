"""A daemon waiting in IDLE (real Dovecot and SMTP, ``run()`` in a thread, IDLE renewed
only every 10 minutes and polls an hour apart) reacts within a second or two to SIGHUP
(`systemctl reload`) and to the wake-up that `pause`, `resume` and the per-lead commands
send (SIGUSR1), not at its next IDLE renewal. It notes the server's signs of life while
it waits, so `status` does not see a healthy daemon as silent.

Signals are handled in the main thread (this one): the daemon's thread only sees the
flags the handlers set, as in production.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from harness import RunningDaemon, with_signal_handlers

from inboxwatch.adapters.imap_source import ImapSource
from inboxwatch.cli import main
from inboxwatch.service.commands import single_instance
from inboxwatch.service.lead_commands import wake_daemon
from inboxwatch.service.status_command import HEARD_MARKER
from inboxwatch.testing.devservers import MailServers
from inboxwatch.testing.mailfactory import mail, parse
from inboxwatch.userfiles.config import load_config

pytestmark = pytest.mark.servers
Capsys = pytest.CaptureFixture[str]
#: Generous for a loaded machine; the IDLE renewal it replaces is 600 s.
PROMPT = 5.0


@pytest.fixture
def daemon(mail_servers: MailServers, shop: str, tmp_path: Path) -> Iterator[RunningDaemon]:
    with with_signal_handlers(
        RunningDaemon(mail_servers, shop, tmp_path / "iw", poll_seconds=3600)
    ) as rd:
        yield rd


def idling(rd: RunningDaemon) -> None:
    """Wait until the daemon sits in IDLE (so a reaction can only come from the signal)."""
    assert rd.daemon is not None and isinstance(rd.daemon.source, ImapSource)
    mailbox = rd.daemon.source.mailbox
    rd.wait_until(lambda: mailbox.idling, timeout=10, what="the daemon in IDLE")


def test_sighup_reloads_at_once_while_the_daemon_idles(daemon: RunningDaemon) -> None:
    idling(daemon)
    ticks = daemon.ticks_done
    text = daemon.config_path.read_text()
    daemon.config_path.write_text(text.replace('name = "Example Shop"', 'name = "Renamed Shop"'))
    os.kill(os.getpid(), signal.SIGHUP)
    started = time.monotonic()
    assert daemon.daemon is not None
    running = daemon.daemon
    daemon.wait_until(
        lambda: running.cfg.identity.name == "Renamed Shop", timeout=PROMPT, what="the reload"
    )
    assert time.monotonic() - started < PROMPT
    # A whole tick runs on the new config (the reload is its first step).
    daemon.wait_until(lambda: daemon.ticks_done > ticks, timeout=PROMPT, what="the tick")
    idling(daemon)  # and it went back to waiting (it does not spin)


def test_resume_wakes_the_daemon_and_the_held_ack_goes_at_once(
    mail_servers: MailServers, daemon: RunningDaemon, capsys: Capsys
) -> None:
    cfg = str(daemon.config_path)
    state_path = load_config(daemon.config_path).state_path
    owner = mail_servers.address("owner")
    lead = "woken.lead@customer.test"
    # The run lock names this process, as it names the daemon under systemd.
    with single_instance(state_path):
        idling(daemon)
        assert main(["pause", "--config", cfg]) == 0
        mail_servers.deliver(daemon.shop, mail(lead, daemon.address, "A quote?"), sender=lead)
        alerts = daemon.wait_until(lambda: daemon.sent_to(owner, "owner-alert"), what="alert")
        body = parse(alerts[0].data).get_body(preferencelist=("plain",))
        assert body is not None
        text = " ".join(str(body.get_content()).split())  # type: ignore[attr-defined]
        assert "acknowledgement: held by `inboxwatch pause` until `inboxwatch resume`" in text
        daemon.wait_until(lambda: daemon.sent_to(owner, "owner-task"), what="the call task")
        assert daemon.sent_to(lead) == []
        idling(daemon)
        capsys.readouterr()
        assert main(["resume", "--config", cfg]) == 0
        assert "the running daemon sends the held mail now" in capsys.readouterr().out
        started = time.monotonic()
        daemon.wait_until(lambda: daemon.sent_to(lead, "ack"), timeout=PROMPT, what="the ack")
        assert time.monotonic() - started < PROMPT


def test_no_daemon_running_means_nothing_to_wake(daemon: RunningDaemon) -> None:
    # The test daemon runs without the run lock: for the commands, none is running.
    assert wake_daemon(load_config(daemon.config_path).state_path) is False


def test_the_heard_marker_follows_the_servers_answers_during_idle(
    daemon: RunningDaemon, capsys: Capsys
) -> None:
    """Written at most once a minute: set it back, and the daemon's next note of the
    server (its keep-alive, here a SIGUSR1's tick) writes a fresh one."""
    idling(daemon)
    assert daemon.daemon is not None
    running = daemon.daemon
    long_ago = datetime.now(UTC) - timedelta(minutes=10)
    with running.store.transaction() as state:
        state.set_marker(HEARD_MARKER, long_ago.isoformat())
    running._heard_at = long_ago  # as if the last write was then

    def heard() -> datetime | None:
        with daemon.store().transaction() as state:
            value = state.marker(HEARD_MARKER)
        return datetime.fromisoformat(value) if value else None

    # Within the wait (no tick): the wait's own checks note the server's last answer.
    got = daemon.wait_until(
        lambda: (h := heard()) is not None and h > long_ago, timeout=PROMPT, what="heard"
    )
    assert got
    h = heard()
    assert h is not None and datetime.now(UTC) - h < timedelta(seconds=30)
    capsys.readouterr()
    main(["status", "--json", "--config", str(daemon.config_path)])
    report = json.loads(capsys.readouterr().out)
    assert report["mail_server_silent"] is False
    assert report["last_heard_seconds"] < 30
