"""Templates: placeholders, fallbacks, inert payloads, HTML escaping, checks, first names."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from inboxwatch.core.letters import LeadView, first_name, lead_values
from inboxwatch.core.message import Address
from inboxwatch.errors import ConfigError, Problem
from inboxwatch.userfiles.rulebook import load_rulebook
from inboxwatch.userfiles.templates import (
    BUILTIN_VARIABLES,
    Template,
    check_variables,
    load_templates,
    render,
)

REPO = Path(__file__).resolve().parent.parent
ME = Address("hello@shop.example", "Shop")


def tpl(body: str, subject: str = "", html: str = "") -> Template:
    return Template("t", "t.toml", subject, body, html)


def load_one(tmp_path: Path, text: str, name: str = "t") -> tuple[Template | None, list[Problem]]:
    folder = tmp_path / "templates"
    folder.mkdir(exist_ok=True)
    (folder / f"{name}.toml").write_text(textwrap.dedent(text), encoding="utf-8")
    problems: list[Problem] = []
    found = load_templates(folder, problems)
    return found.get(name), problems


# ---- placeholders --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("Hi {{ name }}!", "Hi Jane Doe!"),
        ("Hi {{name}}!", "Hi Jane Doe!"),
        ("Hi {{   name   }}!", "Hi Jane Doe!"),
        ("Hi {{ first_name | there }}!", "Hi there!"),
        ("Hi {{first_name|there}}!", "Hi there!"),
        ("Hi {{ name | there }}!", "Hi Jane Doe!"),
        ("Call {{ phone | us on 030 123 }}.", "Call us on 030 123."),
        ("Hi {{ missing }}!", "Hi !"),
        ("{{ name }} <{{ email }}>", "Jane Doe <jane@example.org>"),
    ],
)
def test_placeholders_and_fallbacks(body: str, expected: str) -> None:
    values = {"name": "Jane Doe", "first_name": "", "email": "jane@example.org", "phone": ""}
    assert render(tpl(body), values).body == expected


def test_a_value_is_never_expanded_again() -> None:
    t = tpl("Hi {{ name }}, re {{ subject }}", "About {{ subject }}", "<p>{{ name }}</p>")
    r = render(t, {"name": "{{ email }}", "subject": "{{ our_address | x }}", "email": "LEAK"})
    assert r.body == "Hi {{ email }}, re {{ our_address | x }}"
    assert r.subject == "About {{ our_address | x }}"
    assert r.html == "<p>{{ email }}</p>"
    assert "LEAK" not in r.body + r.subject + r.html


@pytest.mark.parametrize(
    "payload",
    [
        "{0.__class__}",
        "{name.__class__.__mro__}",
        "{% import os %}{{ os.system('id') }}",
        "%(name)s %s",
        "${name} $name",
        "{{{{ name }}}}",
        "{__import__('os').system('id')}",
    ],
)
def test_values_that_look_like_code_stay_text(payload: str) -> None:
    r = render(tpl("A {{ name }} B", "S {{ name }}", "<i>{{ name }}</i>"), {"name": payload})
    assert r.body == f"A {payload} B"
    assert r.subject == " ".join(f"S {payload}".split())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{% if name %}yes{% endif %}", "{% if name %}yes{% endif %}"),
        ("{0.__class__} {name} {}", "{0.__class__} {name} {}"),
        ("${name} %(name)s", "${name} %(name)s"),
        ("{{ __class__ }}|{{ name.__class__ }}|{{ name.upper() }}", "||"),
    ],
)
def test_template_text_is_not_evaluated(text: str, expected: str) -> None:
    """Only ``{{ var }}`` is replaced; nothing reaches Python objects or formatting."""
    assert render(tpl(text), {"name": "Jane"}).body == expected


@pytest.mark.parametrize(
    "placeholder",
    ["{{ __class__ }}", "{{ name.__class__ }}", "{{ name.upper() }}", "{{ Name }}", "{{ }}",
     "{{ name[0] }}", "{{ config.items }}"],
)  # fmt: skip
def test_placeholders_that_are_not_plain_names_are_check_errors(
    tmp_path: Path, placeholder: str
) -> None:
    text = f'subject = "Hello"\nbody = """\nHi\n{placeholder}\n"""\n'
    t, problems = load_one(tmp_path, text)
    assert t is not None
    assert len(problems) == 1 and problems[0].key == "body", [str(p) for p in problems]
    assert problems[0].message.startswith(f"bad placeholder {placeholder!r}")
    assert problems[0].file == str(tmp_path / "templates" / "t.toml")
    assert problems[0].line == 2


def test_jinja_style_blocks_are_inert(tmp_path: Path) -> None:
    t, _ = load_one(tmp_path, 'subject = "x"\nbody = "{% for x in y %}{{ name }}{% endfor %}"')
    assert t is not None
    assert render(t, {"name": "Jane"}).body == "{% for x in y %}Jane{% endfor %}"


def test_unbalanced_braces_are_a_check_error(tmp_path: Path) -> None:
    _, problems = load_one(tmp_path, 'subject = "Hi {{ name"\nbody = "x"\n')
    assert [(p.key, p.message) for p in problems] == [("subject", "unbalanced {{ or }}")]
    assert problems[0].line == 1


def test_body_is_required_and_unknown_keys_are_reported(tmp_path: Path) -> None:
    _, problems = load_one(tmp_path, 'subject = "x"\nbdoy = "typo"\ndescription = "ok"\n')
    assert sorted((p.key, p.message) for p in problems) == [
        ("bdoy", "unknown key"),
        ("body", "missing (required)"),
    ]


def test_template_name_is_the_file_name(tmp_path: Path) -> None:
    t, problems = load_one(tmp_path, 'body = "x"\nhtml = "<b>x</b>"\n', name="welcome-back")
    assert not problems
    assert t == Template(
        "welcome-back", str(tmp_path / "templates" / "welcome-back.toml"), "", "x", "<b>x</b>"
    )


def test_variables_of_a_template() -> None:
    t = tpl("{{ a }} {{ b | x }}", "{{ c }}", "{{ d|y }} {{ a }}")
    assert t.variables == frozenset({"a", "b", "c", "d"})


# ---- subject and HTML ----------------------------------------------------------------


def test_subject_is_one_line_even_with_line_breaks_in_values() -> None:
    r = render(tpl("b", subject="Hi {{ name }}  there"), {"name": "Jane\r\nBcc: evil@x.example"})
    assert r.subject == "Hi Jane Bcc: evil@x.example there"
    assert "\n" not in r.subject and "\r" not in r.subject


def test_html_part_escapes_values_but_not_the_text_part() -> None:
    t = tpl("Hi {{ name }}", html='<p title="{{ name }}">Hi {{ name }}</p>')
    value = "<script>alert(\"x\")</script> & 'Co'"
    r = render(t, {"name": value})
    assert r.body == f"Hi {value}"
    assert "<script>" not in r.html and '"x"' not in r.html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#x27;Co&#x27;" in r.html
    assert r.html.startswith('<p title="&lt;script&gt;')


def test_no_html_part_unless_the_template_has_one() -> None:
    assert render(tpl("x"), {"name": "<b>"}).html == ""


# ---- variables check -----------------------------------------------------------------


def test_unknown_variable_is_a_check_error() -> None:
    problems: list[Problem] = []
    check_variables(tpl("Hi {{ frist_name }} {{ name }}"), BUILTIN_VARIABLES, problems, "x")
    assert [p.key for p in problems] == ["frist_name"]
    assert "unknown variable" in problems[0].message and problems[0].file == "t.toml"


def test_builtin_variables_are_known() -> None:
    body = " ".join(f"{{{{ {v} }}}}" for v in sorted(BUILTIN_VARIABLES))
    problems: list[Problem] = []
    check_variables(tpl(body), BUILTIN_VARIABLES, problems, "x")
    assert problems == []


SEQ = """
[[rule]]
name = "form"
lead = "body"
lead_pattern = '^email: (?P<email>\\S+)$|^company: (?P<company>.+)$'
senders = ["@our-domain"]
template = "ack"

[sequence.default]
  [[sequence.default.step]]
  name = "ack"
  day = 0
  template = "ack"
"""


def _rulebook(tmp_path: Path, body: str) -> list[Problem]:
    (tmp_path / "rules").mkdir()
    (tmp_path / "templates").mkdir()
    (tmp_path / "rules" / "r.toml").write_text(SEQ, encoding="utf-8")
    (tmp_path / "templates" / "ack.toml").write_text(
        f'subject = "Thanks"\nbody = "{body}"\n', encoding="utf-8"
    )
    try:
        load_rulebook(tmp_path / "rules", tmp_path / "templates")
    except ConfigError as exc:
        return exc.problems
    return []


def test_a_field_a_rule_extracts_is_a_known_variable(tmp_path: Path) -> None:
    assert _rulebook(tmp_path, "Hi {{ first_name }} of {{ company | your company }}") == []


def test_a_variable_no_rule_provides_is_reported_by_the_rule_book(tmp_path: Path) -> None:
    problems = _rulebook(tmp_path, "Hi {{ first_name }} of {{ compnay }}")
    assert [p.key for p in problems] == ["compnay"]
    assert problems[0].file == str(tmp_path / "templates" / "ack.toml")


def test_the_shipped_templates_use_known_variables_only() -> None:
    book = load_rulebook(REPO / "rules", REPO / "templates")
    known = BUILTIN_VARIABLES.union(*(r.provides for r in book.rules))
    for t in book.templates.values():
        assert t.variables <= known, t.name


# ---- first names -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Jane Doe", "Jane"),
        ("Doe, Jane", "Jane"),
        ("Dr. Jane Doe", "Jane"),
        ("Prof. Dr. Hans Müller", "Hans"),
        ("Doe, Dr. Jane", "Jane"),
        ("JANE", "Jane"),
        ("JANE DOE", "Jane"),
        ("jane", "Jane"),
        ("ÉMILE ZOLA", "Émile"),
        ("Jean-Luc Picard", "Jean-Luc"),
        ("McKenzie Smith", "McKenzie"),
        ('"Jane Doe"', "Jane"),
        ("'Jane'", "Jane"),
        ("Jane\r\nX-Evil: 1", "Jane"),
        ("jane.doe@example.org", ""),
        ("Jane <jane@example.org>", ""),
        ("", ""),
        ("   ", ""),
        ("Mr", ""),
        ("Dr.", ""),
    ],
)
def test_first_name(name: str, expected: str) -> None:
    assert first_name(name) == expected


@pytest.mark.parametrize("name", ["Mr Smith", "Mrs. Smith", "Herr Schmidt", "Frau Dr. Meier"])
def test_a_title_with_only_a_surname_gives_no_first_name(name: str) -> None:
    """ "Hi Smith," is worse than the template's fallback ("Hi there,")."""
    assert first_name(name) == ""


# ---- lead values -----------------------------------------------------------------------


def test_lead_values() -> None:
    lead = LeadView(
        Address("jane@example.org", "Doe,\r\nJane"),
        "website-form",
        "website-form",
        "Quote\r\nBcc: evil@x.example",
        {"company": "ACME\nInc", "message": "Line 1\nLine 2", "phone": "+49 30 1"},
    )
    v = lead_values(lead, ME, "owner@shop.example", {"step": "ack"})
    assert v["name"] == "Doe, Jane" and v["first_name"] == "Jane"
    assert v["email"] == "jane@example.org"
    assert v["subject"] == "Quote Bcc: evil@x.example"
    assert v["company"] == "ACME Inc"
    assert v["message"] == "Line 1\nLine 2"  # a body value keeps its lines
    assert v["phone"] == "+49 30 1"
    assert (v["our_name"], v["our_address"], v["owner_address"]) == (
        "Shop",
        "hello@shop.example",
        "owner@shop.example",
    )
    assert (v["source"], v["rule"], v["step"]) == ("website-form", "website-form", "ack")


def test_a_form_field_cannot_override_the_lead_address() -> None:
    lead = LeadView(
        Address("jane@example.org", "Jane"),
        "web",
        "web",
        fields={"email": "evil@x.example", "our_address": "evil@x.example"},
    )
    v = lead_values(lead, ME, "owner@shop.example")
    assert v["email"] == "jane@example.org" and v["our_address"] == "hello@shop.example"


def test_a_fallback_that_names_a_variable_gives_its_value() -> None:
    """An owner read "New lead from direct-email: email" for a lead with no name."""
    tpl = Template("t", "t.toml", "{{ name | email }}", "Hi {{ first_name | name | there }}!")
    values = {"name": "", "first_name": "", "email": "jane@customer.test"}
    assert render(tpl, values).subject == "jane@customer.test"
    assert render(tpl, values).body == "Hi there!"
    assert render(tpl, {**values, "name": "Jane Doe"}).body == "Hi Jane Doe!"
    assert render(tpl, {**values, "first_name": "Jane"}).body == "Hi Jane!"
    literal = Template("t", "t.toml", "", "Call {{ phone | no phone number given }}.")
    assert render(literal, {"phone": ""}).body == "Call no phone number given."
