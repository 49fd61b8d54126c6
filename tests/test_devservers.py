"""The private mail servers behave like the real thing the daemon will meet."""

from __future__ import annotations

import asyncio
import shutil
import smtplib
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

import aiosmtplib
import imapclient
import pytest
from imapclient.exceptions import LoginError

from inboxwatch.testing import devservers
from inboxwatch.testing.devservers import CapturedMail, MailServers

pytestmark = pytest.mark.servers


def _message(sender: str, to: str, subject: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = f"<{subject.replace(' ', '-')}@test>"
    msg.set_content(f"Body of {subject}.\n")
    return msg.as_bytes(policy=SMTP)  # CRLF, as IMAP and SMTP carry it


def _to(address: str) -> Callable[[CapturedMail], bool]:
    def match(mail: CapturedMail) -> bool:
        return address in mail.rcpt_tos

    return match


def test_imap_login_as_shop(mail_servers: MailServers) -> None:
    client = mail_servers.imap_client("shop")
    try:
        assert b"IDLE" in client.capabilities()
        assert client.select_folder("INBOX", readonly=True)[b"EXISTS"] >= 0
    finally:
        client.logout()


def test_wrong_password_is_refused(mail_servers: MailServers) -> None:
    client = mail_servers.imap_client()
    try:
        with pytest.raises(LoginError):
            client.login(mail_servers.address("shop"), "wrong")
    finally:
        client.shutdown()


def test_lmtp_delivery_then_fetch_all(mail_servers: MailServers, fresh_user: str) -> None:
    assert mail_servers.fetch_all(fresh_user) == []
    for n in (1, 2):
        mail_servers.deliver(fresh_user, _message("a@else.test", fresh_user, f"lmtp {n}"))
    got = mail_servers.fetch_all(fresh_user)
    assert [b"Subject: lmtp 1" in m for m in got] == [True, False]
    assert b"Subject: lmtp 2" in got[1]
    # BODY.PEEK leaves the messages unread, like the daemon will find them.
    client = mail_servers.imap_client(fresh_user)
    try:
        client.select_folder("INBOX", readonly=True)
        assert client.search("UNSEEN") == client.search("ALL")
    finally:
        client.logout()


def test_idle_announces_a_delivery(mail_servers: MailServers, fresh_user: str) -> None:
    client = mail_servers.imap_client(fresh_user)
    try:
        client.select_folder("INBOX")
        client.idle()
        start = time.monotonic()
        mail_servers.deliver(fresh_user, _message("a@else.test", fresh_user, "idle"))
        responses: list[tuple[object, ...]] = []
        while time.monotonic() - start < 5 and not any(b"EXISTS" in r for r in responses):
            responses += client.idle_check(timeout=0.5)
        client.idle_done()
    finally:
        client.logout()
    assert (1, b"EXISTS") in responses


def test_smtp_is_captured_and_delivered(mail_servers: MailServers, fresh_user: str) -> None:
    shop, lead = mail_servers.address("shop"), mail_servers.address(fresh_user)
    raw = _message(lead, shop, f"smtp from {fresh_user}")
    asyncio.run(
        aiosmtplib.send(
            raw,
            sender=lead,
            recipients=[shop, "someone@elsewhere.test"],
            hostname=mail_servers.imap_host,
            port=mail_servers.smtp_port,
            start_tls=False,
            timeout=10,
        )
    )
    [mail] = mail_servers.smtp_wait(1, match=lambda m: m.mail_from == lead)
    assert mail.rcpt_tos == (shop, "someone@elsewhere.test")
    assert mail.data.replace(b"\r\n", b"\n") == raw.replace(b"\r\n", b"\n")
    assert mail.auth_login is None
    inbox = mail_servers.fetch_all("shop")
    assert any(f"Subject: smtp from {fresh_user}".encode() in m for m in inbox)


def test_smtp_auth_starttls_and_reply_reaches_the_lead(
    mail_servers: MailServers, fresh_user: str
) -> None:
    shop, lead = mail_servers.address("shop"), mail_servers.address(fresh_user)
    assert mail_servers.cafile is not None
    asyncio.run(
        aiosmtplib.send(
            _message(shop, lead, "our reply"),
            sender=shop,
            recipients=[lead],
            hostname=mail_servers.imap_host,
            port=mail_servers.smtp_port,
            start_tls=True,
            cert_bundle=str(mail_servers.cafile),
            username=shop,
            password=mail_servers.password("shop"),
            timeout=10,
        )
    )
    [mail] = mail_servers.smtp_wait(1, match=_to(lead))
    assert mail.auth_login == shop
    [got] = mail_servers.wait_for(fresh_user, 1)
    assert b"Subject: our reply" in got


def test_smtp_wrong_password_is_refused(mail_servers: MailServers) -> None:
    with (
        smtplib.SMTP(mail_servers.imap_host, mail_servers.smtp_port, timeout=10) as smtp,
        pytest.raises(smtplib.SMTPAuthenticationError),
    ):
        smtp.login(mail_servers.address("shop"), "wrong")


def test_implicit_tls_ports(mail_servers: MailServers) -> None:
    assert mail_servers.imaps_port is not None and mail_servers.smtps_port is not None
    client = mail_servers.imap_client("shop", tls=True)
    try:
        assert client.select_folder("INBOX", readonly=True)
    finally:
        client.logout()
    context = mail_servers.client_ssl_context()
    with smtplib.SMTP_SSL(
        mail_servers.imap_host, mail_servers.smtps_port, context=context, timeout=10
    ) as smtp:
        assert smtp.noop()[0] == 250


def test_imap_starttls(mail_servers: MailServers) -> None:
    client = mail_servers.imap_client()
    try:
        client.starttls(mail_servers.client_ssl_context())
        client.login(mail_servers.address("shop"), mail_servers.password("shop"))
    finally:
        client.logout()


def test_sent_folder_has_special_use(mail_servers: MailServers) -> None:
    client = mail_servers.imap_client("owner")
    try:
        assert client.find_special_folder(imapclient.imapclient.SENT) == "Sent"
        flags = {name: fl for fl, _sep, name in client.list_folders()}
        assert b"\\Sent" in flags["Sent"]
        assert b"\\Trash" in flags["Trash"]
    finally:
        client.logout()


def test_append_with_flags_and_date(mail_servers: MailServers, fresh_user: str) -> None:
    when = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    raw = _message(mail_servers.address(fresh_user), "x@else.test", "appended")
    uid = mail_servers.append(fresh_user, "Sent", raw, flags=["\\Seen", "\\Flagged"], when=when)
    assert uid > 0
    client = mail_servers.imap_client(fresh_user)
    try:
        client.select_folder("Sent", readonly=True)
        data = client.fetch([uid], ["FLAGS", "INTERNALDATE"])[uid]
    finally:
        client.logout()
    assert set(data[b"FLAGS"]) - {b"\\Recent"} == {b"\\Seen", b"\\Flagged"}
    assert data[b"INTERNALDATE"].astimezone(UTC) == when
    assert mail_servers.fetch_all(fresh_user, "Sent") == [raw]
    # A folder that does not exist yet is created.
    assert mail_servers.append(fresh_user, "Leads/Done", raw) == 1


def test_wait_for_times_out_naming_folder_and_count(
    mail_servers: MailServers, fresh_user: str
) -> None:
    with pytest.raises(TimeoutError, match=r"'Archive' of lead\d+@customer.test has 0 message"):
        mail_servers.wait_for(fresh_user, 1, folder="Archive", timeout=0.2)
    with pytest.raises(TimeoutError, match="received 0 matching"):
        mail_servers.smtp_wait(1, timeout=0.1, match=lambda m: False)


def test_restart_imap_keeps_mail_and_ports(mail_servers: MailServers, fresh_user: str) -> None:
    lead = mail_servers.address(fresh_user)
    mail_servers.deliver(fresh_user, _message("a@else.test", lead, "before restart"))
    ports = (mail_servers.imap_port, mail_servers.lmtp_port, mail_servers.imaps_port)
    old_pid = mail_servers.dovecot_pid
    client = mail_servers.imap_client(fresh_user)
    client.select_folder("INBOX")
    restart = threading.Thread(target=mail_servers.restart_imap)
    try:
        restart.start()
        time.sleep(0.2)  # Dovecot is down now: the SMTP stand-in must hold the mail
        with smtplib.SMTP(mail_servers.imap_host, mail_servers.smtp_port, timeout=20) as smtp:
            smtp.sendmail("b@else.test", [lead], _message("b@else.test", lead, "during restart"))
        restart.join(10)
        assert not restart.is_alive()
        with pytest.raises((OSError, imapclient.exceptions.IMAPClientError)):
            client.noop()  # the old connection is gone, as in a real restart
    finally:
        restart.join(10)
        client.shutdown()
    assert mail_servers.dovecot_pid != old_pid
    assert (mail_servers.imap_port, mail_servers.lmtp_port, mail_servers.imaps_port) == ports
    got = mail_servers.fetch_all(fresh_user)
    assert [b"Subject: before restart" in got[0], b"Subject: during restart" in got[1]] == [
        True
    ] * 2
    mail_servers.deliver(fresh_user, _message("a@else.test", lead, "after restart"))
    assert len(mail_servers.wait_for(fresh_user, 3)) == 3


def test_concurrent_smtp_sessions(mail_servers: MailServers, fresh_user: str) -> None:
    lead = mail_servers.address(fresh_user)

    async def send_all() -> None:
        await asyncio.gather(
            *(
                aiosmtplib.send(
                    _message("c@else.test", lead, f"burst {n}"),
                    sender="c@else.test",
                    recipients=[lead],
                    hostname=mail_servers.imap_host,
                    port=mail_servers.smtp_port,
                    start_tls=False,
                    timeout=10,
                )
                for n in range(10)
            )
        )

    asyncio.run(send_all())
    assert len(mail_servers.smtp_wait(10, match=_to(lead))) == 10
    assert len(mail_servers.wait_for(fresh_user, 10)) == 10


@pytest.fixture
def occupied_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def test_port_clash_is_retried_and_stop_leaves_nothing(
    mail_servers: MailServers, tmp_path: Path, occupied_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second, own instance (mail_servers is requested only for its skip/fail rule)."""
    picks = iter([occupied_port])
    real_free_port = devservers._free_port
    monkeypatch.setattr(devservers, "_free_port", lambda: next(picks, None) or real_free_port())
    with MailServers(tmp_path / "m", ["solo"]) as servers:
        assert servers.imap_port != occupied_port
        pid = servers.dovecot_pid
        assert pid is not None
        servers.deliver("solo", b"Subject: hi\r\n\r\nhi\r\n")
        assert len(servers.fetch_all("solo")) == 1
    assert devservers._live_group_members(pid) == []
    servers.stop()  # idempotent


def test_missing_dovecot_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setattr(devservers, "_DOVECOT_FALLBACK", "/nonexistent/dovecot")
    with pytest.raises(RuntimeError, match="apt-get install -y dovecot-imapd dovecot-lmtpd"):
        devservers.find_dovecot()
    assert "apt-get" in (devservers.dovecot_missing() or "")


def test_tls_context_trusts_only_our_cert(mail_servers: MailServers) -> None:
    context = mail_servers.client_ssl_context()
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert mail_servers.cafile is not None and mail_servers.cafile.exists()
