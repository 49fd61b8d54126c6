"""The real-mail fixes as the daemon lives them, on the in-memory twins (fixed clock).

A recall from a lead's Outlook must not stop their follow-ups (it is no answer); a
platform's notification must not become a lead; a "please remove me" with a company
disclaimer under it must end the lead and suppress the address.
"""

from __future__ import annotations

import email
import email.policy
from datetime import timedelta
from email.utils import getaddresses
from pathlib import Path

from test_scenario import MemoryEdges, purposes

from inboxwatch.core.lead import Automation, Ended
from inboxwatch.testing.mailfactory import mail, reply_to

MAIL = Path(__file__).parent / "mail" / "realworld3"
LEAD = "sandra@northwind.test"


def _enquiry(edges: MemoryEdges) -> None:
    edges.deliver(mail(LEAD, edges.shop, "Chairs for Leeds", "Could you quote 60 chairs?"))
    edges.daemon.tick(edges.clock.now())
    assert purposes(edges.outgoing(LEAD)) == ["ack"]


def _day(edges: MemoryEdges, n: float) -> None:
    edges.clock.set(edges.clock.now() + timedelta(days=n))
    edges.daemon.tick(edges.clock.now())


def test_a_recall_from_the_lead_leaves_their_follow_ups_running(tmp_path: Path) -> None:
    edges = MemoryEdges(tmp_path)
    _enquiry(edges)
    recall = (
        f"From: Sandra Whitfield <{LEAD}>\nTo: {edges.shop}\nSubject: Recall: Chairs for Leeds\n"
        "Message-ID: <rec1@northwind.test>\nContent-Type: text/plain\n\n"
        'Sandra Whitfield would like to recall the message, "Chairs for Leeds".\n'
    ).encode()
    edges.deliver(recall)
    _day(edges, 0.1)
    lead = edges.lead(LEAD)
    assert lead is not None and lead.automation is Automation.ACTIVE and lead.ended is None
    _day(edges, 1.0)
    assert purposes(edges.outgoing(LEAD)) == ["ack", "followup"]
    # The owner was told of no reply ...
    assert "owner-reply" not in purposes(edges.outgoing("owner@shop.test"))
    # ... as they are when the lead does answer.
    edges.deliver(reply_to(edges.outgoing(LEAD)[-1], LEAD, "Sorry for the confusion: 40 chairs."))
    _day(edges, 0.1)
    assert "owner-reply" in purposes(edges.outgoing("owner@shop.test"))


def test_a_platform_notification_is_no_lead_and_gets_no_mail(tmp_path: Path) -> None:
    edges = MemoryEdges(tmp_path)
    edges.deliver((MAIL / "fax_efax.eml").read_bytes())
    edges.deliver((MAIL / "docusign_request.eml").read_bytes())
    edges.daemon.tick(edges.clock.now())
    for robot in ("message@inbound.efax.com", "dse_na3@docusign.net"):
        assert edges.lead(robot) is None
        assert edges.outgoing(robot) == []


def test_please_remove_me_above_a_disclaimer_ends_the_lead_and_suppresses_it(
    tmp_path: Path,
) -> None:
    edges = MemoryEdges(tmp_path)
    _enquiry(edges)
    disclaimer = (
        "This e-mail and any attachments are confidential and intended solely for the"
        " addressee. If you are not the intended recipient, please notify the sender"
        " immediately and delete it."
    )
    answer = reply_to(
        edges.outgoing(LEAD)[-1],
        LEAD,
        f"Please remove me from your list.\n\nSandra Whitfield\nNorthwind Ltd\n\n{disclaimer}",
    )
    edges.deliver(answer)
    _day(edges, 0.1)
    lead = edges.lead(LEAD)
    assert lead is not None and lead.ended is Ended.OPTED_OUT
    # and a new enquiry from the address is not acknowledged any more
    edges.deliver(mail(LEAD, edges.shop, "Another question", "Do you sell desks?"))
    _day(edges, 1.0)
    assert purposes(edges.outgoing(LEAD)) == ["ack"]


def test_a_full_mailbox_leaves_the_lead_in_its_cadence(tmp_path: Path) -> None:
    edges = MemoryEdges(tmp_path)
    _enquiry(edges)
    report = (
        (MAIL / "mailbox_full_notice.eml")
        .read_bytes()
        .replace(b"ana.silva@gmail.com", LEAD.encode())
    )
    edges.deliver(report)
    _day(edges, 0.1)
    lead = edges.lead(LEAD)
    assert lead is not None and lead.ended is None and not lead.undeliverable
    _day(edges, 1.0)
    assert purposes(edges.outgoing(LEAD)) == ["ack", "followup"]


def test_an_answer_from_someone_else_in_the_thread_is_answered_to_them(tmp_path: Path) -> None:
    """The lead passed our mail to a colleague, who answers in the thread (our Message-ID
    in References). The lead's automation stops (a person on their side answered), and the
    owner's Reply to the alert reaches the colleague who wrote, with the lead beside them:
    before, it went to the lead alone."""
    edges = MemoryEdges(tmp_path)
    _enquiry(edges)
    colleague = "rachel@northwind.test"
    answer = reply_to(edges.outgoing(LEAD)[-1], colleague, "I handle purchasing: 60 chairs.")
    edges.deliver(answer)
    _day(edges, 0.1)
    lead = edges.lead(LEAD)
    assert lead is not None and lead.ended is Ended.REPLIED
    assert edges.lead(colleague) is None  # not a lead of their own
    alerts = [
        email.message_from_bytes(raw, policy=email.policy.default)
        for raw in edges.outgoing("owner@shop.test")
    ]
    (alert,) = [a for a in alerts if a["X-Inboxwatch"] == "owner-reply"]
    answered = [addr for _, addr in getaddresses([str(alert["Reply-To"])])]
    assert answered[:2] == [colleague, LEAD]
    assert "60 chairs" in alert.get_body(("plain",)).get_content()
