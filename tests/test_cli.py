"""The offline commands through ``inboxwatch.cli.main``: check, classify, preview, exit codes."""

from __future__ import annotations

import email.header
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from inboxwatch.cli import main

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "inboxwatch" / "testing" / "samples"
MAIL = Path(__file__).parent / "mail"
Capsys = pytest.CaptureFixture[str]


def config_text(rules: Path | str = "rules", templates: Path | str = "templates") -> str:
    return f"""\
timezone = "Europe/Berlin"

[imap]
host = "imap.example.com"
username = "hello@shop.example"
password_env = "INBOXWATCH_TEST_PW"

[smtp]
host = "smtp.example.com"
username = "hello@shop.example"
password_env = "INBOXWATCH_TEST_PW"

[identity]
address = "hello@shop.example"
name = "Shop"

[team]
addresses = ["jane@shop.example"]

[owner]
address = "owner@shop.example"

[paths]
rules = {json.dumps(str(rules))}
templates = {json.dumps(str(templates))}
"""


@pytest.fixture
def shipped(tmp_path: Path) -> Path:
    """A config in tmp_path that uses the repository's own rules/ and templates/."""
    path = tmp_path / "config.toml"
    path.write_text(config_text(REPO / "rules", REPO / "templates"), encoding="utf-8")
    return path


def make_home(tmp_path: Path) -> Path:
    """A config with a private copy of the shipped rules/ and templates/ to break."""
    shutil.copytree(REPO / "rules", tmp_path / "rules")
    shutil.copytree(REPO / "templates", tmp_path / "templates")
    path = tmp_path / "config.toml"
    path.write_text(config_text(), encoding="utf-8")
    return path


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return make_home(tmp_path)


def cli(capsys: Capsys, *argv: str | Path) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


# ---- check --------------------------------------------------------------------------


def test_check_passes_on_the_shipped_rules_and_templates(
    shipped: Path, capsys: Capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INBOXWATCH_TEST_PW", "x")  # unset: a warning (test_check_passwords)
    code, out, err = cli(capsys, "check", "--config", shipped)
    assert (code, err) == (0, "")
    assert out.startswith(f"{shipped}: OK (") and out.count("\n") == 3  # + imap:, smtp:


def test_check_passes_on_the_example_config(
    tmp_path: Path, capsys: Capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INBOXWATCH_PASSWORD", "x")  # the name init and the README use
    shutil.copy(REPO / "config.example.toml", tmp_path / "config.toml")
    (tmp_path / "rules").symlink_to(REPO / "rules")
    (tmp_path / "templates").symlink_to(REPO / "templates")
    code, out, err = cli(capsys, "check", "-c", tmp_path / "config.toml")
    assert (code, err) == (0, "") and ": OK (" in out


def _append(path: Path, text: str) -> None:
    with path.open("a", encoding="utf-8") as f:
        f.write("\n" + text + "\n")


def _replace(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def _rule(name: str, extra: str) -> str:
    return f'[[rule]]\nname = "{name}"\nkind = "enquiry"\n{extra}\n'


def _seq_step(name: str, day: int) -> str:
    return (
        f'[[sequence.default.step]]\nname = "{name}"\nday = {day}\nchannel = "email"\n'
        'template = "ack"\n'
    )


def _form_rule_with_bare_template(home: Path) -> None:
    (home / "templates" / "bare.toml").write_text('body = "Thanks"\n', encoding="utf-8")
    extra = (
        "lead = \"body\"\nlead_pattern = '^mail: (?P<email>\\S+)'\n"
        'senders = ["@our-domain"]\ntemplate = "bare"'
    )
    _append(home / "rules" / "rules.toml", _rule("form2", extra))


Breakage = Callable[[Path], None]
BREAKAGES: dict[str, tuple[Breakage, str]] = {
    "unknown-key": (
        lambda home: _replace(home / "config.toml", "[imap]\n", "[imap]\nidel = true\n"),
        r"config\.toml:\d+: imap\.idel: unknown key$",
    ),
    "wrong-type": (
        lambda home: _replace(home / "config.toml", "[smtp]\n", '[smtp]\nport = "587"\n'),
        r"config\.toml:\d+: smtp\.port: expected an integer, got a string$",
    ),
    "bad-regex": (
        lambda home: _append(
            home / "rules" / "rules.toml",
            _rule("broken", '[rule.match]\nsubject_regex = "quote (for"'),
        ),
        r"""rules\.toml:\d+: rule "broken"\.match\.subject_regex: """
        r"bad regular expression 'quote \(for'",
    ),
    "missing-template": (
        lambda home: _append(home / "rules" / "rules.toml", _rule("t", 'template = "thank-you"')),
        r"""rules\.toml:\d+: rule "t"\.template: no template 'thank-you'""",
    ),
    "unknown-variable": (
        lambda home: (home / "templates" / "extra.toml").write_text(
            'subject = "Hi"\nbody = "Dear {{ first_name }} of {{ compnay }}"\n'
        ),
        r"extra\.toml:\d+: compnay: unknown variable",
    ),
    "unknown-sequence": (
        lambda home: _append(home / "rules" / "rules.toml", _rule("s", 'sequence = "fast"')),
        r"rules\.toml.*no sequence 'fast'",
    ),
    "duplicate-step": (
        lambda home: _append(home / "rules" / "sequences.toml", _seq_step("ack", 120)),
        r"""sequences\.toml:\d+: sequence\.default\.step "ack"\.name: duplicate step name 'ack'$""",
    ),
    "day-backwards": (
        lambda home: _append(home / "rules" / "sequences.toml", _seq_step("late", 30)),
        r"""sequences\.toml:\d+: sequence\.default\.step "late"\.day: """
        "steps must be in day order$",
    ),
    "form-template-without-subject": (
        _form_rule_with_bare_template,
        r"bare\.toml: subject: needed: rule 'form2'",
    ),
}


@pytest.mark.parametrize("name", list(BREAKAGES))
def test_check_reports_one_line_per_error_and_exits_2(
    home: Path, capsys: Capsys, name: str
) -> None:
    breakage, pattern = BREAKAGES[name]
    breakage(home.parent)
    code, out, err = cli(capsys, "check", "--config", home)
    assert code == 2 and out == ""
    lines = err.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("inboxwatch: ")
    assert re.search(pattern, lines[0]), lines[0]
    assert "Traceback" not in err


def test_check_reports_all_config_problems_at_once(home: Path, capsys: Capsys) -> None:
    _replace(home, 'timezone = "Europe/Berlin"', 'timezone = "Europe/Berlyn"')
    _replace(home, "[smtp]\n", '[smtp]\ntls = "none"\n')
    _replace(home, "[owner]\n", "[owner]\nalerts = 1\n")
    code, _, err = cli(capsys, "check", "--config", home)
    lines = err.splitlines()
    assert code == 2 and len(lines) == 3
    text = home.read_text()
    for key, needle in (
        ("timezone", "timezone"),
        ("smtp.tls", "tls ="),
        ("owner.alerts", "alerts"),
    ):
        line = next(i for i, t in enumerate(text.splitlines(), 1) if t.startswith(needle))
        assert any(x.startswith(f"inboxwatch: {home}:{line}: {key}: ") for x in lines), lines


def test_check_reports_all_rule_problems_at_once(home: Path, capsys: Capsys) -> None:
    BREAKAGES["unknown-sequence"][0](home.parent)
    BREAKAGES["duplicate-step"][0](home.parent)
    BREAKAGES["unknown-variable"][0](home.parent)
    code, _, err = cli(capsys, "check", "--config", home)
    assert code == 2 and len(err.splitlines()) == 3, err


def test_check_on_a_missing_config_file(tmp_path: Path, capsys: Capsys) -> None:
    code, out, err = cli(capsys, "check", "--config", tmp_path / "nope.toml")
    assert code == 2 and out == ""
    assert err == f"inboxwatch: {tmp_path / 'nope.toml'}: file not found\n"


def test_check_on_a_toml_syntax_error(home: Path, capsys: Capsys) -> None:
    _replace(home, 'name = "Shop"', 'name = "Shop')
    code, _, err = cli(capsys, "check", "--config", home)
    line = home.read_text().splitlines().index('name = "Shop') + 1
    assert code == 2 and err.startswith(f"inboxwatch: {home}:{line}: TOML syntax error")


# ---- --debug ---------------------------------------------------------------------------


def test_without_debug_there_is_no_traceback(home: Path, capsys: Capsys) -> None:
    BREAKAGES["wrong-type"][0](home.parent)
    code, _, err = cli(capsys, "check", "--config", home)
    assert code == 2 and "Traceback" not in err and "ConfigError" not in err


@pytest.mark.parametrize("where", ["before", "after"])
def test_debug_shows_the_traceback_and_keeps_exit_2(home: Path, capsys: Capsys, where: str) -> None:
    BREAKAGES["wrong-type"][0](home.parent)
    argv = ["--debug", "check", "--config", str(home)]
    if where == "after":
        argv = ["check", "--config", str(home), "--debug"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and "ConfigError" in err
    assert "smtp.port: expected an integer" in err


@pytest.fixture
def debug_run(home: Path) -> subprocess.CompletedProcess[str]:
    BREAKAGES["wrong-type"][0](home.parent)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "inboxwatch", "--debug", "check", "--config", str(home)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=home.parent,
    )


def test_debug_shows_a_traceback(debug_run: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback (most recent call last)" in debug_run.stderr
    assert "smtp.port: expected an integer" in debug_run.stderr
    assert debug_run.stdout == ""


def test_debug_keeps_the_configuration_exit_code(
    debug_run: subprocess.CompletedProcess[str],
) -> None:
    """cli.py: "Exit codes: 0 ok, 2 usage or configuration error" - with --debug too."""
    assert debug_run.returncode == 2, debug_run.stderr[-300:]


# ---- usage errors ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["frobnicate"],
        ["check", "--no-such-option"],
        ["--config"],
        ["classify", "--config", "config.toml"],
        ["preview", "--config", "config.toml"],
        ["run", "--time-scale", "fast"],
        ["show"],
    ],
)
def test_usage_errors_exit_2(capsys: Capsys, argv: list[str]) -> None:
    code, out, err = cli(capsys, *argv)
    assert code == 2 and out == ""
    assert "usage: inboxwatch" in err


def test_help_and_version_exit_0(capsys: Capsys) -> None:
    code, out, _ = cli(capsys, "--help")
    assert code == 0 and "check" in out and "classify" in out and "preview" in out
    code, out, _ = cli(capsys, "--version")
    assert code == 0 and out.startswith("inboxwatch ")


# ---- classify --------------------------------------------------------------------------

KEYS = {"file", "kind", "rule", "source", "lead", "new_text", "reasons"}


def test_classify_json(shipped: Path, tmp_path: Path, capsys: Capsys) -> None:
    empty = tmp_path / "empty.eml"
    empty.write_bytes(b"")
    junk = tmp_path / "junk.eml"
    junk.write_bytes(b"\x00\x01\xff\xfe not a message at all")
    missing = tmp_path / "missing.eml"
    files = [
        SAMPLES / "01-direct-enquiry.eml",
        empty,
        SAMPLES / "02-web-form.eml",
        junk,
        missing,
        SAMPLES / "05-newsletter.eml",
    ]
    code, out, _ = cli(capsys, "classify", "--json", "--config", shipped, *files)
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["file"] for r in rows] == [str(f) for f in files]
    for row in rows:
        assert set(row) >= KEYS, row
        assert isinstance(row["reasons"], list) and row["reasons"]
    enquiry, bad1, form, bad2, bad3, news = rows
    assert enquiry["kind"] == "enquiry" and enquiry["rule"] == "direct-email"
    assert enquiry["source"] == "direct-email"
    assert enquiry["lead"] == {"address": "maria.lopez@example.net", "name": "Maria Lopez"}
    assert enquiry["new_text"].startswith("Hello,")
    assert form["lead"] == {"address": "tom.becker@example.org", "name": "Tom Becker"}
    assert form["rule"] == "website-form" and form["source"] == "website-form"
    assert (news["kind"], news["lead"], news["rule"]) == ("list", None, None)
    for bad in (bad1, bad2, bad3):
        assert bad["kind"] == "ignore" and bad["error"] and bad["lead"] is None
    assert "missing.eml" in bad3["error"]
    assert "error" not in enquiry and "error" not in news


def test_classify_survives_a_broken_encoded_word(
    shipped: Path, tmp_path: Path, capsys: Capsys
) -> None:
    """A corrupt charset name in an RFC 2047 word must not stop the other files."""
    bad = tmp_path / "bad-charset.eml"
    bad.write_bytes(
        b"From: Ann <ann@example.org>\r\nTo: hello@shop.example\r\n"
        b"Subject: =?utf-8\xff?q?Quote?=\r\nMessage-ID: <b1@example.org>\r\n\r\nHello\r\n"
    )
    good = SAMPLES / "01-direct-enquiry.eml"
    code, out, _ = cli(capsys, "classify", "--json", "--config", shipped, bad, good)
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0
    assert [r["file"] for r in rows] == [str(bad), str(good)]
    assert rows[1]["kind"] == "enquiry"


def test_classify_exits_1_when_no_file_could_be_read(
    shipped: Path, tmp_path: Path, capsys: Capsys
) -> None:
    (tmp_path / "empty.eml").write_bytes(b"   \r\n")
    code, out, _ = cli(
        capsys, "classify", "--json", "-c", shipped, tmp_path / "empty.eml", tmp_path / "x.eml"
    )
    assert code == 1
    assert [json.loads(x)["kind"] for x in out.splitlines()] == ["ignore", "ignore"]


def test_classify_human_format_has_one_line_per_file(
    shipped: Path, tmp_path: Path, capsys: Capsys
) -> None:
    files = [*sorted(SAMPLES.glob("*.eml")), MAIL / "bounce_postfix_dsn.eml", tmp_path / "x.eml"]
    code, out, err = cli(capsys, "classify", "--config", shipped, *files)
    lines = out.splitlines()
    assert code == 0 and len(lines) == len(files) - 1  # the unreadable one: on stderr
    for path, line in zip(files, lines, strict=False):
        assert line.startswith(f"{path}: "), line
    assert lines[0].startswith(f"{files[0]}: enquiry lead Maria Lopez <maria.lopez@example.net>")
    assert "source=direct-email" in lines[0]
    assert lines[-1].split(": ")[1].startswith("bounce hard j.doe@customer.example.org")
    assert err == f"inboxwatch: {tmp_path / 'x.eml'}: No such file or directory\n"


def test_classify_human_format_shows_names_readably(
    shipped: Path, tmp_path: Path, capsys: Capsys
) -> None:
    name = email.header.Header("Zoë Ørsted", "utf-8").encode()
    path = tmp_path / "zoe.eml"
    path.write_bytes(
        (
            f"From: {name} <zoe@example.org>\r\nTo: hello@shop.example\r\n"
            "Subject: Quote please\r\nMessage-ID: <z1@example.org>\r\n"
            "Date: Wed, 03 Mar 2027 10:00:00 +0000\r\n\r\nHello, a quote please.\r\n"
        ).encode()
    )
    code, out, _ = cli(capsys, "classify", "--config", shipped, path)
    assert code == 0
    assert "lead Zoë Ørsted <zoe@example.org>" in out, out


# ---- preview ---------------------------------------------------------------------------


def _headers_and_body(out: str) -> tuple[dict[str, str], str]:
    head, _, body = out.partition("\n\n")
    headers = dict(line.split(": ", 1) for line in head.splitlines())
    return headers, body


def test_preview_with_the_built_in_example_lead(shipped: Path, capsys: Capsys) -> None:
    code, out, err = cli(capsys, "preview", "ack", "--config", shipped)
    assert (code, err) == (0, "")
    headers, body = _headers_and_body(out)
    assert headers["From"] == "Shop <hello@shop.example>"
    assert headers["To"] == "Jane Doe <jane.doe@example.com>"
    assert headers["Subject"] == "Re: Question about your prices"
    assert headers["In-Reply-To"] == "<enquiry@example.com>"
    assert headers["Auto-Submitted"] == "auto-replied"
    assert re.fullmatch(r"<iw\.[0-9a-f]+@shop\.example>", headers["Message-ID"])
    assert not any(k.startswith("Content-") for k in headers)
    assert body.lstrip().startswith("Hi Jane,")
    assert "=\n" not in body and "=20" not in body  # decoded, not quoted-printable


def test_preview_with_a_web_form_lead(shipped: Path, capsys: Capsys) -> None:
    code, out, _ = cli(
        capsys, "preview", "ack-form", "-c", shipped, "--lead", SAMPLES / "02-web-form.eml"
    )
    assert code == 0
    headers, body = _headers_and_body(out)
    assert headers["To"] == "Tom Becker <tom.becker@example.org>"
    assert "Heat pumps" not in headers["Subject"] and headers["Subject"].endswith("Shop")
    assert "In-Reply-To" not in headers
    assert headers["Auto-Submitted"] == "auto-generated"
    assert "Hi Tom," in body


def test_preview_decodes_a_non_ascii_lead_and_long_lines(
    home: Path, tmp_path: Path, capsys: Capsys
) -> None:
    (home.parent / "templates" / "probe.toml").write_text(
        'subject = "Ihre Anfrage"\n'
        'body = """\nHallo {{ first_name | zusammen }},\n\n'
        + "vielen Dank für Ihre Nachricht über Stühle, Tische und Schränke; " * 3
        + '\n"""\n',
        encoding="utf-8",
    )
    name = email.header.Header("Jürgen Müller", "utf-8").encode()
    subject = email.header.Header("Angebot für Stühle", "utf-8").encode()
    lead = tmp_path / "lead.eml"
    lead.write_bytes(
        (
            f"From: {name} <j.mueller@example.de>\r\nTo: hello@shop.example\r\n"
            f"Subject: {subject}\r\nMessage-ID: <jm1@example.de>\r\n"
            "Date: Wed, 03 Mar 2027 10:00:00 +0000\r\n\r\nGuten Tag, 40 Stühle bitte.\r\n"
        ).encode()
    )
    code, out, _ = cli(capsys, "preview", "probe", "--config", home, "--lead", lead)
    assert code == 0
    headers, body = _headers_and_body(out)
    assert headers["To"] == "Jürgen Müller <j.mueller@example.de>"
    assert headers["Subject"] == "Re: Angebot für Stühle"
    assert headers["In-Reply-To"] == "<jm1@example.de>"
    assert body.startswith("Hallo Jürgen,")
    assert "vielen Dank für Ihre Nachricht über Stühle, Tische und Schränke; " * 3 in body


def test_preview_an_unknown_template(shipped: Path, capsys: Capsys) -> None:
    code, out, err = cli(capsys, "preview", "no-such-template", "--config", shipped)
    assert code == 2 and out == ""
    assert err.startswith("inboxwatch: ") and "no-such-template" in err and "ack-form" in err


def test_preview_with_a_lead_that_is_not_an_enquiry(shipped: Path, capsys: Capsys) -> None:
    code, out, err = cli(
        capsys, "preview", "ack", "--config", shipped, "--lead", SAMPLES / "05-newsletter.eml"
    )
    assert code == 1 and out == ""
    assert err.startswith("inboxwatch: ") and "not an enquiry (list" in err
    assert "Traceback" not in err
