"""User rules and sequences: parsing, matching, lead extraction and the rule book's checks."""

from __future__ import annotations

import email.policy
import textwrap
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import pytest

from inboxwatch.core.classify import Context, Kind, classify
from inboxwatch.core.message import Address, Message, parse_message
from inboxwatch.errors import ConfigError, Problem
from inboxwatch.userfiles.rulebook import RuleBook, load_rulebook
from inboxwatch.userfiles.rules import Rule, find_lead, parse_rule
from inboxwatch.userfiles.tomlfile import Section, TomlFile

REPO = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
CTX = Context(own=frozenset({"hello@shop.example"}), team=frozenset())

ACK = 'subject = "Thanks"\nbody = "Hello {{ first_name | there }}"\n'
SEQ = """
[sequence.default]
  [[sequence.default.step]]
  name = "ack"
  day = 0
  template = "ack"
"""


def mail(
    subject: str = "Quote for 40 chairs",
    body: str = "Hello, could you send me a quote?\n",
    frm: str = "Maria Lopez <maria.lopez@example.net>",
    to: str = "hello@shop.example",
    **headers: str,
) -> Message:
    """A message as a mail client writes it (non-ASCII headers RFC 2047-encoded)."""
    m = EmailMessage(policy=email.policy.SMTP)
    m["From"] = frm
    m["To"] = to
    m["Subject"] = subject
    m["Date"] = "Mon, 23 Nov 2026 09:00:00 +0000"
    m["Message-ID"] = "<t1@example.net>"
    for key, value in headers.items():
        m[key.replace("_", "-")] = value
    m.set_content(body)
    return parse_message(m.as_bytes())


def parse(tmp_path: Path, text: str) -> tuple[list[Rule], list[Problem], str]:
    path = tmp_path / "rules.toml"
    text = textwrap.dedent(text)
    path.write_text(text, encoding="utf-8")
    problems: list[Problem] = []
    toml = TomlFile.load(path, problems)
    assert toml is not None, [str(p) for p in problems]
    rules = [
        parse_rule(Section(toml, raw, f"rule.{i}"), i) for i, raw in enumerate(toml.data["rule"])
    ]
    return rules, problems, text


def rule(tmp_path: Path, text: str) -> Rule:
    rules, problems, _ = parse(tmp_path, "[[rule]]\nname = 'r'\n" + textwrap.dedent(text))
    assert not problems, [str(p) for p in problems]
    return rules[0]


def matches(r: Rule, msg: Message) -> bool:
    return r.matches(msg, msg.body_text)


def book(tmp_path: Path, files: dict[str, str], templates: dict[str, str] | None = None) -> Path:
    """A rules/ and templates/ folder; returns the base folder."""
    (tmp_path / "rules").mkdir(exist_ok=True)
    (tmp_path / "templates").mkdir(exist_ok=True)
    for name, text in files.items():
        (tmp_path / "rules" / name).write_text(textwrap.dedent(text), encoding="utf-8")
    for name, text in {"ack": ACK, **(templates or {})}.items():
        (tmp_path / "templates" / f"{name}.toml").write_text(text, encoding="utf-8")
    return tmp_path


def load(base: Path) -> RuleBook:
    return load_rulebook(base / "rules", base / "templates")


def book_problems(base: Path) -> list[Problem]:
    with pytest.raises(ConfigError) as info:
        load(base)
    return info.value.problems


def line_of(text: str, needle: str, start: int = 1) -> int:
    for number, line in enumerate(text.splitlines(), 1):
        if number >= start and needle in line:
            return number
    raise AssertionError(f"{needle!r} not in text")


# ---- matching -----------------------------------------------------------------------


def test_a_plain_value_is_a_substring_not_a_regex(tmp_path: Path) -> None:
    r = rule(tmp_path, '[rule.match]\nsubject = "price (EUR)."')
    assert matches(r, mail(subject="Your price (EUR). please"))
    assert not matches(r, mail(subject="Your price EUR, please"))


def test_regex_values(tmp_path: Path) -> None:
    r = rule(tmp_path, "[rule.match]\nsubject_regex = '^quote\\b.*\\d+ chairs$'")
    assert matches(r, mail(subject="Quote for 40 chairs"))
    assert not matches(r, mail(subject="Re: Quote for 40 chairs"))


def test_matching_is_case_insensitive_by_default(tmp_path: Path) -> None:
    r = rule(tmp_path, '[rule.match]\nfrom = "MARIA.LOPEZ@EXAMPLE.NET"\nsubject_regex = "QUOTE"')
    assert matches(r, mail())


def test_case_sensitive_rules(tmp_path: Path) -> None:
    r = rule(tmp_path, 'case_sensitive = true\n[rule.match]\nsubject = "URGENT"')
    assert matches(r, mail(subject="URGENT: quote"))
    assert not matches(r, mail(subject="Urgent: quote"))
    r = rule(tmp_path, "case_sensitive = true\n[rule.match]\nsubject_regex = '^Ur'")
    assert not matches(r, mail(subject="URGENT: quote"))


def test_a_list_means_any_of(tmp_path: Path) -> None:
    r = rule(tmp_path, '[rule.match]\nsubject = ["quote", "price", "angebot"]')
    assert matches(r, mail(subject="Your prices"))
    assert matches(r, mail(subject="Angebot bitte"))
    assert not matches(r, mail(subject="Hello"))


def test_several_keys_mean_all_of(tmp_path: Path) -> None:
    r = rule(tmp_path, '[rule.match]\nsubject = "quote"\nfrom = "@example.net"\nbody = "chairs"')
    assert not matches(r, mail(body="Hello"))
    assert not matches(r, mail(frm="bob@example.org", body="40 chairs"))
    assert matches(r, mail(body="We need 40 chairs."))


def test_match_mode_any(tmp_path: Path) -> None:
    r = rule(tmp_path, 'match_mode = "any"\n[rule.match]\nsubject = "form"\nbody = "submitted"')
    assert matches(r, mail(subject="Contact form"))
    assert matches(r, mail(body="This was submitted on the website"))
    assert not matches(r, mail(subject="Hello", body="Hello"))


def test_a_rule_without_conditions_matches_everything(tmp_path: Path) -> None:
    assert matches(rule(tmp_path, ""), mail())
    assert matches(rule(tmp_path, 'match_mode = "any"'), mail())


def test_to_matches_cc_too(tmp_path: Path) -> None:
    r = rule(tmp_path, '[rule.match]\nto = "sales@shop.example"')
    assert matches(r, mail(Cc="Sales <sales@shop.example>"))
    assert not matches(r, mail())


def test_header_and_header_regex(tmp_path: Path) -> None:
    r = rule(
        tmp_path,
        """
        [rule.match]
        header = { "X-Mailer" = "phpmailer" }
        header_regex = { "x-form-id" = '^\\d+$' }
        """,
    )
    assert matches(r, mail(X_Mailer="PHPMailer 6.9.1", X_Form_Id="42"))
    assert not matches(r, mail(X_Mailer="PHPMailer 6.9.1", X_Form_Id="contact"))
    assert not matches(r, mail(X_Form_Id="42"))  # a missing header never matches


def test_a_header_list_means_any_of(tmp_path: Path) -> None:
    r = rule(tmp_path, '[rule.match]\nheader = { "X-Source" = ["typeform", "jotform"] }')
    assert matches(r, mail(X_Source="JotForm EU"))
    assert not matches(r, mail(X_Source="hubspot"))


def test_from_matches_the_display_name(tmp_path: Path) -> None:
    r = rule(tmp_path, '[rule.match]\nfrom = "Maria Lopez"')
    assert matches(r, mail())


def test_from_matches_a_non_ascii_display_name(tmp_path: Path) -> None:
    """The name is compared as the user sees it, not as its RFC 2047 encoded-word."""
    r = rule(tmp_path, '[rule.match]\nfrom = "Müller"')
    msg = mail(frm="Jürgen Müller <j.mueller@example.de>")
    assert msg.from_ == Address("j.mueller@example.de", "Jürgen Müller")
    assert matches(r, msg)


# ---- parsing problems ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("snippet", "key", "words"),
    [
        ('[rule.match]\nsubject_regex = "(unclosed"', "rule.0.match.subject_regex",
         "bad regular expression"),
        ('[rule.match]\nsubjet = "x"', "rule.0.match.subjet", "unknown match key"),
        ('[rule.match]\nheader = "X-Mailer"', "rule.0.match.header", "expected a table"),
        ('[rule.match]\nsubject = 3', "rule.0.match.subject", "expected a string"),
        ('kind = "enqiury"', "rule.0.kind", "must be one of"),
        ('lead = "from"', "rule.0.lead", "must be one of"),
        ('match_mode = "some"', "rule.0.match_mode", "must be one of"),
        ('accept_robots = "yes"', "rule.0.accept_robots", "true or false"),
        ('lead = "body"', "rule.0.lead_pattern", 'required when lead = "body"'),
        ("lead = \"body\"\nlead_pattern = '(?P<name>\\w+)'", "rule.0.lead_pattern",
         "(?P<email>"),
        ("lead_pattern = '(?P<email>\\S+@\\S+)'", "rule.0.lead", 'must be "body"'),
        ("lead = \"body\"\nlead_pattern = ['(?P<email>\\S+@\\S+)', '(']",
         "rule.0.lead_pattern.1", "bad regular expression"),
        ('sequense = "default"', "rule.0.sequense", "unknown key"),
    ],
)  # fmt: skip
def test_rule_problems_name_key_and_line(
    tmp_path: Path, snippet: str, key: str, words: str
) -> None:
    _, problems, _ = parse(tmp_path, f"[[rule]]\nname = 'r'\n{snippet}\n")
    assert [p.key for p in problems] == [key], [str(p) for p in problems]
    assert words in problems[0].message
    # the key's own line, or the rule's [[rule]] header for a key that is missing
    assert problems[0].line is not None, str(problems[0])
    assert problems[0].file == str(tmp_path / "rules.toml")


def test_a_problem_in_the_second_rule_points_into_the_second_rule(tmp_path: Path) -> None:
    _, problems, text = parse(
        tmp_path,
        """\
        [[rule]]
        name = "first"
        kind = "enquiry"
        [rule.match]
        subject_regex = "quote"

        [[rule]]
        name = "second"
        kind = "enqiury"
        [rule.match]
        subject_regex = "(unclosed"
        """,
    )
    second = line_of(text, 'name = "second"')
    lines = {p.key: p.line for p in problems}
    assert set(lines) == {"rule.1.kind", "rule.1.match.subject_regex"}
    assert lines["rule.1.kind"] == line_of(text, 'kind = "enqiury"'), lines
    assert lines["rule.1.match.subject_regex"] == line_of(text, "subject_regex", second), lines


# ---- lead extraction ----------------------------------------------------------------


def test_lead_is_the_sender_by_default(tmp_path: Path) -> None:
    found = find_lead(rule(tmp_path, ""), mail(), "")
    assert found.address == Address("maria.lopez@example.net", "Maria Lopez")


def test_lead_from_reply_to(tmp_path: Path) -> None:
    r = rule(tmp_path, 'lead = "reply-to"')
    msg = mail(frm="Website <wordpress@shop.example>", Reply_To="Tom Becker <Tom@Example.org>")
    found = find_lead(r, msg, msg.body_text)
    assert found.address == Address("tom@example.org", "Tom Becker")
    found = find_lead(r, mail(frm="Website <wordpress@shop.example>"), "")
    assert found.address is None and "Reply-To" in found.reason


def test_lead_from_the_body_with_one_pattern(tmp_path: Path) -> None:
    r = rule(
        tmp_path,
        """
        lead = "body"
        lead_pattern = '^Email:\\s*(?P<email>\\S+)$'
        """,
    )
    body = "Name: Jane\nEmail: <Jane.Doe@Example.COM>.\nMessage: hi\n"
    found = find_lead(r, mail(body=body), body)
    assert found.address == Address("jane.doe@example.com", "")
    assert found.fields == {}


def test_named_groups_and_extra_fields(tmp_path: Path) -> None:
    r = rule(
        tmp_path,
        """
        lead = "body"
        lead_pattern = [
          '^e-mail:\\s*(?P<email>\\S+@\\S+)',
          '^name:\\s*(?P<name>.+)$',
          '^phone:\\s*(?P<phone>.+)$',
          '^company:\\s*(?P<company>.+)$',
          '^message:\\s*(?P<message>(?s:.+))',
          '^e-mail:\\s*(?P<email>\\S+)',
        ]
        """,
    )
    body = (
        "Name:   Jane \t van  Doe\nE-Mail: jane@example.org\nPhone: +49 30 123\n"
        "Company: ACME   GmbH\nMessage:\n  Line one\n\n  Line two  \n"
    )
    found = find_lead(r, mail(body=body), body)
    assert found.address == Address("jane@example.org", "Jane van Doe")
    assert dict(found.fields) == {
        "phone": "+49 30 123",
        "company": "ACME GmbH",
        "message": "Line one\n\n  Line two",
    }
    assert r.provides == frozenset({"email", "name", "phone", "company", "message"})


def test_first_pattern_wins_for_each_group(tmp_path: Path) -> None:
    r = rule(
        tmp_path,
        """
        lead = "body"
        lead_pattern = ['^from: (?P<name>[^<]+) <(?P<email>[^>]+)>', '^name: (?P<name>.+)$']
        """,
    )
    body = "From: Jane Doe <jane@example.org>\nName: Somebody Else\n"
    found = find_lead(r, mail(body=body), body)
    assert found.address == Address("jane@example.org", "Jane Doe")


def test_no_email_in_the_body_gives_no_lead(tmp_path: Path) -> None:
    r = rule(tmp_path, "lead = \"body\"\nlead_pattern = '^email:\\s*(?P<email>\\S+)'")
    for body in ("Hello, please call me.\n", "Email: not-given\n"):
        found = find_lead(r, mail(body=body), body)
        assert found.address is None and "no email address" in found.reason


def test_lead_pattern_is_case_insensitive_and_multiline(tmp_path: Path) -> None:
    r = rule(tmp_path, "lead = \"body\"\nlead_pattern = '^email: (?P<email>\\S+)$'")
    body = "Intro line\nEMAIL: jane@example.org\nMore\n"
    assert find_lead(r, mail(body=body), body).address == Address("jane@example.org")


# ---- first match wins, kind = "ignore" ------------------------------------------------

RULE = """
[[rule]]
name = "{name}"
kind = "{kind}"
[rule.match]
subject = "{subject}"
"""


def test_first_match_wins_in_file_name_order(tmp_path: Path) -> None:
    base = book(
        tmp_path,
        {
            "b-general.toml": RULE.format(name="general", kind="enquiry", subject="quote") + SEQ,
            "a-special.toml": RULE.format(name="special", kind="enquiry", subject="chairs"),
        },
    )
    rb = load(base)
    assert [r.name for r in rb.rules] == ["special", "general"]
    assert classify(mail(), rb, CTX, NOW).rule == "special"
    assert classify(mail(subject="Quote for desks"), rb, CTX, NOW).rule == "general"


def test_first_match_wins_within_a_file(tmp_path: Path) -> None:
    text = (
        RULE.format(name="ignore-quotes", kind="ignore", subject="quote")
        + RULE.format(name="all", kind="enquiry", subject="")
        + SEQ
    )
    rb = load(book(tmp_path, {"rules.toml": text}))
    c = classify(mail(), rb, CTX, NOW)
    assert (c.kind, c.rule) == (Kind.IGNORE, "ignore-quotes")
    c = classify(mail(subject="Hello"), rb, CTX, NOW)
    assert (c.kind, c.rule) == (Kind.ENQUIRY, "all")


def test_an_ignore_rule_is_never_an_enquiry(tmp_path: Path) -> None:
    text = RULE.format(name="spam", kind="ignore", subject="") + SEQ
    c = classify(mail(), load(book(tmp_path, {"rules.toml": text})), CTX, NOW)
    assert c.kind is Kind.IGNORE and c.lead is None and "matched rule 'spam'" in c.reasons


# ---- sequences ------------------------------------------------------------------------


def test_the_shipped_default_sequence() -> None:
    rb = load_rulebook(REPO / "rules", REPO / "templates")
    seq = rb.sequences["default"]
    days = [s.day for s in seq.steps]
    assert days == sorted(days) and days[0] == 0
    assert seq.ack is not None and seq.ack.is_email and seq.ack.day == 0
    assert len({s.name for s in seq.steps}) == len(seq.steps)
    for step in seq.steps:
        assert step.channel in ("email", "call", "text")
        if step.is_email:
            assert step.template in rb.templates
    assert seq.step("no-such-step") is None


def test_ack_template_comes_from_the_rule_or_the_sequence(tmp_path: Path) -> None:
    text = RULE.format(name="a", kind="enquiry", subject="x") + SEQ
    text += '\n[[rule]]\nname = "b"\ntemplate = "other"\n'
    rb = load(book(tmp_path, {"rules.toml": text}, {"other": ACK}))
    a, b = rb.rules
    assert rb.ack_template(a) is not None and rb.ack_template(a).name == "ack"  # type: ignore[union-attr]
    assert rb.ack_template(b) is not None and rb.ack_template(b).name == "other"  # type: ignore[union-attr]


STEPS = """
[[rule]]
name = "r"

[sequence.default]
  [[sequence.default.step]]
  name = "ack"
  day = 0
  template = "ack"

  [[sequence.default.step]]
  name = "call"
  day = 3
  channel = "call"

  [[sequence.default.step]]
  name = "{name}"
  day = {day}
  template = "ack"
"""


def test_duplicate_step_names_point_at_the_duplicate(tmp_path: Path) -> None:
    text = STEPS.format(name="ack", day=5)
    problems = book_problems(book(tmp_path, {"rules.toml": text}))
    assert [(p.key, p.message) for p in problems] == [
        ("sequence.default.step.2.name", "duplicate step name 'ack'")
    ]
    assert problems[0].line == line_of(text, 'name = "ack"', line_of(text, "day = 5") - 1)


def test_a_step_day_going_backwards_points_at_that_step(tmp_path: Path) -> None:
    text = STEPS.format(name="late", day=2)
    problems = book_problems(book(tmp_path, {"rules.toml": text}))
    assert [(p.key, p.message) for p in problems] == [
        ("sequence.default.step.2.day", "steps must be in day order")
    ]
    assert problems[0].line == line_of(text, "day = 2")


@pytest.mark.parametrize(
    ("step", "key", "words"),
    [
        ('name = "x y"\nday = 5\ntemplate = "ack"', "step.2.name", "letters, digits"),
        ('name = "x"\nday = 5\ntemplate = "ack"\nchannel = "fax"', "step.2.channel", "one of"),
        ('name = "x"\nday = 5\ntemplate = "ack"\nthen = "closed"', "step.2.then", "one of"),
        ('name = "x"\nday = 5', "step.2.template", "missing"),
        ('name = "x"\ntemplate = "ack"', "step.2.day", "missing"),
        ('name = "x"\nday = 5\ntemplate = "nope"', "step.2.template", "no template 'nope'"),
    ],
)
def test_step_problems(tmp_path: Path, step: str, key: str, words: str) -> None:
    text = STEPS.replace('name = "{name}"\n  day = {day}\n  template = "ack"\n', step + "\n")
    problems = book_problems(book(tmp_path, {"rules.toml": text}))
    found = [p for p in problems if p.key == f"sequence.default.{key}" and words in p.message]
    assert found, [str(p) for p in problems]


def test_a_sequence_defined_twice(tmp_path: Path) -> None:
    base = book(tmp_path, {"a.toml": '[[rule]]\nname = "r"\n' + SEQ, "b.toml": SEQ})
    problems = book_problems(base)
    assert [p.key for p in problems] == ["sequence.default"]
    assert "defined twice" in problems[0].message and problems[0].file.endswith("b.toml")


# ---- the rule book's cross-checks ------------------------------------------------------


def test_an_unknown_sequence(tmp_path: Path) -> None:
    text = '[[rule]]\nname = "r"\nsequence = "fast"\n' + SEQ
    problems = book_problems(book(tmp_path, {"rules.toml": text}))
    assert len(problems) == 1 and "no sequence 'fast'" in problems[0].message
    assert problems[0].file == str(tmp_path / "rules" / "rules.toml")


def test_an_unknown_sequence_names_its_line(tmp_path: Path) -> None:
    text = '[[rule]]\nname = "r"\nsequence = "fast"\n' + SEQ
    (problem,) = book_problems(book(tmp_path, {"rules.toml": text}))
    assert problem.line == line_of(text, 'sequence = "fast"'), str(problem)


def test_a_missing_template_is_one_problem(tmp_path: Path) -> None:
    """One mistake, one line: not also "no acknowledgement" when a template *was* given."""
    text = '[[rule]]\nname = "r"\ntemplate = "thanks"\n' + SEQ
    problems = book_problems(book(tmp_path, {"rules.toml": text}))
    assert [p.message for p in problems] == ["no template 'thanks'"], [str(p) for p in problems]


def test_a_rule_without_acknowledgement(tmp_path: Path) -> None:
    seq = SEQ.replace("day = 0", "day = 1")
    problems = book_problems(book(tmp_path, {"rules.toml": '[[rule]]\nname = "r"\n' + seq}))
    assert len(problems) == 1 and "no acknowledgement" in problems[0].message


def test_duplicate_rule_names(tmp_path: Path) -> None:
    text = '[[rule]]\nname = "r"\n[[rule]]\nname = "r"\n' + SEQ
    problems = book_problems(book(tmp_path, {"rules.toml": text}))
    assert len(problems) == 1 and "duplicate rule 'r'" in problems[0].message


@pytest.mark.parametrize("lead", ["lead = \"body\"\nlead_pattern = '(?P<email>\\S+@\\S+)'",
                                  'lead = "reply-to"'])  # fmt: skip
def test_a_notification_rule_needs_a_template_subject(tmp_path: Path, lead: str) -> None:
    text = f'[[rule]]\nname = "form"\n{lead}\nsenders = ["@our-domain"]\ntemplate = "nosubject"\n'
    base = book(tmp_path, {"rules.toml": text + SEQ}, {"nosubject": 'body = "Hello"\n'})
    (problem,) = book_problems(base)
    assert problem.key == "subject" and problem.file.endswith("nosubject.toml")
    assert "'form'" in problem.message


def test_a_sender_rule_may_use_a_template_without_subject(tmp_path: Path) -> None:
    text = '[[rule]]\nname = "direct"\ntemplate = "nosubject"\n' + SEQ
    rb = load(book(tmp_path, {"rules.toml": text}, {"nosubject": 'body = "Hello"\n'}))
    assert rb.rules[0].name == "direct"


def test_no_rules_at_all(tmp_path: Path) -> None:
    problems = book_problems(book(tmp_path, {"rules.toml": SEQ}))
    assert len(problems) == 1 and "no [[rule]]" in problems[0].message


def test_all_rule_book_problems_at_once(tmp_path: Path) -> None:
    base = book(
        tmp_path,
        {
            "a.toml": '[[rule]]\nname = "a"\nkind = "maybe"\n' + SEQ,
            "b.toml": '[[rule]]\nname = "b"\nsequence = "nope"\n[rule.match]\nfrom_regex = "["\n',
            "c.toml": "this is not toml\n",
        },
        {"broken": 'subject = "x"\nbody = "{{ nmae }}"\n'},
    )
    problems = book_problems(base)
    text = "\n".join(str(p) for p in problems)
    for words in ('rule "a".kind', "from_regex", "no sequence 'nope'", "c.toml:1", "nmae"):
        assert words in text


# ---- who may send a notification (senders) ------------------------------------------------


@pytest.mark.parametrize("lead", ["lead = \"body\"\nlead_pattern = '^email: (?P<email>\\S+)'",
                                  'lead = "reply-to"'])  # fmt: skip
def test_check_refuses_a_notification_rule_without_senders(tmp_path: Path, lead: str) -> None:
    text = f'[[rule]]\nname = "form"\n{lead}\n' + SEQ
    (problem,) = book_problems(book(tmp_path, {"rules.toml": text}))
    assert problem.key == "rule.0.senders" and "required when lead" in problem.message
    assert problem.line == line_of(text, "[[rule]]")  # the key is missing: the rule's line
    fixed = text.replace("[[rule]]\n", '[[rule]]\nsenders = ["@our-domain"]\n', 1)
    (tmp_path / "rules" / "rules.toml").write_text(fixed, encoding="utf-8")
    assert load(tmp_path).rules[0].senders == ("@our-domain",)


def test_a_rule_that_answers_the_sender_needs_no_senders(tmp_path: Path) -> None:
    text = '[[rule]]\nname = "direct"\n[rule.match]\nsubject = "quote"\n' + SEQ
    assert load(book(tmp_path, {"rules.toml": text})).rules[0].senders == ()


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("[]", "lets nobody send"),
        ('["formspree.io"]', "is not an address"),
        ('["@localhost"]', "is not an address"),
        ('["jane@@example.com"]', "is not an address"),
        ('["@exa mple.com"]', "is not an address"),
        ('["@"]', "is not an address"),
        ("[3]", "expected a list of strings"),
        ('"@formspree.io"', "expected a list"),
    ],
)
def test_senders_entries_are_checked(tmp_path: Path, value: str, words: str) -> None:
    _, problems, text = parse(tmp_path, f"[[rule]]\nname = 'r'\nsenders = {value}\n")
    assert [p.key for p in problems] == ["rule.0.senders"], [str(p) for p in problems]
    assert words in problems[0].message
    assert problems[0].line == line_of(text, "senders")


def test_senders_match_an_address_a_domain_or_ours(tmp_path: Path) -> None:
    r = rule(
        tmp_path,
        'senders = ["Forms@Example.com", "@formspree.io", "@our-domain"]\nlead = "reply-to"',
    )
    assert r.senders == ("forms@example.com", "@formspree.io", "@our-domain")
    ours = frozenset({"hello@shop.example", "owner@gmail.com"})
    domains = frozenset({"shop.example"})

    def allows(sender: str) -> bool:
        return r.allows(sender, ours, domains)

    assert allows("forms@example.com") and allows("FORMS@example.com")
    assert not allows("other@example.com")
    assert allows("noreply@formspree.io") and allows("x@mail.formspree.io")
    assert not allows("noreply@evilformspree.io") and not allows("x@formspree.io.evil.example")
    assert allows("wordpress@shop.example") and allows("email@www.shop.example")
    assert allows("owner@gmail.com")  # the owner's own address, on a public provider
    assert not allows("someone@gmail.com") and not allows("")
    assert rule(tmp_path, "").allows("anyone@anywhere.example", ours, domains)


def test_a_sender_outside_the_list_skips_the_rule(tmp_path: Path) -> None:
    text = """\
    [[rule]]
    name = "form"
    lead = "body"
    lead_pattern = '^email: (?P<email>\\S+)$'
    senders = ["@formspree.io"]
    accept_robots = true
    template = "ack"
    [rule.match]
    subject = "new submission"

    [[rule]]
    name = "direct"
    """
    rb = load(book(tmp_path, {"rules.toml": text + SEQ}))
    body = "Email: jane@example.org\n"
    stranger = classify(mail("New submission", body, "x@stranger.example"), rb, CTX, NOW)
    # Not "direct" either: that would answer the sender of a notification (review item 1).
    assert stranger.kind is Kind.IGNORE and stranger.lead is None
    assert stranger.unlisted == ("form", "x@stranger.example", "jane@example.org")
    assert "rule 'form' skipped: x@stranger.example is not one of its senders" in stranger.reasons
    listed = classify(mail("New submission", body, "noreply@formspree.io"), rb, CTX, NOW)
    assert listed.kind is Kind.ENQUIRY and listed.rule == "form"
    assert listed.lead == Address("jane@example.org")
