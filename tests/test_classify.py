"""Classification with the shipped rules: samples, known leads, robots, own mail, web forms."""

from __future__ import annotations

import json
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest

from inboxwatch.core.classify import Classification, Context, Kind, Known, classify
from inboxwatch.core.message import Address, Message, parse_message
from inboxwatch.service.commands import context
from inboxwatch.userfiles.config import load_config
from inboxwatch.userfiles.rulebook import RuleBook, load_rulebook

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "inboxwatch" / "testing" / "samples"
MAIL = Path(__file__).parent / "mail"
NOW = datetime(2027, 3, 3, 12, 0, tzinfo=UTC)
OWN = frozenset({"hello@shop.example", "sales@shop.example.com"})
TEAM = frozenset({"jane@shop.example", "owner@shop.example"})
CTX = Context(own=OWN, team=TEAM)


@pytest.fixture(scope="module")
def book() -> RuleBook:
    return load_rulebook(REPO / "rules", REPO / "templates")


def sample(path: Path) -> Message:
    return parse_message(path.read_bytes())


def mail(
    body: str,
    subject: str = "Quote for 40 chairs",
    frm: str = "Maria Lopez <maria.lopez@example.net>",
    *,
    to: str = "hello@shop.example",
    ctype: str = "text/plain; charset=utf-8",
    **headers: str,
) -> Message:
    """A raw message written line by line, as a sending system would."""
    lines = [
        f"From: {frm}",
        f"To: {to}",
        f"Subject: {subject}",
        "Date: Wed, 03 Mar 2027 10:00:00 +0000",
        "Message-ID: <m1.1741000000@sender.example>",
        *(f"{k.replace('_', '-')}: {v}" for k, v in headers.items()),
        "MIME-Version: 1.0",
        f"Content-Type: {ctype}",
        "Content-Transfer-Encoding: 8bit",
    ]
    text = textwrap.dedent(body).replace("\n", "\r\n")
    return parse_message(("\r\n".join(lines) + "\r\n\r\n" + text).encode())


def run(msg: Message, book: RuleBook, ctx: Context = CTX) -> Classification:
    return classify(msg, book, ctx, NOW)


# ---- the sample messages ---------------------------------------------------------------

EXPECTED = {
    "01-direct-enquiry.eml": ("enquiry", "direct-email"),
    "02-web-form.eml": ("enquiry", "website-form"),
    "03-out-of-office.eml": ("auto_reply", ""),
    "04-bounce.eml": ("bounce", ""),
    "05-newsletter.eml": ("list", ""),
    "06-lead-reply.eml": ("reply", ""),  # answers our <iw.…@shop.example> acknowledgement
    "07-colleague.eml": ("own", ""),
    "autoresponder_helpdesk.eml": ("auto_reply", ""),
    "autoresponder_ticket_noheaders.eml": ("auto_reply", ""),
    "bounce_exchange_ndr.eml": ("bounce", ""),
    "bounce_exim_delay_warning.eml": ("bounce", ""),
    "bounce_exim_plain.eml": ("bounce", ""),
    "bounce_gmail.eml": ("bounce", ""),
    "bounce_postfix_dsn.eml": ("bounce", ""),
    "bounce_qmail.eml": ("bounce", ""),
    "bounce_success_dsn.eml": ("auto_reply", ""),  # a success report is not a bounce
    "bulk_newsletter.eml": ("list", ""),
    "delay_dsn.eml": ("bounce", ""),
    "human_enquiry_mentions_bounce.eml": ("enquiry", "direct-email"),
    "human_exchange_with_autoresponse_suppress.eml": ("enquiry", "direct-email"),
    "human_forwarded_ndr.eml": ("enquiry", "direct-email"),
    "list_mailman.eml": ("list", ""),
    "mdn_read_receipt.eml": ("auto_reply", ""),
    "ooo_dovecot_sieve.eml": ("auto_reply", ""),
    "ooo_exchange.eml": ("auto_reply", ""),
    "ooo_german.eml": ("auto_reply", ""),
    "ooo_gmail_vacation.eml": ("auto_reply", ""),
}
ALL_FILES = sorted([*SAMPLES.glob("*.eml"), *MAIL.glob("*.eml")])


@pytest.mark.parametrize("path", ALL_FILES, ids=lambda p: p.name)
def test_every_sample_has_the_expected_kind(path: Path, book: RuleBook) -> None:
    assert path.name in EXPECTED, f"new sample {path.name}: add its expected kind here"
    kind, rule = EXPECTED[path.name]
    c = run(sample(path), book)
    assert (c.kind.value, c.rule) == (kind, rule), c.reasons
    if c.kind is Kind.ENQUIRY:
        assert c.lead is not None and c.sequence == "default" and c.template
    else:
        assert c.lead is None or c.kind in (Kind.AUTO_REPLY, Kind.REPLY)


def test_direct_enquiry(book: RuleBook) -> None:
    c = run(sample(SAMPLES / "01-direct-enquiry.eml"), book)
    assert c.lead == Address("maria.lopez@example.net", "Maria Lopez")
    assert (c.source, c.template, c.sequence) == ("direct-email", "ack", "default")
    assert c.new_text.startswith("Hello,") and "rough quote" in c.new_text


def test_web_form_sample(book: RuleBook) -> None:
    c = run(sample(SAMPLES / "02-web-form.eml"), book)
    assert c.kind is Kind.ENQUIRY
    assert c.lead == Address("tom.becker@example.org", "Tom Becker")
    assert (c.source, c.template) == ("website-form", "ack-form")
    assert c.fields["phone"] == "+49 30 1234567"
    assert c.fields["message"].startswith("Hi, do you also install heat pumps?")


def test_web_form_message_field_stops_at_the_signature(book: RuleBook) -> None:
    """Contact Form 7's "-- \\nThis e-mail was sent from a contact form" footer is not the
    lead's message."""
    c = run(sample(SAMPLES / "02-web-form.eml"), book)
    assert c.fields["message"] == (
        "Hi, do you also install heat pumps? We have a 140 m² house in Potsdam."
    )


def test_bounce_recipients_and_the_lead_they_concern(book: RuleBook) -> None:
    msg = sample(SAMPLES / "04-bounce.eml")
    c = run(msg, book)
    assert c.bounced == ("no.such.person@example.org",) and c.bounce_hard
    known = Known(by_address={"no.such.person@example.org": "no.such.person@example.org"})
    c = run(msg, book, Context(OWN, TEAM, known))
    assert c.lead_key == "no.such.person@example.org"
    c = run(sample(MAIL / "delay_dsn.eml"), book)
    assert c.kind is Kind.BOUNCE and not c.bounce_hard and c.bounced == ("buyer@slow.example.org",)


def test_out_of_office_has_a_return_date(book: RuleBook) -> None:
    c = run(sample(MAIL / "ooo_exchange.eml"), book)
    assert c.kind is Kind.AUTO_REPLY and c.return_date is not None


# ---- known leads -------------------------------------------------------------------------

MARIA = "maria.lopez@example.net"
OUR_ACK = "<iw.5d1e0c7a9b2f4e6d8c0a1b3c@shop.example>"


def test_reply_in_a_known_thread(book: RuleBook) -> None:
    known = Known(by_message_id={OUR_ACK: MARIA})
    c = run(sample(SAMPLES / "06-lead-reply.eml"), book, Context(OWN, TEAM, known))
    assert c.kind is Kind.REPLY and c.lead_key == MARIA and not c.opt_out
    assert c.new_text.startswith("Great, thank you!") and "> Hi Maria" not in c.new_text


def test_reply_from_a_known_address_without_thread_headers(book: RuleBook) -> None:
    known = Known(by_address={MARIA: MARIA})
    c = run(mail("One more question: do you also do bathrooms?\n"), book, Context(OWN, TEAM, known))
    assert c.kind is Kind.REPLY and c.lead_key == MARIA
    assert c.reasons == ("from a known lead",)


def test_someone_else_in_a_known_leads_thread_is_a_reply(book: RuleBook) -> None:
    known = Known(by_message_id={OUR_ACK: MARIA})
    msg = mail(
        "I am Maria's husband; Tuesday works for us.\n",
        "Re: Quote for a kitchen renovation?",
        "Pedro Lopez <pedro@example.net>",
        In_Reply_To=OUR_ACK,
    )
    c = run(msg, book, Context(OWN, TEAM, known))
    assert c.kind is Kind.REPLY and c.lead_key == MARIA
    assert c.lead == Address("pedro@example.net", "Pedro Lopez")


def test_references_alone_name_the_thread(book: RuleBook) -> None:
    known = Known(by_message_id={OUR_ACK: MARIA})
    msg = mail(
        "Thanks!\n",
        "Re: Quote",
        "Maria L <maria@other.example>",
        References=f"<first@example.net> {OUR_ACK}",
    )
    c = run(msg, book, Context(OWN, TEAM, known))
    assert c.kind is Kind.REPLY and c.lead_key == MARIA


@pytest.mark.parametrize(
    ("text", "opt_out"),
    [
        ("Please remove me from your list.\n\nMaria\n", True),
        ("Bitte keine E-Mails mehr.\n", True),
        ("Thanks, Tuesday at 10 works. Please call me.\n", False),
    ],
)
def test_opt_out_reply(book: RuleBook, text: str, opt_out: bool) -> None:
    known = Known(by_address={MARIA: MARIA}, by_message_id={OUR_ACK: MARIA})
    msg = mail(text, "Re: Quote", In_Reply_To=OUR_ACK)
    c = run(msg, book, Context(OWN, TEAM, known))
    assert c.kind is Kind.REPLY and c.opt_out is opt_out


def test_an_opt_out_from_a_stranger_is_not_a_reply(book: RuleBook) -> None:
    c = run(mail("Unsubscribe\n", "Unsubscribe"), book)
    assert c.kind is not Kind.REPLY and not c.opt_out


# ---- our own mail ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sender",
    [
        "Shop <hello@shop.example>",
        "HELLO@SHOP.EXAMPLE",
        "Sales <sales@shop.example.com>",
        "Jane Miller <jane@shop.example>",
        "The Owner <owner@shop.example>",
    ],
)
def test_own_team_and_owner_mail_is_own(book: RuleBook, sender: str) -> None:
    c = run(mail("Please quote 40 chairs for the Miller account.\n", frm=sender), book)
    assert c.kind is Kind.OWN and c.lead is None


def test_the_owner_counts_as_team(tmp_path: Path, book: RuleBook) -> None:
    (tmp_path / "rules").mkdir()
    (tmp_path / "templates").mkdir()
    cfg_path = tmp_path / "config.toml"
    cfg_path.write_text(
        "[imap]\nhost = 'localhost'\nusername = 'u'\npassword_env = 'X'\n"
        "[smtp]\nhost = 'localhost'\n"
        "[identity]\naddress = 'hello@shop.example'\naliases = ['info@shop.example']\n"
        "[team]\naddresses = ['jane@shop.example']\n"
        "[owner]\naddress = 'boss@owner-private.example'\n",
        encoding="utf-8",
    )
    ctx = context(load_config(cfg_path))
    assert ctx.own == frozenset({"hello@shop.example", "info@shop.example"})
    assert ctx.team == frozenset({"jane@shop.example", "boss@owner-private.example"})
    c = run(
        mail("Any news on the Miller quote?\n", frm="Boss <boss@owner-private.example>"), book, ctx
    )
    assert c.kind is Kind.OWN and c.reasons == ("sent by the team",)


def test_a_colleague_in_our_domain_is_own(book: RuleBook) -> None:
    c = run(mail("Who wants pizza?\n", "Lunch", "Bob <bob@shop.example>"), book)
    assert c.kind is Kind.OWN
    assert "sent from our own domain shop.example" in c.reasons


def test_a_public_mail_domain_is_not_our_domain(book: RuleBook) -> None:
    ctx = Context(own=frozenset({"shop.example.sales@gmail.com"}), team=frozenset())
    c = run(mail("Hello, a quote please.\n", frm="Ann <ann.smith@gmail.com>"), book, ctx)
    assert c.kind is Kind.ENQUIRY and c.lead == Address("ann.smith@gmail.com", "Ann")


def test_an_answer_to_our_own_alert_is_own(book: RuleBook) -> None:
    known = Known(ours=frozenset({"<iw.alert1@shop.example>"}))
    msg = mail(
        "Handled it.\n",
        "Re: New lead",
        "Somebody <somebody@example.net>",
        In_Reply_To="<iw.alert1@shop.example>",
    )
    c = run(msg, book, Context(OWN, TEAM, known))
    assert c.kind is Kind.OWN and c.reasons == ("answers our own alert",)


# ---- lists and robots --------------------------------------------------------------------


def test_a_list_post_that_a_plain_rule_matches_is_still_list(book: RuleBook) -> None:
    msg = sample(MAIL / "list_mailman.eml")
    assert any(r.matches(msg, msg.body_text) for r in book.rules)  # direct-email matches all
    assert run(msg, book).kind is Kind.LIST


ROBOT_RULES = """
[[rule]]
name = "marketplace"
kind = "enquiry"
source = "marketplace"
accept_robots = true
{lead}
[rule.match]
{match}

[[rule]]
name = "direct-email"

[sequence.default]
  [[sequence.default.step]]
  name = "ack"
  day = 0
  template = "ack"
"""


def robot_book(tmp_path: Path, lead: str, match: str) -> RuleBook:
    (tmp_path / "rules").mkdir()
    (tmp_path / "templates").mkdir()
    (tmp_path / "rules" / "r.toml").write_text(
        ROBOT_RULES.format(lead=lead, match=match), encoding="utf-8"
    )
    (tmp_path / "templates" / "ack.toml").write_text(
        'subject = "Thanks"\nbody = "Hi {{ first_name | there }}"\n', encoding="utf-8"
    )
    return load_rulebook(tmp_path / "rules", tmp_path / "templates")


def test_a_list_message_is_an_enquiry_when_a_robot_rule_matches(tmp_path: Path) -> None:
    rb = robot_book(tmp_path, "", 'subject = "[Furniture-trade]"')
    c = run(sample(MAIL / "list_mailman.eml"), rb)
    assert c.kind is Kind.ENQUIRY and c.rule == "marketplace"
    assert c.lead is not None and c.lead.addr == "peter@member.example.net"
    assert any("List-Id" in r for r in c.reasons)


def test_no_reply_sender_is_never_an_enquiry(book: RuleBook) -> None:
    msg = mail(
        "Your invoice 2027-0042 is attached.\n",
        "Your invoice",
        "Billing <no-reply@vendor.example>",
    )
    c = run(msg, book)
    assert c.kind is Kind.IGNORE and c.lead is None
    assert "no-reply sender no-reply@vendor.example" in c.reasons


def test_a_robot_rule_taking_the_sender_never_answers_a_no_reply(tmp_path: Path) -> None:
    rb = robot_book(tmp_path, "", 'subject = "New message"')
    msg = mail("You have a new message.\n", "New message", "Portal <noreply@portal.example>")
    c = run(msg, rb)
    assert c.kind is not Kind.ENQUIRY and c.lead is None


def test_a_no_reply_notification_with_a_lead_in_reply_to(tmp_path: Path) -> None:
    rb = robot_book(
        tmp_path, 'lead = "reply-to"\nsenders = ["@marketplace.example"]', 'subject = "New message"'
    )
    msg = mail(
        "Hi, is the oak table still available?\n",
        "New message from Jane Doe",
        "Marketplace <noreply@marketplace.example>",
        Reply_To="Jane Doe <jane.doe@example.com>",
    )
    c = run(msg, rb)
    assert c.kind is Kind.ENQUIRY and c.lead == Address("jane.doe@example.com", "Jane Doe")
    assert c.source == "marketplace"


def test_a_no_reply_notification_whose_lead_is_itself_is_not_an_enquiry(tmp_path: Path) -> None:
    rb = robot_book(
        tmp_path, 'lead = "reply-to"\nsenders = ["@marketplace.example"]', 'subject = "New message"'
    )
    msg = mail(
        "You have a new message.\n",
        "New message",
        "Marketplace <noreply@marketplace.example>",
        Reply_To="noreply@marketplace.example",
    )
    assert run(msg, rb).kind is not Kind.ENQUIRY


# ---- Auto-Submitted form notifications ---------------------------------------------------

FORM = """\
Name: Jane Doe
Email: jane.doe@example.com
Message: Do you deliver to Hamburg?
"""


def test_an_auto_generated_form_notification_is_rescued(book: RuleBook) -> None:
    msg = mail(
        FORM,
        "New form submission: Contact",
        "Formspree <noreply@formspree.io>",
        Auto_Submitted="auto-generated",
    )
    c = run(msg, book)
    assert c.kind is Kind.ENQUIRY and c.rule == "website-form"
    assert c.lead == Address("jane.doe@example.com", "Jane Doe")
    assert c.reasons[0] == "Auto-Submitted: auto-generated"


def test_an_auto_generated_message_whose_lead_is_the_sender_is_not_rescued(
    book: RuleBook,
) -> None:
    msg = mail(
        FORM,
        "New form submission: Contact",
        "Jane Doe <jane.doe@example.com>",
        Auto_Submitted="auto-generated",
    )
    c = run(msg, book)
    assert c.kind is Kind.AUTO_REPLY


def test_an_auto_generated_notification_for_a_known_lead_is_an_auto_reply(book: RuleBook) -> None:
    msg = mail(FORM, "New form submission", "Formspree <noreply@formspree.io>",
               Auto_Submitted="auto-generated", In_Reply_To=OUR_ACK)  # fmt: skip
    c = run(msg, book, Context(OWN, TEAM, Known(by_message_id={OUR_ACK: MARIA})))
    assert c.kind is Kind.AUTO_REPLY and c.lead_key == MARIA


def test_a_rescue_respects_an_earlier_ignore_rule(tmp_path: Path) -> None:
    """First match wins for robots too: an ignore rule before the form rule keeps spam out."""
    rules = """
    [[rule]]
    name = "form-spam"
    kind = "ignore"
    accept_robots = true
    [rule.match]
    body = "casino"

    [[rule]]
    name = "form"
    lead = "body"
    lead_pattern = '^email:\\s*(?P<email>\\S+@\\S+)'
    senders = ["@formhost.example"]
    accept_robots = true
    template = "ack"
    [rule.match]
    subject = "form submission"

    [sequence.default]
      [[sequence.default.step]]
      name = "ack"
      day = 0
      template = "ack"
    """
    (tmp_path / "rules").mkdir()
    (tmp_path / "templates").mkdir()
    (tmp_path / "rules" / "r.toml").write_text(textwrap.dedent(rules), encoding="utf-8")
    (tmp_path / "templates" / "ack.toml").write_text('subject = "x"\nbody = "y"\n')
    rb = load_rulebook(tmp_path / "rules", tmp_path / "templates")
    body = "Email: spam@example.org\nMessage: best casino bonus\n"
    plain = mail(body, "New form submission", "Forms <forms@formhost.example>")
    assert run(plain, rb).rule == "form-spam"
    robot = mail(body, "New form submission", "Forms <forms@formhost.example>",
                 Auto_Submitted="auto-generated")  # fmt: skip
    c = run(robot, rb)
    assert c.kind is not Kind.ENQUIRY, c.reasons


# ---- addresses we must not answer -------------------------------------------------------


def test_a_suppressed_sender_is_never_an_enquiry(book: RuleBook) -> None:
    ctx = Context(OWN, TEAM, Known(suppressed=frozenset({MARIA})))
    c = run(sample(SAMPLES / "01-direct-enquiry.eml"), book, ctx)
    assert c.kind is Kind.IGNORE and c.lead is None
    assert any("suppression list" in r for r in c.reasons)


def test_a_suppressed_form_lead_is_never_an_enquiry(book: RuleBook) -> None:
    ctx = Context(OWN, TEAM, Known(suppressed=frozenset({"tom.becker@example.org"})))
    assert run(sample(SAMPLES / "02-web-form.eml"), book, ctx).kind is not Kind.ENQUIRY
    ctx = Context(OWN, TEAM, Known(suppressed=frozenset({"jane.doe@example.com"})))
    msg = mail(FORM, "New form submission", "Formspree <noreply@formspree.io>",
               Auto_Submitted="auto-generated")  # fmt: skip
    assert run(msg, book, ctx).kind is not Kind.ENQUIRY


@pytest.mark.parametrize(
    "address",
    ["jane..doe@example.com", "jane@@example.com", "jäne@exämple.com", "jane@example.c"],
)
def test_an_invalid_extracted_address_is_never_answered(book: RuleBook, address: str) -> None:
    body = f"Name: Jane Doe\nEmail: {address}\nMessage: hi\n"
    msg = mail(body, "New form submission", WORDPRESS)
    c = run(msg, book)
    assert c.kind is not Kind.ENQUIRY
    assert c.lead is None or c.lead.addr != address.lower()


@pytest.mark.parametrize(
    "address",
    ["hello@shop.example", "jane@shop.example", "someone@shop.example", "noreply@example.com"],
)
def test_a_form_lead_that_is_us_the_team_or_a_robot_is_not_answered(
    book: RuleBook, address: str
) -> None:
    body = f"Name: Test\nEmail: {address}\nMessage: test\n"
    c = run(mail(body, "New form submission", "Formspree <noreply@formspree.io>"), book)
    assert c.kind is Kind.IGNORE and c.rule == "website-form"


def test_a_person_whose_subject_looks_like_a_form_is_still_answered(book: RuleBook) -> None:
    """The form rule finds no address, is skipped, and the next rule decides."""
    msg = mail("Hello, we need 40 chairs by May.\n", "New enquiry: 40 chairs")
    c = run(msg, book)
    assert c.kind is Kind.ENQUIRY and c.rule == "direct-email"
    assert c.lead == Address(MARIA, "Maria Lopez")
    assert any("rule 'website-form' skipped" in r for r in c.reasons)


def test_an_internationalised_sender_address_is_classified_not_crashed(book: RuleBook) -> None:
    """RFC 6532 allows UTF-8 in addresses; such a sender is not answered, but is no crash."""
    raw = (
        "From: Jürgen Müller <jürgen@müller.example>\r\nTo: hello@shop.example\r\n"
        "Subject: Angebot\r\nMessage-ID: <u1@example.de>\r\n"
        "Date: Wed, 03 Mar 2027 10:00:00 +0000\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\nHallo, ein Angebot bitte.\r\n"
    ).encode()
    c = run(parse_message(raw), book)
    assert c.kind is not Kind.ENQUIRY


def test_raw_utf8_headers_are_decoded(book: RuleBook) -> None:
    """Many mailers (and RFC 6532) send UTF-8 headers unencoded: "Hi J\ufffd\ufffdrgen" is wrong."""
    raw = (
        "From: Jürgen Müller <juergen@example.de>\r\nTo: hello@shop.example\r\n"
        "Subject: Grüße – Angebot für Stühle\r\nMessage-ID: <u2@example.de>\r\n"
        "Date: Wed, 03 Mar 2027 10:00:00 +0000\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\nHallo, ein Angebot bitte.\r\n"
    ).encode()
    msg = parse_message(raw)
    assert msg.subject == "Grüße – Angebot für Stühle"
    c = run(msg, book)
    assert c.kind is Kind.ENQUIRY
    assert c.lead == Address("juergen@example.de", "Jürgen Müller")


def test_as_json(book: RuleBook) -> None:
    c = run(sample(SAMPLES / "02-web-form.eml"), book)
    obj = json.loads(c.as_json(file="x.eml"))
    assert obj["file"] == "x.eml" and obj["kind"] == "enquiry"
    assert obj["lead"] == {"address": "tom.becker@example.org", "name": "Tom Becker"}
    assert obj["rule"] == "website-form" and obj["source"] == "website-form"
    assert obj["reasons"] == list(c.reasons)


# ---- realistic web-form notifications with the shipped website-form rule ---------------

CF7_CLASSIC = """\
From: Lukas Weber <lukas.weber@example.de>
Subject: Angebot Wärmepumpe

Message Body:
Guten Tag, was kostet eine Wärmepumpe für 120 m²?

--
This e-mail was sent from a contact form on Shop Website (https://shop.example)
"""

CF7_CURRENT = """\
From: Lukas Weber lukas.weber@example.de
Subject: Angebot Wärmepumpe

Message Body:
Guten Tag, was kostet eine Wärmepumpe für 120 m²?

--
This is a notification that a contact form was submitted on your website \
(Shop Website https://shop.example).
"""

FORMSPREE = """\
Someone just submitted your form on https://shop.example/contact.
Here's what they had to say:

name: Jane Doe
email: jane.doe@example.com
phone: +44 20 7946 0000
message: Do you deliver to Hamburg?
"""

NETLIFY = """\
New form submission from contact on https://shop-example.netlify.app/contact

Name: Jane Doe
Email: jane.doe@example.com
Phone: +44 20 7946 0000
Message: Do you deliver to Hamburg?
"""

GERMAN = """\
Sie haben eine neue Nachricht über das Kontaktformular auf shop.example erhalten.

Name: Jane Doe
E-Mail-Adresse: jane.doe@example.com
Telefon: +44 20 7946 0000
Nachricht: Do you deliver to Hamburg?
"""

SQUARESPACE = """\
Sent via form submission from Shop Website

Name: Jane Doe

Email Address: jane.doe@example.com

Phone: +44 20 7946 0000

Message: Do you deliver to Hamburg?
"""

WPFORMS_HTML = """\
<html><body><table class="body" width="100%"><tr><td align="center">
<table class="container"><tr><td class="content">
<table class="field-name"><tr><td><strong>Name</strong></td></tr>
<tr><td class="field-value">Jane Doe</td></tr></table>
<table class="field-email"><tr><td><strong>Email</strong></td></tr>
<tr><td class="field-value"><a href="mailto:jane.doe@example.com">\
jane.doe@example.com</a></td></tr></table>
<table class="field-textarea"><tr><td><strong>Comment or Message</strong></td></tr>
<tr><td class="field-value">Do you deliver to Hamburg?</td></tr></table>
</td></tr></table>
<p class="footer">Sent from <a href="https://shop.example">Shop Website</a></p>
</td></tr></table></body></html>
"""

GRAVITY_HTML = """\
<html><body>
<table width="99%" border="0" cellpadding="1" cellspacing="0" bgcolor="#EAEAEA"><tr><td>
<table width="100%" border="0" cellpadding="5" cellspacing="0" bgcolor="#FFFFFF">
<tr bgcolor="#EAF2FA"><td colspan="2"><font style="font-family: sans-serif; font-size:12px;">\
<strong>Name</strong></font></td></tr>
<tr bgcolor="#FFFFFF"><td width="20">&nbsp;</td><td><font style="font-family: sans-serif; \
font-size:12px;">Jane Doe</font></td></tr>
<tr bgcolor="#EAF2FA"><td colspan="2"><font style="font-family: sans-serif; font-size:12px;">\
<strong>Email</strong></font></td></tr>
<tr bgcolor="#FFFFFF"><td width="20">&nbsp;</td><td><font style="font-family: sans-serif; \
font-size:12px;"><a href='mailto:jane.doe@example.com'>jane.doe@example.com</a></font></td></tr>
<tr bgcolor="#EAF2FA"><td colspan="2"><font style="font-family: sans-serif; font-size:12px;">\
<strong>Message</strong></font></td></tr>
<tr bgcolor="#FFFFFF"><td width="20">&nbsp;</td><td><font style="font-family: sans-serif; \
font-size:12px;">Do you deliver to Hamburg?</font></td></tr>
</table></td></tr></table>
</body></html>
"""

WORDPRESS = "Shop Website <wordpress@shop.example>"
JANE = Address("jane.doe@example.com", "Jane Doe")


@pytest.mark.parametrize(
    ("body", "subject", "sender", "headers", "phone"),
    [
        (FORMSPREE, "New submission from shop.example/contact",
         "Formspree <noreply@formspree.io>", {"Reply_To": "jane.doe@example.com"},
         "+44 20 7946 0000"),
        (NETLIFY, "[Netlify] New form submission from contact on shop-example",
         "Netlify <formresponses@netlify.com>", {}, "+44 20 7946 0000"),
        (GERMAN, "Neue Anfrage über das Kontaktformular", WORDPRESS, {}, "+44 20 7946 0000"),
        (SQUARESPACE, "Form Submission - Contact - Delivery",
         "Squarespace <form-submission@squarespace.info>",
         {"Reply_To": "jane.doe@example.com"}, "+44 20 7946 0000"),
    ],
    ids=["formspree", "netlify", "german", "squarespace"],
)  # fmt: skip
def test_form_notifications_with_label_colon_value_lines(
    book: RuleBook, body: str, subject: str, sender: str, headers: dict[str, str], phone: str
) -> None:
    c = run(mail(body, subject, sender, **headers), book)
    assert c.kind is Kind.ENQUIRY and c.rule == "website-form", c.reasons
    assert c.lead == JANE and c.source == "website-form" and c.template == "ack-form"
    assert c.fields["phone"] == phone
    assert c.fields["message"] == "Do you deliver to Hamburg?"


def test_contact_form_7_classic_default_template(book: RuleBook) -> None:
    msg = mail(
        CF7_CLASSIC,
        'Shop Website "Angebot Wärmepumpe"',
        WORDPRESS,
        Reply_To="lukas.weber@example.de",
        X_Mailer="PHPMailer 6.9.1 (https://github.com/PHPMailer/PHPMailer)",
    )
    c = run(msg, book)
    assert c.kind is Kind.ENQUIRY and c.rule == "website-form", c.reasons
    assert c.lead == Address("lukas.weber@example.de", "Lukas Weber")
    assert c.fields["message"].startswith("Guten Tag, was kostet eine Wärmepumpe")


def test_contact_form_7_current_default_template(book: RuleBook) -> None:
    """CF7 5.6+ writes "From: [your-name] [your-email]" (no angle brackets) and
    "This is a notification that a contact form was submitted on your website"."""
    msg = mail(
        CF7_CURRENT,
        'Shop Website "Angebot Wärmepumpe"',
        WORDPRESS,
        Reply_To="lukas.weber@example.de",
        X_Mailer="PHPMailer 6.9.1 (https://github.com/PHPMailer/PHPMailer)",
    )
    c = run(msg, book)
    assert c.kind is Kind.ENQUIRY and c.rule == "website-form", c.reasons
    assert c.lead is not None and c.lead.addr == "lukas.weber@example.de"


@pytest.mark.parametrize(
    ("html", "subject"),
    [(WPFORMS_HTML, "New Entry: Contact Form"), (GRAVITY_HTML, "New submission from Contact Us")],
    ids=["wpforms", "gravity-forms"],
)
def test_form_notifications_with_the_label_on_its_own_line(
    book: RuleBook, html: str, subject: str
) -> None:
    """WPForms' and Gravity Forms' default HTML notifications read as "Name\\nJane Doe\\n
    Email\\njane@..." once the HTML is turned into text: the label has no colon."""
    msg = mail(html, subject, WORDPRESS, ctype="text/html; charset=utf-8")
    assert "Email" in msg.body_text and "jane.doe@example.com" in msg.body_text
    c = run(msg, book)
    assert c.kind is Kind.ENQUIRY and c.rule == "website-form", c.reasons
    assert c.lead is not None and c.lead.addr == "jane.doe@example.com"


def test_a_known_leads_meeting_acceptance_is_their_reply() -> None:
    """A calendar client's accept is automatic mail, but from a live lead it is an answer."""
    msg = sample(MAIL / "realworld" / "calendar_reply_accepted.eml")
    assert msg.from_ is not None
    lead = msg.from_.addr
    rules = load_rulebook(REPO / "rules", REPO / "templates")
    assert classify(msg, rules, CTX, NOW).kind is Kind.AUTO_REPLY
    known = Context(own=OWN, team=TEAM, known=Known(by_address={lead: lead}))
    c = classify(msg, rules, known, NOW)
    assert c.kind is Kind.REPLY and c.lead_key == lead
