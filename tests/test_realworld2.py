"""Real-world shapes, second sweep: localized NDRs and auto-replies, quarantine notices,
receipts, more form tools and marketplaces, odd human enquiries, non-English replies.

Same conventions as :mod:`tests.test_realworld` (whose helpers this reuses): every file in
``tests/mail/realworld2/`` has an ``X-Sample-Shape`` header and an expectation here.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from inboxwatch.core.classify import Classification, classify
from inboxwatch.core.message import parse_message
from inboxwatch.userfiles.rulebook import RuleBook, load_rulebook
from tests.test_realworld import CTX, NOW, REPO, Want, check, params

MAIL = Path(__file__).parent / "mail" / "realworld2"
E, R, A, B, L, OWN, IGN = "enquiry", "reply", "auto_reply", "bounce", "list", "own", "ignore"
D, F = "direct-email", "website-form"
ACK = ("Thanks for your enquiry", "a person will get back", "hello@shop.example")

EXPECTED: dict[str, Want] = {
    # ---- bounces -------------------------------------------------------------------------
    "bounce_m365_german.eml": Want(B),
    "bounce_m365_french_text_only.eml": Want(B),
    "bounce_google_workspace_policy.eml": Want(B),
    "bounce_policy_blocked_gateway.eml": Want(B),
    "bounce_aol_failure.eml": Want(B),
    # ---- spam-filter notices: robots, never leads -------------------------------------
    "quarantine_barracuda_summary.eml": Want(IGN),
    "quarantine_proofpoint_digest.eml": Want(IGN),
    # ---- automatic replies -------------------------------------------------------------
    "ooo_outlook_russian.eml": Want(A, "", "i.petrov@stroy-msk.example"),
    "ooo_outlook_polish.eml": Want(A, "", "a.nowak@meble-krakow.example"),
    "ooo_outlook_ptbr.eml": Want(A, "", "carlos@moveis-sp.example.br"),
    "ooo_outlook_swedish.eml": Want(A, "", "erik.lind@snickeri.example.se"),
    "ooo_outlook_chinese.eml": Want(A, "", "li.wei@jiaju.example.cn"),
    "ooo_outlook_japanese.eml": Want(A, "", "h.sato@kagu.example.jp"),
    "ooo_italian_noheaders.eml": Want(A, "", "giulia@arredi-bianchi.example.it"),
    "ooo_dutch_noheaders.eml": Want(A, "", "pieter@meubel.example.nl"),
    "ooo_cpanel_x_autorespond.eml": Want(A, "", "mark@evans-joinery.example"),
    "ooo_roundcube_sieve.eml": Want(A, "", "joana@casa-alves.example.pt"),
    "autonotice_changed_address.eml": Want(A, "", "tom@oldisp.example"),
    # ---- lists and transactional robots ------------------------------------------------
    "list_discourse.eml": Want(L),
    "list_groupsio.eml": Want(L),
    "notification_linkedin.eml": Want(L),
    "notification_facebook.eml": Want(IGN),
    "receipt_stripe.eml": Want(IGN),
    "receipt_paypal_payment.eml": Want(A),
    # ---- web forms and marketplaces ----------------------------------------------------
    "form_ninja_forms.eml": Want(E, F, "peter.kowalski@example.pl", "Peter Kowalski"),
    "form_fluent_forms.eml": Want(E, F, "maria.garcia@example.es", "Maria Garcia"),
    "form_drupal_webform.eml": Want(E, F, "lena.berg@example.se", "Lena Berg"),
    "form_joomla_contact.eml": Want(E, F, "olga.ivanova@example.ru", "Olga Ivanova"),
    "form_webflow.eml": Want(E, F, "jacob.lee@example.com", "Jacob Lee"),
    "form_tally.eml": Want(E, F, "emma.j@example.co.uk", "Emma Jones"),
    "form_cognito.eml": Want(E, F, "hugo.martin@example.fr", "Hugo Martin"),
    "marketplace_checkatrade_lead.eml": Want(E, F, "gary.wilson@example.co.uk", "Gary Wilson"),
    "marketplace_angi_relay.eml": Want(E, F, "karen.smith@example.com"),
    # The relay is the only way to reach the guest; the guest's text is content.
    "marketplace_airbnb_style_inquiry.eml": Want(
        E, D, "express-relay-abc@reply.stays.example", has=("small team workshop",)
    ),
    # ---- odd but human enquiries -------------------------------------------------------
    "enquiry_empty_subject.eml": Want(E, D, "sam.ortiz.77@gmail.com", "Sam Ortiz"),
    "enquiry_attachment_only.eml": Want(E, D, "rita.lopez@yahoo.com", "Rita Lopez"),
    "enquiry_arabic_rtl.eml": Want(E, D, "ahmed.alsayed@outlook.com", "أحمد السيد", ("طاولات",)),
    "enquiry_hebrew_rtl.eml": Want(E, D, "noa.levi.il@gmail.com", "Noa Levi", ("שולחן",)),
    "enquiry_forward_from_personal.eml": Want(
        E, D, "jane.home.1990@gmail.com", has=("can we answer?",)
    ),
    "enquiry_out_of_office_words_person.eml": Want(
        E, D, "brian.hall@hall-consult.example", "Brian Hall"
    ),
    # ---- replies from non-English clients: only the new text is kept ------------------
    "reply_qq_mail.eml": Want(
        R, "", "wang.fang@qq.com", has=("六把椅子",), lacks=(*ACK, "原始邮件")
    ),
    "reply_163_mail.eml": Want(R, "", "zhangmin88@163.com", has=("周六",), lacks=(*ACK, "写道")),
    "reply_mailru.eml": Want(R, "", "olga.k@mail.ru", has=("дубового",), lacks=ACK),
    "reply_yandex.eml": Want(R, "", "dmitry.s@yandex.ru", has=("Казань",), lacks=ACK),
    "reply_outlook_russian.eml": Want(
        R, "", "i.petrov@stroy-msk.example", has=("20 стульев",), lacks=(*ACK, "Исходное")
    ),
    "reply_gmail_turkish.eml": Want(
        R, "", "mehmet.yilmaz@gmail.com", has=("İstanbul",), lacks=(*ACK, "yazdı")
    ),
    "reply_gmail_polish.eml": Want(
        R, "", "a.nowak@meble-krakow.example", has=("dębowego",), lacks=(*ACK, "napisał")
    ),
    "reply_naver_korean.eml": Want(
        R, "", "minsu.kim@naver.com", has=("식탁",), lacks=(*ACK, "Original Message")
    ),
    "reply_gmail_chinese.eml": Want(
        R, "", "chenjie.home@gmail.com", has=("橡木书架",), lacks=(*ACK, "写道")
    ),
    "reply_gmail_japanese.eml": Want(R, "", "taro.yamada@gmail.com", has=("見積もり",), lacks=ACK),
}


@pytest.fixture(scope="module")
def book() -> RuleBook:
    return load_rulebook(REPO / "rules", REPO / "templates")


def run(name: str, book: RuleBook) -> Classification:
    return classify(parse_message((MAIL / name).read_bytes()), book, CTX, NOW)


def test_every_sample_has_an_expectation_and_a_shape() -> None:
    files = {p.name for p in MAIL.glob("*.eml")}
    assert files == set(EXPECTED)
    for name in files:
        assert parse_message((MAIL / name).read_bytes()).header("x-sample-shape"), name


@pytest.mark.parametrize(("name", "want"), params(EXPECTED))
def test_realworld2(name: str, want: Want, book: RuleBook) -> None:
    check(run(name, book), want, text_required=False)  # e.g. an attachment-only enquiry


# ---- details beyond the kind ------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "hard", "recipient"),
    [
        ("bounce_m365_german.eml", True, "k.mayer@kunde.example"),
        ("bounce_m365_french_text_only.eml", True, "a.leroy@client.example"),
        ("bounce_google_workspace_policy.eml", True, "procurement@bigco.example"),
        ("bounce_policy_blocked_gateway.eml", True, "j.doe@bigco.example"),
        ("bounce_aol_failure.eml", True, "gr4ndma.jones@aol.com"),
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
        ("ooo_outlook_russian.eml", "2027-03-16"),  # "до 15 марта 2027 г. включительно"
        ("ooo_outlook_polish.eml", "2027-03-13"),  # "do 12 marca 2027"
        ("ooo_outlook_ptbr.eml", "2027-03-10"),  # "retorno no dia 10/03/2027"
        ("ooo_outlook_swedish.eml", "2027-03-16"),  # "tillbaka den 16 mars"
        ("ooo_italian_noheaders.eml", "2027-03-13"),
        ("ooo_dutch_noheaders.eml", "2027-03-15"),
        ("ooo_roundcube_sieve.eml", "2027-03-10"),
    ],
)
def test_out_of_office_return_dates(name: str, back: str, book: RuleBook) -> None:
    c = run(name, book)
    assert c.return_date is not None and c.return_date.isoformat() == back
