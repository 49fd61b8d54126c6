"""Faults met by the real daemon process (``python -m inboxwatch run``) on the private
Dovecot and SMTP stand-in: its run lock deleted under it, a second daemon started on the
same state, SIGTERM in the middle of a backlog.

A user expects: one daemon per state whatever is deleted beside it (two would send every
message twice), `status` that still finds it, and a stop that finishes the message in
flight and repeats nothing after the restart. Every wait is bounded and polled; every
process started here is stopped in ``finally``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from harness import REPO

from inboxwatch.testing.devservers import MailServers
from inboxwatch.testing.faultysmtp import FaultySmtp
from inboxwatch.testing.mailfactory import mail, parse

pytestmark = pytest.mark.servers
WAIT = 30.0  # the longest one condition is waited for (polled: a bound, not a sleep)


class Daemon:
    """One ``inboxwatch run`` process; its stderr goes to a file the test reads."""

    def __init__(self, config: Path, log: Path) -> None:
        self.config, self.log_path = config, log
        self.out = log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "inboxwatch", "run", "--config", str(config)],
            stdout=self.out,
            stderr=self.out,
            cwd=REPO,
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.out.close()
        return self.proc.returncode


def wait_for(cond: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := cond():
            return value
        time.sleep(0.05)
    raise TimeoutError(f"timed out after {timeout} s waiting for {what}")


@pytest.fixture
def started(
    mail_servers: MailServers, shop: str, tmp_path: Path
) -> Iterator[Callable[[str], Daemon]]:
    made: list[Daemon] = []
    config = mail_servers.inboxwatch_config(
        shop, tmp_path / "iw", rules=REPO / "rules", templates=REPO / "templates"
    )

    def start(name: str) -> Daemon:
        d = Daemon(config, tmp_path / f"{name}.log")
        made.append(d)
        return d

    try:
        yield start
    finally:
        for d in made:
            d.stop()


def acks_to(servers: MailServers, shop: str, rcpt: str) -> int:
    return sum(
        1
        for m in list(servers.smtp_sent)
        if rcpt in m.rcpt_tos
        and m.mail_from == servers.address(shop)
        and parse(m.data).get("X-Inboxwatch") == "ack"
    )


def enquire(servers: MailServers, shop: str, lead: str) -> None:
    raw = mail(lead, servers.address(shop), "Quote for a kitchen?", name="Lea Lead")
    servers.deliver(shop, raw, sender=lead)


def test_a_deleted_run_lock_keeps_a_second_daemon_out_and_is_made_again(
    mail_servers: MailServers, shop: str, started: Callable[[str], Daemon]
) -> None:
    first = started("first")
    wait_for(lambda: "Sent: first start" in first.log(), "the first daemon reading")
    config = first.config
    lock = config.parent / "state" / "inboxwatch.json.run.lock"
    assert lock.read_text() == str(first.proc.pid)
    # Held still (SIGSTOP) so that it cannot put the lock back before the second starts.
    first.proc.send_signal(signal.SIGSTOP)
    try:
        lock.unlink()  # a clean-up of "stale" lock files
        second = started("second")
        code = second.proc.wait(WAIT)
    finally:
        first.proc.send_signal(signal.SIGCONT)
    assert code == 2
    assert "another inboxwatch is already running on this state" in second.log()
    lead = "lea.lock@customer.test"
    enquire(mail_servers, shop, lead)
    wait_for(lambda: acks_to(mail_servers, shop, lead), "the acknowledgement")
    # The first daemon put its run lock back (after that tick), so status finds it.
    wait_for(lambda: lock.exists() and lock.read_text() == str(first.proc.pid), "the lock back")
    assert "was deleted while running: made again" in first.log()
    status = subprocess.run(
        [sys.executable, "-m", "inboxwatch", "status", "--config", str(config)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=WAIT,
    )
    assert f"running (pid {first.proc.pid})" in status.stdout
    assert first.proc.poll() is None
    assert acks_to(mail_servers, shop, lead) == 1


def test_a_second_daemon_on_a_running_state_exits_2_naming_the_first(
    started: Callable[[str], Daemon],
) -> None:
    first = started("first")
    wait_for(lambda: "Sent: first start" in first.log(), "the first daemon reading")
    second = started("second")
    assert second.proc.wait(WAIT) == 2
    (line,) = second.log().strip().splitlines()
    assert f"another inboxwatch (pid {first.proc.pid}) is already running" in line
    assert first.proc.poll() is None
    os.kill(first.proc.pid, 0)  # still there


@contextlib.contextmanager
def tiny_folder(path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs at ``path`` (root only); unmounted at the end, pass or fail."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs", str(path)],
        capture_output=True,
        timeout=WAIT,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode(errors='replace')}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True, timeout=WAIT)


def fill(folder: Path) -> Path:
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for _ in range(1000):  # 64 KiB in 1 KiB writes: full long before the bound
            os.write(fd, b"x" * 1024)
    except OSError as exc:
        assert exc.errno == errno.ENOSPC
    finally:
        os.close(fd)
    return filler


def test_a_full_state_folder_mid_run_is_one_line_and_nothing_is_lost_or_sent_twice(
    mail_servers: MailServers, shop: str, tmp_path: Path
) -> None:
    config = mail_servers.inboxwatch_config(
        shop, tmp_path / "iw", rules=REPO / "rules", templates=REPO / "templates"
    )
    with tiny_folder(tmp_path / "iw" / "state") as state:
        d = Daemon(config, tmp_path / "d.log")
        try:
            wait_for(lambda: "Sent: first start" in d.log(), "the daemon reading")
            filler = fill(state)
            lead = "lea.full@customer.test"
            enquire(mail_servers, shop, lead)
            wait_for(lambda: "cannot write the state in" in d.log(), "the daemon noticing")
            line = next(x for x in d.log().splitlines() if "cannot write the state in" in x)
            assert str(state) in line and "nothing is sent until it can; trying again" in line
            assert "Traceback" not in d.log()
            assert acks_to(mail_servers, shop, lead) == 0  # it could not be recorded
            filler.unlink()
            wait_for(lambda: acks_to(mail_servers, shop, lead), "the acknowledgement", 90)
            assert d.proc.poll() is None
        finally:
            d.stop()
        assert acks_to(mail_servers, shop, lead) == 1


def smtp_at(config: Path, port: int) -> None:
    """Point the config's [smtp] at a plain server on ``port``, one connection, no login."""
    text = config.read_text()
    start, end = text.index("[smtp]"), text.index("[identity]")
    smtp = f'[smtp]\nhost = "127.0.0.1"\nport = {port}\ntls = "none"\n'
    smtp += "timeout = 10\nconnections = 1\n\n"
    config.write_text(text[:start] + smtp + text[end:])


def test_sigterm_during_a_backlog_finishes_the_message_in_flight_and_repeats_nothing(
    mail_servers: MailServers, shop: str, tmp_path: Path
) -> None:
    config = mail_servers.inboxwatch_config(
        shop, tmp_path / "iw", rules=REPO / "rules", templates=REPO / "templates"
    )
    leads = [f"lea.{n}.term@customer.test" for n in range(12)]
    with FaultySmtp() as smtp:
        smtp_at(config, smtp.port)
        first = Daemon(config, tmp_path / "first.log")
        try:
            wait_for(lambda: "Sent: first start" in first.log(), "the first start")
        finally:
            assert first.stop() == 0
        for lead in leads:  # the backlog: mail that came while it was stopped
            enquire(mail_servers, shop, lead)
        smtp.on("data", delay=0.3)  # a slow server: each message takes a while
        second = Daemon(config, tmp_path / "second.log")
        try:
            wait_for(lambda: len(smtp.accepted_ids()) >= 2, "the backlog under way")
            second.proc.send_signal(signal.SIGTERM)
            assert second.proc.wait(WAIT) == 0
        finally:
            second.stop()
        went = acked(smtp, leads)
        assert 2 <= sum(went.values()) < len(leads), "stopped mid-backlog"
        assert max(went.values()) == 1
        smtp.reset()  # a fast server again; what it received is forgotten, so keep `went`
        third = Daemon(config, tmp_path / "third.log")
        try:
            wait_for(
                lambda: sum(went.values()) + sum(acked(smtp, leads).values()) == len(leads),
                "the rest of the backlog",
            )
        finally:
            third.stop()
        again = acked(smtp, leads)
        assert all(went[x] + again[x] == 1 for x in leads), (went, again)


def acked(smtp: FaultySmtp, leads: list[str]) -> dict[str, int]:
    """Acknowledgements the server accepted, per lead."""
    got = list(smtp.received)
    return {
        lead: sum(
            1 for r in got if lead in r.rcpt_tos and parse(r.data).get("X-Inboxwatch") == "ack"
        )
        for lead in leads
    }


def test_a_state_file_damaged_under_the_daemon_holds_everything_until_it_is_put_right(
    mail_servers: MailServers, shop: str, started: Callable[[str], Daemon]
) -> None:
    d = started("d")
    wait_for(lambda: "Sent: first start" in d.log(), "the daemon reading")
    state = d.config.parent / "state" / "inboxwatch.json"
    good = state.read_bytes()
    state.write_text('{"leads": {"1": {"addr')  # an editor's half-saved file
    lead = "lea.damaged@customer.test"
    enquire(mail_servers, shop, lead)
    wait_for(lambda: "is damaged (line 1" in d.log(), "the daemon noticing")
    line = next(x for x in d.log().splitlines() if "is damaged (line 1" in x)
    assert str(state) in line and "; trying again in" in line
    assert "Traceback" not in d.log()
    assert acks_to(mail_servers, shop, lead) == 0  # nothing it could not record
    state.write_bytes(good)  # put right (a backup restored)
    wait_for(lambda: acks_to(mail_servers, shop, lead), "the acknowledgement", 90)
    assert d.proc.poll() is None
    assert acks_to(mail_servers, shop, lead) == 1
