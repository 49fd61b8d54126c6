"""`inboxwatch init`: what it does with flags that are wrong, missing or at odds, with
empty answers in a terminal, and where it puts the state; no server needed."""

from __future__ import annotations

import argparse
import io
import tomllib
from pathlib import Path

import pytest

from inboxwatch.cli import main, parseargs
from inboxwatch.service.init_command import state_path

Capsys = pytest.CaptureFixture[str]
BASE = ["--user", "hello@shop.example", "--owner", "boss@shop.example", "--timezone", "UTC"]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def errors(capsys: Capsys) -> list[str]:
    return capsys.readouterr().err.splitlines()


def test_a_bad_set_value_names_the_flag_and_creates_nothing(tmp_path: Path, capsys: Capsys) -> None:
    home = tmp_path / "new" / "b6"
    args = ["init", str(home), "--host", "imap.shop.example", *BASE, "--set", "imap.port=abc"]
    assert main(args) == 2
    err = errors(capsys)
    assert err == ["inboxwatch: command line: --set imap.port: expected an integer, got a string"]
    assert not (tmp_path / "new").exists()  # neither DIR nor the parent it would have made


def test_a_login_that_is_not_an_address_asks_for_the_business_address(
    tmp_path: Path, capsys: Capsys
) -> None:
    flags = ["--host", "imap.shop.example", "--user", "notanemail", *BASE[2:]]
    assert main(["init", str(tmp_path / "iw"), *flags]) == 2
    err = errors(capsys)
    assert len(err) == 1
    assert "--user 'notanemail' is not an email address" in err[0] and "--address" in err[0]
    flags += ["--address", "hello@shop.example"]
    assert main(["init", str(tmp_path / "iw"), *flags]) == 0


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (
            ["--provider", "gmail", "--token-command", "x", "--password-env", "FOO"],
            ("--token-command", "--password-env"),
        ),
        (["--provider", "fastmail", "--token-command", "x"], ("--token-command", "fastmail")),
        (
            ["--provider", "microsoft365", "--password-file", "/etc/pw"],
            ("--password-file", "microsoft365"),
        ),
        (["--host", "imap.x.example", "--token-command", "x", "--password-command", "y"], ()),
    ],
)
def test_conflicting_flags_are_one_error_naming_both(
    flags: list[str], named: tuple[str, ...], tmp_path: Path, capsys: Capsys
) -> None:
    home = tmp_path / "iw"
    assert main(["init", str(home), *BASE, *flags]) == 2
    err = errors(capsys)
    assert len(err) == 1 and "conflicts with" in err[0]
    for word in named:
        assert word in err[0]
    assert not home.exists()


def test_gmail_with_an_app_password_says_app_password(tmp_path: Path, capsys: Capsys) -> None:
    home = tmp_path / "iw"
    args = ["init", str(home), *BASE, "--provider", "gmail", "--password-env", "GMAIL_APP"]
    assert main(args) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "app password" in out and "OAuth2" not in out
    assert "the password is read from $GMAIL_APP" in out
    doc = tomllib.loads((home / "config.toml").read_text())
    assert doc["imap"]["password_env"] == doc["smtp"]["password_env"] == "GMAIL_APP"
    assert "auth" not in doc["imap"]


def test_an_oauth2_login_prints_its_token_command(tmp_path: Path, capsys: Capsys) -> None:
    args = ["init", str(tmp_path / "iw"), *BASE, "--provider", "gmail", "--token-command", "t"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "login: OAuth2, the access token printed by token_command 't'" in out
    assert "password" not in out


def test_an_empty_answer_is_asked_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Capsys
) -> None:
    answers = "imap.shop.example\nhello@shop.example\n\n\n\nboss@shop.example\nUTC\n\n"
    monkeypatch.setattr("sys.stdin", Terminal(answers))
    home = tmp_path / "iw"
    assert main(["init", str(home)]) == 0
    captured = capsys.readouterr()
    assert captured.out.count("owner's address (alerts, digest): ") == 3
    assert captured.err.count("an answer is needed") == 2
    assert tomllib.loads((home / "config.toml").read_text())["owner"]["address"] == (
        "boss@shop.example"
    )


def test_three_empty_answers_end_init_with_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Capsys
) -> None:
    monkeypatch.setattr(
        "sys.stdin", Terminal("imap.shop.example\nhello@shop.example\n\n" + "\n" * 9)
    )
    home = tmp_path / "iw"
    assert main(["init", str(home)]) == 2
    captured = capsys.readouterr()
    assert captured.out.count("owner's address (alerts, digest): ") == 3
    assert "--owner: missing: owner's address" in captured.err
    assert not home.exists()


def init_args(*argv: str) -> argparse.Namespace:
    return parseargs(["init", *argv])


def test_the_state_goes_where_a_system_service_can_write_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)
    assert state_path(init_args("/etc/inboxwatch")) == "/var/lib/inboxwatch/default/inboxwatch.json"
    assert (
        state_path(init_args("/etc/inboxwatch/shop")) == "/var/lib/inboxwatch/shop/inboxwatch.json"
    )
    assert state_path(init_args("/etc/leads")) == "/var/lib/inboxwatch/leads/inboxwatch.json"
    assert state_path(init_args(str(tmp_path))) == "state/inboxwatch.json"  # beside config.toml
    given = tmp_path / "s.json"
    assert state_path(init_args("/etc/inboxwatch", "--state", str(given))) == str(given)
    monkeypatch.setenv("STATE_DIRECTORY", f"{tmp_path / 'unit'}:{tmp_path / 'other'}")
    assert state_path(init_args(str(tmp_path))) == str(tmp_path / "unit" / "inboxwatch.json")


def test_init_says_where_a_system_state_goes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Capsys
) -> None:
    monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path / "lib"))
    home = tmp_path / "iw"
    assert main(["init", str(home), "--host", "imap.shop.example", *BASE]) == 0
    want = tmp_path / "lib" / "inboxwatch.json"
    assert f"state: {want} (" in capsys.readouterr().out
    assert tomllib.loads((home / "config.toml").read_text())["state"]["path"] == str(want)
