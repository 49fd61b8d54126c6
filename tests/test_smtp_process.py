"""The bench's SMTP stand-in in a process of its own (``MailServers(smtp_process=True)``):
the same server as the tests' thread, reporting back what it received."""

from __future__ import annotations

import smtplib
from pathlib import Path

import pytest

from inboxwatch.testing.devservers import MailServers, dovecot_missing

pytestmark = pytest.mark.skipif(bool(dovecot_missing()), reason=dovecot_missing() or "")


def test_mail_is_captured_and_local_mail_delivered_and_the_child_ends(tmp_path: Path) -> None:
    servers = MailServers(tmp_path / "srv", ["shop", "owner"], smtp_process=True)
    with servers:
        child = servers._smtp_child
        assert child is not None and child.proc.poll() is None
        with smtplib.SMTP("127.0.0.1", servers.smtp_port, timeout=10) as smtp:
            smtp.login(servers.address("shop"), servers.password("shop"))
            smtp.sendmail(
                servers.address("shop"),
                [servers.address("owner"), "lead@customer.test"],
                b"Subject: hi\r\nMessage-ID: <p1@example.test>\r\n\r\nbody\r\n",
            )
        with (
            smtplib.SMTP("127.0.0.1", servers.smtp_port, timeout=10) as smtp,
            pytest.raises(smtplib.SMTPAuthenticationError),
        ):
            smtp.login(servers.address("shop"), "wrong")
        (got,) = servers.smtp_wait(1, 10)
        assert got.rcpt_tos == (servers.address("owner"), "lead@customer.test")
        assert got.auth_login == servers.address("shop")
        assert b"Message-ID: <p1@example.test>" in got.data
        imap = servers.imap_client("owner")
        try:
            imap.select_folder("INBOX")
            assert len(imap.search()) == 1  # delivered before the 250
        finally:
            imap.logout()
    assert child.proc.poll() is not None  # stopped with the servers
