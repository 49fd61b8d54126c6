"""The receiving server's spam verdict (issue 9, item 5): honoured for new senders only."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from inboxwatch.core.classify import Context, Kind, Known, classify
from inboxwatch.core.message import Message, parse_message
from inboxwatch.core.settings import Settings
from inboxwatch.core.spamverdict import server_verdict
from inboxwatch.userfiles.config import load_config
from inboxwatch.userfiles.rulebook import RuleBook, load_rulebook

REPO = Path(__file__).resolve().parent.parent
MAIL = Path(__file__).parent / "mail" / "recognition"
NOW = datetime(2027, 3, 5, 12, 0, tzinfo=UTC)
CTX = Context(own=frozenset({"hello@shop.example"}), team=frozenset())


@pytest.fixture(scope="module")
def book() -> RuleBook:
    return load_rulebook(REPO / "rules", REPO / "templates")


def sample(name: str) -> Message:
    return parse_message((MAIL / name).read_bytes())


def with_header(name: str, value: str) -> Message:
    raw = (MAIL / "spam_rspamd_clean.eml").read_bytes()
    raw = raw.replace(b"X-Spamd-Result", f"{name}: {value}\r\nX-Old-Result".encode(), 1)
    return parse_message(raw)


@pytest.mark.parametrize("name", ["spam_spamassassin_enquiry.eml", "spam_microsoft_scl.eml"])
def test_a_flagged_enquiry_is_recorded_not_acknowledged(name: str, book: RuleBook) -> None:
    c = classify(sample(name), book, CTX, NOW)
    assert c.kind is Kind.IGNORE
    assert c.lead is not None  # who it was stays on record
    assert "judged it spam" in c.reasons[-1]


def test_the_verdict_can_be_switched_off(book: RuleBook) -> None:
    ctx = Context(own=CTX.own, team=CTX.team, trust_spam_verdict=False)
    assert classify(sample("spam_spamassassin_enquiry.eml"), book, ctx, NOW).kind is Kind.ENQUIRY


def test_a_clean_verdict_changes_nothing(book: RuleBook) -> None:
    assert server_verdict(sample("spam_rspamd_clean.eml")) == ""
    assert classify(sample("spam_rspamd_clean.eml"), book, CTX, NOW).kind is Kind.ENQUIRY


def test_a_known_leads_mail_still_counts(book: RuleBook) -> None:
    known = Known(by_address={"daniel.price@cheap-seo.example": "daniel.price@cheap-seo.example"})
    ctx = Context(own=CTX.own, team=CTX.team, known=known)
    c = classify(sample("spam_spamassassin_enquiry.eml"), book, ctx, NOW)
    assert c.kind is Kind.REPLY


@pytest.mark.parametrize(
    ("name", "value", "spam"),
    [
        ("X-Spam-Flag", "YES", True),
        ("X-Spam-Flag", "NO", False),
        ("X-Spam-Status", "Yes, score=7.1 required=5.0", True),
        ("X-Spam-Status", "No, score=0.3 required=5.0", False),
        ("X-Spam", "yes", True),
        ("X-Spamd-Result", "default: False [16.10 / 15.00]; BAYES_SPAM(5.1)", True),
        ("X-Spamd-Result", "default: True [9.00 / 15.00]", True),
        ("X-Spamd-Result", "default: False [3.50 / 15.00]", False),
        ("X-MS-Exchange-Organization-SCL", "5", True),
        ("X-MS-Exchange-Organization-SCL", "1", False),
        ("X-MS-Exchange-Organization-SCL", "-1", False),
        ("X-Forefront-Antispam-Report", "CIP:192.0.2.1;CTRY:;SCL:9;SFV:SPM;", True),
        ("X-Forefront-Antispam-Report", "CIP:192.0.2.1;CTRY:;SCL:1;SFV:NSPM;", False),
    ],
)
def test_verdict_headers(name: str, value: str, spam: bool) -> None:
    assert bool(server_verdict(with_header(name, value))) is spam


def test_config_key(tmp_path: Path) -> None:
    from tests.test_config import MINIMAL, write

    cfg = load_config(write(tmp_path / "a", MINIMAL))
    assert cfg.imap.trust_spam_verdict is True
    off = MINIMAL.replace("[imap]\n", "[imap]\ntrust_spam_verdict = false\n", 1)
    assert "trust_spam_verdict" in off
    cfg = load_config(write(tmp_path / "b", off))
    assert cfg.imap.trust_spam_verdict is False
    assert Settings.from_config(cfg).context().trust_spam_verdict is False
