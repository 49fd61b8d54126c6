"""`inboxwatch check` errors a person can act on: the key of a duplicate, a rule or step
by its name (not a zero-based index), a match key put outside [rule.match] with the fix,
and the bad value of a range check. The file:line stays on every line."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_cli import Capsys, _append, _replace, _rule, cli, make_home


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return make_home(tmp_path)


def _check(capsys: Capsys, home: Path) -> list[str]:
    code, out, err = cli(capsys, "check", "-c", home)
    assert code == 2 and out == ""
    return err.splitlines()


def _line_of(path: Path, text: str, nth: int = 1) -> int:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [i for i, x in enumerate(lines, 1) if x.startswith(text)][nth - 1]


def test_a_key_given_twice_is_named(home: Path, capsys: Capsys) -> None:
    _replace(home, "[smtp]\n", "[smtp]\nport = 587\nport = 465\n")
    (err,) = _check(capsys, home)
    line = _line_of(home, "port = 465")
    assert err == (
        f"inboxwatch: {home}:{line}: TOML syntax error: 'port' is set again in the same "
        "table (once is allowed): keep one"
    )


def test_a_table_given_twice_is_named(home: Path, capsys: Capsys) -> None:
    _append(home, "[owner]\nalerts = false")
    (err,) = _check(capsys, home)
    assert f"{home}:{_line_of(home, '[owner]', 2)}: " in err
    assert "[owner] is declared twice: merge the two into one table" in err


def test_rules_and_steps_are_named_by_their_name_or_place(home: Path, capsys: Capsys) -> None:
    rules = home.parent / "rules" / "rules.toml"
    _append(rules, _rule("quotes", 'sequence = "fast"'))
    _append(rules, '[[rule]]\nkind = "enqiury"\n')  # no name: its place, from 1
    seqs = home.parent / "rules" / "sequences.toml"
    _append(seqs, '[[sequence.default.step]]\nname = "late"\nday = -1\ntemplate = "ack"\n')
    errs = "\n".join(_check(capsys, home))
    count = sum(x == "[[rule]]" for x in rules.read_text(encoding="utf-8").splitlines())
    seq, kind = _line_of(rules, 'sequence = "fast"'), _line_of(rules, 'kind = "enqiury"')
    day = _line_of(seqs, "day = -1")
    assert f'rules.toml:{seq}: rule "quotes".sequence: ' in errs
    assert f"rules.toml:{kind}: rule #{count}.kind: must be one of" in errs
    assert f'sequences.toml:{day}: sequence.default.step "late".day: ' in errs
    assert ".0." not in errs and "rule.0" not in errs


def test_a_match_key_outside_rule_match_says_where_it_goes(home: Path, capsys: Capsys) -> None:
    rules = home.parent / "rules" / "rules.toml"
    _append(rules, _rule("quotes", 'subject_regex = "quote"'))
    (err,) = _check(capsys, home)
    line = _line_of(rules, 'subject_regex = "quote"')
    assert err == (
        f'inboxwatch: {rules}:{line}: rule "quotes".subject_regex: a match key: put it '
        "under [rule.match] (subject_regex = ...)"
    )


@pytest.mark.parametrize(
    ("section", "setting", "said"),
    [
        ("[smtp]\n", "connections = 12", "smtp.connections: must be between 1 and 10, got 12"),
        ("[imap]\n", "poll_seconds = 0", "imap.poll_seconds: must be at least 1, got 0"),
    ],
)
def test_a_value_out_of_range_is_echoed(
    home: Path, capsys: Capsys, section: str, setting: str, said: str
) -> None:
    _replace(home, section, f"{section}{setting}\n")
    (err,) = _check(capsys, home)
    assert err == f"inboxwatch: {home}:{_line_of(home, setting)}: {said}"
