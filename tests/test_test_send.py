"""`inboxwatch test-send` on the real SMTP server: every template, the translated sets
(templates/de/) too, reaches the owner; with the server unreachable, the error is said
once, not once per template."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from inboxwatch.cli import main
from inboxwatch.testing.devservers import MailServers
from tests.test_init import server_flags

Capsys = pytest.CaptureFixture[str]


def _home(servers: MailServers, shop: str, tmp_path: Path, *more: str) -> Path:
    home = tmp_path / "iw"
    assert main(["init", str(home), *server_flags(servers, shop, home), *more]) == 0
    return home / "config.toml"


def test_every_template_and_every_translation_reaches_the_owner(
    mail_servers: MailServers, shop: str, tmp_path: Path, capsys: Capsys
) -> None:
    config = _home(mail_servers, shop, tmp_path)
    templates = config.parent / "templates"
    assert (templates / "de" / "ack.toml").is_file()
    capsys.readouterr()
    before = len(mail_servers.smtp_sent)
    assert main(["test-send", "--config", str(config)]) == 0
    out = capsys.readouterr().out.splitlines()
    owner = mail_servers.address("owner")
    names = {p.stem for p in templates.glob("*.toml")} | {
        f"de/{p.stem}" for p in (templates / "de").glob("*.toml")
    }
    assert sorted(out) == sorted(f"{n}: sent to {owner}" for n in names)
    sent = mail_servers.smtp_sent[before:]
    assert len(sent) == len(names) and all(owner in m.rcpt_tos for m in sent)
    subjects = [m.data.split(b"\nSubject: ", 1)[1].split(b"\r", 1)[0].decode() for m in sent]
    assert any(s.startswith("[inboxwatch test: de/ack] ") for s in subjects), subjects


def test_an_unreachable_server_is_one_line(
    mail_servers: MailServers, shop: str, tmp_path: Path, capsys: Capsys
) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = _home(mail_servers, shop, tmp_path)
    text = config.read_text().replace(f"port = {mail_servers.smtp_port}", f"port = {port}")
    assert f"port = {port}" in text
    config.write_text(text)
    capsys.readouterr()
    assert main(["test-send", "--config", str(config)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1, out
    n = len([*config.parent.joinpath("templates").rglob("*.toml")])
    assert out[0].startswith(f"{n} samples (ack, ack-form, ") and "de/ack" in out[0]
    assert f": not sent: cannot connect to SMTP 127.0.0.1:{port}" in out[0]
