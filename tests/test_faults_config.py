"""Faults in the files a user edits: a config that is a folder, saved with a byte order
mark, with Windows line ends, in Latin-1 or UTF-16; a rules file with a syntax error; a
password file with a byte order mark. Each is one line naming the file (and the line where
there is one), exit 2, before any connection; what an editor writes without being asked
(a BOM, CRLF) is read as the user meant it.
"""

from __future__ import annotations

import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import REPO

from inboxwatch import cli
from inboxwatch.userfiles.config import load_config

BOM = b"\xef\xbb\xbf"


@pytest.fixture
def port() -> Iterator[int]:
    """A loopback port that is bound but not listening."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        yield int(s.getsockname()[1])


def write_config(folder: Path, port: int, rules: Path = REPO / "rules") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    pw = folder / "password"
    pw.write_text("not-a-real-password\n")
    text = (
        f'timezone = "UTC"\n\n[imap]\nhost = "127.0.0.1"\nport = {port}\ntls = "none"\n'
        f'username = "shop@example.test"\npassword_file = "{pw}"\ntimeout = 2\n\n'
        f'[smtp]\nhost = "127.0.0.1"\nport = {port}\ntls = "none"\n'
        f'username = "shop@example.test"\npassword_file = "{pw}"\ntimeout = 2\n\n'
        '[identity]\naddress = "shop@example.test"\nname = "Shop"\n\n'
        '[owner]\naddress = "owner@example.test"\n\n'
        f'[state]\npath = "{folder / "state" / "inboxwatch.json"}"\n\n'
        f'[paths]\nrules = "{rules}"\ntemplates = "{REPO / "templates"}"\n'
    )
    path = folder / "config.toml"
    path.write_text(text)
    return path


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    code = cli.main(argv)
    return code, capsys.readouterr().err.strip().splitlines()


def test_a_config_that_is_a_folder_is_named_as_such(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_connect: list[str]
) -> None:
    folder = tmp_path / "config.toml"
    folder.mkdir()
    code, err = run(["run", "--config", str(folder)], capsys)
    assert code == 2 and err == [f"inboxwatch: {folder}: is a folder, not a file"]
    assert no_connect == []


def test_a_byte_order_mark_and_crlf_line_ends_are_read_as_meant(
    tmp_path: Path, port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, port)
    plain = load_config(config)
    config.write_bytes(BOM + config.read_bytes().replace(b"\n", b"\r\n"))
    again = load_config(config)
    assert again.imap.username == plain.imap.username == "shop@example.test"
    assert again.timezone == plain.timezone
    code, err = run(["check", "--config", str(config)], capsys)
    assert code == 0, err


def test_a_wrong_value_in_a_crlf_file_with_a_bom_still_names_its_line(
    tmp_path: Path, port: int, capsys: pytest.CaptureFixture[str], no_connect: list[str]
) -> None:
    config = write_config(tmp_path, port)
    text = config.read_bytes() + b"\n[sending]\nmax_per_hour = -5\n"
    line = text.split(b"\n").index(b"max_per_hour = -5") + 1
    config.write_bytes(BOM + text.replace(b"\n", b"\r\n"))
    code, err = run(["run", "--config", str(config)], capsys)
    assert code == 2 and len(err) == 1
    assert f"{config}:{line}:" in err[0] and "sending.max_per_hour" in err[0]
    assert no_connect == []


def test_latin1_text_is_named_with_its_line_and_what_to_do(
    tmp_path: Path, port: int, capsys: pytest.CaptureFixture[str], no_connect: list[str]
) -> None:
    config = write_config(tmp_path, port)
    lines = config.read_bytes().split(b"\n")
    lines.insert(3, "# Café Müller".encode("latin-1"))
    config.write_bytes(b"\n".join(lines))
    code, err = run(["run", "--config", str(config)], capsys)
    assert code == 2 and len(err) == 1
    assert err[0].startswith(f"inboxwatch: {config}:4: cannot read as UTF-8: byte 0xE9 (column 6)")
    assert "save it as UTF-8" in err[0]
    assert no_connect == []


def test_utf16_text_is_named_as_such(
    tmp_path: Path, port: int, capsys: pytest.CaptureFixture[str], no_connect: list[str]
) -> None:
    config = write_config(tmp_path, port)
    config.write_bytes(config.read_text().encode("utf-16"))
    code, err = run(["run", "--config", str(config)], capsys)
    assert code == 2
    assert err == [f"inboxwatch: {config}:1: cannot read: UTF-16 text: save it as UTF-8"]
    assert no_connect == []


def test_a_syntax_error_in_a_rules_file_names_file_and_line_before_connecting(
    tmp_path: Path, port: int, capsys: pytest.CaptureFixture[str], no_connect: list[str]
) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(REPO / "rules", rules)
    path = rules / "rules.toml"
    lines = path.read_text().splitlines()
    at = next(i for i, text in enumerate(lines) if text.startswith("name ="))
    lines[at] += " = = broken"
    path.write_text("\n".join(lines) + "\n")
    config = write_config(tmp_path, port, rules=rules)
    code, err = run(["run", "--config", str(config)], capsys)
    assert code == 2 and len(err) == 1
    assert err[0].startswith(f"inboxwatch: {path}:{at + 1}: TOML syntax error")
    assert no_connect == []


def test_a_password_file_saved_with_a_byte_order_mark_gives_the_password_alone(
    tmp_path: Path, port: int
) -> None:
    config = write_config(tmp_path, port)
    (tmp_path / "password").write_bytes(BOM + b"s3cret\r\n")
    assert load_config(config).imap.password.resolve() == "s3cret"


def test_a_password_file_that_is_not_utf8_is_a_config_error_naming_the_key(
    tmp_path: Path, port: int, capsys: pytest.CaptureFixture[str], no_connect: list[str]
) -> None:
    config = write_config(tmp_path, port)
    (tmp_path / "password").write_bytes("pässwort\n".encode("latin-1"))
    code, err = run(["run", "--config", str(config)], capsys)
    assert code == 2 and len(err) == 1, err
    assert "imap.password_file" in err[0] and "cannot read" in err[0]
    assert no_connect == []
