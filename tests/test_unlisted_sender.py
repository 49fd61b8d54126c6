"""A form notification from a sender its rule does not list (review item 1).

A business whose website is on another domain than its mailbox (hello@inbox.example, forms
from wordpress@shop.example) gets notifications that match ``website-form`` but fail its
``senders`` check. Such a message must not fall through to ``direct-email``, which would
acknowledge the website's robot and send it the whole sequence; nor may the person it
names be answered (the sender may be forged: tests/test_form_trust.py). Nobody is
written to, and the owner is told once per sender how to list it. Classification is
tested pure; the owner's notice through the daemon on the in-memory twins.
"""

from __future__ import annotations

import email
import email.policy
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from harness import REPO
from test_scenario import MemoryEdges, _config, purposes

from inboxwatch.cli import main
from inboxwatch.core.actions import Notice
from inboxwatch.core.classify import Classification, Context, Kind, classify
from inboxwatch.core.message import parse_message
from inboxwatch.core.route import UNLISTED
from inboxwatch.service.status_command import Snapshot, report
from inboxwatch.testing.mailfactory import mail
from inboxwatch.userfiles.config import load_config
from inboxwatch.userfiles.rulebook import RuleBook, load_rulebook

NOW = datetime(2027, 3, 3, 12, 0, tzinfo=UTC)
# As in the README's init example: the mailbox on one domain, the website on another.
CTX = Context(own=frozenset({"hello@inbox.example"}), team=frozenset({"owner@inbox.example"}))
FORMS = [
    "inboxwatch/testing/samples/02-web-form.eml",
    "tests/mail/realworld/form_cf7_classic.eml",
    "tests/mail/realworld/form_cf7_current.eml",
    "tests/mail/realworld/form_wpforms.eml",
    "tests/mail/realworld/form_elementor.eml",
    "tests/mail/realworld3/form_elementor_german.eml",
    "tests/mail/realworld2/form_ninja_forms.eml",
    "tests/mail/realworld2/form_joomla_contact.eml",
    "tests/mail/realworld2/form_drupal_webform.eml",
]
FORM_BODY = "Name: Jane Doe\nEmail: jane.doe@example.org\nMessage: Do you deliver?\n"


@pytest.fixture(scope="module")
def book() -> RuleBook:
    return load_rulebook(REPO / "rules", REPO / "templates")


def run(raw: bytes, book: RuleBook, ctx: Context = CTX) -> Classification:
    return classify(parse_message(raw), book, ctx, NOW)


@pytest.mark.parametrize("path", FORMS)
def test_a_notification_from_an_unlisted_site_answers_nobody(book: RuleBook, path: str) -> None:
    raw = (REPO / path).read_bytes()
    sender = parse_message(raw).from_
    assert sender is not None
    c = run(raw, book)
    assert c.kind is Kind.IGNORE and c.lead is None and c.rule == "", c.reasons
    rule, who, named = c.unlisted
    assert (rule, who) == ("website-form", sender.addr)
    assert named and named != sender.addr
    # The reason says what to add, and where.
    hint = f'add "{sender.addr}" or "@{sender.domain}" to the senders of rule \'website-form\''
    assert hint in c.reasons[-1] and str(REPO / "rules" / "rules.toml") in c.reasons[-1]


@pytest.mark.parametrize("path", FORMS)
def test_with_the_site_listed_the_person_it_names_is_the_lead(tmp_path: Path, path: str) -> None:
    raw = (REPO / path).read_bytes()
    sender = parse_message(raw).from_
    assert sender is not None
    rules = tmp_path / "rules"
    shutil.copytree(REPO / "rules", rules)
    toml = rules / "rules.toml"
    toml.write_text(
        toml.read_text().replace('"@our-domain",', f'"@our-domain", "@{sender.domain}",')
    )
    c = run(raw, load_rulebook(rules, REPO / "templates"))
    assert c.kind is Kind.ENQUIRY and c.rule == "website-form", c.reasons
    assert c.lead is not None and c.lead.addr != sender.addr and not c.unlisted


def notification(sender: str, body: str, *headers: str, subject: str = "New enquiry") -> bytes:
    head = [f"From: {sender}", "To: hello@inbox.example", f"Subject: {subject}", *headers]
    head += ["Date: Wed, 03 Mar 2027 10:00:00 +0000", "Message-ID: <x1@mail.example>"]
    return ("\r\n".join(head) + "\r\n\r\n" + body.replace("\n", "\r\n")).encode()


def test_a_public_mail_domain_is_never_suggested_whole(book: RuleBook) -> None:
    c = run(notification("myshop.site@gmail.com", FORM_BODY), book)
    assert c.kind is Kind.IGNORE and c.unlisted[1] == "myshop.site@gmail.com"
    assert 'add "myshop.site@gmail.com" to the senders' in c.reasons[-1]
    assert "@gmail.com" not in c.reasons[-1].replace("myshop.site@gmail.com", "")


def test_an_auto_submitted_notification_from_an_unlisted_site_is_held_too(
    book: RuleBook,
) -> None:
    raw = notification("wordpress@shop.example", FORM_BODY, "Auto-Submitted: auto-generated")
    c = run(raw, book)
    assert c.kind is Kind.IGNORE and c.lead is None
    assert c.unlisted == ("website-form", "wordpress@shop.example", "jane.doe@example.org")


@pytest.mark.parametrize(
    "body",
    [
        "Hello, do you deliver to Hamburg?\n\nMaria",  # no one named: the writer is the lead
        "Do you deliver?\n\nEmail: maria@customer.example\n",  # the writer names herself
        "Do you deliver?\n\nMaria Lopez\nE-mail: office@customer.example\n",  # a colleague
    ],
)
def test_a_person_whose_subject_looks_like_a_form_is_still_answered(
    book: RuleBook, body: str
) -> None:
    c = run(notification("Maria Lopez <maria@customer.example>", body), book)
    assert c.kind is Kind.ENQUIRY and c.rule == "direct-email", c.reasons
    assert c.lead is not None and c.lead.addr == "maria@customer.example"


# ---- through the daemon (in-memory twins) ---------------------------------------------------


def _form(sender: str, named: str, n: int) -> bytes:
    body = f"Name: Visitor {n}\nEmail: {named}\nMessage: A question.\n\nSent from the contact form"
    return mail(sender, "shop@shop.test", f"New form submission {n}", body=body)


def test_the_owner_is_told_once_per_sender_and_nobody_else_gets_mail(tmp_path: Path) -> None:
    e = MemoryEdges(tmp_path)
    e.deliver(_form("wordpress@site.example", "v1@customer.example", 1))
    e.deliver(_form("wordpress@site.example", "v2@customer.example", 2))
    e.daemon.tick(e.clock.now())
    assert [x.rcpt for x in e.sender.sent] == ["owner@shop.test"]
    assert purposes(e.outgoing("owner@shop.test")) == ["owner-notice"]
    told = email.message_from_bytes(e.outgoing("owner@shop.test")[0], policy=email.policy.default)
    assert told["Subject"] == "inboxwatch: Not answered: notifications from wordpress@site.example"
    text = told.get_content()
    assert "it names v1@customer.example" in text and 'add "wordpress@site.example" or' in text
    assert str(REPO / "rules" / "rules.toml") in text
    assert "`inboxwatch forget wordpress@site.example` ends this notice" in text
    assert e.lead("wordpress@site.example") is None and e.lead("v1@customer.example") is None
    with e.store.transaction() as state:
        assert [n.key for n in state.notices()] == [UNLISTED + "wordpress@site.example"]
    # Another unlisted site is another notice.
    e.deliver(_form("forms@other.example", "v3@customer.example", 3))
    e.daemon.tick(e.clock.now())
    assert len(e.outgoing("owner@shop.test")) == 2
    assert e.outgoing("v3@customer.example") == e.outgoing("forms@other.example") == []


def test_once_the_site_is_listed_its_notifications_are_answered_and_the_notice_ends(
    tmp_path: Path,
) -> None:
    e = MemoryEdges(tmp_path)
    e.deliver(_form("wordpress@site.example", "v1@customer.example", 1))
    e.daemon.tick(e.clock.now())
    rules = tmp_path / "rules"
    shutil.copytree(REPO / "rules", rules)
    toml = rules / "rules.toml"
    toml.write_text(toml.read_text().replace('"@our-domain",', '"@our-domain", "@site.example",'))
    e.daemon.book = load_rulebook(rules, REPO / "templates")  # what a reload does
    e.deliver(_form("wordpress@site.example", "v2@customer.example", 2))
    e.daemon.tick(e.clock.now())
    assert purposes(e.outgoing("v2@customer.example")) == ["ack"]
    assert e.outgoing("wordpress@site.example") == e.outgoing("v1@customer.example") == []
    with e.store.transaction() as state:
        assert state.notices() == []


# ---- init says so ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("user", "trusted"),
    [("hello@shop.example", "@shop.example"), ("myshop@gmail.com", "myshop@gmail.com")],
)
def test_init_says_which_form_senders_are_trusted_and_where_to_add_a_site(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], user: str, trusted: str
) -> None:
    home = tmp_path / "iw"
    args = ["init", str(home), "--user", user, "--owner", "boss@shop.example"]
    assert main([*args, "--timezone", "UTC", "--provider", "fastmail", "--name", "Shop"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("forms: "))
    assert f"'website-form' answers form notifications sent from {trusted} and" in line
    assert f"in {home / 'rules' / 'rules.toml'}" in line


def test_the_teams_own_mail_stays_the_teams_when_a_rule_does_not_list_it(tmp_path: Path) -> None:
    """Team mail is never answered anyway; held, a person's mail in a lead's thread would
    no longer hand the lead over (``by_team``)."""
    rules = tmp_path / "rules"
    shutil.copytree(REPO / "rules", rules)
    toml = rules / "rules.toml"
    toml.write_text(toml.read_text().replace('"@our-domain",', ""))
    book = load_rulebook(rules, REPO / "templates")
    team = run(notification("owner@inbox.example", FORM_BODY), book)
    assert team.kind is Kind.OWN and team.by_team and not team.unlisted, team.reasons
    stranger = run(notification("forms@site.example", FORM_BODY), book)
    assert stranger.kind is Kind.IGNORE and stranger.unlisted[1] == "forms@site.example"


def test_a_notice_about_an_unlisted_sender_is_a_note_not_a_problem_of_the_daemon(
    tmp_path: Path,
) -> None:
    """A forged notification's sender may never be answered: its notice must not keep
    `inboxwatch status` unhealthy (exit 1) for ever, so a monitor would page for it."""
    cfg = load_config(_config(tmp_path))
    now = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    unlisted = Notice(UNLISTED + "wordpress@site.example", "not answered", now)
    outage = Notice("smtp-unreachable", "The SMTP server is out of reach", now)
    rep = report(cfg, Snapshot([], [], [unlisted], [], now, None), now, 4242)
    assert rep["problems"] == [] and [n["key"] for n in rep["notes"]] == [unlisted.key]
    rep = report(cfg, Snapshot([], [], [unlisted, outage], [], now, None), now, 4242)
    assert [n["key"] for n in rep["problems"]] == ["smtp-unreachable"]


PEOPLE = sorted((REPO / "tests" / "mail" / "people_like_forms").glob("*.eml"))


@pytest.mark.parametrize("path", PEOPLE, ids=lambda p: p.name)
def test_a_person_whose_mail_reads_like_a_form_and_names_another_address_is_answered(
    book: RuleBook, path: Path
) -> None:
    """A person's own mail that reads like a notification ("New enquiry: kitchen") and
    names their other address in the signature, or a forward ("FW:", "Fwd:") quoting
    someone's address: answered to its sender as before, never held (a reviewer's
    samples: each was held by the first version of the hold)."""
    raw = path.read_bytes()
    sender = parse_message(raw).from_
    assert sender is not None
    c = run(raw, book)
    assert c.kind is Kind.ENQUIRY and c.rule == "direct-email", c.reasons
    assert c.lead is not None and c.lead.addr == sender.addr and not c.unlisted
