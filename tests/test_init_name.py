"""`inboxwatch init` says the name mail will be signed with, and where it came from: a
README example without --name once signed every message with the bare domain unnoticed.
The summary counts in words ("1 sequence")."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from inboxwatch.cli import main
from inboxwatch.core.wording import counted

Capsys = pytest.CaptureFixture[str]
BASE = ["--user", "hello@shop.example", "--owner", "boss@shop.example", "--timezone", "UTC"]


def test_without_name_init_says_the_domain_is_the_name_and_how_to_change_it(
    tmp_path: Path, capsys: Capsys
) -> None:
    home = tmp_path / "iw"
    assert main(["init", str(home), *BASE, "--provider", "fastmail"]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("name: "))
    assert "'shop.example'" in line and "no --name" in line
    assert f"[identity] name in {home / 'config.toml'}" in line
    assert tomllib.loads((home / "config.toml").read_text())["identity"]["name"] == "shop.example"
    assert "1 sequence," in out  # the shipped rules have one sequence
    assert main(["check", "--config", str(home / "config.toml")]) == 0
    assert re.search(r": OK \(\d+ rules, 1 sequence, \d+ templates;", capsys.readouterr().out)


def test_with_name_init_names_it(tmp_path: Path, capsys: Capsys) -> None:
    home = tmp_path / "iw"
    assert main(["init", str(home), *BASE, "--provider", "fastmail", "--name", "Shop & Co"]) == 0
    out = capsys.readouterr().out
    assert "name: mail is sent and signed as 'Shop & Co' (--name)" in out


def test_counted() -> None:
    assert [counted(n, "lead") for n in (0, 1, 2)] == ["0 leads", "1 lead", "2 leads"]
    assert counted(2, "reply", "replies") == "2 replies"
