"""A delivery report of success is not a bounce (RFC 3464 §2.3.3: Action delivered,
relayed, expanded). It is machine mail: never answered, never a bounce that ends a lead or
suppresses an address. Reports built as RFC 3464 §10 shows them (per-message fields, then
one block per recipient); a failure or delay among the recipients still makes a bounce.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from inboxwatch.core.autodetect import detect
from inboxwatch.core.classify import Context, Kind, Known, classify
from inboxwatch.core.message import Message, parse_message
from inboxwatch.userfiles.rulebook import load_rulebook

REPO = Path(__file__).resolve().parent.parent
NOW = datetime(2027, 3, 3, 12, 0, tzinfo=UTC)
LEAD = "louisa@larry.slip.umd.edu"


def report(*recipients: str, subject: str = "Delivery Status Notification") -> Message:
    """A multipart/report as RFC 3464 §10 lays it out (a human part, then the DSN)."""
    blocks = "\r\n".join(recipients)
    raw = (
        "From: Mail Delivery Subsystem <MAILER-DAEMON@cs.utk.edu>\r\n"
        "Return-Path: <>\r\n"
        "To: hello@shop.example\r\n"
        f"Subject: {subject}\r\n"
        "Date: Thu, 7 Jul 1994 17:16:05 -0400\r\n"
        "Message-ID: <199407072116.RAA14128@CS.UTK.EDU>\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="RAA14128"\r\n'
        "\r\n--RAA14128\r\nContent-Type: text/plain\r\n\r\n"
        "This is a delivery status report for your message.\r\n"
        "\r\n--RAA14128\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; cs.utk.edu\r\n"
        "Arrival-Date: Thu, 7 Jul 1994 17:15:49 -0400\r\n\r\n"
        f"{blocks}\r\n--RAA14128--\r\n"
    )
    return parse_message(raw.encode())


def block(action: str, status: str, addr: str = LEAD) -> str:
    return (
        f"Final-Recipient: rfc822; {addr}\r\nAction: {action}\r\nStatus: {status}\r\n"
        "Remote-MTA: dns; larry.slip.umd.edu\r\n"
    )


@pytest.mark.parametrize(
    ("action", "status"),
    [("delivered", "2.0.0"), ("relayed", "2.0.0"), ("expanded", "2.0.0"), ("delivered", "")],
)
def test_a_success_report_is_machine_mail_not_a_bounce(action: str, status: str) -> None:
    found = detect(report(block(action, status)))
    assert found is not None and found.kind == "auto_reply"
    assert "a delivery report of success, not a bounce" in found.reasons


def test_several_recipients_all_delivered_or_relayed() -> None:
    found = detect(
        report(
            block("delivered", "2.0.0"),
            block("relayed", "2.0.0", "kermit.frog@pbs.org"),
            block("expanded", "2.0.0", "list@pbs.org"),
        )
    )
    assert found is not None and found.kind == "auto_reply"


@pytest.mark.parametrize(
    ("other", "hard"),
    [
        (block("failed", "5.0.0", "gone@pbs.org"), True),
        (block("delayed", "4.0.0", "x@pbs.org"), False),
    ],
)
def test_a_failure_or_delay_beside_a_success_is_still_a_bounce(other: str, hard: bool) -> None:
    found = detect(report(block("delivered", "2.0.0"), other))
    assert found is not None and found.kind == "bounce" and found.hard is hard
    assert LEAD not in found.recipients  # the one delivered to did not fail


def test_a_success_notice_by_its_subject_without_a_report_part() -> None:
    raw = (
        "From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>\r\n"
        "To: hello@shop.example\r\nSubject: Delivery Status Notification (Success)\r\n"
        "Auto-Submitted: auto-replied\r\n"
        "Date: Wed, 03 Mar 2027 10:00:00 +0000\r\n\r\n"
        "This is an automatically generated Delivery Status Notification.\r\n\r\n"
        f"Your message has been successfully relayed to the following recipients:\r\n\r\n"
        f"     {LEAD}\r\n"
    )
    found = detect(parse_message(raw.encode()))
    assert found is not None and found.kind == "auto_reply"


def test_classify_a_success_report_about_a_known_lead() -> None:
    book = load_rulebook(REPO / "rules", REPO / "templates")
    known = Known(by_address={LEAD: LEAD})
    ctx = Context(frozenset({"hello@shop.example"}), frozenset(), known)
    c = classify(report(block("relayed", "2.0.0")), book, ctx, NOW)
    assert c.kind is Kind.AUTO_REPLY and c.bounced == () and not c.opt_out
    assert c.return_date is None  # the cadence carries on: no hold, no end
