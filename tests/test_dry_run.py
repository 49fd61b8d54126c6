"""``run --dry-run`` on the live test servers: it decides and logs, and changes nothing."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from harness import REPO, RunningDaemon

from inboxwatch.cli import main
from inboxwatch.testing.devservers import MailServers
from inboxwatch.testing.mailfactory import mail
from inboxwatch.userfiles.config import load_config

pytestmark = pytest.mark.servers


def mailbox_snapshot(servers: MailServers, user: str) -> dict[str, object]:
    client = servers.imap_client(user)
    try:
        out: dict[str, object] = {}
        for folder in ("INBOX", "Sent"):
            client.select_folder(folder, readonly=True)
            uids = client.search(["ALL"])
            data = client.fetch(uids, ["FLAGS", "RFC822.SIZE"]) if uids else {}
            out[folder] = {u: (sorted(d[b"FLAGS"]), d[b"RFC822.SIZE"]) for u, d in data.items()}
        return out
    finally:
        client.logout()


def test_dry_run_sends_nothing_writes_nothing_and_logs_every_would_be_message(
    mail_servers: MailServers,
    shop: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A real daemon has run: a state file with one lead exists.
    rd = RunningDaemon(mail_servers, shop, tmp_path / "iw", poll_seconds=3600)
    rd.config_path = mail_servers.inboxwatch_config(
        shop,
        tmp_path / "iw",
        rules=REPO / "rules",
        templates=REPO / "templates",
        imap_extra='poll_seconds = 3600\nlookback_days = 1\nprocessed_keyword = "$Done"',
    )
    rd.start()
    known = "known.lead@customer.test"
    mail_servers.deliver(shop, mail(known, rd.address, "First question"), sender=known)
    rd.wait_until(lambda: rd.sent_to(known, "ack"), what="ack")
    rd.stop()
    # New mail while the daemon is stopped: a new enquiry and the known lead again.
    new = "new.lead@customer.test"
    mail_servers.deliver(shop, mail(new, rd.address, "Prices for a kitchen?"), sender=new)
    mail_servers.deliver(shop, mail(known, rd.address, "One more thing"), sender=known)
    state = load_config(rd.config_path).state_path
    files = {p.name: p.read_bytes() for p in state.parent.iterdir()}
    box = mailbox_snapshot(mail_servers, shop)
    smtp_before = len(mail_servers.smtp_sent)

    caplog.set_level(logging.INFO, logger="inboxwatch")
    monkeypatch.setattr("inboxwatch.cli.setup_logging", lambda debug: None)
    assert main(["run", "--dry-run", "--once", "--config", str(rd.config_path)]) == 0

    assert len(mail_servers.smtp_sent) == smtp_before  # nothing sent
    assert {p.name: p.read_bytes() for p in state.parent.iterdir()} == files  # nothing written
    assert mailbox_snapshot(mail_servers, shop) == box  # no keyword, no copy in Sent
    would = [r.getMessage() for r in caplog.records if "would send" in r.getMessage()]
    assert any(f"ack to {new}" in line for line in would), would
    assert any("owner-alert to" in line and "Prices for a kitchen" in line for line in would), would
    # The known lead writing again is a reply (the real state was read), not a new lead.
    assert not any(f"ack to {known}" in line for line in would), would
