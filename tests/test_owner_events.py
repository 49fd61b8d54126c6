"""Issue 11: the owner hears of what happens to a live lead (a bounce, an opt-out, a
complaint, an absence with a return date), once, in the lead's thread; the new-lead
alert carries the enquiry's attachments up to a size.

Pure: the one-lead simulator of ``tests/test_engine.py``; the MIME built by the core is
read back with the standard library, as a mail client would.
"""

from __future__ import annotations

import dataclasses
import email
import email.policy
from datetime import date, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

from inboxwatch.core import delivery, route
from inboxwatch.core.actions import Notice, PutLead, Queue, Suppress
from inboxwatch.core.classify import Kind, Known
from inboxwatch.core.lead import Automation, Ended, Lead
from inboxwatch.core.letters import Send
from inboxwatch.core.message import Address
from inboxwatch.core.mime import Outgoing, attachments, safe_filename, to_bytes
from inboxwatch.core.queue import OutboxItem, Outcome, Purpose, Result
from inboxwatch.core.settings import Settings
from inboxwatch.userfiles.config import load_config
from tests.test_config import MINIMAL, only, write
from tests.test_engine import (
    BOOK,
    JANE,
    OWNER,
    ST,
    WED,
    Sim,
    berlin,
    bounce,
    counter_ids,
    direct_enquiry,
    form_enquiry,
    out_of_office,
    reply,
)


def owner_mail(sends: tuple[Send, ...]) -> list[Outgoing]:
    return [s.out for s in sends if s.out.to.addr == OWNER]


def read(out: Outgoing) -> EmailMessage:
    msg = email.message_from_bytes(to_bytes(out), policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def text_of(msg: EmailMessage) -> str:
    body = msg.get_body(("plain",))
    assert body is not None
    return str(body.get_content()).replace("\r\n", "\n")


def started() -> tuple[Sim, Outgoing]:
    """Jane's enquiry, acknowledged; the new-lead alert."""
    sim = Sim.enquiry(direct_enquiry(WED))
    (alert,) = [s.send.out for s in sim.sent if s.purpose == "owner-alert"]
    return sim, alert


def assert_threaded_with(out: Outgoing, alert: Outgoing) -> None:
    """In the same conversation as the new-lead alert: the owner's client groups them
    (by References, and by Subject as Gmail and Outlook also require)."""
    assert out.subject == alert.subject
    assert out.references[0] == alert.references[0]
    assert out.in_reply_to == out.references[-1]


# -- a bounce of a live lead ---------------------------------------------------------------


def test_a_live_leads_bounce_tells_the_owner_once_what_happened_and_what_to_do() -> None:
    sim, alert = started()
    d = sim.message(bounce(sim.lead, hard=True), berlin(2026, 3, 4, 10, 1))
    (out,) = owner_mail(d.sends)
    assert out.purpose == "owner-event" and out.from_.name == "Bounced: Jane Doe"
    # Nobody can answer an address that bounced: a Reply goes back to the owner, not to
    # the watched mailbox (where it would read as a person taking the lead over).
    assert out.reply_to == Address(OWNER)
    assert_threaded_with(out, alert)
    msg = read(out)
    assert str(msg["Reply-To"]) == OWNER and msg["X-Inboxwatch"] == "owner-event"
    body = text_of(msg)
    assert "jane@customer.test> cannot be delivered" in body
    assert "550 5.1.1 user unknown" in body  # what the mail system said
    assert "stopped the follow-ups" in body and "reach them another way" in body
    assert "No phone number is known" in body
    assert '"Quote for a kitchen"' in body  # which enquiry this is about
    # A second report of the same bounce, or any bounce after the lead ended: no news.
    again = sim.message(bounce(sim.lead, hard=True), berlin(2026, 3, 4, 10, 2))
    assert again.sends == () and again.suppress == JANE.addr


def test_a_bounce_alert_gives_the_phone_number_when_known() -> None:
    sim = Sim.enquiry(form_enquiry(WED))
    d = sim.message(bounce(sim.lead, hard=True), berlin(2026, 3, 4, 10, 1))
    (out,) = owner_mail(d.sends)
    assert "Phone: +49 30 1234567." in out.body and out.from_.name == "Bounced: Max Muster"


def test_no_bounce_alert_for_a_lead_that_had_ended_or_a_soft_bounce() -> None:
    sim, _ = started()
    sim.message(reply(sim.lead, "Thanks, I found someone else."), berlin(2026, 3, 4, 11, 0))
    n = len(sim.sent)
    assert sim.message(bounce(sim.lead, hard=True), berlin(2026, 3, 4, 12, 0)).sends == ()
    sim2, _ = started()
    assert sim2.message(bounce(sim2.lead, hard=False), berlin(2026, 3, 4, 12, 0)).sends == ()
    assert len(sim.sent) == n


class View:
    """The reads delivery makes, over a dict of leads."""

    def __init__(self, *leads: Lead) -> None:
        self._leads = {x.address: x for x in leads}

    def lead(self, address: str) -> Lead | None:
        return self._leads.get(address)

    def leads(self) -> list[Lead]:
        return list(self._leads.values())

    def due(self, before: datetime) -> list[Lead]:
        return []

    def last_ack(self, address: str) -> datetime | None:
        return None

    def outbox_item(self, item_id: str) -> OutboxItem | None:
        return None

    def known(self) -> Known:
        return Known()

    def notices(self) -> list[Notice]:
        return []


def test_the_smtp_server_refusing_a_live_leads_address_is_a_bounce_the_owner_hears_of() -> None:
    sim, alert = started()
    world = route.World(BOOK, ST, counter_ids())
    (ack,) = [s for s in sim.sent if s.purpose == "ack"]
    item = route.queue_item(ack.send, WED)
    refused = Result(Outcome.REFUSED, "550 5.1.1 <jane@customer.test>: Recipient address rejected")
    at = WED + timedelta(seconds=2)
    acts = delivery.on_delivery(View(sim.lead), world, delivery.Delivered(item, refused), at)
    queued = [a.item for a in acts if isinstance(a, Queue)]
    assert [(q.purpose, q.rcpt) for q in queued] == [(Purpose.OWNER_EVENT, OWNER)]
    msg = email.message_from_bytes(queued[0].raw, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    assert "Recipient address rejected" in text_of(msg) and str(msg["Reply-To"]) == OWNER
    assert str(msg["Subject"]) == alert.subject
    assert any(isinstance(a, Suppress) for a in acts)
    (put,) = [a for a in acts if isinstance(a, PutLead)]
    assert put.lead.ended is Ended.BOUNCED
    # The same refusal for a lead already ended: recorded, not told again.
    acts = delivery.on_delivery(View(put.lead), world, delivery.Delivered(item, refused), at)
    assert not any(isinstance(a, Queue) for a in acts)


# -- opt-out and complaint -----------------------------------------------------------------


def test_an_opt_out_reads_well_and_is_threaded() -> None:
    sim, alert = started()
    d = sim.message(
        reply(sim.lead, "Please stop emailing me.\nThanks", opt_out=True), berlin(2026, 3, 5, 9)
    )
    (out,) = owner_mail(d.sends)
    assert out.from_.name == "Opted out: Jane Doe" and out.reply_to == Address(OWNER)
    assert_threaded_with(out, alert)
    body = text_of(read(out))
    assert "> Please stop emailing me.\n> Thanks" in body  # their words, quoted
    assert "never write to this address again" in body
    assert "inboxwatch unsuppress jane@customer.test" in body
    assert "What to do: nothing" in body
    # Already ended: honoured (suppressed), no alert.
    again = sim.message(reply(sim.lead, "STOP", opt_out=True), berlin(2026, 3, 5, 10))
    assert again.sends == () and again.suppress == JANE.addr


def test_a_complaint_is_told_once() -> None:
    sim, alert = started()
    lead = sim.lead
    inc = bounce(lead, hard=True)  # any message; the classification makes it a complaint
    c = dataclasses.replace(inc.c, kind=Kind.COMPLAINT, reasons=("ARF feedback report (abuse)",))
    d = sim.message(dataclasses.replace(inc, c=c), berlin(2026, 3, 5, 9))
    (out,) = owner_mail(d.sends)
    assert out.from_.name == "Spam report: Jane Doe" and out.reply_to == Address(OWNER)
    assert_threaded_with(out, alert)
    assert "reported our mail as spam" in out.body and "ARF feedback report" in out.body
    assert sim.lead.ended is Ended.OPTED_OUT and d.suppress == JANE.addr
    # The provider's older complaint mail about the same message: no second alert.
    assert sim.message(dataclasses.replace(inc, c=c), berlin(2026, 3, 5, 9, 1)).sends == ()


# -- an out-of-office with a return date ---------------------------------------------------


def test_an_absence_with_a_return_date_says_when_the_next_step_goes() -> None:
    sim, alert = started()
    sim.plan()  # the day-0 call task
    at = berlin(2026, 3, 4, 10, 5)
    d = sim.message(out_of_office(sim.lead, date(2026, 3, 14), "Back on 14 March."), at)
    (out,) = owner_mail(d.sends)
    assert sim.lead.automation is Automation.HELD
    assert sim.lead.hold_until == berlin(2026, 3, 16, 9, 0)
    assert out.from_.name == "Away, back 14 Mar: Jane Doe" and out.reply_to == Address(OWNER)
    assert_threaded_with(out, alert)
    assert "they are back on Sat 14 Mar 2026" in out.body
    assert "holds their follow-ups until Mon 16 Mar 09:00" in out.body
    assert "first business day after they are back" in out.body
    # Their responder answers again (or a second one does): same hold, no second alert.
    again = sim.message(out_of_office(sim.lead, date(2026, 3, 14)), at + timedelta(hours=1))
    assert again.sends == ()
    # Nothing goes to the lead until then; then the cadence carries on.
    sim.run_until(berlin(2026, 3, 16, 8, 59))
    assert [s.step for s in sim.lead_mail()] == ["ack"]
    sim.run_until(berlin(2026, 3, 16, 9, 0))
    assert [s.step for s in sim.lead_mail()] == ["ack", "followup-day1"]


def test_an_absence_capped_by_hold_max_says_so() -> None:
    sim, _ = started()
    at = berlin(2026, 3, 4, 10, 5)
    d = sim.message(out_of_office(sim.lead, date(2026, 6, 1)), at)
    (out,) = owner_mail(d.sends)
    assert f"at most {ST.hold_max.days} days" in out.body


def test_no_absence_alert_without_a_date_or_for_an_ended_lead() -> None:
    sim, _ = started()
    assert sim.message(out_of_office(sim.lead, None), berlin(2026, 3, 4, 10, 5)).sends == ()
    sim.message(reply(sim.lead, "Yes please."), berlin(2026, 3, 4, 11))
    later = sim.message(out_of_office(sim.lead, date(2026, 3, 14)), berlin(2026, 3, 4, 12))
    assert later.sends == ()


def test_no_event_alerts_when_owner_alerts_are_off() -> None:
    quiet = dataclasses.replace(ST, owner_alerts=False)
    sim = Sim.enquiry(direct_enquiry(WED), st=quiet)
    assert sim.message(bounce(sim.lead, hard=True), berlin(2026, 3, 4, 10, 1)).sends == ()


# -- the new-lead alert's attachments ------------------------------------------------------

PDF = b"%PDF-1.4 quote " + bytes(range(256)) * 8  # binary, 2 KiB and a bit
EVIL = 'Angebot "Küche"\r\nBcc: victim@evil.test; x.pdf'


def enquiry_with_files(*files: tuple[str, str, bytes], inline_logo: bool = False) -> bytes:
    msg = EmailMessage()
    msg["From"] = "Jane Doe <jane@customer.test>"
    msg["To"] = "sales@shop.test"
    msg["Subject"] = "Plans for the kitchen"
    msg["Message-ID"] = "<files1@customer.test>"
    msg.set_content("Hello, the plans are attached. What would it cost?")
    if inline_logo:
        msg.add_alternative("<p>Hello</p><img src='cid:logo1'>", subtype="html")
        html = msg.get_payload()[1]
        assert isinstance(html, EmailMessage)
        html.add_related(
            b"\x89PNG logo",
            "image",
            "png",
            cid="<logo1>",
            filename="logo.png",
            disposition="inline",
        )
    for name, ctype, data in files:
        maintype, subtype = ctype.split("/")
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return msg.as_bytes()


def test_attachments_within_the_limit_are_carried_the_rest_named() -> None:
    big = b"x" * 3000
    raw = enquiry_with_files(
        ("plan.pdf", "application/pdf", PDF),
        ("video.mov", "video/quicktime", big),
        ("notes.txt", "text/plain", b"width 3.2 m"),
        inline_logo=True,
    )
    kept, left = attachments(raw, limit=len(PDF) + 100)
    assert [(a.filename, a.content_type, a.data) for a in kept] == [
        ("plan.pdf", "application/pdf", PDF),
        ("notes.txt", "text/plain", b"width 3.2 m"),
    ]
    assert left == (("video.mov", 3000),)  # over what is left of the total; the logo is body
    assert attachments(raw, limit=0) == (
        (),
        (("plan.pdf", len(PDF)), ("video.mov", 3000), ("notes.txt", 11)),
    )


def test_the_new_lead_alert_carries_them_and_names_the_rest() -> None:
    st = dataclasses.replace(ST, alert_attachments_max=4096)
    raw = enquiry_with_files(
        ("plan.pdf", "application/pdf", PDF),
        ("video.mov", "video/quicktime", b"v" * 3_500_000),
    )
    files = attachments(raw, st.alert_attachments_max)
    d = route.on_enquiry(direct_enquiry(WED), BOOK, st, WED, counter_ids(), files=files)
    (out,) = owner_mail(d.sends)
    msg = read(out)
    assert msg.get_content_type() == "multipart/mixed"
    body = text_of(msg)
    assert body.startswith("Hello, what would a new oak kitchen cost?")  # still theirs first
    assert "Attached: plan.pdf (2 KB)." in body
    assert "Not attached (alerts carry at most 4 KB of files): video.mov (3.3 MB)." in body
    (part,) = list(msg.iter_attachments())
    assert part.get_filename() == "plan.pdf" and part.get_content_type() == "application/pdf"
    assert part.get_content() == PDF
    # Nothing of the files goes to the lead.
    (ack,) = [s.out for s in d.sends if s.out.purpose == "ack"]
    assert ack.attachments == () and "plan.pdf" not in ack.body


def test_a_hostile_file_name_cannot_add_a_header_and_keeps_its_letters() -> None:
    raw = enquiry_with_files((EVIL, "application/pdf", PDF), ("../../etc/passwd", "text/x", b"a"))
    kept, _ = attachments(raw, limit=1 << 20)
    assert [a.filename for a in kept] == ['Angebot "Küche" Bcc: victim@evil.test; x.pdf', "passwd"]
    out = dataclasses.replace(
        owner_mail(route.on_enquiry(direct_enquiry(WED), BOOK, ST, WED, counter_ids()).sends)[0],
        attachments=kept,
    )
    wire = to_bytes(out)
    assert b"\r\nBcc:" not in wire and b"\nBcc:" not in wire
    assert b"filename*=utf-8''Angebot%20%22K%C3%BCche%22" in wire  # RFC 2231
    msg = read(out)
    assert msg["Bcc"] is None
    names = [p.get_filename() for p in msg.iter_attachments()]
    assert names == ['Angebot "Küche" Bcc: victim@evil.test; x.pdf', "passwd"]


def test_safe_filenames() -> None:
    assert safe_filename("=?utf-8?b?w6TDtsO8LnBkZg==?=") == "äöü.pdf"  # an encoded word
    assert safe_filename("C:\\Users\\me\\scan.jpg") == "scan.jpg"
    assert safe_filename("", "image/png") == "attachment.png"
    assert safe_filename("...") == "attachment"
    long = safe_filename("ü" * 400 + ".pdf")
    assert long.endswith(".pdf") and len(long.encode()) * 3 <= 300 + 12


def test_an_unparseable_or_plain_message_has_no_attachments() -> None:
    assert attachments(b"Subject: hi\r\n\r\njust text", 1 << 20) == ((), ())
    assert attachments(b"\x00\xff garbage", 1 << 20) == ((), ())


def test_the_attachment_limit_in_the_config(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path / "a", MINIMAL))
    assert Settings.from_config(cfg).alert_attachments_max == 5120 * 1024  # the default
    owner = 'address = "owner@shop.example"\n'
    off = MINIMAL.replace(owner, owner + "alert_attachments_max_kb = 0\n")
    assert Settings.from_config(load_config(write(tmp_path / "b", off))).alert_attachments_max == 0
    bad = MINIMAL.replace(owner, owner + "alert_attachments_max_kb = -1\n")
    problem = only(write(tmp_path / "c", bad))
    assert problem.key == "owner.alert_attachments_max_kb" and "0 (never)" in str(problem)


def test_a_forwarded_email_is_carried_as_an_eml_file_not_a_base64_message_part() -> None:
    """RFC 2046 §5.2.1: a message/rfc822 part may not be base64-encoded; the alert
    carries the forwarded original as a file the owner's mail program opens."""
    original = b"From: Old <old@x.test>\r\nSubject: the first quote\r\n\r\nOld words\r\n"
    # As Outlook sends it, base64-encoded (forbidden, but it happens): read all the same.
    raw = enquiry_with_files(("", "message/rfc822", original))
    assert b"Content-Transfer-Encoding: base64" in raw
    kept, _ = attachments(raw, limit=1 << 20)
    assert [a.content_type for a in kept] == ["message/rfc822"]
    assert kept[0].data.replace(b"\r\n", b"\n") == original.replace(b"\r\n", b"\n")
    out = dataclasses.replace(
        owner_mail(route.on_enquiry(direct_enquiry(WED), BOOK, ST, WED, counter_ids()).sends)[0],
        attachments=kept,
    )
    wire = to_bytes(out)
    assert b"message/rfc822" not in wire
    (part,) = list(read(out).iter_attachments())
    assert part.get_content_type() == "application/octet-stream"
    assert part.get_filename() is not None and part.get_filename().endswith(".eml")
    assert part.get_content().replace(b"\r\n", b"\n") == original.replace(b"\r\n", b"\n")
