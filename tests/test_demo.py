"""The README demo: part 2 runs for real (a daemon process, Dovecot, SMTP; ~4 s), and the
readiness wait that replaced a fixed sleep is tested on its own.

Part 3 (the time-lapse, ~60 s) is not run here; it uses the same `wait_ready` before its
enquiries and exits non-zero when its leads do not appear.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from inboxwatch.testing import demo
from inboxwatch.testing.devservers import MailServers


def test_part_2_acknowledges_maria_and_shows_it_in_plain_words(
    mail_servers: MailServers, capsys: pytest.CaptureFixture[str]
) -> None:
    # The demo starts servers of its own; ``mail_servers`` only skips (or, under CI, fails)
    # where Dovecot is missing, as every server test does.
    assert demo.main(["--part", "2"]) == 0
    out = capsys.readouterr().out
    assert "has the acknowledgement in her inbox" in out
    assert "Subject: Re: Quote for a kitchen renovation?" in out
    # `inboxwatch leads` at the end lists her: the enquiry was read, not skipped as old mail.
    leads = out.split("$ inboxwatch leads", 1)[1]
    assert "maria.lopez@customer.test" in leads
    # No IMAP bookkeeping (UIDVALIDITY:UID references, start positions) for the owner.
    assert "first start at position" not in out
    assert " from=" not in out


def test_wait_ready_fails_when_the_daemon_stops(
    mail_servers: MailServers, shop: str, tmp_path: Path
) -> None:
    config = demo.write_config(mail_servers, tmp_path, user=shop)
    with subprocess.Popen([sys.executable, "-c", "raise SystemExit(2)"]) as proc:
        proc.wait()
        with pytest.raises(SystemExit, match=r"stopped at start \(exit 2\)"):
            demo.wait_ready(config, proc, timeout=10)


def test_plain_log_names_the_message_and_drops_bookkeeping() -> None:
    line = (
        "2026-12-02 00:44:31 INFO 1796172298:1 from=maria.lopez@customer.test enquiry: "
        "enquiry from maria.lopez@customer.test: acknowledgement queued\n"
    )
    assert demo.plain_log(line) == (
        "message 1 from maria.lopez@customer.test: enquiry: "
        "enquiry from maria.lopez@customer.test: acknowledgement queued"
    )
    start = "2026-12-02 00:44:31 INFO INBOX: first start at position 2; look-back 0:00:00\n"
    assert demo.plain_log(start) is None
