"""Third-party log lines (issue 9, item 6): through our logging, quiet unless --debug."""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_cli import config_text

from inboxwatch.cli import setup_logging

REPO = Path(__file__).resolve().parent.parent
MAIL = Path(__file__).parent / "mail"
NAMES = ("", "inboxwatch", "imapclient", "mailparser")
#: The loggers these tests write to: each must start as a fresh one would (no level of
#: its own, propagating), whatever another test or a module left (test_bodies quiets
#: "mailparser" to ERROR, which hid the warning --debug must show).
WRITTEN = (
    "inboxwatch.x",
    "imapclient.imaplib",
    "mailparser.core",
    "aiosmtplib",
)


@pytest.fixture(autouse=True)
def _restore_loggers() -> Iterator[None]:
    loggers = [logging.getLogger(n or None) for n in (*NAMES, *WRITTEN)]
    saved = [(list(x.handlers), x.level, x.propagate, x.disabled) for x in loggers]
    for logger in loggers[1:]:
        logger.setLevel(logging.NOTSET)
        logger.propagate, logger.disabled = True, False
    yield
    for logger, (handlers, level, propagate, disabled) in zip(loggers, saved, strict=True):
        logger.handlers[:] = handlers
        logger.setLevel(level)
        logger.propagate, logger.disabled = propagate, disabled


def _config(tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(config_text(REPO / "rules", REPO / "templates"), encoding="utf-8")
    return path


def test_library_warnings_are_quiet_by_default(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging(False)
    logging.getLogger("mailparser.core").warning("Email content 'alternative' not handled")
    logging.getLogger("imapclient.imaplib").info("protocol chatter")
    assert capsys.readouterr().err == ""
    logging.getLogger("aiosmtplib").error("connection lost")
    err = capsys.readouterr().err
    assert "ERROR aiosmtplib: connection lost" in err


def test_debug_shows_library_lines_in_our_format(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging(True)
    logging.getLogger("mailparser.core").warning("Email content 'alternative' not handled")
    err = capsys.readouterr().err
    assert "WARNING mailparser.core: Email content 'alternative' not handled" in err
    assert err.count("not handled") == 1  # one handler, however often it is set up
    setup_logging(True)
    setup_logging(False)
    logging.getLogger("mailparser.core").warning("again not handled")
    assert capsys.readouterr().err == ""


def test_our_own_lines_are_unchanged(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging(False)
    logging.getLogger("inboxwatch.x").info("hello")
    assert " INFO hello" in capsys.readouterr().err


def test_classify_prints_no_mail_parser_warning(tmp_path: Path) -> None:
    # A DSN with a message/delivery-status and a text/rfc822-headers part: mail-parser
    # warns "Email content ... not handled" for both. A real process: under pytest the
    # root logger has pytest's handlers, so Python's last-resort printing never shows.
    files = [MAIL / "bounce_postfix_dsn.eml", MAIL / "bounces2" / "cn_system_bounce_headers.eml"]
    argv = ["classify", "--config", str(_config(tmp_path)), *map(str, files)]
    run = subprocess.run(
        [sys.executable, "-m", "inboxwatch", *argv], capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stderr
    assert "not handled" not in run.stderr + run.stdout
    assert run.stdout.count("bounce") >= 2, run.stdout
