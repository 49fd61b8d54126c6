"""End to end on the real Dovecot + SMTP servers: the first reply, safely (issue 3)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import RunningDaemon

from inboxwatch.testing.devservers import MailServers
from inboxwatch.testing.mailfactory import mail, parse

pytestmark = pytest.mark.servers


@pytest.fixture
def daemon(mail_servers: MailServers, shop: str, tmp_path: Path) -> Iterator[RunningDaemon]:
    rd = RunningDaemon(mail_servers, shop, tmp_path / "iw", poll_seconds=3600)
    yield rd
    rd.stop()


def enquiry(
    servers: MailServers, shop: str, lead: str, subject: str = "Need a quote", **kw: object
) -> bytes:
    raw = mail(lead, servers.address(shop), subject, name="Lea Lead", **kw)  # type: ignore[arg-type]
    servers.deliver(shop, raw, sender=lead)
    return raw


def test_enquiry_is_acknowledged_by_idle_within_two_seconds(
    mail_servers: MailServers, daemon: RunningDaemon, shop: str, fresh_user: str
) -> None:
    lead = mail_servers.address(fresh_user)
    daemon.start()
    t0 = time.monotonic()
    raw = enquiry(mail_servers, shop, lead, subject="=?utf-8?q?Gr=C3=B6=C3=9Fe?= und Preis")
    acks = daemon.wait_until(lambda: daemon.sent_to(lead, "ack"), timeout=5, what="ack")
    assert time.monotonic() - t0 <= 2.0  # poll interval is an hour: this was IDLE
    ack = parse(acks[0].data)
    original = parse(raw)
    assert ack["In-Reply-To"] == original["Message-ID"]
    assert ack["References"] == original["Message-ID"]
    assert ack["Subject"] == "Re: Größe und Preis"
    assert ack["Auto-Submitted"] == "auto-replied"
    assert ack["Message-ID"].endswith("@example.test>") and ack["Date"]
    # The lead reads it in their own mailbox; a copy is in the shop's Sent folder.
    got = mail_servers.wait_for(fresh_user, 1)
    assert parse(got[0])["Message-ID"] == ack["Message-ID"]
    sent = mail_servers.wait_for(shop, 1, folder="Sent")
    assert parse(sent[0])["Message-ID"] == ack["Message-ID"]
    # The owner is alerted, and answering the alert answers the lead.
    owner = mail_servers.address("owner")
    alert = parse(daemon.wait_until(lambda: daemon.sent_to(owner, "owner-alert"))[0].data)
    assert lead in alert["Reply-To"]
    # The alert carries the lead's own subject: the owner's Reply reaches them in their thread.
    assert alert["Subject"] == "Größe und Preis"
    # The lead is stored with its arrival and first-response time.
    stored = daemon.wait_until(lambda: daemon.lead(lead))
    assert stored.source == "direct-email" and stored.enquiry_id == original["Message-ID"]
    daemon.wait_until(lambda: (x := daemon.lead(lead)) and x.first_response_seconds is not None)


def test_the_owners_mailbox_is_not_altered(
    mail_servers: MailServers, daemon: RunningDaemon, shop: str, fresh_user: str
) -> None:
    lead = mail_servers.address(fresh_user)
    daemon.start()
    enquiry(mail_servers, shop, lead)
    daemon.wait_until(lambda: daemon.sent_to(lead, "ack"))
    client = mail_servers.imap_client(shop)
    try:
        client.select_folder("INBOX", readonly=True)
        flags = client.fetch(client.search(["ALL"]), ["FLAGS"])
    finally:
        client.logout()
    assert len(flags) == 1
    assert all(
        b"\\Seen" not in f[b"FLAGS"] and b"\\Deleted" not in f[b"FLAGS"] for f in flags.values()
    )


def test_restart_does_not_reack_and_mail_during_downtime_is_answered(
    mail_servers: MailServers, daemon: RunningDaemon, shop: str, lead_pool: object
) -> None:
    first = mail_servers.address(lead_pool.take())  # type: ignore[attr-defined]
    second = mail_servers.address(lead_pool.take())  # type: ignore[attr-defined]
    daemon.start()
    enquiry(mail_servers, shop, first)
    daemon.wait_until(lambda: daemon.sent_to(first, "ack"))
    daemon.stop()
    enquiry(mail_servers, shop, second)  # arrives while we are down
    daemon.start()
    daemon.wait_until(lambda: daemon.sent_to(second, "ack"), what="ack after restart")
    time.sleep(0.3)
    assert len(daemon.sent_to(first, "ack")) == 1
    assert len(daemon.sent_to(second, "ack")) == 1


def test_mail_present_before_the_first_start_is_not_answered(
    mail_servers: MailServers, daemon: RunningDaemon, shop: str, fresh_user: str
) -> None:
    old = mail_servers.address(fresh_user)
    enquiry(mail_servers, shop, old)
    daemon.start()
    time.sleep(0.8)
    assert daemon.sent_to(old) == []
    assert daemon.leads() == []


@pytest.mark.parametrize(
    "kind",
    ["list", "bulk", "auto_reply", "bounce", "own", "team", "noreply"],
)
def test_no_reply_to_robots_lists_bounces_or_ourselves(
    mail_servers: MailServers, daemon: RunningDaemon, shop: str, fresh_user: str, kind: str
) -> None:
    lead = mail_servers.address(fresh_user)
    to = mail_servers.address(shop)
    sender = lead
    headers: dict[str, str] = {}
    subject = "Hello"
    if kind == "list":
        headers = {"List-Id": "<news.list.test>", "List-Unsubscribe": "<mailto:u@list.test>"}
    elif kind == "bulk":
        headers = {"Precedence": "bulk"}
    elif kind == "auto_reply":
        headers = {"Auto-Submitted": "auto-replied"}
        subject = "Out of Office: Hello"
    elif kind == "bounce":
        sender, subject = (
            f"MAILER-DAEMON@{lead.split('@')[1]}",
            "Undelivered Mail Returned to Sender",
        )
        headers = {"X-Failed-Recipients": "gone@customer.test"}
    elif kind == "own":
        sender = to
    elif kind == "team":
        sender = mail_servers.address("team")
    elif kind == "noreply":
        sender = "no-reply@customer.test"
    # The SMTP capture is shared by the session: earlier tests mailed team@ as their owner.
    before = len(mail_servers.smtp_sent)
    daemon.start()
    mail_servers.deliver(shop, mail(sender, to, subject, headers=headers), sender=sender)
    # A real enquiry after it proves the daemon looked at the first one by then.
    control = "control@customer.test"
    mail_servers.deliver(shop, mail(control, to, "Real enquiry"), sender=control)
    daemon.wait_until(lambda: daemon.sent_to(control, "ack"), what="control ack")
    assert [m for m in mail_servers.smtp_sent[before:] if sender in m.rcpt_tos] == []
    assert daemon.lead(sender) is None


def test_web_form_notification_is_answered_at_the_extracted_address(
    mail_servers: MailServers, daemon: RunningDaemon, shop: str, fresh_user: str
) -> None:
    lead = mail_servers.address(fresh_user)
    robot = "wordpress@example.test"
    body = (
        f"From: Tom Becker <{lead}>\nSubject: Heat pumps?\nPhone: +49 30 1234567\n\n"
        "Message Body:\nDo you install heat pumps?\n\n-- \n"
        "This e-mail was sent from a contact form on Example Shop (https://shop.example)\n"
    )
    daemon.start()
    raw = mail(robot, mail_servers.address(shop), 'Example Shop "Heat pumps?"', body)
    mail_servers.deliver(shop, raw, sender=robot)
    ack = parse(daemon.wait_until(lambda: daemon.sent_to(lead, "ack"))[0].data)
    assert ack["To"] == f"Tom Becker <{lead}>"
    assert "Heat pumps" not in ack["Subject"]  # the notification's subject is never echoed
    assert ack["In-Reply-To"] is None  # the lead never saw the notification
    stored = daemon.wait_until(lambda: daemon.lead(lead))
    assert stored.source == "website-form" and stored.phone == "+49 30 1234567"
    assert [m for m in mail_servers.smtp_sent if robot in m.rcpt_tos] == []


def test_second_enquiry_from_the_same_address_gets_no_second_ack(
    mail_servers: MailServers, daemon: RunningDaemon, shop: str, fresh_user: str
) -> None:
    lead = mail_servers.address(fresh_user)
    daemon.start()
    enquiry(mail_servers, shop, lead, subject="First question")
    daemon.wait_until(lambda: daemon.sent_to(lead, "ack"))
    enquiry(mail_servers, shop, lead, subject="Second question")
    daemon.wait_until(lambda: len(daemon.sent_to(mail_servers.address("owner"))) >= 3)
    time.sleep(0.5)
    assert len(daemon.sent_to(lead, "ack")) == 1


def test_daemon_survives_the_imap_server_restarting(
    mail_servers: MailServers, daemon: RunningDaemon, shop: str, fresh_user: str
) -> None:
    lead = mail_servers.address(fresh_user)
    daemon.start()
    mail_servers.restart_imap()
    enquiry(mail_servers, shop, lead)
    daemon.wait_until(lambda: daemon.sent_to(lead, "ack"), timeout=15, what="ack after restart")


def test_processed_mail_gets_the_configured_keyword_and_stays_unread(
    mail_servers: MailServers, shop: str, tmp_path: Path, fresh_user: str
) -> None:
    lead = mail_servers.address(fresh_user)
    rd = RunningDaemon(mail_servers, shop, tmp_path / "iw", poll_seconds=3600)
    rd.config_path.write_text(
        rd.config_path.read_text().replace(
            "poll_seconds = 3600", 'poll_seconds = 3600\nprocessed_keyword = "$Inboxwatch"'
        )
    )
    with rd:
        enquiry(mail_servers, shop, lead)
        rd.wait_until(lambda: rd.sent_to(lead, "ack"))
        client = mail_servers.imap_client(shop)
        try:
            client.select_folder("INBOX", readonly=True)
            flags = rd.wait_until(
                lambda: (
                    [
                        f[b"FLAGS"]
                        for f in client.fetch(client.search(["ALL"]), ["FLAGS"]).values()
                        if b"$Inboxwatch" in f[b"FLAGS"]
                    ]
                    or (client.noop() and False)
                ),
                what="keyword",
            )
        finally:
            client.logout()
    assert b"\\Seen" not in flags[0]
