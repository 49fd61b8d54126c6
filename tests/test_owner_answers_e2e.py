"""The owner answers an alert with a plain Reply, end to end on the real servers (issue 10).

The owner's Reply is built exactly as a mail client builds it from the alert's headers
(RFC 5322 §3.6.4): To from Reply-To, Subject "Re: " + the alert's, In-Reply-To the alert's
Message-ID, References the alert's References and its Message-ID. It must reach the lead
as ``Re: <their subject>``, in one thread with our acknowledgement.
"""

from __future__ import annotations

import email.utils
import smtplib
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import pytest
from harness import RunningDaemon

from inboxwatch.core.lead import Ended
from inboxwatch.service.clock import FixedClock
from inboxwatch.testing.devservers import MailServers
from inboxwatch.testing.mailfactory import mail, parse

pytestmark = pytest.mark.servers

SUBJECT = "Quote for a new roof"


@pytest.fixture
def daemon(mail_servers: MailServers, tmp_path: Path, shop: str) -> Iterator[RunningDaemon]:
    clock = FixedClock(datetime.now(UTC))
    rd = RunningDaemon(mail_servers, shop, tmp_path / "iw", clock=clock, poll_seconds=3600)
    rd.start()
    yield rd
    rd.stop()


def owners_reply(alert: EmailMessage, owner: str, text: str) -> EmailMessage:
    """A plain Reply as Thunderbird, Gmail and Outlook write it, quoting the alert."""
    reply = EmailMessage()
    reply["From"] = owner
    reply["To"] = ", ".join(str(a) for a in alert["Reply-To"].addresses)
    subject = str(alert["Subject"])
    reply["Subject"] = subject if subject.lower().startswith("re:") else f"Re: {subject}"
    reply["Date"] = email.utils.formatdate(localtime=True)
    reply["Message-ID"] = f"<owner.{time.time_ns()}@owner.test>"
    reply["In-Reply-To"] = alert["Message-ID"]
    refs = [*str(alert.get("References", "")).split(), alert["Message-ID"]]
    reply["References"] = " ".join(refs)
    plain = alert.get_body(("plain",))
    quoted = "\n".join("> " + line for line in plain.get_content().splitlines())
    reply.set_content(f"{text}\n\nOn {alert['Date']}, {alert['From']} wrote:\n{quoted}\n")
    return reply


def send(servers: MailServers, msg: EmailMessage) -> list[str]:
    rcpts = [a.addr_spec for a in msg["To"].addresses]
    with smtplib.SMTP("127.0.0.1", servers.smtp_port, timeout=10) as smtp:
        smtp.send_message(msg, to_addrs=rcpts)
    return rcpts


def test_the_owners_reply_to_an_alert_reaches_the_lead_in_their_thread(
    mail_servers: MailServers, daemon: RunningDaemon, fresh_user: str
) -> None:
    lead, owner = mail_servers.address(fresh_user), mail_servers.address("owner")
    enquiry = mail(
        lead, daemon.address, SUBJECT, "Hi, what would a new roof cost?", name="Rita Roof"
    )
    mail_servers.deliver(daemon.shop, enquiry, sender=lead)
    ack = parse(daemon.wait_until(lambda: daemon.sent_to(lead, "ack"), what="ack")[0].data)
    sent = daemon.wait_until(lambda: daemon.sent_to(owner, "owner-alert"), what="alert")
    alert_id = parse(sent[0].data)["Message-ID"]
    # The alert as it lies in the owner's own mailbox (the owner's mailbox is shared by
    # the session's tests: found by its Message-ID).
    alert = next(
        m for m in map(parse, mail_servers.wait_for("owner", 1)) if m["Message-ID"] == alert_id
    )
    # What the owner sees, and what a Reply copies: the lead's subject, no internals.
    assert alert["Subject"] == SUBJECT
    assert alert["From"].addresses[0].display_name == "New lead: Rita Roof"
    body = alert.get_body(("plain",)).get_content()
    assert body.lstrip().startswith("Hi, what would a new roof cost?")
    for internal in ("rule", "direct-email", "Source", "sequence"):
        assert internal not in body
    enquiry_id = parse(enquiry)["Message-ID"]
    assert alert["References"].split() == [enquiry_id, ack["Message-ID"]]

    reply = owners_reply(alert, owner, "Hello Rita, about 9,000 EUR. When may I come by?")
    assert lead in send(mail_servers, reply)

    # The lead reads it as the answer in their own conversation.
    got = mail_servers.wait_for(fresh_user, 2)
    answer = next(m for m in map(parse, got) if m["Message-ID"] == reply["Message-ID"])
    assert answer["Subject"] == f"Re: {SUBJECT}"
    quoted = answer.get_body(("plain",)).get_content().split("wrote:", 1)[1]
    assert quoted.lstrip().startswith("> Hi, what would a new roof cost?")
    with mail_servers.imap_client(fresh_user) as client:
        client.select_folder("INBOX", readonly=True)
        if not client.has_capability("THREAD=REFERENCES"):
            pytest.skip("this Dovecot does not offer THREAD=REFERENCES")
        ids = {
            parse(data[b"RFC822"])["Message-ID"]: uid
            for uid, data in client.fetch(client.search("ALL"), ["RFC822"]).items()
        }
        threads = client.thread(algorithm="REFERENCES", criteria="ALL")

    def members(node: object) -> set[int]:
        if isinstance(node, int):
            return {node}
        assert isinstance(node, tuple)
        return set().union(*(members(n) for n in node))

    together = {ids[ack["Message-ID"]], ids[reply["Message-ID"]]}
    assert any(together <= members(t) for t in threads), threads


def test_the_owners_reply_hands_the_lead_over_through_the_business_copy(
    mail_servers: MailServers, daemon: RunningDaemon, fresh_user: str
) -> None:
    lead, owner = mail_servers.address(fresh_user), mail_servers.address("owner")
    enquiry = mail(
        lead, daemon.address, SUBJECT, "Hi, what would a new roof cost?", name="Rita Roof"
    )
    mail_servers.deliver(daemon.shop, enquiry, sender=lead)
    sent = daemon.wait_until(lambda: daemon.sent_to(owner, "owner-alert"), what="alert")
    alert = parse(sent[0].data)
    rcpts = send(mail_servers, owners_reply(alert, owner, "Hello Rita, I will call you."))
    assert daemon.address in rcpts  # the business mailbox gets the owner's answer too
    handed = daemon.wait_until(
        lambda: (x := daemon.lead(lead)) is not None and x.ended is Ended.HANDLED,
        what="hand-over",
    )
    assert handed
