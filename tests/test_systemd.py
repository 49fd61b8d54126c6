"""The systemd units in contrib/ pass `systemd-analyze verify` (where systemd is there),
say what the README promises, and the log reads well in journald."""

from __future__ import annotations

import configparser
import logging
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from test_scenario import ALWAYS_OPEN, _config

from inboxwatch.adapters.memory_mail import MemorySource
from inboxwatch.adapters.memory_sender import MemorySender
from inboxwatch.adapters.memory_store import MemoryStore
from inboxwatch.adapters.ports import LoginFailed
from inboxwatch.cli import setup_logging
from inboxwatch.service.clock import FixedClock
from inboxwatch.service.commands import load_all
from inboxwatch.service.daemon import Backoff, Daemon

REPO = Path(__file__).resolve().parent.parent
UNITS = ("inboxwatch.service", "inboxwatch@.service")
INSTALLED = "/opt/inboxwatch/bin/inboxwatch"
ANALYZE = shutil.which("systemd-analyze")
needs_systemd = pytest.mark.skipif(
    ANALYZE is None, reason="systemd-analyze is not installed (Debian package: systemd)"
)


def unit(name: str) -> dict[str, list[str]]:
    """key → values of the [Service] section (keys may repeat)."""
    values: dict[str, list[str]] = {}
    section = ""
    for line in (REPO / "contrib" / name).read_text().splitlines():
        line = line.strip()
        if line.startswith("["):
            section = line
        elif section == "[Service]" and line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values.setdefault(key, []).append(value)
    return values


def as_installed(tmp_path: Path, name: str, instance: str = "") -> Path:
    """The unit with the program where this checkout has it (verify checks ExecStart)."""
    exe = Path(sys.executable).with_name("inboxwatch")
    assert exe.exists(), exe
    text = (REPO / "contrib" / name).read_text()
    assert INSTALLED in text
    path = tmp_path / (name.replace("@", f"@{instance}") if instance else name)
    path.write_text(text.replace(INSTALLED, str(exe)))
    return path


def verify(path: Path) -> subprocess.CompletedProcess[str]:
    assert ANALYZE is not None
    return subprocess.run(
        [ANALYZE, "verify", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=path.parent,
        env={**os.environ, "SYSTEMD_LOG_COLOR": "0"},
    )


@needs_systemd
@pytest.mark.parametrize("name", UNITS)
def test_units_pass_systemd_analyze_verify(name: str, tmp_path: Path) -> None:
    path = as_installed(tmp_path, name, instance="shop" if "@" in name else "")
    result = verify(path)
    # verify exits 0 on unknown keys and bad values ("..., ignoring"): its words count too.
    mine = [line for line in result.stderr.splitlines() if path.name in line]
    assert result.returncode == 0 and not mine, result.stderr


@needs_systemd
def test_verify_would_see_a_mistake(tmp_path: Path) -> None:
    """The check above can fail: a misspelt hardening value is reported."""
    path = as_installed(tmp_path, "inboxwatch.service")
    path.write_text(path.read_text().replace("ProtectSystem=strict", "ProtectSystem=strikt"))
    assert any(path.name in line for line in verify(path).stderr.splitlines())


@pytest.mark.parametrize("name", UNITS)
def test_units_restart_on_failure_but_not_on_a_config_error(name: str) -> None:
    s = unit(name)
    assert s["Restart"] == ["on-failure"]
    assert s["RestartPreventExitStatus"] == ["2"]  # the CLI's exit code for a bad config
    for key in ("NoNewPrivileges", "PrivateTmp", "ProtectHome"):
        assert s[key] == ["yes"], key
    assert s["ProtectSystem"] == ["strict"]
    assert s["LoadCredential"][0].startswith("password:")
    assert s["StateDirectory"][0].startswith("inboxwatch")
    assert s["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert s["User"][0].startswith("inboxwatch")
    assert s["SystemCallErrorNumber"] == ["EPERM"]  # a filtered call fails, never kills
    configparser.ConfigParser(strict=False, interpolation=None).read(REPO / "contrib" / name)


def test_instances_have_their_own_user_state_config_and_password() -> None:
    s = unit("inboxwatch@.service")
    for key in ("User", "StateDirectory", "ConfigurationDirectory", "SyslogIdentifier"):
        assert "%i" in s[key][0], key
    assert "%i" in s["ExecStart"][0] and "%i" in s["LoadCredential"][0]


def test_the_single_unit_and_the_instances_never_share_a_state_folder(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """StateDirectory= chowns its folder recursively to the unit's user: the single unit's
    must not contain the instances' (inboxwatch/%i), and init's default state for each
    config folder must be inside the folder its unit can write."""
    from argparse import Namespace

    from inboxwatch.service.init_command import state_path

    single = unit("inboxwatch.service")["StateDirectory"][0]
    template = unit("inboxwatch@.service")["StateDirectory"][0]
    assert single == "inboxwatch/default" and template == "inboxwatch/%i"
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)
    for config_dir, state_dir in (
        ("/etc/inboxwatch", single),
        ("/etc/inboxwatch/shop", template.replace("%i", "shop")),
    ):
        args = Namespace(dir=Path(config_dir), state=None)
        assert Path(state_path(args)).parent == Path("/var/lib") / state_dir
    for name in UNITS:  # the package is not on PyPI: no page that does not exist
        assert "pypi.org" not in (REPO / "contrib" / name).read_text()


# -- logs for journald ----------------------------------------------------------------------
@pytest.fixture
def loggers() -> Iterator[None]:
    saved = [
        (list(x.handlers), x.level, x.propagate)
        for x in (logging.getLogger("inboxwatch"), logging.getLogger())
    ]
    yield
    for logger, (handlers, level, propagate) in zip(
        (logging.getLogger("inboxwatch"), logging.getLogger()), saved, strict=True
    ):
        logger.handlers[:] = handlers
        logger.setLevel(level)
        logger.propagate = propagate


def _log_lines(capfd: pytest.CaptureFixture[str]) -> list[str]:
    log = logging.getLogger("inboxwatch")
    log.info("inboxwatch watching INBOX")
    log.warning("IMAP connect: refused; reconnecting in 2 s")
    log.error("sending stopped")
    logging.getLogger("imapclient.x").error("library trouble")
    return capfd.readouterr().err.splitlines()


def test_journald_lines_have_a_level_prefix_and_no_time(
    loggers: None, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    st = os.fstat(2)
    monkeypatch.setenv("JOURNAL_STREAM", f"{st.st_dev}:{st.st_ino}")
    setup_logging(False)
    lines = _log_lines(capfd)
    assert lines == [
        "<6>inboxwatch watching INBOX",
        "<4>IMAP connect: refused; reconnecting in 2 s",
        "<3>sending stopped",
        "<3>imapclient.x: library trouble",
    ]


def test_every_line_of_a_traceback_keeps_its_level_in_journald(
    loggers: None, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    st = os.fstat(2)
    monkeypatch.setenv("JOURNAL_STREAM", f"{st.st_dev}:{st.st_ino}")
    setup_logging(False)
    try:
        raise ValueError("a bug")
    except ValueError:
        logging.getLogger("inboxwatch").exception("tick failed; continuing after back-off")
    lines = capfd.readouterr().err.splitlines()
    assert len(lines) > 3 and all(line.startswith("<3>") for line in lines), lines
    assert lines[0] == "<3>tick failed; continuing after back-off"
    assert lines[-1] == "<3>ValueError: a bug"


def test_a_terminal_keeps_the_time_stamp(
    loggers: None, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # JOURNAL_STREAM inherited by a child whose stderr is elsewhere: not journald.
    monkeypatch.setenv("JOURNAL_STREAM", "1:2")
    setup_logging(False)
    lines = _log_lines(capfd)
    assert len(lines) == 4
    assert lines[0].endswith(" INFO inboxwatch watching INBOX") and lines[0][:4].isdigit()
    assert not any(line.startswith("<") for line in lines)


# -- a refused login is retried in the process, not by systemd ---------------------------------
class RefusingSource(MemorySource):
    """Refuses the login ``refusals`` times (a wrong or expired password), then lets in."""

    def __init__(self, refusals: int, **kw: Any) -> None:
        super().__init__(**kw)
        self.refusals, self.opens = refusals, 0

    def open(self) -> None:
        self.opens += 1
        if self.opens <= self.refusals:
            raise LoginFailed("IMAP login failed: [AUTHENTICATIONFAILED] Authentication failed.")
        super().open()


def test_a_refused_login_at_start_is_retried_with_backoff_not_an_exit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    waits: list[float] = []
    real_next = Backoff.next

    def quick(self: Backoff) -> float:
        waits.append(real_next(self))
        return 0.01

    monkeypatch.setattr(Backoff, "next", quick)
    cfg, book = load_all(_config(tmp_path, ALWAYS_OPEN))
    clock = FixedClock(datetime(2026, 3, 2, 10, 0, tzinfo=UTC))
    source = RefusingSource(3, clock=clock.now)
    daemon = Daemon(cfg, book, MemoryStore(), clock, source, MemorySender(), journal=None)
    daemon.hooks.append(lambda what, data: what == "tick-done" and daemon.stop_event.set())
    caplog.set_level(logging.WARNING, logger="inboxwatch")
    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(daemon.run()), daemon=True)
    thread.start()
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert result == [0] and source.opens == 4 and daemon.ticks == 1
    assert len(waits) == 3 and waits[0] < waits[1] < waits[2]  # 1, 2, 4 s with jitter
    retries = [r.getMessage() for r in caplog.records if "login failed" in r.getMessage()]
    assert len(retries) == 3 and all("retrying; reconnecting in" in m for m in retries)


def test_run_once_still_fails_on_a_refused_login(tmp_path: Path) -> None:
    cfg, book = load_all(_config(tmp_path, ALWAYS_OPEN))
    clock = FixedClock(datetime(2026, 3, 2, 10, 0, tzinfo=UTC))
    source = RefusingSource(1, clock=clock.now)
    daemon = Daemon(cfg, book, MemoryStore(), clock, source, MemorySender(), journal=None)
    assert daemon.run(once=True) == 1 and source.opens == 1
