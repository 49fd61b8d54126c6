"""`inboxwatch check` warns, one line naming the file and keys, when `run` could not read a
password; it runs no command to find out."""

from __future__ import annotations

from pathlib import Path

import pytest

from inboxwatch.cli import main

REPO = Path(__file__).resolve().parent.parent


def write(tmp_path: Path, imap_source: str, smtp_source: str | None = None) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        f"""\
[imap]
host = "imap.example.com"
username = "hello@shop.example"
{imap_source}

[smtp]
host = "smtp.example.com"
username = "hello@shop.example"
{smtp_source or imap_source}

[identity]
address = "hello@shop.example"
name = "Shop"

[owner]
address = "owner@shop.example"

[paths]
rules = "{REPO / "rules"}"
templates = "{REPO / "templates"}"
""",
        encoding="utf-8",
    )
    return path


def check(capsys: pytest.CaptureFixture[str], path: Path) -> tuple[int, str, str]:
    code = main(["check", "--config", str(path)])
    out, err = capsys.readouterr()
    return code, out, err


def test_an_unset_variable_is_one_warning_naming_both_keys(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("IW_TEST_UNSET_PW", raising=False)
    path = write(tmp_path, 'password_env = "IW_TEST_UNSET_PW"')
    code, out, err = check(capsys, path)
    assert code == 0 and ": OK (" in out
    assert err.splitlines() == [
        f"inboxwatch: warning: {path}: imap.password_env, smtp.password_env: "
        "$IW_TEST_UNSET_PW is not set here: `run` would stop"
    ]
    monkeypatch.setenv("IW_TEST_UNSET_PW", "secret")
    assert check(capsys, path)[2] == ""


def test_a_missing_or_unreadable_password_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "pw"
    good.write_text("secret\n")
    path = write(tmp_path, 'password_file = "/nonexistent/pw"', f'password_file = "{good}"')
    code, _, err = check(capsys, path)
    assert code == 0
    assert err.splitlines() == [
        f"inboxwatch: warning: {path}: imap.password_file: cannot read /nonexistent/pw: "
        "No such file or directory: `run` would stop"
    ]


def test_a_password_command_is_not_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    marker = tmp_path / "ran"
    path = write(tmp_path, f'password_command = "touch {marker}"')
    code, _, err = check(capsys, path)
    assert code == 0 and not marker.exists()
    assert "imap.password_command, smtp.password_command: not run by check" in err


def test_a_systemd_credential(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, 'password_credential = "mail-password"')
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    assert "$CREDENTIALS_DIRECTORY is not set" in check(capsys, path)[2]
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    assert "cannot read" in check(capsys, path)[2]
    (tmp_path / "mail-password").write_text("secret")
    assert check(capsys, path)[2] == ""
