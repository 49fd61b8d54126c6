"""The private Dovecot's opt-in Sieve (the bench's floor): off unless asked, says what to
install when Pigeonhole is missing, and a vacation reply goes out through the stand-in."""

from __future__ import annotations

from pathlib import Path

import pytest

from inboxwatch.testing import devservers
from inboxwatch.testing.devservers import CapturedMail, MailServers

pytestmark = pytest.mark.servers

VACATION = 'require ["vacation"];\nvacation :days 1 :subject "Away" "Back soon.";\n'


def test_sieve_is_off_unless_asked(mail_servers: MailServers) -> None:
    """The tests' Dovecot runs no scripts and submits nothing."""
    config = mail_servers.config_path.read_text()
    assert "sieve" not in config
    assert "submission_host" not in config
    with pytest.raises(RuntimeError, match="sieve=True"):
        mail_servers.set_sieve_script("shop", VACATION)


def test_missing_sieve_names_the_setup_flag(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(devservers, "SIEVE_PLUGIN", tmp_path / "no-such-plugin.so")
    why = devservers.sieve_missing() or ""
    assert "dovecot-sieve not installed" in why and "scripts/setup --bench" in why
    servers = MailServers(tmp_path / "m", ["solo"], sieve=True)
    with pytest.raises(RuntimeError, match="dovecot-sieve"):
        servers.start()
    assert servers.dovecot_pid is None and servers.smtp_port == 0  # nothing was started


@pytest.mark.skipif(devservers.sieve_missing() is not None, reason=str(devservers.sieve_missing()))
def test_vacation_reply_leaves_through_the_stand_in(
    mail_servers: MailServers, tmp_path: Path
) -> None:
    """A second, own instance (mail_servers is requested only for its skip/fail rule)."""
    lead = "someone@customer.test"
    enquiry = (
        f"From: {lead}\r\nTo: vac@example.test\r\nSubject: A quote?\r\n"
        "Message-ID: <q1@customer.test>\r\n\r\nHow much?\r\n"
    ).encode()
    with MailServers(tmp_path / "m", ["vac", "other"], sieve=True) as servers:
        servers.set_sieve_script("vac", VACATION)
        servers.deliver("other", enquiry, sender=lead)  # no script: no reply
        servers.deliver("vac", enquiry, sender=lead)

        def reply(mail: CapturedMail) -> bool:
            return mail.rcpt_tos == (lead,)

        got = servers.smtp_wait(1, timeout=10, match=reply)
        assert got[0].mail_from in ("", "<>")  # RFC 5230: replies go from the null sender
        assert b"Auto-Submitted: auto-replied" in got[0].data
        assert b"In-Reply-To: <q1@customer.test>" in got[0].data
        assert len(servers.fetch_all("vac")) == 1  # the enquiry is still delivered
        assert len(servers.fetch_all("other")) == 1
        assert len([m for m in servers.smtp_sent if reply(m)]) == 1
