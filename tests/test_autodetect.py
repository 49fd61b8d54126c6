"""Detection of bounces, automatic replies and list mail (pure; no servers)."""

from __future__ import annotations

import email.header
from pathlib import Path

import pytest

from inboxwatch.core.autodetect import (
    Detection,
    detect,
    detect_auto_reply,
    detect_bounce,
    detect_list,
    is_noreply_address,
)
from inboxwatch.core.message import Message, parse_message

MAIL = Path(__file__).parent / "mail"


def load(name: str) -> Message:
    return parse_message((MAIL / name).read_bytes())


def mk(subject: str = "Quote for 40 chairs", body: str = "Hello, please send a quote.\n",
       frm: str = "Anna Lind <anna@customer.example.org>", **headers: str) -> Message:  # fmt: skip
    """A plain one-part message; keyword headers use _ for - (X_Autoreply -> X-Autoreply)."""
    if not subject.isascii():  # as a mail client sends it: RFC 2047
        subject = email.header.Header(subject, "utf-8").encode()
    lines = [f"From: {frm}", "To: sales@shop.example.com", f"Subject: {subject}",
             "Date: Wed, 03 Mar 2027 10:00:00 +0000", "Message-ID: <t-1@customer.example.org>",
             "MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8"]  # fmt: skip
    lines += [f"{k.replace('_', '-')}: {v}" for k, v in headers.items()]
    return parse_message(("\r\n".join(lines) + "\r\n\r\n" + body).encode())


# ---- the sample messages ------------------------------------------------------------

SAMPLES = [
    # file, kind, hard, recipients
    ("bounce_postfix_dsn.eml", "bounce", True, ("j.doe@customer.example.org",)),
    ("bounce_exchange_ndr.eml", "bounce", True, ("max.mueller@fabrik.example.de",)),
    ("bounce_gmail.eml", "bounce", True, ("nobody.here@customer.example.org",)),
    ("bounce_exim_plain.eml", "bounce", True, ("info@closed-company.example.org",)),
    ("bounce_qmail.eml", "bounce", True, ("gone@oldhost.example.net",)),
    ("delay_dsn.eml", "bounce", False, ("buyer@slow.example.org",)),
    ("bounce_exim_delay_warning.eml", "bounce", False, ("purchasing@busy.example.org",)),
    ("bounce_success_dsn.eml", "auto_reply", True, ()),  # success: not a bounce
    ("ooo_exchange.eml", "auto_reply", True, ()),
    ("ooo_gmail_vacation.eml", "auto_reply", True, ()),
    ("ooo_dovecot_sieve.eml", "auto_reply", True, ()),
    ("ooo_german.eml", "auto_reply", True, ()),
    ("autoresponder_helpdesk.eml", "auto_reply", True, ()),
    ("autoresponder_ticket_noheaders.eml", "auto_reply", True, ()),
    ("mdn_read_receipt.eml", "auto_reply", True, ()),
    ("list_mailman.eml", "list", True, ()),
    ("bulk_newsletter.eml", "list", True, ()),
    ("human_enquiry_mentions_bounce.eml", None, None, None),
    ("human_forwarded_ndr.eml", None, None, None),
    ("human_exchange_with_autoresponse_suppress.eml", None, None, None),
]


@pytest.mark.parametrize(("name", "kind", "hard", "recipients"), SAMPLES)
def test_samples(name: str, kind: str | None, hard: bool | None,
                 recipients: tuple[str, ...] | None) -> None:  # fmt: skip
    found = detect(load(name))
    if kind is None:
        assert found is None, found
        return
    assert found is not None
    assert (found.kind, found.hard, found.recipients) == (kind, hard, recipients), found
    assert found.reasons and all(isinstance(r, str) and r for r in found.reasons)


def test_every_sample_says_where_its_shape_comes_from() -> None:
    names = sorted(p.name for p in MAIL.glob("*.eml"))
    assert {s[0] for s in SAMPLES} <= set(names)
    for name in names:
        first = (MAIL / name).read_bytes().splitlines()[0].decode()
        assert first.startswith("X-Sample-Shape: ") and len(first) > 40, name


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("ooo_exchange.eml", "Auto-Submitted: auto-generated"),
        ("ooo_gmail_vacation.eml", "Auto-Submitted: auto-replied"),
        ("ooo_dovecot_sieve.eml", "Auto-Submitted: auto-replied"),
        ("bounce_gmail.eml", "X-Failed-Recipients"),
        ("bounce_exchange_ndr.eml", "X-MS-Exchange-Message-Is-Ndr"),
        ("bounce_postfix_dsn.eml", "multipart/report; report-type=delivery-status"),
        ("bulk_newsletter.eml", "List-Unsubscribe (bulk sender)"),
        ("list_mailman.eml", "Precedence: list"),
    ],
)
def test_reasons_name_the_evidence(name: str, reason: str) -> None:
    found = detect(load(name))
    assert found is not None and reason in found.reasons


def test_sieve_vacation_is_an_auto_reply_before_it_is_bulk() -> None:
    msg = load("ooo_dovecot_sieve.eml")  # also carries Precedence: bulk
    assert detect_list(msg) is not None
    assert detect(msg) == detect_auto_reply(msg)


def test_bounce_wins_over_auto_reply() -> None:
    msg = load("bounce_postfix_dsn.eml")  # Postfix bounces carry Auto-Submitted too
    assert detect_auto_reply(msg) is not None
    found = detect(msg)
    assert found is not None and found.kind == "bounce"


def test_detection_is_frozen() -> None:
    found = Detection("list", ("x",))
    with pytest.raises(AttributeError):
        found.kind = "bounce"  # type: ignore[misc]


# ---- bounces ----------------------------------------------------------------------------

NDR_DE = """Ihre Nachricht hat einige oder alle Empfänger nicht erreicht.

Die Zustellung an folgende Empfänger oder Gruppen ist fehlgeschlagen:

max.mustermann@kunde.example.de
Die eingegebene E-Mail-Adresse wurde nicht gefunden.
"""


def test_plain_text_german_exchange_ndr_from_postmaster() -> None:
    msg = mk("Unzustellbar: Ihr Angebot", NDR_DE, frm="postmaster@firma.example.de")
    found = detect_bounce(msg)
    assert found is not None and found.hard
    assert found.recipients == ("max.mustermann@kunde.example.de",)


@pytest.mark.parametrize(
    "subject",
    ["Undeliverable: Your quote", "Mail delivery failed: returning message to sender",
     "Delivery Status Notification (Failure)", "Returned mail: see transcript for details",
     "failure notice", "Non remis : Votre devis", "Non recapitabile: Preventivo",
     "No se puede entregar: Presupuesto", "Nicht zustellbar: Angebot"],
)  # fmt: skip
def test_ndr_subject_needs_a_second_signal(subject: str) -> None:
    body = "The message could not be sent.\n"
    assert detect_bounce(mk(subject, body)) is None  # a person could write this
    found = detect_bounce(mk(subject, body, Return_Path="<>"))
    assert found is not None and found.kind == "bounce"
    assert detect_bounce(mk(subject, body, Auto_Submitted="auto-replied")) is not None


@pytest.mark.parametrize(
    ("subject", "body"),
    [
        ("Re: Undeliverable: Your quote", NDR_DE),
        ("AW: Unzustellbar: Ihr Angebot", NDR_DE),
        ("Delivery delayed - order 1188", "Our pallet is late, when will it arrive?"),
        ("Question", "My previous email bounced, it said 'Undeliverable'. Please reply."),
        ("Returned mail and a new order", "Hello, the parcel came back. Please resend."),
    ],
)
def test_people_talking_about_bounces_are_not_bounces(subject: str, body: str) -> None:
    assert detect(mk(subject, body)) is None


def test_ndr_subject_and_ndr_text_together_suffice() -> None:
    body = "This message was created automatically by mail delivery software.\n\n  x@y.example\n"
    found = detect_bounce(mk("Mail delivery failed: returning message to sender", body))
    assert found is not None and found.recipients == ("x@y.example",)


def test_mailer_daemon_sender_alone_is_a_bounce() -> None:
    found = detect_bounce(mk("Something", "see attached", frm="MAILER-DAEMON@mx.example.net"))
    assert found is not None and found.kind == "bounce"


def _dsn(fields: str, subject: str = "Delivery Status Notification") -> Message:
    raw = (
        "From: Mail Delivery Subsystem <mailer-daemon@mx.example.net>\r\n"
        "To: sales@shop.example.com\r\n"
        f"Subject: {subject}\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain\r\n\r\nDelivery report.\r\n"
        "--b\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example.net\r\n\r\n"
        f"{fields}\r\n--b--\r\n"
    )
    return parse_message(raw.encode())


def test_dsn_folded_recipient_and_mixed_actions() -> None:
    fields = (
        "Final-Recipient: RFC822;\r\n  Gone@Example.ORG\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n"
        "Final-Recipient: rfc822; slow@example.net\r\nAction: delayed\r\nStatus: 4.4.7\r\n"
    )
    found = detect_bounce(_dsn(fields))
    assert found is not None and found.hard and found.recipients == ("gone@example.org",)


@pytest.mark.parametrize(
    ("fields", "hard", "recipients"),
    [
        ("Final-Recipient: rfc822; a@example.org\r\nAction: failed\r\nStatus: 5.2.2\r\n",
         True, ("a@example.org",)),
        ("Final-Recipient: rfc822; a@example.org\r\nAction: delayed\r\nStatus: 4.4.1\r\n",
         False, ("a@example.org",)),
        ("Final-Recipient: rfc822; a@example.org\r\nStatus: 5.0.0\r\n", True, ("a@example.org",)),
    ],
)  # fmt: skip
def test_dsn_actions(fields: str, hard: bool, recipients: tuple[str, ...]) -> None:
    found = detect_bounce(_dsn(fields))
    assert found is not None and (found.hard, found.recipients) == (hard, recipients)


def test_gmail_style_delay_text_without_dsn_is_soft() -> None:
    body = (
        "** Delivery incomplete **\n\nThere was a temporary problem delivering your message to "
        "late@example.org. Gmail will retry for 46 more hours.\n"
    )
    found = detect_bounce(
        mk("Delivery Status Notification (Delay)", body, frm="mailer-daemon@googlemail.com")
    )
    assert found is not None and not found.hard
    assert found.recipients == ("late@example.org",)


# ---- automatic replies ----------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"Auto_Submitted": "auto-replied"},
        {"Auto_Submitted": "auto-generated"},
        {"Auto_Submitted": "auto-notified"},
        {"Auto_Submitted": "auto-replied (zimbra; vacation)"},
        {"X_Autoreply": "yes"},
        {"X_Autorespond": "Vacation"},
        {"X_Autoresponder": "Will not send another autoreply for 86400 seconds"},
        {"X_Mail_Autoreply": "yes"},
        {"Precedence": "auto_reply"},
        {"X_POST_MessageClass": "9; Autoresponder"},
        {"X_FC_MachineGenerated": "true"},
        {"X_Apple_Action": "vacation"},
        {"X_Loop": "sales@vendor.example.com"},
        {"Return_Path": "<>"},
    ],
)
def test_auto_reply_headers_are_decisive(headers: dict[str, str]) -> None:
    found = detect(mk("Re: Quote for 40 chairs", **headers))
    assert found is not None and found.kind == "auto_reply"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Auto_Submitted": "no"},
        {"X_Autoreply": "no"},
        {"X_Auto_Response_Suppress": "All"},  # Outlook sets this on ordinary mail
        {"X_MS_Exchange_Inbox_Rules_Loop": "info@shop.example.com"},  # rule forwards carry it
        {"Feedback_ID": "21:21:us21:mc"},  # ESPs stamp transactional mail too
        {"Return_Path": "<anna@customer.example.org>"},
    ],
)
def test_not_automatic(headers: dict[str, str]) -> None:
    assert detect(mk(**headers)) is None


@pytest.mark.parametrize(
    "subject",
    [
        "Automatic reply: Quote for 40 chairs", "Auto Reply: Quote", "AutoReply: Quote",
        "Auto-Reply", "Auto Response", "Out of Office: Quote", "Out of the office: Quote",
        "Abwesenheitsnotiz: Angebot", "Automatische Antwort: Angebot",
        "Réponse automatique : Devis", "Respuesta automática: Presupuesto",
        "Risposta automatica: Preventivo", "Automatisch antwoord: Offerte",
        "Resposta automática: Orçamento", "Autosvar: Offert", "Automaattinen vastaus: Tarjous",
        "Automatyczna odpowiedź: Oferta", "自动回复: 报价", "[EXTERNAL] Automatic reply: Quote",
        "Quote for 40 chairs [Auto-Reply]",
    ],
)  # fmt: skip
def test_auto_reply_subjects(subject: str) -> None:
    found = detect_auto_reply(mk(subject, "I'm away."))
    assert found is not None and found.kind == "auto_reply"


@pytest.mark.parametrize(
    "subject",
    [
        "Re: Automatic reply: Quote for 40 chairs",  # a person answering an auto-reply
        "AW: Abwesenheitsnotiz: Angebot",
        "Auto reply not working in your app",  # a subject about auto-replies
        "Auto: Angebot für den Golf",  # "Auto" is a car in German
        "Out of office furniture - quote",
        "Vacation rental enquiry",
    ],
)
def test_subjects_that_are_not_auto_replies(subject: str) -> None:
    assert detect_auto_reply(mk(subject, "Please send a quote for 40 chairs.")) is None


def test_weak_subject_needs_corroboration() -> None:
    body = "I am currently out of the office with limited access to email.\n"
    assert detect_auto_reply(mk("Out of office", "Please call me.")) is None
    assert detect_auto_reply(mk("Out of office", body)) is not None
    # X-Auto-Response-Suppress is no corroboration: Outlook stamps it on ordinary mail
    assert detect_auto_reply(mk("Out of office", "Hi", X_Auto_Response_Suppress="All")) is None
    assert (
        detect_auto_reply(mk("Absence room furniture", "Quote?", X_Auto_Response_Suppress="All"))
        is None
    )
    # ...but out-of-office words in a person's body alone are not enough
    assert detect_auto_reply(mk("Quote", "I'm out of the office next week, send it now.")) is None
    # ...nor with an absence word inside a person's subject, on a message that answers nothing
    person = "I'll be out of the office next week, so could you deliver after the 15th?"
    assert detect_auto_reply(mk("Away from the office next week - sofa", person)) is None
    # an answer to another message (RFC 3834 §3.1.5) with the same words is a responder
    ooo = mk("Away from the office - Re: sofa", person, In_Reply_To="<iw.1@shop.example>")
    assert detect_auto_reply(ooo) is not None


@pytest.mark.parametrize(
    "subject",
    [
        "Автоматический ответ: Заказ", "Automatiskt svar: Offert", "Automatisk svar: Tilbud",
        "自动答复: 报价", "Otomatik yanıt: Teklif", "Automatikus válasz: Ajánlat",
        "Răspuns automat: Ofertă", "Αυτόματη απάντηση: Προσφορά",
    ],
)  # fmt: skip
def test_localized_outlook_auto_reply_subjects(subject: str) -> None:
    assert detect_auto_reply(mk(subject, "Hello")) is not None


def test_sent_automatically_and_do_not_reply_is_a_notification() -> None:
    body = (
        "You received a payment.\n\n"
        "This email was sent automatically. Please don't reply to this email.\n"
    )
    assert detect_auto_reply(mk("You've got money", body)) is not None
    # a person forwarding such a notice is a person
    assert detect_auto_reply(mk("Fwd: You've got money", body)) is None
    assert detect_auto_reply(mk("Payment", "Please don't reply to this email, call me.")) is None


# ---- lists -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"List_Id": "<chairs.lists.example.org>"},
        {"List_Post": "<mailto:chairs@lists.example.org>"},
        {"List_Unsubscribe": "<https://example.com/u?x=1>"},
        {"Precedence": "bulk"},
        {"Precedence": "list"},
        {"Precedence": "junk"},
        {"X_Mailman_Version": "2.1.39"},
        {"Mailing_List": "contact chairs-help@example.org; run by ezmlm"},
    ],
)
def test_list_headers(headers: dict[str, str]) -> None:
    found = detect(mk(**headers))
    assert found is not None and found.kind == "list" and found.hard


# ---- robot addresses ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "addr",
    [
        "noreply@example.com", "no-reply@example.com", "No_Reply@Example.com",
        "no.reply@example.com", "donotreply@example.com", "do-not-reply@example.com",
        "do_not_reply+abc@example.com", "noreply+tag@example.com", "NOREPLY-billing@example.com",
        "billing-noreply@example.com", "alerts.no-reply.eu@example.com",
        "mailer-daemon@example.com", "MAILER-DAEMON", "Mailer_Daemon@example.com",
        "postmaster@example.com", "bounce@example.com", "bounces+1234@example.com",
        "list-bounces@lists.example.org", "bounce-mc.us21_1234@mcdlv.net",
        "notifications@github.example.com", "Notification@example.com", "<>", "",
        "quarantine@ess.barracudanetworks.com", "receipts+acct_1Hx2Yz@stripe.com",
    ],
)  # fmt: skip
def test_noreply_addresses(addr: str) -> None:
    assert is_noreply_address(addr)


@pytest.mark.parametrize(
    "addr",
    [
        "anna@example.com", "info@example.com", "sales@example.com", "support@example.com",
        "replies@example.com", "noah.reply@example.com", "notifications.team.lead@example.com",
        "bouncer.jane@example.com", "donna@example.com", "newsletter@example.com",
    ],
)  # fmt: skip
def test_person_and_role_addresses_are_not_noreply(addr: str) -> None:
    assert not is_noreply_address(addr)


# ---- machine answers found by subject *and* body (real-world sweep) ------------------


@pytest.mark.parametrize(
    ("subject", "body"),
    [
        # cPanel BoxTrapper and French anti-spam challenge-response filters
        ("Your email requires verification verify#67f3a2b1",
         "The message you sent requires that you verify that you are a real live human being "
         "and not a spam source."),
        ("Votre message est en attente de validation",
         "Pour que votre message soit délivré, prouvez que vous n'êtes pas un robot."),
        # Freshdesk / Zendesk default acknowledgements
        ("Ticket Received - Quote",
         "We would like to acknowledge that we have received your request and a ticket has "
         "been created."),
        ("Request received: Quote", "Your request (48213) has been received and is being "
         "reviewed by our support staff."),
        # "sent automatically" in other languages
        ("Abwesenheit", "Diese E-Mail wurde automatisch erstellt."),
        ("Absent", "Ce message est envoyé automatiquement, merci de ne pas répondre."),
    ],
)  # fmt: skip
def test_weak_subject_with_machine_wording(subject: str, body: str) -> None:
    found = detect_auto_reply(mk(subject, body))
    assert found is not None and found.kind == "auto_reply"


@pytest.mark.parametrize(
    ("subject", "body"),
    [
        ("Please confirm your email address is right", "Is jane@example.org the one to use?"),
        ("Ticket request received?", "We still wait for your quote on ticket 12."),
        ("Accepted: your offer for 40 chairs", "Please go ahead and send the invoice."),
        ("Report domain names for our websites", "Could you quote for 3 domains?"),
    ],
)
def test_person_subjects_that_look_machine_made(subject: str, body: str) -> None:
    assert detect_auto_reply(mk(subject, body)) is None


def test_a_calendar_reply_needs_a_calendar_part() -> None:
    plain = mk("Accepted: Showroom visit", "")
    assert detect_auto_reply(plain) is None
    raw = (
        "From: Anna <anna@customer.example.org>\r\nTo: sales@shop.example.com\r\n"
        "Subject: Accepted: Showroom visit\r\nMessage-ID: <c1@customer.example.org>\r\n"
        "MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n"
        "--b\r\nContent-Type: text/plain\r\n\r\n\r\n"
        "--b\r\nContent-Type: text/calendar; method=REPLY\r\n\r\n"
        "BEGIN:VCALENDAR\r\nMETHOD:REPLY\r\nEND:VCALENDAR\r\n--b--\r\n"
    )
    found = detect_auto_reply(parse_message(raw.encode()))
    assert found is not None and any("iTIP" in r for r in found.reasons)


def test_dmarc_aggregate_report_subject() -> None:
    subject = "Report Domain: shop.example Submitter: google.com Report-ID: <1234567890>"
    found = detect_auto_reply(mk(subject, "", frm="dmarcreport@microsoft.com"))
    assert found is not None and "DMARC aggregate report (RFC 7489)" in found.reasons
