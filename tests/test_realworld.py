"""Real-world shapes: one message per mail system, client, robot and form tool.

Every file in ``tests/mail/realworld/`` has an expectation here (its ``X-Sample-Shape``
header says which system's output it imitates). Classification uses the shipped rule
book and a business identity of hello@shop.example with jane@ and owner@ as the team.
Replies answer a Message-ID inboxwatch made (``<iw.…@shop.example>``), so they are
recognised without any stored state.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from inboxwatch.core.classify import Classification, Context, classify
from inboxwatch.core.message import parse_message
from inboxwatch.userfiles.rulebook import RuleBook, load_rulebook

REPO = Path(__file__).resolve().parent.parent
MAIL = Path(__file__).parent / "mail" / "realworld"
NOW = datetime(2027, 3, 4, 12, 0, tzinfo=UTC)
CTX = Context(
    own=frozenset({"hello@shop.example"}),
    team=frozenset({"jane@shop.example", "owner@shop.example"}),
)


@dataclass(frozen=True)
class Want:
    kind: str
    source: str = ""  # rule source for enquiries
    lead: str = ""  # lead address (enquiry/reply/auto_reply)
    name: str | None = None  # lead display name, when it matters
    has: tuple[str, ...] = ()  # new_text must contain
    lacks: tuple[str, ...] = ()  # new_text must not contain
    why_xfail: str = ""  # a known gap outside the files this suite's fixes may touch


QUOTE = ("Thanks for your enquiry", "a person will get back")
E, R, A, B, L, OWN, IGN = "enquiry", "reply", "auto_reply", "bounce", "list", "own", "ignore"
D, F = "direct-email", "website-form"

EXPECTED: dict[str, Want] = {
    # ---- enquiries from people --------------------------------------------------------
    "enquiry_gmail_alternative.eml": Want(
        E, D, "tom.baker82@gmail.com", "Tom Baker", ("40 oak chairs",), ("07700", "-- ")
    ),
    "enquiry_outlook_exchange.eml": Want(
        E, D, "s.whitfield@northwind-logistics.co.uk", "Sandra Whitfield", ("60 ergonomic",)
    ),
    "enquiry_outlook_absence_subject.eml": Want(
        E, D, "priya.natarajan@brightpath-hr.com", "Priya Natarajan", ("2 armchairs",)
    ),
    "enquiry_apple_mail.eml": Want(E, D, "claire.dubois@icloud.com", "Claire Dubois"),
    "enquiry_thunderbird.eml": Want(
        E, D, "markus.hofmann@posteo.de", "Markus Hofmann", ("Österreich",), ("Wien\n1050",)
    ),
    "enquiry_yahoo.eml": Want(E, D, "linda_okafor@yahoo.com", "Linda Okafor", ("Bristol",)),
    "enquiry_proton.eml": Want(
        E, D, "elias.varga@proton.me", "Elias Varga", ("standing desk",), ("Proton Mail",)
    ),
    "enquiry_iphone.eml": Want(E, D, "bcarter@me.com", "Ben Carter", ("velvet sofa",)),
    "enquiry_plain_mutt.eml": Want(
        E, D, "ola@nordmann.example.no", "Ola Nordmann", ("workshop tables",), ("https://",)
    ),
    "enquiry_html_only.eml": Want(E, D, "grace.kim@hanbit-studio.kr", "Grace Kim", ("Seoul",)),
    "enquiry_iso8859_1.eml": Want(
        E, D, "juergen.weiss@web.de", "Jürgen Weiß", ("möchten für unser Büro in Köln",)
    ),
    "enquiry_windows1252.eml": Want(
        E, D, "rene.fournier@orange.fr", "René Fournier", ("“Nordic” bench – is",)
    ),
    "enquiry_iso2022jp.eml": Want(
        E,
        D,
        "taro.yamada@example.co.jp",
        "山田太郎",
        ("オークの椅子",),
    ),
    "enquiry_gmail_attachments.eml": Want(
        E, D, "amir.haddad.design@gmail.com", "Amir Haddad", ("reception desk",), ("%PDF",)
    ),
    "enquiry_outlook_mobile.eml": Want(
        E, D, "olivia.brennan@hotmail.com", "Olivia Brennan", ("bar stools",), ("Outlook",)
    ),
    "enquiry_thanks_subject.eml": Want(E, D, "hannah.schulz.berlin@gmail.com", "Hannah Schulz"),
    "enquiry_via_google_group_inbox.eml": Want(
        E,
        D,
        "kenji.sato@yahoo.co.jp",
    ),
    # A calendar invitation from a person is a person asking to talk (see also the reply).
    "calendar_invite_google.eml": Want(E, D, "amir.haddad.design@gmail.com", "Amir Haddad"),
    # ---- replies to our acknowledgement ------------------------------------------------
    "reply_gmail.eml": Want(R, "", "tom.baker82@gmail.com", has=("10% off",), lacks=QUOTE),
    "reply_outlook_desktop.eml": Want(
        R, "", "s.whitfield@northwind-logistics.co.uk", has=("4 meeting tables",), lacks=QUOTE
    ),
    "reply_outlook_german.eml": Want(
        R, "", "s.mueller@mueller-bau.de", has=("Ende April",), lacks=("Ihre Anfrage", "Von:")
    ),
    "reply_apple_mail.eml": Want(R, "", "claire.dubois@icloud.com", has=("oiled",), lacks=QUOTE),
    "reply_thunderbird_bottom.eml": Want(
        R, "", "markus.hofmann@posteo.de", has=("Was kostet",), lacks=("Liefern können", "-- ")
    ),
    "reply_yahoo.eml": Want(R, "", "linda_okafor@yahoo.com", has=("Saturday",), lacks=QUOTE),
    "reply_proton.eml": Want(R, "", "elias.varga@proton.me", has=("reserve",), lacks=QUOTE),
    "reply_iphone.eml": Want(R, "", "bcarter@me.com", has=("11am",), lacks=(*QUOTE, "iPhone")),
    "reply_iphone_empty.eml": Want(R, "", "bcarter@me.com", lacks=("Hi Ben",)),
    "reply_outlook_mobile.eml": Want(
        R, "", "olivia.brennan@hotmail.com", has=("65cm",), lacks=(*QUOTE, "Android")
    ),
    "reply_html_only_outlook_web.eml": Want(
        R, "", "grace.kim@hanbit-studio.kr", has=("brass finish",), lacks=("thanks for your",)
    ),
    "reply_samsung_email.eml": Want(
        R, "", "priya.natarajan@brightpath-hr.com", has=("grey",), lacks=(*QUOTE, "Galaxy")
    ),
    "reply_gmail_german_android.eml": Want(
        R, "", "hannah.schulz.berlin@gmail.com", has=("geölt",), lacks=("schrieb", "Anfrage")
    ),
    "reply_outlook_mac.eml": Want(
        R, "", "claire.dubois@studio-dubois.fr", has=("photos",), lacks=(*QUOTE, "Subject:")
    ),
    "reply_zimbra_html.eml": Want(
        R, "", "m.rossi@studio-rossi.it", has=("Milano",), lacks=("Oggetto", "thanks for")
    ),
    # ---- bounces -------------------------------------------------------------------------
    "bounce_postfix.eml": Want(B),
    "bounce_exim.eml": Want(B),
    "bounce_sendmail.eml": Want(B),
    "bounce_qmail.eml": Want(B),
    "bounce_m365_ndr.eml": Want(B),
    "bounce_gmail.eml": Want(B),
    "bounce_amazon_ses.eml": Want(B),
    "bounce_yahoo.eml": Want(B),
    "bounce_delay_postfix.eml": Want(B),
    "bounce_delay_gmail.eml": Want(B),
    "bounce_exchange_delay.eml": Want(B),
    # ---- automatic replies and other machine answers ---------------------------------
    "ooo_exchange_online.eml": Want(A, "", "s.whitfield@northwind-logistics.co.uk"),
    "ooo_gmail_vacation.eml": Want(A, "", "tom.baker82@gmail.com"),
    "ooo_icloud.eml": Want(A, "", "claire.dubois@icloud.com"),
    "ooo_zimbra.eml": Want(A, "", "m.rossi@studio-rossi.it"),
    "ooo_dovecot_sieve.eml": Want(A, "", "karin@lund-arkitekter.example"),
    "ooo_german_webde.eml": Want(A, "", "s.mueller@mueller-bau.de"),
    "ooo_french.eml": Want(A, "", "rene.fournier@orange.fr"),
    "ooo_spanish_noheaders.eml": Want(A, "", "lucia@reformas-martin.es"),
    "autoresp_zendesk.eml": Want(A),
    "autoresp_freshdesk.eml": Want(A),
    "autoresp_hubspot_ticket.eml": Want(A),
    "challenge_boxtrapper.eml": Want(A),
    "challenge_mailinblack.eml": Want(A),
    "mdn_outlook_read.eml": Want(A),
    "calendar_reply_accepted.eml": Want(A),
    "report_dmarc_aggregate.eml": Want(A),
    # ---- lists and bulk ------------------------------------------------------------------
    "list_mailman3.eml": Want(L),
    "list_google_groups.eml": Want(L),
    "bulk_mailchimp.eml": Want(L),
    "bulk_sendgrid.eml": Want(L),
    "bulk_substack.eml": Want(L),
    "notification_github.eml": Want(L),
    "marketplace_thumbtack_noaddress.eml": Want(L),
    # ---- robots with nothing to answer ---------------------------------------------------
    "notification_noreply_shipping.eml": Want(IGN),
    "notification_donotreply_invoice.eml": Want(IGN),
    "form_google_forms.eml": Want(IGN),
    # ---- own and team mail ---------------------------------------------------------------
    "own_team_member.eml": Want(OWN),
    "own_colleague_domain.eml": Want(OWN),
    "own_owner_forward.eml": Want(OWN, has=("Can someone answer this?",), lacks=("do you sell",)),
    # ---- web forms and marketplaces: the lead is the submitter, never the robot ---------
    "form_cf7_classic.eml": Want(E, F, "jessica.wu@example.net", "Jessica Wu"),
    "form_cf7_current.eml": Want(E, F, "daniel.obi@example.com", "Daniel Obi"),
    "form_wpforms.eml": Want(E, F, "fatima.zahra@example.org", "Fatima Zahra"),
    "form_gravity_site_domain.eml": Want(E, F, "anika.patel@example.in", "Anika Patel"),
    "form_gravity_owner_admin_email.eml": Want(E, F, "oscar.lindgren@example.se", "Oscar Lindgren"),
    "form_elementor.eml": Want(E, F, "lucas.moreau@example.fr", "Lucas Moreau"),
    "form_formspree.eml": Want(E, F, "megan.clarke@example.co.uk", "Megan Clarke"),
    "form_netlify.eml": Want(E, F, "ravi.shah@example.com", "Ravi Shah"),
    "form_typeform.eml": Want(E, F, "noah.fischer@example.ch", "Noah Fischer"),
    "form_jotform.eml": Want(E, F, "chloe.martin@example.ca"),
    "form_squarespace.eml": Want(E, F, "isabella.rossi@example.it", "Isabella Rossi"),
    "form_wix.eml": Want(E, F, "ethan.brooks@example.com", "Ethan"),
    "form_hubspot.eml": Want(E, F, "sophie.wagner@example.de", "Sophie"),
    "form_shopify_contact.eml": Want(E, F, "kwame.mensah@example.com", "Kwame Mensah"),
    "marketplace_bark_lead.eml": Want(E, F, "sarah.k@outlook.example", "Sarah K."),
    # The relay address forwards to the customer; the quoted customer text is content.
    "marketplace_houzz_relay.eml": Want(
        E, F, "reply-3f9a2b7c4d@messages.houzz.com", has=("alcove bookcase",)
    ),
}


@pytest.fixture(scope="module")
def book() -> RuleBook:
    return load_rulebook(REPO / "rules", REPO / "templates")


def run(name: str, book: RuleBook) -> Classification:
    return classify(parse_message((MAIL / name).read_bytes()), book, CTX, NOW)


def params(expected: dict[str, Want]) -> list[object]:
    """One pytest case per sample; a known gap is a strict xfail that flags when fixed."""
    out: list[object] = []
    for name, want in sorted(expected.items()):
        marks = [pytest.mark.xfail(reason=want.why_xfail, strict=True)] if want.why_xfail else []
        out.append(pytest.param(name, want, id=name, marks=marks))
    return out


def test_every_sample_has_an_expectation_and_a_shape() -> None:
    files = {p.name for p in MAIL.glob("*.eml")}
    assert files == set(EXPECTED)
    for name in files:
        assert parse_message((MAIL / name).read_bytes()).header("x-sample-shape"), name


def check(c: Classification, want: Want, text_required: bool = True) -> None:
    """What every sample's expectation says about its classification."""
    assert c.kind.value == want.kind, c.reasons
    if want.kind == "enquiry":
        assert c.source == want.source, c.reasons
    if want.lead:
        assert c.lead is not None and c.lead.addr == want.lead, c.reasons
    if want.name is not None:
        assert c.lead is not None and c.lead.name == want.name
    for text in want.has:
        assert text in c.new_text
    for text in want.lacks:
        assert text not in c.new_text
    if text_required and want.kind in ("reply", "enquiry") and not want.why_xfail:
        assert c.new_text and c.new_text == c.new_text.strip()


@pytest.mark.parametrize(("name", "want"), params(EXPECTED))
def test_realworld(name: str, want: Want, book: RuleBook) -> None:
    check(run(name, book), want)


# ---- details beyond the kind ------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "hard", "recipient"),
    [
        ("bounce_postfix.eml", True, "tom.bker82@gmail.com"),
        ("bounce_exim.eml", True, "info@closed-company.example"),
        ("bounce_sendmail.eml", True, "r.jones@oldcorp.example"),
        ("bounce_qmail.eml", True, "karin@smallhost.example"),
        ("bounce_m365_ndr.eml", True, "olivia.brenan@hotmail.com"),
        ("bounce_gmail.eml", True, "claire.duboi@icloud.com"),
        ("bounce_amazon_ses.eml", True, "ops@defunct-startup.example"),
        ("bounce_yahoo.eml", True, "linda_okafr@yahoo.com"),
        ("bounce_delay_postfix.eml", False, "markus.hofmann@slowmail.example"),
        ("bounce_delay_gmail.eml", False, "jan@slow-isp.example"),
        ("bounce_exchange_delay.eml", False, "p.smith@contoso-partner.example"),
    ],
)
def test_bounce_severity_and_recipient(
    name: str, hard: bool, recipient: str, book: RuleBook
) -> None:
    c = run(name, book)
    assert c.bounce_hard is hard
    assert c.bounced == (recipient,)


@pytest.mark.parametrize(
    ("name", "back"),
    [
        ("ooo_exchange_online.eml", "2027-03-16"),  # "until Monday 15 March"
        ("ooo_gmail_vacation.eml", "2027-03-11"),
        ("ooo_icloud.eml", "2027-03-21"),
        ("ooo_zimbra.eml", "2027-03-13"),
        ("ooo_dovecot_sieve.eml", "2027-03-15"),
        ("ooo_german_webde.eml", "2027-03-13"),  # "bis einschließlich 12.03.2027"
        ("ooo_french.eml", "2027-03-16"),
        ("ooo_spanish_noheaders.eml", "2027-03-16"),
    ],
)
def test_out_of_office_return_dates(name: str, back: str, book: RuleBook) -> None:
    c = run(name, book)
    assert c.return_date is not None and c.return_date.isoformat() == back


@pytest.mark.parametrize(
    ("name", "evidence"),
    [
        ("challenge_boxtrapper.eml", "automatic-looking subject"),
        ("calendar_reply_accepted.eml", "calendar reply"),
        ("report_dmarc_aggregate.eml", "DMARC aggregate report"),
        ("mdn_outlook_read.eml", "read receipt"),
        ("autoresp_freshdesk.eml", "automatic wording in body"),
    ],
)
def test_machine_answers_say_why(name: str, evidence: str, book: RuleBook) -> None:
    assert any(evidence in r for r in run(name, book).reasons)


def test_a_subject_about_a_contact_form_is_no_form_notification(book: RuleBook) -> None:
    # GitHub issue "Contact form sends blank emails": the relay Reply-To is not a lead.
    c = run("notification_github.eml", book)
    assert c.rule == "" and c.lead is None


@pytest.mark.parametrize(
    ("subject", "matches"),
    [
        ("[Shop] Contact form: Jane Doe", True),
        ("Contact Form", True),
        ("New contact form submission", True),
        ("Contact form submission from Jane", True),
        ("Message via the contact form", True),
        ("Neue Anfrage über das Kontaktformular", True),
        ("Kontaktformular", True),
        ("New response to Custom furniture request", True),
        ("[shop/website] Contact form sends blank emails (Issue #42)", False),
        ("Our contact form is broken", False),
        ("Problem mit dem Kontaktformular", False),
    ],
)
def test_form_rule_subjects(subject: str, matches: bool, book: RuleBook) -> None:
    rule = next(r for r in book.rules if r.name == "website-form")
    raw = f"From: x@example.org\r\nTo: hello@shop.example\r\nSubject: {subject}\r\n\r\nHi\r\n"
    assert rule.matches(parse_message(raw.encode("utf-8")), "Hi") is matches
