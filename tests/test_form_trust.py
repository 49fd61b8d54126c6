"""Who may send a notification whose lead is in the body or Reply-To (issue 8, item 3a).

A rule that writes to a person the sender names lists who may send it (``senders``); the
shipped website-form rule lists our own domain and the form services. Where our receiving
server added ``Authentication-Results`` (RFC 8601; only its own authserv-id counts), a
notification whose From domain failed DMARC, or SPF and DKIM, is not trusted. Pure tests.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from inboxwatch.core import authres
from inboxwatch.core.classify import Classification, Context, Kind, classify
from inboxwatch.core.message import Address, parse_message
from inboxwatch.core.settings import Settings
from inboxwatch.userfiles.config import load_config
from inboxwatch.userfiles.rulebook import RuleBook, load_rulebook
from tests.test_config import IMAP, REST, SMTP, write

REPO = Path(__file__).resolve().parent.parent
NOW = datetime(2027, 3, 3, 12, 0, tzinfo=UTC)
OWN = frozenset({"hello@shop.example"})
TEAM = frozenset({"owner@shop.example"})
MX = "mx.shop.example"
CTX = Context(own=OWN, team=TEAM, authserv_ids=(MX,))
VICTIM = "jane.doe@example.com"
FORM = f"""\
Someone just submitted your form on https://shop.example/contact.

Name: Jane Doe
Email: {VICTIM}
Message: Do you deliver to Hamburg?
"""


@pytest.fixture(scope="module")
def book() -> RuleBook:
    return load_rulebook(REPO / "rules", REPO / "templates")


def notification(sender: str, *headers: str, subject: str = "New form submission") -> bytes:
    lines = [
        f"From: Forms <{sender}>",
        "To: hello@shop.example",
        f"Subject: {subject}",
        "Date: Wed, 03 Mar 2027 10:00:00 +0000",
        "Message-ID: <n1.1741000000@forms.example>",
        *headers,
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n" + FORM.replace("\n", "\r\n")).encode()


def run(raw: bytes, book: RuleBook, ctx: Context = CTX) -> Classification:
    return classify(parse_message(raw), book, ctx, NOW)


def is_form_enquiry(c: Classification) -> bool:
    return c.kind is Kind.ENQUIRY and c.rule == "website-form" and c.lead is not None


# ---- the sender list ------------------------------------------------------------------


@pytest.mark.parametrize(
    "stranger", ["someone@gmail.com", "forms@formhost.example", "noreply@formspree.io.evil.example"]
)
def test_a_form_like_message_from_a_stranger_enrols_nobody(book: RuleBook, stranger: str) -> None:
    c = run(notification(stranger), book)
    assert c.lead is None or c.lead.addr != VICTIM, c.reasons
    assert c.rule != "website-form"
    assert f"rule 'website-form' skipped: {stranger} is not one of its senders" in c.reasons


def test_an_auto_submitted_one_from_a_stranger_is_not_rescued(book: RuleBook) -> None:
    c = run(notification("forms@formhost.example", "Auto-Submitted: auto-generated"), book)
    assert c.kind is not Kind.ENQUIRY


@pytest.mark.parametrize(
    "sender",
    [
        "wordpress@shop.example",  # Contact Form 7 on our own site
        "email@www.shop.example",  # Elementor, on a subdomain of ours
        "owner@shop.example",  # Gravity Forms with the owner as admin email (team)
        "noreply@formspree.io",
        "formresponses@netlify.com",
        "notifications@typeform.com",
        "noreply@jotform.com",
        "form-submission@squarespace.info",
        "no-reply@crm.wix.com",
        "noreply@notifications.hubspot.com",
        "no-reply-forms@webflow.com",
        "notifications@tally.so",
    ],
)
def test_a_notification_from_our_domain_or_a_listed_service_is_an_enquiry(
    book: RuleBook, sender: str
) -> None:
    c = run(notification(sender), book)
    assert is_form_enquiry(c), c.reasons
    assert c.lead == Address(VICTIM, "Jane Doe")


def test_our_domain_does_not_stretch_to_a_public_mail_provider(tmp_path: Path) -> None:
    """A business on gmail.com: "@our-domain" is its own address, not all of gmail.com."""
    ctx = Context(own=frozenset({"shop.example@gmail.com"}), team=frozenset())
    book = load_rulebook(REPO / "rules", REPO / "templates")
    assert is_form_enquiry(run(notification("shop.example@gmail.com"), book, ctx))
    assert not is_form_enquiry(run(notification("someone.else@gmail.com"), book, ctx))


# ---- Authentication-Results of our own server ---------------------------------------------


def test_a_trusted_dmarc_failure_means_no_enquiry(book: RuleBook) -> None:
    header = (
        f"Authentication-Results: {MX};\r\n spf=fail smtp.mailfrom=formspree.io;\r\n"
        " dkim=none (no signature);\r\n dmarc=fail (p=REJECT) header.from=formspree.io"
    )
    c = run(notification("noreply@formspree.io", header), book)
    assert c.kind is Kind.IGNORE and c.lead is None and c.rule == "website-form"
    assert any("dmarc=fail for formspree.io" in r and MX in r for r in c.reasons), c.reasons


def test_a_header_from_another_server_is_not_believed(book: RuleBook) -> None:
    """Anyone can write an Authentication-Results header: only our authserv-id counts."""
    forged = "Authentication-Results: mx.elsewhere.example; dmarc=fail header.from=formspree.io"
    assert is_form_enquiry(run(notification("noreply@formspree.io", forged), book))
    ours = forged.replace("mx.elsewhere.example", MX)
    untrusting = Context(own=OWN, team=TEAM)  # no authserv-id configured: nothing counts
    assert is_form_enquiry(run(notification("noreply@formspree.io", ours), book, untrusting))


def test_a_pass_written_below_our_failure_does_not_win(book: RuleBook) -> None:
    raw = notification(
        "wordpress@shop.example",
        f"Authentication-Results: {MX}; dmarc=fail header.from=shop.example",
        f"Authentication-Results: {MX}; dmarc=pass header.from=shop.example",
    )
    assert run(raw, book).kind is Kind.IGNORE


def test_a_trusted_pass_keeps_the_enquiry(book: RuleBook) -> None:
    header = (
        f"Authentication-Results: {MX}; spf=pass smtp.mailfrom=bounce@em.formspree.io; "
        "dkim=pass header.d=formspree.io; dmarc=pass header.from=formspree.io"
    )
    assert is_form_enquiry(run(notification("noreply@formspree.io", header), book))


@pytest.mark.parametrize(
    ("results", "trusted"),
    [
        ("spf=fail smtp.mailfrom=shop.example; dkim=none", False),
        ("spf=softfail smtp.mailfrom=x@shop.example", False),
        ("spf=fail smtp.mailfrom=shop.example; dkim=pass header.d=shop.example", True),
        ("spf=pass smtp.mailfrom=bounces.shop.example; dkim=fail header.d=shop.example", True),
        ("spf=fail smtp.mailfrom=other.example; dkim=none", True),  # not about our domain
        ("spf=none smtp.mailfrom=shop.example; dkim=none", True),  # nothing failed
    ],
)
def test_without_dmarc_spf_and_dkim_decide(book: RuleBook, results: str, trusted: bool) -> None:
    raw = notification("wordpress@shop.example", f"Authentication-Results: {MX}; {results}")
    assert is_form_enquiry(run(raw, book)) is trusted


def test_a_robot_rescue_checks_authentication_too(book: RuleBook) -> None:
    raw = notification(
        "noreply@formspree.io",
        "Auto-Submitted: auto-generated",
        f"Authentication-Results: {MX}; dmarc=fail header.from=formspree.io",
    )
    c = run(raw, book)
    assert c.kind is Kind.IGNORE and any("dmarc=fail" in r for r in c.reasons)


def test_a_sender_rule_does_not_depend_on_authentication(book: RuleBook) -> None:
    """Direct email answers the From address itself: nobody else is enrolled."""
    raw = (
        "From: Maria Lopez <maria@example.net>\r\nTo: hello@shop.example\r\n"
        "Subject: Quote for 40 chairs\r\nMessage-ID: <m@example.net>\r\n"
        "Date: Wed, 03 Mar 2027 10:00:00 +0000\r\n"
        f"Authentication-Results: {MX}; dmarc=fail header.from=example.net\r\n"
        "Content-Type: text/plain\r\n\r\nHello, a quote please.\r\n"
    ).encode()
    c = run(raw, book)
    assert c.kind is Kind.ENQUIRY and c.rule == "direct-email"


# ---- the parser ---------------------------------------------------------------------------


def test_parse_tolerates_comments_quotes_folding_and_versions() -> None:
    value = (
        'MX.Shop.Example 1; spf=pass (mx.shop.example: domain of "a;b" (nested) ok) '
        'smtp.mailfrom=bounce@em.forms.example;\r\n\tdkim=pass header.d="forms.example" '
        'header.s=s1; dmarc=fail reason="policy" header.from=Forms.Example; arc=none'
    )
    h = authres.parse(value)
    assert h.authserv_id == "mx.shop.example"
    assert [(r.method, r.result) for r in h.results] == [
        ("spf", "pass"),
        ("dkim", "pass"),
        ("dmarc", "fail"),
        ("arc", "none"),
    ]
    assert h.results[0].props["smtp.mailfrom"] == "bounce@em.forms.example"
    assert h.results[1].props == {"header.d": "forms.example", "header.s": "s1"}
    assert h.results[2].props == {"header.from": "forms.example"}
    assert authres.parse(f"{MX}; none").results == ()


def test_a_header_without_authserv_id_is_never_trusted() -> None:
    """Microsoft 365 writes none; such a header cannot be told from a forged one."""
    value = "spf=fail (sender IP is 192.0.2.1) smtp.mailfrom=shop.example; dmarc=fail"
    h = authres.parse(value)
    assert h.authserv_id == "" and [r.method for r in h.results] == ["spf", "dmarc"]
    assert authres.trusted([value], {MX}) == ()


def test_a_hostile_header_is_read_in_linear_time() -> None:
    value = MX + "; " + "(" * 50_000 + "x=y." * 50_000 + '"' * 3
    authres.parse(value)  # returns (no quadratic scan, no exception)
    assert authres.failure(authres.trusted([value], {MX}), "shop.example") == ""


# ---- settings carry the configured ids into classification ----------------------------


def test_settings_carry_the_configured_authserv_ids(tmp_path: Path) -> None:
    imap = IMAP + 'authserv_id = ["MX.Shop.Example"]\n'
    cfg = load_config(write(tmp_path, f'timezone = "UTC"\n\n{imap}\n{SMTP}\n{REST}'))
    st = Settings.from_config(cfg)
    assert st.authserv_ids == ("mx.shop.example",)
    assert st.context().authserv_ids == ("mx.shop.example",)
