"""Reliability: bad config and state, atomic state, CLI beside the daemon, hostile mail,
SMTP outages and caps, crash recovery, UIDVALIDITY, TLS, secrets, first-start look-back.

Daemon tests run the real daemon (``harness.RunningDaemon``) on a business mailbox of
their own from the session's shop pool. Leads are made-up addresses in customer.test:
the SMTP stand-in records mail to them without delivering it, so no lead mailbox is used.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import json
import logging
import os
import re
import socket
import stat
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from harness import REPO, RunningDaemon

from inboxwatch import cli
from inboxwatch.adapters.imap import Mailbox
from inboxwatch.adapters.imap_source import ImapSource
from inboxwatch.adapters.smtp import Envelope, SmtpSender
from inboxwatch.adapters.statefile import read_json, write_json_atomic
from inboxwatch.adapters.tinydb_store import TinyDbStore, load_tables, read_state
from inboxwatch.core import queue
from inboxwatch.core.lead import Ended
from inboxwatch.core.letters import Send
from inboxwatch.core.message import Address
from inboxwatch.core.mime import Outgoing, new_message_id, to_bytes
from inboxwatch.core.queue import Caps, OutboxItem, Result, Status
from inboxwatch.core.route import queue_item
from inboxwatch.errors import StateError, TransientError
from inboxwatch.service.clock import FixedClock
from inboxwatch.service.daemon import Daemon
from inboxwatch.testing.devservers import MailServers
from inboxwatch.testing.mailfactory import mail, parse, reply_to
from inboxwatch.userfiles.config import Secret, ServerConfig, load_config

WAIT = 30.0  # the longest any single condition is waited for (polled: a bound, not a sleep)


# -- fixtures and helpers ---------------------------------------------------------------------
@pytest.fixture(autouse=True)
def _logging_restored() -> Iterator[None]:
    """cli.main() configures the "inboxwatch" logger (a stderr handler, no propagation), and
    earlier tests may have left that behind bound to a closed capture stream. Meanwhile:
    no such handler, records propagate (so caplog sees them); afterwards as it was."""
    saved = {}
    for name in ("inboxwatch", "imapclient"):
        logger = logging.getLogger(name)
        saved[name] = (list(logger.handlers), logger.level, logger.propagate)
    ours = logging.getLogger("inboxwatch")
    ours.handlers[:] = [h for h in ours.handlers if not getattr(h, "_inboxwatch", False)]
    ours.propagate = True
    yield
    for name, (handlers, level, propagate) in saved.items():
        logger = logging.getLogger(name)
        logger.handlers[:] = handlers
        logger.setLevel(level)
        logger.propagate = propagate


@pytest.fixture
def daemons() -> Iterator[list[RunningDaemon]]:
    """Daemons a test made; all stopped at the end, pass or fail."""
    made: list[RunningDaemon] = []
    yield made
    for rd in made:
        with contextlib.suppress(Exception):
            rd.stop()


def new_daemon(
    made: list[RunningDaemon],
    servers: MailServers,
    shop: str,
    folder: Path,
    *,
    imap_extra: str = "",
    extra: str = "",
    clock: FixedClock | None = None,
    tls: bool = False,
) -> RunningDaemon:
    """A RunningDaemon (not started) whose config may add [imap] keys, sections, TLS."""
    rd = RunningDaemon(
        servers, shop, folder, extra=extra, clock=clock, poll_seconds=3600, manual=True
    )
    rd.config_path = servers.inboxwatch_config(
        shop,
        folder,
        rules=REPO / "rules",
        templates=REPO / "templates",
        tls=tls,
        extra=extra,
        imap_extra=f"poll_seconds = 3600\nidle_renew_seconds = 600\n{imap_extra}",
    )
    made.append(rd)
    return rd


#: Every day a sending day, 00:00 to 23:59 (a window's end is exclusive, and "24:00" is not
#: a time): the minute before midnight stays closed, so a test that sends follow-ups runs
#: its daemon on a fixed clock (:data:`MIDDAY`), not on the wall clock.
ALWAYS_OPEN = (
    '[sending]\nwindow_start = "00:00"\nwindow_end = "23:59"\n'
    'days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]\n'
)
#: Far from midnight, and in the past: Dovecot dates mail with the real time, and mail
#: dated after ``now`` counts as arriving ``now`` (``route.arrival``).
MIDDAY = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def new_lead(tag: str) -> str:
    return f"{tag}.{uuid.uuid4().hex[:10]}@customer.test"


def enquiry(servers: MailServers, shop: str, lead: str, subject: str = "Need a quote") -> bytes:
    raw = mail(lead, servers.address(shop), subject, "Hello, what would it cost?", name="Lea")
    servers.deliver(shop, raw, sender=lead)
    return raw


def state_path(rd: RunningDaemon) -> Path:
    return load_config(rd.config_path).state_path


def read_tables(path: Path) -> dict[str, list[dict[str, Any]]]:
    """The state (snapshot and journal) as table name -> rows."""
    return load_tables(path)


def rows(path: Path, table: str) -> list[dict[str, Any]]:
    return read_tables(path).get(table, [])


def purpose(m: Any) -> str:
    return str(parse(m.data)["X-Inboxwatch"])


def wake_and_wait(rd: RunningDaemon, ticks: int = 1) -> None:
    """Run `ticks` whole ticks now, one after the other (a cycle barrier: no sleeps)."""
    for _ in range(ticks):
        rd.tick()


def tmp_files(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.name.endswith(".tmp")]


@contextlib.contextmanager
def closed_port() -> Iterator[int]:
    """A loopback port that is bound but not listening: connecting is refused at once."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        yield int(s.getsockname()[1])


def offline_config(folder: Path, port: int, *, imap_secret: str = "", body: str = "") -> Path:
    """A complete config whose servers are a port where nothing listens."""
    folder.mkdir(parents=True, exist_ok=True)
    pw = folder / "password"
    pw.write_text("not-a-real-password\n")
    secret = imap_secret or f'password_file = "{pw}"'
    text = (
        f'timezone = "UTC"\n\n[imap]\nhost = "127.0.0.1"\nport = {port}\ntls = "none"\n'
        f'username = "shop@example.test"\n{secret}\ntimeout = 2\n\n'
        f'[smtp]\nhost = "127.0.0.1"\nport = {port}\ntls = "none"\n'
        f'username = "shop@example.test"\npassword_file = "{pw}"\ntimeout = 2\n\n'
        '[identity]\naddress = "shop@example.test"\nname = "Shop"\n\n'
        '[owner]\naddress = "owner@example.test"\n\n'
        f'[state]\npath = "{folder / "state" / "inboxwatch.json"}"\n\n'
        f'[paths]\nrules = "{REPO / "rules"}"\ntemplates = "{REPO / "templates"}"\n{body}'
    )
    path = folder / "config.toml"
    path.write_text(text)
    return path


@dataclasses.dataclass(frozen=True)
class Ran:
    code: int
    out: str
    err: str
    took: float


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> Ran:
    t0 = time.monotonic()
    code = cli.main(argv)
    took = time.monotonic() - t0
    out, err = capsys.readouterr()
    return Ran(code, out, err, took)


# -- 1. configuration errors stop `run` before any connection ---------------------------------
@pytest.mark.parametrize(
    ("body", "key"),
    [
        ("\n[sending]\nmax_per_hour = -5\n", "sending.max_per_hour"),
        ('\n[sending]\nwindow_start = "nine"\n', "sending.window_start"),
        ("\n[sending]\nmax_per_hour = 5\nmax_par_day = 10\n", "sending.max_par_day"),
    ],
)
def test_bad_config_exits_2_with_one_line_naming_file_and_key_before_connecting(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    no_connect: list[str],
    body: str,
    key: str,
) -> None:
    with closed_port() as port:
        config = offline_config(tmp_path, port, body=body)
        r = run_cli(["run", "--config", str(config)], capsys)
    assert r.code == 2
    lines = r.err.strip().splitlines()
    assert len(lines) == 1, r.err
    assert str(config) in lines[0] and key in lines[0]
    assert r.took < 2.0
    assert no_connect == []
    assert not (tmp_path / "state").exists()  # not even the state is touched


def test_missing_password_env_exits_2_naming_the_key(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    no_connect: list[str],
) -> None:
    monkeypatch.delenv("INBOXWATCH_TEST_NO_SUCH_PW", raising=False)
    with closed_port() as port:
        config = offline_config(
            tmp_path, port, imap_secret='password_env = "INBOXWATCH_TEST_NO_SUCH_PW"'
        )
        r = run_cli(["run", "--config", str(config)], capsys)
    assert r.code == 2
    lines = r.err.strip().splitlines()
    assert len(lines) == 1, r.err
    assert str(config) in lines[0]
    assert "imap.password_env" in lines[0] and "INBOXWATCH_TEST_NO_SUCH_PW" in lines[0]
    assert r.took < 2.0
    assert no_connect == []


def test_unreadable_config_file_exits_2_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_connect: list[str]
) -> None:
    missing = tmp_path / "nowhere" / "config.toml"
    r = run_cli(["run", "--config", str(missing)], capsys)
    assert r.code == 2 and r.err.strip().splitlines() == [f"inboxwatch: {missing}: file not found"]
    with closed_port() as port:
        config = offline_config(tmp_path, port, body="\n[sending\nmax_per_hour = 1\n")
        r = run_cli(["run", "--config", str(config)], capsys)
    assert r.code == 2
    lines = r.err.strip().splitlines()
    assert len(lines) == 1 and f"{config}:" in lines[0] and "TOML syntax error" in lines[0]
    assert no_connect == []


# -- 2. a damaged or too new state file stops start-up ----------------------------------------
def _valid_state(config: Path) -> Path:
    path = load_config(config).state_path
    store = TinyDbStore.open(path)
    with store.transaction() as state:
        state.set_cursor("inbox", "7:42")
        state.suppress("someone@customer.test", "test", datetime.now(UTC))
    return path


def test_truncated_state_file_refuses_to_start_and_is_left_untouched(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_connect: list[str]
) -> None:
    with closed_port() as port:
        config = offline_config(tmp_path, port)
        path = _valid_state(config)
        whole = path.read_bytes()
        path.write_bytes(whole[: len(whole) // 2])
        damaged, mtime = path.read_bytes(), path.stat().st_mtime_ns
        r = run_cli(["run", "--config", str(config)], capsys)
    assert r.code == 1
    assert str(path) in r.err
    assert "damaged" in r.err and "will not start with empty state" in r.err
    assert len(r.err.strip().splitlines()) == 1, r.err
    assert no_connect == []
    assert path.read_bytes() == damaged and path.stat().st_mtime_ns == mtime
    assert tmp_files(path.parent) == []
    with pytest.raises(StateError, match="will not start with empty state"):
        TinyDbStore.open(path)
    with pytest.raises(StateError):
        TinyDbStore.open(path, readonly=True)
    assert path.read_bytes() == damaged


def test_state_from_a_newer_version_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_connect: list[str]
) -> None:
    with closed_port() as port:
        config = offline_config(tmp_path, port)
        path = _valid_state(config)
        data = json.loads(path.read_text())
        data["meta"] = {"1": {"version": 99, "created": "2030-01-01T00:00:00.000+00:00"}}
        path.write_text(json.dumps(data))
        before = path.read_bytes()
        with pytest.raises(StateError, match="newer"):
            TinyDbStore.open(path)
        r = run_cli(["run", "--config", str(config)], capsys)
    assert r.code == 1
    assert str(path) in r.err and "newer" in r.err
    assert no_connect == []
    assert path.read_bytes() == before


# -- 3. atomic, private state writes ----------------------------------------------------------
def test_state_file_is_0600_without_leftovers_and_a_failed_rename_keeps_the_old_file(
    mail_servers: MailServers,
    shop: str,
    tmp_path: Path,
    daemons: list[RunningDaemon],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rd = new_daemon(daemons, mail_servers, shop, tmp_path / "iw")
    lead = new_lead("atomic")
    rd.start()
    enquiry(mail_servers, shop, lead)
    rd.wait_until(lambda: rd.sent_to(lead, "ack"), timeout=WAIT, what="ack")
    rd.stop()
    path = state_path(rd)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.with_name(path.name + ".lock").stat().st_mode) == 0o600
    assert tmp_files(path.parent) == []
    log_path = path.with_name(path.name + ".journal")
    before = path.read_bytes(), log_path.read_bytes()
    cursor = next(c for c in rows(path, "cursors") if c["stream"] == "inbox")
    validity, last_uid, *_ = cursor["cursor"].split(":")

    real_write = os.pwrite
    failures: list[int] = []

    def write_fails_once(fd: int, data: bytes, offset: int) -> int:
        if not failures:
            failures.append(fd)
            real_write(fd, data[: len(data) // 2], offset)  # half a record, then a full disk
            raise OSError(28, "No space left on device (simulated)")
        return real_write(fd, data, offset)

    monkeypatch.setattr("inboxwatch.adapters.journal.os.pwrite", write_fails_once)
    store = TinyDbStore.open(path)
    with pytest.raises(OSError, match="simulated"), store.transaction() as state:
        state.set_cursor("inbox", f"{validity}:{int(last_uid) + 1000}")
    assert failures, "the state write did not go through the journal"
    # A crash at this point leaves the old files: whole, readable, unchanged, no temp file.
    assert (path.read_bytes(), log_path.read_bytes()) == before
    assert tmp_files(path.parent) == []
    fresh = TinyDbStore.open(path, readonly=True)
    with fresh.transaction() as state:
        assert state.cursor("inbox") == cursor["cursor"]
        assert [x.address for x in state.leads()] == [lead]
    # The next write goes through and is private again.
    with store.transaction() as state:
        state.suppress("x@customer.test", "test", datetime.now(UTC))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert tmp_files(path.parent) == []
    assert any(r["address"] == "x@customer.test" for r in rows(path, "suppressed"))
    # ...and it does not carry the failed change along with it.
    assert [c["cursor"] for c in rows(path, "cursors") if c["stream"] == "inbox"] == [
        cursor["cursor"]
    ]


# -- 4. the CLI beside a running daemon -------------------------------------------------------
def test_stop_from_the_cli_while_the_daemon_runs_is_kept(
    mail_servers: MailServers,
    shop: str,
    tmp_path: Path,
    daemons: list[RunningDaemon],
    capsys: pytest.CaptureFixture[str],
) -> None:
    rd = new_daemon(daemons, mail_servers, shop, tmp_path / "iw")
    lead = new_lead("stopme")
    rd.start()
    first = enquiry(mail_servers, shop, lead)
    acks = rd.wait_until(lambda: rd.sent_to(lead, "ack"), timeout=WAIT, what="ack")
    owner = mail_servers.address("owner")
    rd.wait_until(lambda: rd.sent_to(owner, "owner-alert"), timeout=WAIT, what="alert")

    r = run_cli(["stop", lead, "--config", str(rd.config_path)], capsys)
    assert r.code == 0, r.err
    assert f"{lead}: automation ended:stopped" in r.out
    r = run_cli(["leads", "--json", "--config", str(rd.config_path)], capsys)
    assert r.code == 0, r.err
    assert json.loads(r.out.splitlines()[0])["automation"] == "ended:stopped"

    # The daemon goes on: a reply from the lead and another enquiry are handled...
    answer = reply_to(acks[0].data, lead, "Thanks, please call me.")
    mail_servers.deliver(shop, answer, sender=lead)
    other = new_lead("other")
    enquiry(mail_servers, shop, other, subject="Another question")
    rd.wait_until(lambda: rd.sent_to(other, "ack"), timeout=WAIT, what="ack to the other lead")
    stored = rd.wait_until(
        lambda: (x := rd.lead(lead)) and any(e.what == "reply" for e in x.events) and x,
        timeout=WAIT,
        what="the reply recorded on the stopped lead",
    )
    wake_and_wait(rd, 2)
    # ...and neither overwrote the stop.
    stored = rd.lead(lead)
    assert stored is not None
    assert stored.ended is Ended.STOPPED
    assert any(e.what == "automation ended: stopped" for e in stored.events)
    assert any(e.what == "reply" for e in stored.events)
    assert stored.enquiry_id == parse(first)["Message-ID"]
    assert rd.lead(other) is not None
    assert len(rd.sent_to(lead, "ack")) == 1
    assert rd.sent_to(lead, "followup") == []


# -- 5. hostile mail --------------------------------------------------------------------------
BROKEN_MIME = (
    b"From: Bob Broken <bob.broken@customer.test>\r\nTo: {to}\r\nSubject: broken structure\r\n"
    b"Message-ID: <broken.{n}@customer.test>\r\nMIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="XYZ"\r\n\r\n'
    b"--XYZ\r\nContent-Type: text/plain; charset=no-such-charset\r\n"
    b"Content-Transfer-Encoding: base64\r\n\r\n!!! not base64 !!!\r\n"
    b"--XYZ\r\nContent-Type: multipart/alternative\r\n\r\nno boundary here\r\n"
    b"--XYZ\r\nContent-Type: message/rfc822\r\n\r\n\xff\xfe\x00 nested garbage\r\n"
)


def _inbox(servers: MailServers, shop: str) -> dict[int, tuple[bytes, tuple[bytes, ...]]]:
    client = servers.imap_client(shop)
    try:
        client.select_folder("INBOX", readonly=True)
        uids = client.search(["ALL"])
        data = client.fetch(uids, ["BODY.PEEK[]", "FLAGS"]) if uids else {}
    finally:
        client.logout()
    return {u: (bytes(d[b"BODY[]"]), tuple(d[b"FLAGS"])) for u, d in data.items()}


def _inbox_uidvalidity(servers: MailServers, shop: str) -> int:
    client = servers.imap_client(shop)
    try:
        return int(client.select_folder("INBOX", readonly=True)[b"UIDVALIDITY"])
    finally:
        client.logout()


def _logged_about(ref: str, records: list[logging.LogRecord], then: str = "") -> bool:
    """A log line names the message ``ref`` ("UIDVALIDITY:UID"), followed by ``then``."""
    pattern = re.compile(rf"(?<![\d:]){re.escape(ref)}(?![\d]){re.escape(then)}")
    return any(pattern.search(r.getMessage()) for r in records)


def test_malformed_mail_is_logged_recorded_left_alone_and_later_mail_is_answered(
    mail_servers: MailServers,
    shop: str,
    tmp_path: Path,
    daemons: list[RunningDaemon],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    rd = new_daemon(daemons, mail_servers, shop, tmp_path / "iw")
    rd.start()
    to = mail_servers.address(shop).encode()
    big = (
        b"From: Big Body <big.body@customer.test>\r\nTo: " + to + b"\r\n"
        b"Subject: a long line\r\nMessage-ID: <big.1@customer.test>\r\n\r\n"
        + b"quote please " * 160_000
        + b"\r\n"
    )
    garbage = {
        mail_servers.append(shop, "INBOX", b"\x00\xff garbage without headers"),
        mail_servers.append(shop, "INBOX", b"\xff\xfe" + b"x" * 2_000_000),
    }
    parseable = {
        mail_servers.append(shop, "INBOX", BROKEN_MIME.replace(b"{to}", to).replace(b"{n}", b"1")),
        mail_servers.append(shop, "INBOX", big),
    }
    mail_servers.deliver(shop, b"\xff\xfe no headers, but LMTP adds some\r\n", sender="")
    before = _inbox(mail_servers, shop)
    lead = new_lead("after")
    enquiry(mail_servers, shop, lead)
    # In manual mode every tick runs in this thread: a tick that raised would fail right here.
    rd.wait_until(lambda: rd.sent_to(lead, "ack"), timeout=10, what="ack after the garbage")
    wake_and_wait(rd)  # and the daemon goes on ticking past them

    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    validity = _inbox_uidvalidity(mail_servers, shop)
    rejects = rows(state_path(rd), "rejects")
    assert {r["ref"] for r in rejects} == {f"{validity}:{uid}" for uid in garbage}
    assert all(r["error"] and r["at"] for r in rejects)
    for uid in garbage:
        assert _logged_about(f"{validity}:{uid}", caplog.records, ": malformed"), (
            f"uid {uid} not logged as malformed"
        )
    for uid in parseable:
        assert _logged_about(f"{validity}:{uid}", caplog.records, " "), uid
    after = _inbox(mail_servers, shop)
    for uid, (raw, flags) in before.items():
        assert after[uid] == (raw, flags), f"uid {uid} was altered"
        assert b"\\Seen" not in flags
    assert rd.daemon is not None and rd.daemon.connected


# -- 6. SMTP down, then back; permanent refusals -------------------------------------------
def use_sender(d: Daemon, sender: Any) -> None:
    """What the daemon sends through (the outbox holds the sender that really sends)."""
    d.sender = d.outbox.sender = sender


class _Counting:
    """A sender that passes every batch on and records the ids it was asked to send."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.asked: list[str] = []

    def send(self, batch: Any, on_accepted: Any = None, stop: Any = None) -> dict[str, Result]:
        self.asked += [env.id for env in batch]
        return dict(self.inner.send(batch, on_accepted, stop))


def test_smtp_down_keeps_the_ack_pending_with_back_off_then_sends_it_once(
    mail_servers: MailServers,
    shop: str,
    tmp_path: Path,
    daemons: list[RunningDaemon],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    clock = FixedClock(datetime.now(UTC))
    rd = new_daemon(daemons, mail_servers, shop, tmp_path / "iw", clock=clock)
    good: list[Any] = []
    broken: list[_Counting] = []
    make = rd.make

    with closed_port() as port:

        def make_with_broken_smtp() -> Daemon:
            d = make()
            good.append(d.outbox.sender)
            broken.append(_Counting(SmtpSender(dataclasses.replace(d.cfg.smtp, port=port), "pw")))
            use_sender(d, broken[-1])
            return d

        rd.make = make_with_broken_smtp  # type: ignore[method-assign]
        lead = new_lead("smtpdown")
        rd.start()
        enquiry(mail_servers, shop, lead)
        path = state_path(rd)

        def pending_ack() -> dict[str, Any] | None:
            for r in rows(path, "outbox"):
                if r["purpose"] == "ack" and r["rcpt"] == lead and r.get("error"):
                    return r
            return None

        row = rd.wait_until(pending_ack, timeout=WAIT, what="a failed ack attempt")
        assert row["status"] == "pending"
        # The server was never reached: that says nothing about the message, so it does
        # not use up one of its attempts (an outage of a day must not lose the queue).
        assert row["attempts"] == 0
        assert datetime.fromisoformat(row["next_try"]) > clock.now()
        assert "cannot connect" in row["error"]
        assert rd.lead(lead) is not None
        assert rd.sent_to(lead) == []
        assert any("will be retried" in r.getMessage() for r in caplog.records)
        # Nothing is tried again before next_try.
        tried = broken[0].asked.count(row["id"])
        assert tried == 1
        wake_and_wait(rd, 3)
        assert broken[0].asked.count(row["id"]) == tried
        again = pending_ack()
        assert again is not None and again["attempts"] == 0 and again["status"] == "pending"

        assert rd.daemon is not None
        use_sender(rd.daemon, good[0])
        clock.set(datetime.fromisoformat(row["next_try"]) + timedelta(seconds=1))
        wake_and_wait(rd)
    rd.wait_until(lambda: rd.sent_to(lead, "ack"), timeout=WAIT, what="ack after SMTP is back")
    wake_and_wait(rd, 2)
    assert len(rd.sent_to(lead, "ack")) == 1
    done = [r for r in rows(path, "outbox") if r["purpose"] == "ack" and r["rcpt"] == lead]
    assert [r["status"] for r in done] == ["sent"]
    lead_now = rd.lead(lead)
    assert lead_now is not None and lead_now.acked is not None


def test_giving_up_after_the_last_retry_is_logged_as_such_and_recorded_on_the_lead(
    mail_servers: MailServers,
    shop: str,
    tmp_path: Path,
    daemons: list[RunningDaemon],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The server answers "try later" for the lead through every retry: the ack is given up.
    That must not be logged as "will be retried", and the lead must say it was not
    delivered (as for a 5xx)."""
    from aiosmtpd.controller import Controller

    caplog.set_level(logging.INFO)
    clock = FixedClock(datetime.now(UTC))
    rd = new_daemon(daemons, mail_servers, shop, tmp_path / "iw", clock=clock)
    make = rd.make
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    controller = Controller(_AlwaysBusy(), hostname="127.0.0.1", port=port, ready_timeout=5)
    controller.start()
    try:

        def make_with_broken_smtp() -> Daemon:
            d = make()
            busy = dataclasses.replace(d.cfg.smtp, port=port, username="")  # no AUTH there
            use_sender(d, SmtpSender(busy, ""))
            return d

        rd.make = make_with_broken_smtp  # type: ignore[method-assign]
        lead = new_lead("giveup")
        rd.start()
        enquiry(mail_servers, shop, lead)
        path = state_path(rd)

        def ack_row() -> dict[str, Any] | None:
            return next(
                (r for r in rows(path, "outbox") if r["purpose"] == "ack" and r["rcpt"] == lead),
                None,
            )

        rd.wait_until(
            lambda: (r := ack_row()) and r["attempts"] >= 1, timeout=WAIT, what="first attempt"
        )
        for n in range(2, 5):  # a few retries, each after its back-off
            row = ack_row()
            assert row is not None and row["status"] == "pending"
            clock.set(datetime.fromisoformat(row["next_try"]) + timedelta(seconds=1))
            wake_and_wait(rd)
            assert (r := ack_row()) is not None and r["attempts"] == n
        # Retries are bounded by age: a week after the enquiry ([imap] max_age_days) the
        # acknowledgement is given up, however few attempts an outage left it.
        stored = rd.lead(lead)
        assert stored is not None
        clock.set(stored.arrived + timedelta(days=7, seconds=1))
        mark = len(caplog.records)
        wake_and_wait(rd)
        row = ack_row()
        assert row is not None and row["status"] == "failed"
        assert row["error"].startswith("given up: not sent within 7 days"), row["error"]
        assert "450" in row["error"]  # the last error is kept
    finally:
        controller.stop()
    last = [r.getMessage() for r in caplog.records[mark:] if lead in r.getMessage()]
    assert last, "the final attempt was not logged"
    assert not any("will be retried" in m for m in last), last
    stored = rd.lead(lead)
    assert stored is not None
    assert any(e.what == "ack not delivered" for e in stored.events), [
        e.what for e in stored.events
    ]
    # The owner is told to write to the lead themselves (queued: this server is busy).
    notices = [r for r in rows(path, "outbox") if r["purpose"] == "owner-notice"]
    assert notices and lead in notices[0]["raw"], notices


class _AlwaysBusy:
    """aiosmtpd handler: every recipient is "busy, try later" (a per-message 4xx)."""

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        return "450 4.2.1 mailbox busy, try later"


class _Refusing:
    """aiosmtpd handler: 550 for gone@, 450 for busy@, accept the rest."""

    def __init__(self) -> None:
        self.delivered: list[list[str]] = []

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        if address.startswith("gone@"):
            return "550 5.1.1 no such user"
        if address.startswith("busy@"):
            return "450 4.2.1 mailbox busy, try later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.delivered.append(list(envelope.rcpt_tos))
        return "250 OK"


def test_smtp_550_is_permanent_450_is_transient_and_the_batch_goes_on() -> None:
    from aiosmtpd.controller import Controller

    handler = _Refusing()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    controller = Controller(handler, hostname="127.0.0.1", port=port, ready_timeout=5)
    controller.start()
    try:
        cfg = ServerConfig("127.0.0.1", port, "none", "", Secret("test", "smtp"), timeout=5)
        raw = b"From: shop@example.test\r\nTo: x@customer.test\r\nSubject: t\r\n\r\nhello\r\n"
        res = SmtpSender(cfg, "").send(
            [
                Envelope("<a@t>", "shop@example.test", "gone@customer.test", raw),
                Envelope("<b@t>", "shop@example.test", "busy@customer.test", raw),
                Envelope("<c@t>", "shop@example.test", "fine@customer.test", raw),
            ]
        )
    finally:
        controller.stop()
    assert not res["<a@t>"].ok and res["<a@t>"].permanent
    assert "550" in res["<a@t>"].error and "no such user" in res["<a@t>"].error
    assert not res["<b@t>"].ok and not res["<b@t>"].permanent
    assert res["<c@t>"].ok
    assert handler.delivered == [["fine@customer.test"]]


# -- 7. a crash between intent and send -------------------------------------------------------
def queued_followup(rd: RunningDaemon, lead: str, step: str, now: datetime) -> Send:
    """A follow-up as the engine would queue it for ``lead`` (built here to stage a crash)."""
    out = Outgoing(
        purpose="followup",
        from_=Address(rd.address, "Example Shop"),
        to=Address(lead, "Lea"),
        subject="Re: Need a quote",
        body=f"Following up ({step}).",
        message_id=new_message_id(rd.address),
        date=now,
        lead=lead,
    )
    return Send(out, step)


def _as_version_1(path: Path, sending: set[str]) -> None:
    """Rewrite the state file as inboxwatch before schema version 2 wrote it, with the
    outbox rows ``sending`` marked as that version did while a message was being sent."""
    data = read_state(path)
    for meta in data["meta"].values():
        meta["version"] = 1

    def position(ref: str) -> tuple[int, int]:
        validity, _, rest = ref.partition(":")
        return int(validity or 0), int(rest.partition(":")[0] or 0)

    for row in data.get("leads", {}).values():
        row["enquiry_uidvalidity"], row["enquiry_uid"] = position(row.pop("enquiry_ref"))
    for row in data.get("outbox", {}).values():
        del row["seq"]
        row["save_sent"] = row["purpose"] in ("ack", "followup")
        if row["id"] in sending:
            row["status"] = "sending"
    folders = {"inbox": "INBOX", "sent": "Sent"}
    cursors = {}
    for key, row in data.get("cursors", {}).items():
        validity, last_uid = position(row["cursor"])
        cursors[key] = {
            "folder": folders[row["stream"]],
            "uidvalidity": validity,
            "last_uid": last_uid,
        }
    data["cursors"] = cursors
    rejects = {}
    for key, row in data.get("rejects", {}).items():
        validity, uid = position(row["ref"])
        rejects[key] = {"folder": "INBOX", "uidvalidity": validity, "uid": uid, **row}
        del rejects[key]["ref"]
    data["rejects"] = rejects
    data.pop("wakes", None)  # version 1 kept no wake times
    write_json_atomic(path, data)


def test_rows_left_sending_by_a_crash_are_checked_against_sent(
    mail_servers: MailServers,
    shop: str,
    tmp_path: Path,
    daemons: list[RunningDaemon],
) -> None:
    """Version 1 marked a row "sending" while it went out; a crash left it so. Upgraded,
    such a row is queued again: first checked against Sent, so nothing goes twice."""
    clock = FixedClock(MIDDAY)
    rd = new_daemon(daemons, mail_servers, shop, tmp_path / "iw", extra=ALWAYS_OPEN, clock=clock)
    lead = new_lead("crash")
    rd.start()
    enquiry(mail_servers, shop, lead)
    rd.wait_until(lambda: rd.sent_to(lead, "ack"), timeout=WAIT, what="ack")
    rd.stop()
    before = rd.lead(lead)
    assert before is not None and before.enquiry_ref

    now = clock.now()
    went = queued_followup(rd, lead, "followup-day1", now)
    lost = queued_followup(rd, lead, "nudge-day3", now)
    path = state_path(rd)
    store = TinyDbStore.open(path)
    with store.transaction() as state:
        for send in (went, lost):
            state.put_outbox(queue_item(send, now))
    _as_version_1(path, sending={went.out.message_id, lost.out.message_id})
    assert sum(r["status"] == "sending" for r in read_json(path)["outbox"].values()) == 2
    # The server took the first one before the "crash": its copy is in Sent.
    mail_servers.append(shop, "Sent", to_bytes(went.out), flags=["\\Seen"])

    rd.start()
    assert read_tables(path)["meta"][0]["version"] == 3  # upgraded on start
    rd.wait_until(
        lambda: [m for m in rd.sent_to(lead) if parse(m.data)["Message-ID"] == lost.out.message_id],
        timeout=WAIT,
        what="the interrupted follow-up",
    )
    wake_and_wait(rd, 2)
    ids = [parse(m.data)["Message-ID"] for m in rd.sent_to(lead)]
    assert ids.count(lost.out.message_id) == 1
    assert ids.count(went.out.message_id) == 0
    status = {r["id"]: r["status"] for r in rows(path, "outbox")}
    assert status[went.out.message_id] == "sent"
    assert status[lost.out.message_id] == "sent"
    stored = rd.lead(lead)
    assert stored is not None
    assert stored.enquiry_ref == before.enquiry_ref
    assert any(e.detail == went.out.message_id for e in stored.events)


def test_a_message_the_server_accepted_before_a_crash_is_not_sent_again(
    mail_servers: MailServers,
    shop: str,
    tmp_path: Path,
    daemons: list[RunningDaemon],
) -> None:
    """Killed between the SMTP server's 250 and the state write: the send journal says."""
    clock = FixedClock(MIDDAY)
    rd = new_daemon(daemons, mail_servers, shop, tmp_path / "iw", extra=ALWAYS_OPEN, clock=clock)
    lead = new_lead("journal")
    rd.start()
    enquiry(mail_servers, shop, lead)
    rd.wait_until(lambda: rd.sent_to(lead, "ack"), timeout=WAIT, what="ack")
    rd.stop()
    now = clock.now()
    send = queued_followup(rd, lead, "followup-day1", now)
    out = send.out
    path = state_path(rd)
    store = TinyDbStore.open(path)
    with store.transaction() as state:
        state.put_outbox(queue_item(send, now))
    # As the outbox's on_accepted callback writes it the moment the server says 250.
    journal = path.with_name(path.name + ".sent")
    journal.write_text(out.message_id + "\n")
    rd.start()
    wake_and_wait(rd, 2)
    assert [m for m in rd.sent_to(lead) if parse(m.data)["Message-ID"] == out.message_id] == []
    status = {r["id"]: r["status"] for r in rows(path, "outbox")}
    assert status[out.message_id] == "sent"
    assert not journal.exists()


# -- 8. UIDVALIDITY changes -------------------------------------------------------------------
def test_uidvalidity_change_answers_nothing_twice_and_new_mail_after_it(
    mail_servers: MailServers,
    shop: str,
    tmp_path: Path,
    daemons: list[RunningDaemon],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    rd = new_daemon(daemons, mail_servers, shop, tmp_path / "iw")
    first = new_lead("uidv")
    owner = mail_servers.address("owner")
    rd.start()
    enquiry(mail_servers, shop, first)
    rd.wait_until(lambda: rd.sent_to(first, "ack"), timeout=WAIT, what="ack")
    rd.wait_until(lambda: rd.sent_to(owner, "owner-alert"), timeout=WAIT, what="alert")
    rd.stop()
    before = rd.lead(first)
    path = state_path(rd)
    store = TinyDbStore.open(path)
    with store.transaction() as state:
        cursor = state.cursor("inbox")
        assert cursor is not None
        validity, last_uid, mark = (int(x) for x in cursor.split(":"))
        state.set_cursor("inbox", f"{validity + 1000}:{last_uid}:{mark}")

    rd.start()
    assert any("UIDVALIDITY changed" in r.getMessage() for r in caplog.records)
    second = new_lead("uidv2")
    enquiry(mail_servers, shop, second, subject="After the renumbering")
    rd.wait_until(lambda: rd.sent_to(second, "ack"), timeout=WAIT, what="ack after the change")
    wake_and_wait(rd)
    assert len(rd.sent_to(first, "ack")) == 1
    alerts = [parse(m.data)["Reply-To"] for m in rd.sent_to(owner, "owner-alert")]
    assert sum(first in str(a) for a in alerts) == 1
    assert sum(second in str(a) for a in alerts) == 1
    assert rd.sent_to(owner, "owner-reply") == []
    after = rd.lead(first)
    assert before is not None and after is not None
    assert after.is_active and after.events == before.events  # not processed a second time
    cursor_now = next(c["cursor"] for c in rows(path, "cursors") if c["stream"] == "inbox")
    assert cursor_now.split(":")[0] == str(validity)  # the server's numbering again
    assert int(cursor_now.split(":")[1]) > last_uid  # past the mail read after the change


def _renumber_inbox(path: Path) -> int:
    """What a server renumbering the inbox looks like to us: every stored reference into
    it (the reading position and the leads' enquiries, "UIDVALIDITY:UID") belongs to
    another UIDVALIDITY than the server's now. Returns that old value."""
    wakes = {r["address"]: datetime.fromisoformat(r["at"]) for r in rows(path, "wakes")}
    store = TinyDbStore.open(path)
    with store.transaction() as state:
        cursor = state.cursor("inbox")
        assert cursor is not None
        validity, _, last_uid = cursor.partition(":")
        old = int(validity) + 1000
        state.set_cursor("inbox", f"{old}:{last_uid}")
        for lead in state.leads():
            assert lead.enquiry_ref.startswith(f"{validity}:"), lead.enquiry_ref
            ref = f"{old}:{lead.enquiry_ref.partition(':')[2]}"
            state.put_lead(dataclasses.replace(lead, enquiry_ref=ref), wakes.get(lead.address))
    return old


def test_uidvalidity_change_does_not_take_an_enquiry_without_message_id_for_a_reply(
    mail_servers: MailServers,
    shop: str,
    tmp_path: Path,
    daemons: list[RunningDaemon],
) -> None:
    rd = new_daemon(daemons, mail_servers, shop, tmp_path / "iw")
    lead = new_lead("noid")
    owner = mail_servers.address("owner")
    raw = mail(lead, rd.address, "Quote without an id", "Hello, what would it cost?")
    raw = re.sub(rb"^Message-ID: .*\r?\n", b"", raw, count=1, flags=re.M)
    assert b"Message-ID" not in raw
    rd.start()
    mail_servers.deliver(shop, raw, sender=lead)
    rd.wait_until(lambda: rd.sent_to(lead, "ack"), timeout=WAIT, what="ack")
    rd.wait_until(lambda: rd.sent_to(owner, "owner-alert"), timeout=WAIT, what="alert")
    rd.stop()
    _renumber_inbox(state_path(rd))

    rd.start()
    wake_and_wait(rd)
    stored = rd.lead(lead)
    assert stored is not None
    assert stored.is_active, f"the re-read enquiry ended the lead: {stored.ended}"
    assert [e.what for e in stored.events if e.what == "reply"] == []
    assert rd.sent_to(owner, "owner-reply") == []
    assert len(rd.sent_to(lead, "ack")) == 1


def test_flagging_an_enquiry_still_hands_over_after_a_uidvalidity_change(
    mail_servers: MailServers,
    shop: str,
    tmp_path: Path,
    daemons: list[RunningDaemon],
) -> None:
    rd = new_daemon(daemons, mail_servers, shop, tmp_path / "iw")
    lead = new_lead("flag")
    rd.start()
    enquiry(mail_servers, shop, lead)
    rd.wait_until(lambda: rd.sent_to(lead, "ack"), timeout=WAIT, what="ack")
    rd.stop()
    _renumber_inbox(state_path(rd))
    rd.start()  # the first cycle re-syncs and recognises the enquiry by its Message-ID
    client = mail_servers.imap_client(shop)
    try:
        client.select_folder("INBOX")
        client.add_flags(client.search(["ALL"]), [b"\\Flagged"])
    finally:
        client.logout()
    wake_and_wait(rd, 2)
    stored = rd.lead(lead)
    assert stored is not None
    assert stored.ended is Ended.HANDLED, "flagging the enquiry no longer hands the lead over"


# -- 9. send caps -----------------------------------------------------------------------------
def _capped_backlog(
    made: list[RunningDaemon], servers: MailServers, shop: str, folder: Path, n: int, cap: int
) -> tuple[RunningDaemon, list[str], list[Any]]:
    """n enquiries found at once by a daemon allowed `cap` messages an hour; returns the
    daemon, the leads in arrival order, and what it sent (once `cap` went out)."""
    rd = new_daemon(made, servers, shop, folder, extra=f"[sending]\nmax_per_hour = {cap}\n")
    rd.start()
    rd.stop()  # the position is stored: what arrives now is new mail for the next start
    leads = [new_lead(f"cap{i}") for i in range(n)]
    for lead in leads:
        enquiry(servers, shop, lead)
    rd.start()
    path = state_path(rd)
    rd.wait_until(
        lambda: sum(r["status"] == "sent" for r in rows(path, "outbox")) >= cap,
        timeout=WAIT,
        what=f"{cap} messages sent",
    )
    wake_and_wait(rd, 2)
    return rd, leads, [m for m in servers.smtp_sent if m.mail_from == rd.address]


def test_hourly_cap_sends_acks_first_and_keeps_the_rest_pending(
    mail_servers: MailServers,
    shop: str,
    tmp_path: Path,
    daemons: list[RunningDaemon],
) -> None:
    rd, leads, ours = _capped_backlog(daemons, mail_servers, shop, tmp_path / "iw", 4, 2)
    assert len(ours) == 2
    assert [purpose(m) for m in ours] == ["ack", "ack"]
    assert {m.rcpt_tos[0] for m in ours} <= set(leads)
    table = rows(state_path(rd), "outbox")
    assert sorted(r["status"] for r in table if r["purpose"] == "ack") == [
        "pending",
        "pending",
        "sent",
        "sent",
    ]
    assert all(r["status"] == "pending" for r in table if r["purpose"] != "ack")
    assert sum(r["purpose"] == "owner-alert" for r in table) == 4


def test_capped_acks_go_out_in_arrival_order(
    mail_servers: MailServers,
    shop: str,
    tmp_path: Path,
    daemons: list[RunningDaemon],
) -> None:
    """First come, first answered: the leads who wrote first do not wait the extra hour."""
    _, leads, ours = _capped_backlog(daemons, mail_servers, shop, tmp_path / "iw", 6, 3)
    assert [m.rcpt_tos[0] for m in ours] == leads[:3]


def test_a_capped_backlog_does_not_make_the_daemon_spin(
    mail_servers: MailServers,
    shop: str,
    tmp_path: Path,
    daemons: list[RunningDaemon],
) -> None:
    """Rows held back by the cap are due but cannot go: the daemon must not busy-loop.
    It waits until the cap has room again, and ticks before then send nothing."""
    t0 = datetime.now(UTC).replace(microsecond=0)  # the state keeps times to the ms
    clock = FixedClock(t0)
    rd = new_daemon(
        daemons,
        mail_servers,
        shop,
        tmp_path / "iw",
        extra="[sending]\nmax_per_hour = 1\n",
        clock=clock,
    )
    rd.start()
    lead = new_lead("spin")
    enquiry(mail_servers, shop, lead)
    rd.wait_until(lambda: rd.sent_to(lead, "ack"), timeout=WAIT, what="ack")
    d = rd.daemon
    assert d is not None
    path = state_path(rd)

    def ours() -> list[Any]:
        return [m for m in mail_servers.smtp_sent if m.mail_from == rd.address]

    held = [r["id"] for r in rows(path, "outbox") if r["status"] == "pending"]
    assert held, "nothing is held back by the cap"
    sent = len(ours())
    # The ack went out at t0: the cap has room again an hour later, and not before.
    assert d.seconds_to_next(t0) == pytest.approx(3600.0)
    wake_and_wait(rd, 3)
    assert len(ours()) == sent
    assert [r["id"] for r in rows(path, "outbox") if r["status"] == "pending"] == held
    clock.set(t0 + timedelta(minutes=59))
    assert d.seconds_to_next(clock.now()) == pytest.approx(60.0)
    wake_and_wait(rd)
    assert len(ours()) == sent
    # Once the hour is over the next held row goes: the wait was for the cap, not forever.
    clock.set(t0 + timedelta(hours=1, seconds=1))
    wake_and_wait(rd)
    assert len(ours()) == sent + 1
    pending = [r["id"] for r in rows(path, "outbox") if r["status"] == "pending"]
    assert pending == held[1:]


def _item(
    purpose_: str, created: datetime, *, status: Status = Status.PENDING, **extra: Any
) -> OutboxItem:
    """An outbox item as the core queues it (``created``), then changed by ``extra``."""
    me = Address("shop@example.test", "Shop")
    out = Outgoing(
        purpose=purpose_,
        from_=me,
        to=Address("someone@customer.test"),
        subject="s",
        body="b",
        message_id=new_message_id(me.addr),
        date=created,
        lead="someone@customer.test",
    )
    item = queue_item(Send(out), created)
    if status is Status.SENT:
        item = item.sent(created)
    elif status is Status.FAILED:
        item = item.failed("refused")
    elif status is Status.CANCELLED:
        item = item.cancelled()
    return dataclasses.replace(item, **extra)


def test_outbox_due_orders_by_priority_and_respects_both_caps(tmp_path: Path) -> None:
    now = datetime(2030, 3, 4, 12, 0, tzinfo=UTC)
    store = TinyDbStore.open(tmp_path / "state.json")
    with store.transaction() as state:
        alert = _item("owner-alert", now - timedelta(minutes=9))
        follow = _item("followup", now - timedelta(minutes=8))
        task = _item("owner-task", now - timedelta(minutes=7))
        ack_late = _item("ack", now - timedelta(minutes=5))
        ack_early = _item("ack", now - timedelta(minutes=6))
        # Left mid-send by a crash (version 1 said "sending"): pending, it goes again.
        interrupted = _item("followup", now - timedelta(minutes=10))
        retry_later = _item("ack", now, next_try=now + timedelta(seconds=30), attempts=1)
        failed = _item("ack", now - timedelta(hours=1), status=Status.FAILED)
        cancelled = _item("ack", now - timedelta(hours=1), status=Status.CANCELLED)
        for item in (alert, follow, task, ack_late, ack_early, interrupted, retry_later):
            state.put_outbox(item)
        state.put_outbox(failed)
        state.put_outbox(cancelled)
        order = [i.id for i in (ack_early, ack_late, alert, interrupted, follow, task)]

    def due(at: datetime, caps: Caps) -> list[str]:
        with store.transaction() as state:
            sent_times = state.sent_times(at - timedelta(days=1))
            return [i.id for i in queue.due(state.queued(), sent_times, at, caps)]

    assert due(now, Caps(100, 100)) == order
    assert due(now, Caps(2, 100)) == order[:2]
    assert due(now, Caps(0, 100)) == []
    # Sent in the last hour counts against both caps; sent earlier today only the day's.
    with store.transaction() as state:
        for ago in (timedelta(minutes=30), timedelta(hours=5), timedelta(hours=30)):
            state.put_outbox(_item("ack", now - ago, status=Status.SENT))
    assert due(now, Caps(3, 100)) == order[:2]
    assert due(now, Caps(100, 5)) == order[:3]
    assert due(now, Caps(1, 100)) == []
    assert due(now, Caps(100, 2)) == []
    # An hour later the last hour is empty again.
    later = now + timedelta(minutes=31)
    assert due(later, Caps(1, 100)) == order[:1]
    # The retry waits for its time, then takes its place by priority and age.
    assert due(now + timedelta(seconds=30), Caps(100, 100))[:3] == [
        ack_early.id,
        ack_late.id,
        retry_later.id,
    ]
    with store.transaction() as state:
        assert len(state.queued()) == 7  # the backlog: failed, cancelled and sent are not


def test_outbox_due_keeps_the_order_rows_were_queued_in_one_transaction(tmp_path: Path) -> None:
    """A tick queues many acks with the same `created`: ties must keep the queueing order."""
    now = datetime(2030, 3, 4, 12, 0, tzinfo=UTC)
    store = TinyDbStore.open(tmp_path / "state.json")
    # IDs that sort the other way round: the order cannot come from sorting by ID.
    items = [dataclasses.replace(_item("ack", now), id=f"<q{9 - n}@shop.test>") for n in range(6)]
    queued = [i.id for i in items]
    with store.transaction() as state:
        for item in items:
            state.put_outbox(item)
    store = TinyDbStore.open(tmp_path / "state.json")  # as read back from the file
    with store.transaction() as state:
        assert [i.id for i in state.queued()] == queued
        assert [i.id for i in queue.due(state.queued(), [], now, Caps(100, 100))] == queued


# -- 10. TLS ----------------------------------------------------------------------------------
def test_imaps_and_starttls_with_the_servers_ca_acknowledge_an_enquiry(
    mail_servers: MailServers,
    shop: str,
    tmp_path: Path,
    daemons: list[RunningDaemon],
) -> None:
    rd = new_daemon(daemons, mail_servers, shop, tmp_path / "iw", tls=True)
    cfg = load_config(rd.config_path)
    assert cfg.imap.tls == "ssl" and cfg.imap.port == mail_servers.imaps_port
    assert cfg.smtp.tls == "starttls" and cfg.imap.cafile == str(mail_servers.cafile)
    lead = new_lead("tls")
    rd.start()
    enquiry(mail_servers, shop, lead)
    rd.wait_until(lambda: rd.sent_to(lead, "ack"), timeout=WAIT, what="ack over TLS")


@pytest.mark.parametrize(
    ("protocol", "tls"),
    [("imap", "ssl"), ("imap", "starttls"), ("smtp", "starttls"), ("smtp", "ssl")],
)
def test_every_tls_mode_verifies_the_certificate(
    mail_servers: MailServers, protocol: str, tls: str
) -> None:
    assert mail_servers.cafile is not None
    ports = {
        ("imap", "ssl"): mail_servers.imaps_port,
        ("imap", "starttls"): mail_servers.imap_port,
        ("smtp", "starttls"): mail_servers.smtp_port,
        ("smtp", "ssl"): mail_servers.smtps_port,
    }
    # Logging in changes nothing, and the test message goes to an address that is not
    # delivered anywhere: the team mailbox can serve without taking a shop from the pool.
    login, pw = mail_servers.address("team"), mail_servers.password("team")
    rcpt = new_lead("tlscheck")
    port = ports[protocol, tls]
    assert port is not None

    def attempt(cafile: str) -> str:
        """ "" if it worked, else the error."""
        if protocol == "imap":
            from inboxwatch.userfiles.config import ImapConfig

            cfg = ImapConfig("127.0.0.1", port, tls, login, Secret("t", "imap"), cafile, timeout=5)
            box = Mailbox(cfg, pw)
            try:
                box.connect()
            except TransientError as exc:
                return str(exc)
            box.close()
            return ""
        cfg_s = ServerConfig("127.0.0.1", port, tls, login, Secret("t", "smtp"), cafile, timeout=5)
        raw = mail(login, rcpt, "tls check", "hello")
        res = SmtpSender(cfg_s, pw).send([Envelope("<tls@t>", login, rcpt, raw)])["<tls@t>"]
        assert res.ok or not res.permanent, res
        return "" if res.ok else res.error

    assert attempt(str(mail_servers.cafile)) == ""
    assert "CERTIFICATE_VERIFY_FAILED" in attempt("")


def _without_cafile(config: Path, instead: str = "") -> None:
    text = re.sub(r'^cafile = ".*"$', instead, config.read_text(), flags=re.M)
    config.write_text(text)


def test_unknown_certificate_is_refused_and_nothing_is_sent(
    mail_servers: MailServers,
    shop: str,
    tmp_path: Path,
    daemons: list[RunningDaemon],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    rd = new_daemon(daemons, mail_servers, shop, tmp_path / "iw", tls=True)
    _without_cafile(rd.config_path)
    cfg = load_config(rd.config_path)
    assert cfg.imap.cafile == "" and not cfg.imap.tls_insecure_skip_verify
    pw = cfg.imap.password.resolve()
    box = Mailbox(cfg.imap, pw)
    with pytest.raises(TransientError, match="CERTIFICATE_VERIFY_FAILED"):
        box.connect()
    assert box.client is None
    lead = new_lead("mitm")
    raw = mail(rd.address, lead, "hello", "hi")
    res = SmtpSender(cfg.smtp, pw).send([Envelope("<x@t>", rd.address, lead, raw)])
    assert not res["<x@t>"].ok and not res["<x@t>"].permanent
    assert "CERTIFICATE_VERIFY_FAILED" in res["<x@t>"].error
    # The daemon keeps retrying the connection, saying why, and sends nothing.
    d = rd.make()
    t = threading.Thread(target=d.run, daemon=True)
    t.start()
    try:
        rd.wait_until(
            lambda: any(
                "CERTIFICATE_VERIFY_FAILED" in r.getMessage() and r.levelno == logging.WARNING
                for r in caplog.records
            ),
            timeout=WAIT,
            what="a logged certificate failure",
        )
    finally:
        d.stop_event.set()
        t.join(WAIT)
    assert not t.is_alive()
    assert not d.connected and d.ticks == 0  # never got as far as a tick
    assert [m for m in mail_servers.smtp_sent if m.mail_from == rd.address] == []


def test_skipping_verification_works_and_logs_the_risk(
    mail_servers: MailServers,
    shop: str,
    tmp_path: Path,
    daemons: list[RunningDaemon],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    rd = new_daemon(daemons, mail_servers, shop, tmp_path / "iw", tls=True)
    _without_cafile(rd.config_path, "tls_insecure_skip_verify = true")
    cfg = load_config(rd.config_path)
    assert cfg.imap.tls_insecure_skip_verify and cfg.smtp.tls_insecure_skip_verify
    lead = new_lead("insecure")
    rd.start()
    enquiry(mail_servers, shop, lead)
    rd.wait_until(lambda: rd.sent_to(lead, "ack"), timeout=WAIT, what="ack without verification")
    warnings = [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and "verification is OFF" in r.getMessage()
    ]
    assert warnings, "no warning about skipped certificate verification"
    assert all("tls_insecure_skip_verify" in w and "password" in w for w in warnings)


# -- 11. secrets ------------------------------------------------------------------------------
#: The SMTP stand-in is part of the test rig, not inboxwatch: its server-side log is not ours.
TEST_SERVER_LOGGERS = ("mail.log",)


def test_passwords_never_reach_logs_state_or_reprs(
    mail_servers: MailServers,
    shop: str,
    tmp_path: Path,
    daemons: list[RunningDaemon],
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cli.setup_logging(True)  # what --debug does: our DEBUG lines and imapclient's protocol log
    logging.getLogger("inboxwatch").propagate = True
    caplog.set_level(logging.DEBUG)
    for name in ("inboxwatch", "imapclient", "aiosmtplib", "asyncio"):
        caplog.set_level(logging.DEBUG, logger=name)
    password = mail_servers.password(shop)
    login = mail_servers.address(shop)
    forms = {
        password,
        base64.b64encode(password.encode()).decode(),
        base64.b64encode(f"\0{login}\0{password}".encode()).decode(),
    }
    rd = new_daemon(daemons, mail_servers, shop, tmp_path / "iw")
    lead = new_lead("secret")
    rd.start()
    enquiry(mail_servers, shop, lead)
    rd.wait_until(lambda: rd.sent_to(lead, "ack"), timeout=WAIT, what="ack")
    assert rd.sent_to(lead, "ack")[0].auth_login == login  # it did log in to SMTP
    wake_and_wait(rd)
    rd.stop()

    ours = [r for r in caplog.records if not r.name.startswith(TEST_SERVER_LOGGERS)]
    assert any(r.name.startswith("imapclient") for r in ours), "no protocol log captured"
    assert any("LOGIN" in r.getMessage() for r in ours), "the login was not logged at all"
    text = "\n".join(f"{r.name} {r.getMessage()}" for r in ours)
    text += "\n".join(logging.Formatter().formatException(r.exc_info) for r in ours if r.exc_info)
    stderr = capsys.readouterr().err
    # The state file (every table) and whatever else sits beside it: lock, journal, archive.
    state = state_path(rd).read_text()
    beside = {p.name: p.read_bytes() for p in state_path(rd).parent.iterdir() if p.is_file()}
    assert state_path(rd).name in beside
    cfg = load_config(rd.config_path)
    d = rd.make()
    assert isinstance(d.source, ImapSource)
    things = (cfg, cfg.imap, cfg.smtp, d.source, d.source.mailbox, d.sender, d.outbox, d)
    for form in forms:
        assert form not in text, "a password reached the log"
        assert form not in stderr, "a password reached stderr"
        assert form not in state, "a password reached the state file"
        for name, data in beside.items():
            assert form.encode() not in data, f"a password reached {name}"
        for thing in things:
            assert form not in repr(thing), f"a password is in repr({type(thing).__name__})"


# -- 12. first start with a look-back ---------------------------------------------------------
def test_first_start_with_lookback_answers_today_but_not_older_mail(
    mail_servers: MailServers,
    shop: str,
    tmp_path: Path,
    daemons: list[RunningDaemon],
) -> None:
    rd = new_daemon(daemons, mail_servers, shop, tmp_path / "iw", imap_extra="lookback_days = 1")
    today, old = new_lead("today"), new_lead("old")
    five_days_ago = datetime.now(UTC) - timedelta(days=5)
    raw_old = mail(old, rd.address, "Old question", "Hello from last week", name="Olaf")
    raw_old = re.sub(
        rb"^Date: .*$",
        b"Date: " + five_days_ago.strftime("%a, %d %b %Y %H:%M:%S +0000").encode(),
        raw_old,
        count=1,
        flags=re.M,
    )
    mail_servers.append(shop, "INBOX", raw_old, when=five_days_ago)
    enquiry(mail_servers, shop, today, subject="Today's question")
    rd.start()
    rd.wait_until(lambda: rd.sent_to(today, "ack"), timeout=WAIT, what="ack for today's mail")
    wake_and_wait(rd)
    assert rd.sent_to(old) == []
    assert rd.lead(old) is None
    stored = rd.lead(today)
    assert stored is not None and stored.acked is not None
