"""Output that holds leads' personal data: files are 0600 whatever the umask, and a
reader that goes away (``| head``) ends the command quietly, as with Unix tools."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from test_commands import write_config

from inboxwatch.adapters.tinydb_store import TinyDbStore
from inboxwatch.cli import main
from inboxwatch.core.lead import Lead

T0 = datetime(2026, 9, 1, 9, 0, tzinfo=UTC)
Capsys = pytest.CaptureFixture[str]


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """A state of 400 leads: an export far larger than a pipe's buffer."""
    cfg = write_config(tmp_path)
    store = TinyDbStore.open(tmp_path / "state" / "iw.json")
    with store.transaction() as state:
        for n in range(400):
            at = T0 + timedelta(minutes=n)
            lead = Lead(f"lead{n}@customer.test", f"Lead {n}", "web", "web", "default", at)
            state.put_lead(lead.log(at, "enquiry", "web"), None)
    return cfg


@pytest.fixture
def open_umask() -> Iterator[None]:
    old = os.umask(0o022)  # the usual umask: files 0644 unless asked otherwise
    yield
    os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.usefixtures("open_umask")
def test_export_and_digest_files_are_readable_by_their_owner_only(
    config: Path, tmp_path: Path, capsys: Capsys
) -> None:
    out = tmp_path / "leads.json"
    assert main(["export", "-o", str(out), "--config", str(config)]) == 0
    assert mode(out) == 0o600 and "lead7@customer.test" in out.read_text()
    page = tmp_path / "digest.html"
    page.write_text("old")
    page.chmod(0o644)  # a file that was there: narrowed too
    assert main(["digest", "--html", str(page), "--config", str(config)]) == 0
    assert mode(page) == 0o600 and page.read_text().startswith("<!DOCTYPE html>")


@pytest.mark.parametrize("command", [["export"], ["export", "--csv"], ["leads"]])
def test_a_closed_pipe_ends_the_command_quietly(config: Path, command: list[str]) -> None:
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the first byte, as `| head -0`
    env = {**os.environ, "IW_TEST_PASSWORD": "x"}
    argv = [sys.executable, "-m", "inboxwatch", *command, "--config", str(config)]
    try:
        done = subprocess.run(argv, stdout=write, stderr=subprocess.PIPE, env=env, timeout=60)
    finally:
        os.close(write)
    assert done.stderr.decode() == ""
    assert done.returncode == 141  # 128 + SIGPIPE, as a shell reports `yes | head`
