"""Rule matching that cannot hang (issue 8, item 1).

Every user pattern runs under a time budget per message; a message that uses it up is a
reject (poison), and the mailbox position moves on. ``check`` warns about patterns prone
to backtracking; the shipped ones are linear. Pure tests: no servers.
"""

from __future__ import annotations

import itertools
import re
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from inboxwatch.adapters.memory_store import MemoryStore
from inboxwatch.core import route
from inboxwatch.core.actions import InboxMail, Reject
from inboxwatch.core.classify import Context, classify
from inboxwatch.core.message import Address, parse_message
from inboxwatch.core.regex_lint import hazards
from inboxwatch.core.safe_regex import MESSAGE_BUDGET, Budget, RuleTimeout, compile_user
from inboxwatch.core.settings import Settings
from inboxwatch.core.timing import SendingWindow
from inboxwatch.userfiles.rulebook import RuleBook, load_rulebook

REPO = Path(__file__).resolve().parent.parent
NOW = datetime(2027, 3, 3, 12, 0, tzinfo=UTC)
CTX = Context(own=frozenset({"hello@shop.example"}), team=frozenset())
#: The shipped lead pattern that froze the daemon (no nested quantifier: `\s*\n?\s*`).
FROZE = (
    r"^\s*\**\s*(?:e-?mail(?: address)?|your e-?mail|e-?mail-adresse)\s*\**\s*:?\s*\n"
    r'(?:\s*\n)?\s*(?:<?mailto:)?(?P<email>[^\s<>:;,"]+@[^\s<>:;,"]+\.[A-Za-z]{2,})\s*$'
)
SEQ = """
[sequence.default]
  [[sequence.default.step]]
  name = "ack"
  day = 0
  template = "ack"
"""


def hostile(n: int = 50_000) -> bytes:
    """A small form notification with a long run of spaces after an "e-mail" label (and an
    "@" after them: a text without one is never searched, core/prefilter.py)."""
    body = "New form submission\r\n\r\ne-mail" + " " * n + "text @\r\n"
    return (
        "From: Shop <wordpress@shop.example>\r\nTo: hello@shop.example\r\n"
        "Subject: New form submission\r\nMessage-ID: <hostile.1@shop.example>\r\n"
        "Date: Wed, 03 Mar 2027 10:00:00 +0000\r\nContent-Type: text/plain\r\n\r\n" + body
    ).encode()


def user_book(tmp_path: Path, rules: str) -> RuleBook:
    (tmp_path / "rules").mkdir()
    (tmp_path / "templates").mkdir()
    (tmp_path / "rules" / "rules.toml").write_text(textwrap.dedent(rules) + SEQ, "utf-8")
    (tmp_path / "templates" / "ack.toml").write_text('subject = "Thanks"\nbody = "Hi"\n', "utf-8")
    return load_rulebook(tmp_path / "rules", tmp_path / "templates")


FORM_RULE = f"""
[[rule]]
name = "form"
lead = "body"
senders = ["@our-domain"]
accept_robots = true
lead_pattern = ['^name: (?P<name>.+)$', '{FROZE}']
[rule.match]
subject = "form submission"
"""


# ---- the budget ------------------------------------------------------------------------


def test_a_message_that_backtracks_is_rejected_as_poison_within_the_budget(
    tmp_path: Path,
) -> None:
    book = user_book(tmp_path, FORM_RULE)
    st = Settings(
        me=Address("hello@shop.example", "Shop"),
        owner="",
        owner_alerts=False,
        window=SendingWindow(UTC),
        min_gap=timedelta(hours=20),
        ack_period=timedelta(days=7),
        hold_max=timedelta(days=30),
        own=frozenset({"hello@shop.example"}),
    )
    world = route.World(book, st, ids=iter(f"<id{i}@shop.example>" for i in range(99)).__next__)
    mail = InboxMail("uid-7", NOW, False, hostile())
    started = time.monotonic()
    with MemoryStore().transaction() as state:
        actions = route.on_inbox(state, world, mail, NOW)
    elapsed = time.monotonic() - started
    assert elapsed < 3 * MESSAGE_BUDGET  # a bound on behaviour, not a benchmark
    rejects = [a for a in actions if isinstance(a, Reject)]
    assert [r.ref for r in rejects] == ["uid-7"], actions
    assert "rule 'form', rule.0.lead_pattern.1" in rejects[0].error
    assert "budget" in rejects[0].error


def test_the_timeout_names_the_rule_and_key(tmp_path: Path) -> None:
    book = user_book(tmp_path, FORM_RULE)
    with pytest.raises(RuleTimeout) as info:
        classify(parse_message(hostile()), book, CTX, NOW, Budget(0.2))
    assert info.value.where == "rule 'form', rule.0.lead_pattern.1"


def test_the_shipped_rules_do_not_need_the_budget() -> None:
    """Linear patterns: the message that froze the daemon takes milliseconds."""
    book = load_rulebook(REPO / "rules", REPO / "templates")
    msg = parse_message(hostile())
    started = time.monotonic()
    classify(msg, book, CTX, NOW, Budget(MESSAGE_BUDGET))
    assert time.monotonic() - started < MESSAGE_BUDGET / 2


LABELS = ["", "from:", "from: jane ", "email", "email:", "**email**", "email\n", "name", "name:",
          "phone:", "message", "what's your name", "your email?", "x@"]  # fmt: skip
FILLERS = [" ", "\t", "\n", " \n", "*", "a", "a ", "a.", "@", "a@", ":", "1 ", "<", "name\n"]


def test_no_shipped_pattern_is_slow_on_long_runs() -> None:
    """Runs of every character the shipped patterns care about, after every label."""
    book = load_rulebook(REPO / "rules", REPO / "templates")
    patterns = [
        p
        for rule in book.rules
        for p in (*rule.lead_patterns, *(q for c in rule.conditions for q in c.patterns))
    ]
    for label, filler in itertools.product(LABELS, FILLERS):
        text = label + filler * (20_000 // len(filler)) + "!"
        budget = Budget(MESSAGE_BUDGET)
        for pattern in patterns:
            pattern.search(text, budget)  # raises RuleTimeout if a pattern backtracks


def test_the_budget_is_shared_and_checked_before_each_search() -> None:
    ticks = iter([0.0, 0.4, 0.9, 1.2])
    budget = Budget(1.0, clock=lambda: next(ticks))
    pattern = compile_user("quote", re.IGNORECASE, "rule 'r', rule.0.match.subject")
    assert pattern.search("A Quote please", budget) is not None  # 0.6 s left
    assert pattern.search("nothing", budget) is None  # 0.1 s left
    with pytest.raises(RuleTimeout, match=r"rule 'r', rule\.0\.match\.subject"):
        pattern.search("quote", budget)


def test_user_patterns_keep_the_syntax_and_errors_of_re() -> None:
    with pytest.raises(re.error):
        compile_user("(unclosed", 0, "x")
    with pytest.raises(re.error):
        compile_user(r"\p{L}", 0, "x")  # the regex module knows it; a rule file must not
    p = compile_user(r"^e-?mail:\s*(?P<email>\S+)$", re.IGNORECASE | re.MULTILINE, "x")
    m = p.search("Name: x\nE-Mail: jane@example.org\n", Budget())
    assert m is not None and m.groupdict() == {"email": "jane@example.org"}
    assert dict(p.groupindex) == {"email": 1}


# ---- the linter --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "pattern",
    [
        r"\s*\n?\s*",
        r"\s*\s+",
        r".*.*",
        r"[^@]*\S*",
        r"(a+)+",
        r"(\w*)*",
        r"(\w+\s?)+$",
        r"(?:\s*\S+)*x",
        r"(?:\s*\n)+",
        r"^name:\s*(?P<name>.*?)\s*$",
        FROZE,
    ],
)
def test_patterns_prone_to_backtracking_are_named(pattern: str) -> None:
    assert hazards(pattern, re.IGNORECASE | re.MULTILINE), pattern


@pytest.mark.parametrize(
    "pattern",
    [
        r"(?:[a-z0-9-]+\.)+[a-z]{2,}",
        r"\s*:\s*",
        r"[^@\s]+@[^@\s]+",
        r"\w+\s+\w+",
        r".*foo.*",
        r'(?:"[^"]*"|[^,])+',
        r"\d{1,3}(?:\.\d{1,3}){3}",
        r"^\s*(?P<email>\S+@\S+)\s*$",
        r"[ \t]*\n[ \t]*",
        r"\s*+\s*",  # possessive: gives nothing back
        r"(?>\s*)\s*",  # atomic
        r"\s*$\s*",  # the anchor fixes where one ends
        r"\bnew (entry|submission)\b.{0,40}\bform\b",
        r"^\W*(\[[^\]]{1,60}\]\s*)?(new\s+)?contact[ -]?form(\s+(entry|message))?(\s*[:|]|\s*$)",
        r"(?:-?\d)+",
        r"(?:a?b?)*c",
        r"\b(quote|price|offer)\b.{0,80}\b(for|on)\b",
        r"(unclosed",  # a syntax error is reported elsewhere, not as a hazard
    ],
)
def test_ordinary_patterns_raise_no_alarm(pattern: str) -> None:
    assert hazards(pattern, re.IGNORECASE | re.MULTILINE) == [], pattern


def test_the_shipped_rules_have_no_warnings() -> None:
    book = load_rulebook(REPO / "rules", REPO / "templates")
    assert book.warnings == ()


def test_check_warns_with_file_line_and_key_but_passes(tmp_path: Path) -> None:
    book = user_book(
        tmp_path,
        """
        [[rule]]
        name = "quotes"
        [rule.match]
        subject = "quote"
        body_regex = ['price', '(\\w+\\s?)+$']
        header_regex = { "X-Form" = 'id=\\S*.*' }
        """,
    )
    text = (tmp_path / "rules" / "rules.toml").read_text("utf-8").splitlines()
    keys = {w.key: w for w in book.warnings}
    assert set(keys) == {"rule.0.match.body_regex.1", "rule.0.match.header_regex.X-Form"}
    body = keys["rule.0.match.body_regex.1"]
    assert body.file == str(tmp_path / "rules" / "rules.toml")
    assert body.line is not None and text[body.line - 1].strip().startswith("body_regex")
    assert "prone to backtracking" in body.message and r"\w+" in body.message
    assert str(body).startswith(f'{body.file}:{body.line}: rule "quotes".match.body_regex #2: ')
    assert r"\S* and then .*" in keys["rule.0.match.header_regex.X-Form"].message


# ---- in the daemon ---------------------------------------------------------------------


def test_the_daemon_skips_a_poison_message_without_holding_the_state_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rules run outside the state's lock (so `leads` and `stop` never hang behind
    them), the message that takes the whole budget is recorded and skipped, and the mail
    after it is answered."""
    import fcntl
    import os

    from inboxwatch.adapters.memory_mail import MemorySource
    from inboxwatch.adapters.memory_sender import MemorySender
    from inboxwatch.adapters.tinydb_store import TinyDbStore
    from inboxwatch.service.clock import FixedClock
    from inboxwatch.service.daemon import Daemon
    from inboxwatch.testing.mailfactory import mail
    from inboxwatch.userfiles.config import load_config

    book = user_book(tmp_path, FORM_RULE + '\n[[rule]]\nname = "direct"\ntemplate = "ack"\n')
    cfg_file = tmp_path / "config.toml"
    cfg_file.write_text(
        'timezone = "UTC"\n[imap]\nhost = "127.0.0.1"\nport = 1\ntls = "none"\n'
        'username = "u"\npassword_env = "X"\n[smtp]\nhost = "127.0.0.1"\nport = 1\n'
        'tls = "none"\n[identity]\naddress = "hello@shop.example"\nname = "Shop"\n'
        '[owner]\naddress = "owner@shop.example"\n[state]\npath = "state/iw.json"\n'
    )
    cfg = load_config(cfg_file)
    clock = FixedClock(NOW)
    source, sender = MemorySource(clock=clock.now), MemorySender()
    store = TinyDbStore.open(cfg.state_path)
    daemon = Daemon(cfg, book, store, clock, source, sender, journal=None)
    daemon.connect(NOW)
    daemon.tick(NOW)
    lock = cfg.state_path.with_name(cfg.state_path.name + ".lock")
    held: list[bool] = []
    real = route.classify

    def classify_and_look_at_the_lock(*args: object, **kw: object) -> object:
        fd = os.open(lock, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free: nobody holds it
            held.append(False)
        except BlockingIOError:
            held.append(True)
        finally:
            os.close(fd)
        return real(*args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(route, "classify", classify_and_look_at_the_lock)
    poison = source.deliver(hostile(), received=NOW)
    source.deliver(mail("lea@customer.example", "hello@shop.example", "Quote?"), received=NOW)
    started = time.monotonic()
    daemon.tick(NOW + timedelta(seconds=1))
    assert time.monotonic() - started < 3 * MESSAGE_BUDGET
    assert held and not any(held)
    with store.transaction() as state:
        assert [r.ref for r in state.rejects()] == [poison]
    assert [e.rcpt for e in sender.sent if b"X-Inboxwatch: ack" in e.raw] == [
        "lea@customer.example"
    ]
    # The position moved past it: the next tick does not read it again.
    held.clear()
    daemon.tick(NOW + timedelta(seconds=2))
    assert held == []
