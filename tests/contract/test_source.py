"""One suite for every MailSource: IMAP on the private Dovecot and its in-memory twin.

A behaviour the daemon relies on (first start, look-back, chunks, gaps, renumbering,
IDLE's "mail already waiting") is written once here and must hold for both, so a test
of the daemon on the memory source means the same as one on a real server.
"""

from __future__ import annotations

import contextlib
import email
import logging
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import pytest

from inboxwatch.adapters import imap
from inboxwatch.adapters.imap_source import ImapSource, append_batches
from inboxwatch.adapters.memory_mail import MemorySource
from inboxwatch.adapters.ports import Batch, CopiesNotSaved, LoginFailed, MailSource, Stream
from inboxwatch.errors import TransientError
from inboxwatch.testing.devservers import MailServers
from inboxwatch.userfiles.config import ImapConfig, Secret

KEYWORD = "iwProcessed"
ZERO = timedelta(0)
DAY = timedelta(days=1)


def never() -> bool:
    return False


def message(subject: str, body: str = "Hello, I would like a quote.") -> tuple[bytes, str]:
    """A small message and its Message-ID (unique, so tests never see each other's mail)."""
    mid = f"<{subject.replace(' ', '-')}.{uuid.uuid4().hex[:12]}@customer.test>"
    raw = (
        f"From: Lea <lea@customer.test>\r\nTo: shop@example.test\r\nSubject: {subject}\r\n"
        f"Message-ID: {mid}\r\nDate: Mon, 6 May 2024 09:30:00 +0000\r\n\r\n{body}\r\n"
    ).encode()
    return raw, mid


def mids(batch: Batch) -> list[str]:
    return [str(email.message_from_bytes(f.raw)["Message-ID"]) for f in batch.messages]


class Kit(Protocol):
    """The source under test plus what a test does to its mailbox from outside."""

    @property
    def source(self) -> MailSource: ...

    def deliver(self, raw: bytes, received: datetime | None = None) -> None: ...
    def deliver_sent(self, raw: bytes) -> None: ...
    def flag(self, mid: str) -> None: ...
    def expunge(self, mid: str) -> None: ...
    def flags(self, mid: str, stream: Stream = Stream.INBOX) -> set[str]: ...
    def renumber(self) -> None: ...


class ImapKit:
    """A business mailbox of its own on the session's Dovecot, changed over a second
    connection as a person's mail client (or the server) would change it."""

    def __init__(self, servers: MailServers, user: str, **cfg: Any) -> None:
        self.servers, self.user = servers, user
        config = ImapConfig(
            "127.0.0.1",
            servers.imap_port,
            "none",
            servers.address(user),
            Secret("test", "imap"),
            timeout=5,
            **{"processed_keyword": KEYWORD, **cfg},
        )
        self.source = ImapSource(config, servers.password(user))

    def deliver(self, raw: bytes, received: datetime | None = None) -> None:
        if received is None:
            self.servers.deliver(self.user, raw)  # LMTP, as mail really arrives
        else:
            self.servers.append(self.user, "INBOX", raw, when=received)

    def deliver_sent(self, raw: bytes) -> None:
        self.servers.append(self.user, "Sent", raw, flags=["\\Seen"])

    @contextlib.contextmanager
    def _uids(self, mid: str, stream: Stream = Stream.INBOX) -> Iterator[tuple[Any, list[int]]]:
        client = self.servers.imap_client(self.user)
        try:
            client.select_folder("INBOX" if stream is Stream.INBOX else "Sent")
            yield client, client.search(["HEADER", "Message-ID", mid])
        finally:
            client.logout()

    def flag(self, mid: str) -> None:
        with self._uids(mid) as (client, uids):
            client.add_flags(uids, [b"\\Flagged"])

    def expunge(self, mid: str) -> None:
        with self._uids(mid) as (client, uids):
            client.delete_messages(uids)
            client.expunge()

    def flags(self, mid: str, stream: Stream = Stream.INBOX) -> set[str]:
        with self._uids(mid, stream) as (client, uids):
            got = client.get_flags(uids)
        return {f.decode() if isinstance(f, bytes) else str(f) for fl in got.values() for f in fl}

    def renumber(self) -> None:
        """A new UIDVALIDITY for the inbox (``doveadm mailbox update``), as after a server
        rebuilt its index; Dovecot drops the connections that had it selected."""
        doveadm = shutil.which("doveadm")
        if doveadm is None:
            pytest.skip("doveadm is not installed")
        client = self.servers.imap_client(self.user)
        try:
            old = int(client.folder_status("INBOX", [b"UIDVALIDITY"])[b"UIDVALIDITY"])
        finally:
            client.logout()
        args = [doveadm, "-c", str(self.servers.config_path), "mailbox", "update"]
        args += ["-u", self.servers.address(self.user), "--uid-validity", str(old + 1000), "INBOX"]
        subprocess.run(args, check=True, capture_output=True, timeout=10)


class MemoryKit:
    def __init__(self) -> None:
        self.source = MemorySource(processed_keyword=KEYWORD)

    def _ref(self, mid: str, stream: Stream = Stream.INBOX) -> str:
        (ref,) = self.source.find(mid, stream)
        return ref

    def deliver(self, raw: bytes, received: datetime | None = None) -> None:
        self.source.deliver(raw, received=received)

    def deliver_sent(self, raw: bytes) -> None:
        self.source.deliver_sent(raw)

    def flag(self, mid: str) -> None:
        self.source.flag(self._ref(mid))

    def expunge(self, mid: str) -> None:
        self.source.expunge(self._ref(mid))

    def flags(self, mid: str, stream: Stream = Stream.INBOX) -> set[str]:
        return set(self.source.flags(self._ref(mid, stream)))

    def renumber(self) -> None:
        self.source.renumber()


@pytest.fixture(params=[pytest.param("imap", marks=pytest.mark.servers), "memory"])
def kit(request: pytest.FixtureRequest) -> Iterator[Kit]:
    made: Kit
    if request.param == "imap":
        made = ImapKit(request.getfixturevalue("mail_servers"), request.getfixturevalue("shop"))
    else:
        made = MemoryKit()
    made.source.open()
    try:
        yield made
    finally:
        made.source.close()


def read(
    kit: Kit,
    cursor: str | None,
    *,
    stream: Stream = Stream.INBOX,
    lookback: timedelta = ZERO,
    limit: int = 100,
    headers_only: bool = False,
) -> Batch:
    return kit.source.read(
        stream,
        cursor,
        now=datetime.now(UTC),
        lookback=lookback,
        limit=limit,
        headers_only=headers_only,
    )


# -- reading --------------------------------------------------------------------------------
def test_first_start_without_lookback_skips_old_mail_and_reads_what_comes_after(kit: Kit) -> None:
    old, _ = message("before the start")
    kit.deliver(old)
    first = read(kit, None)
    assert first.messages == () and not first.more
    new, new_id = message("after the start", "The body of the new mail.")
    kit.deliver(new)
    batch = read(kit, first.cursor)
    assert mids(batch) == [new_id] and not batch.more
    got = batch.messages[0]
    assert got.received.tzinfo is not None
    assert abs(got.received - datetime.now(UTC)) < timedelta(minutes=5)
    assert not got.flagged
    assert b"The body of the new mail." in got.raw
    again = read(kit, batch.cursor)
    assert again.messages == () and again.cursor == batch.cursor


def test_first_start_with_lookback_reads_recent_mail_only_and_a_chunk_resumes(kit: Kit) -> None:
    now = datetime.now(UTC)
    old, _ = message("ten days old")
    kit.deliver(old, received=now - 10 * DAY)
    recent, recent_id = message("an hour old")
    kit.deliver(recent, received=now - timedelta(hours=1))
    fresh, fresh_id = message("just now")
    kit.deliver(fresh)
    first = read(kit, None, lookback=2 * DAY, limit=1)
    assert mids(first) == [recent_id] and first.more
    rest = read(kit, first.cursor, limit=1)
    assert mids(rest) == [fresh_id] and not rest.more


def test_limit_cuts_a_backlog_into_chunks_in_arrival_order(kit: Kit) -> None:
    start = read(kit, None).cursor
    sent = []
    for i in range(5):
        raw, mid = message(f"backlog {i}")
        kit.deliver(raw)
        sent.append(mid)
    got: list[str] = []
    cursor, more = start, True
    for expected_more in (True, True, False):
        batch = read(kit, cursor, limit=2)
        assert batch.more is expected_more and more
        got += mids(batch)
        cursor, more = batch.cursor, batch.more
    assert got == sent
    assert read(kit, cursor, limit=2) == Batch((), cursor, False)


def test_the_cursor_moves_past_an_expunged_tail_and_wait_does_not_report_it(kit: Kit) -> None:
    start = read(kit, None).cursor
    kept, kept_id = message("kept")
    gone, gone_id = message("expunged before we looked")
    kit.deliver(kept)
    kit.deliver(gone)
    kit.expunge(gone_id)
    batch = read(kit, start)
    assert mids(batch) == [kept_id] and not batch.more
    only, only_id = message("also expunged")
    kit.deliver(only)
    kit.expunge(only_id)
    empty = read(kit, batch.cursor)
    assert empty.messages == () and empty.cursor != batch.cursor  # moved past the gap
    t0 = time.monotonic()
    assert kit.source.wait(0.3, never) is False  # no "new mail" that is not there
    assert time.monotonic() - t0 < 2
    later, later_id = message("after the gap")
    kit.deliver(later)
    assert mids(read(kit, empty.cursor)) == [later_id]


def test_reads_never_mark_mail_read(kit: Kit) -> None:
    raw, mid = message("unread stays unread")
    kit.deliver(raw)
    read(kit, None, lookback=DAY)
    read(kit, None, lookback=DAY, headers_only=True)
    assert "\\Seen" not in kit.flags(mid)


def test_sent_is_read_headers_only(kit: Kit) -> None:
    assert kit.source.has_sent
    start = read(kit, None, stream=Stream.SENT)
    assert start.messages == ()
    raw, mid = message("written by a person", "The private body text.")
    kit.deliver_sent(raw)
    batch = read(kit, start.cursor, stream=Stream.SENT, headers_only=True)
    assert mids(batch) == [mid]
    head = batch.messages[0].raw
    assert b"Subject: written by a person" in head and head.endswith(b"\r\n\r\n")
    assert b"private body" not in head
    assert read(kit, start.cursor).messages == ()  # the inbox is another stream


def test_flagged_names_the_flagged_inbox_mail(kit: Kit) -> None:
    a, _ = message("not flagged")
    b, b_id = message("flagged by a person")
    kit.deliver(a)
    kit.deliver(b)
    refs = dict(zip(mids(batch := read(kit, None, lookback=DAY)), batch.messages, strict=True))
    assert kit.source.flagged() == frozenset()
    kit.flag(b_id)
    assert kit.source.flagged() == {refs[b_id].ref}
    again = read(kit, None, lookback=DAY)
    assert [f.flagged for f in again.messages] == [False, True]


def test_save_sent_keeps_read_copies_that_in_sent_finds(kit: Kit) -> None:
    copies = [message(f"our acknowledgement {i}") for i in range(3)]
    assert not kit.source.in_sent(copies[0][1])
    kit.source.save_sent([raw for raw, _ in copies], datetime.now(UTC))
    for _, mid in copies:
        assert kit.source.in_sent(mid)
        assert "\\Seen" in kit.flags(mid, Stream.SENT)
    _, other_id = message("never sent")
    assert not kit.source.in_sent(other_id)
    kit.source.save_sent([], datetime.now(UTC))  # nothing to save is no command


def test_a_fault_saving_copies_says_how_many_are_in_sent_all_the_same(kit: Kit) -> None:
    """All or a leading part: the daemon retries only the rest, so Sent gets no twins."""
    copies = [message(f"copy {i}") for i in range(3)]
    if isinstance(kit, MemoryKit):
        kit.source.fail_next = TransientError("connection reset (simulated)")
    else:
        assert isinstance(kit, ImapKit)
        kit.source.mailbox.close()  # the connection is gone
    with pytest.raises(CopiesNotSaved) as caught:
        kit.source.save_sent([raw for raw, _ in copies], datetime.now(UTC))
    assert caught.value.saved == 0
    kit.source.open()
    assert not any(kit.source.in_sent(mid) for _, mid in copies)


def test_mark_processed_sets_the_keyword_on_those_refs_only(kit: Kit) -> None:
    a, a_id = message("processed")
    b, b_id = message("not yet")
    kit.deliver(a)
    kit.deliver(b)
    batch = read(kit, None, lookback=DAY)
    ref_a = batch.messages[mids(batch).index(a_id)].ref
    kit.source.mark_processed([ref_a, "123:1", "not a ref"])  # stale and garbled: ignored
    kit.source.mark_processed([])
    assert KEYWORD in kit.flags(a_id)
    assert KEYWORD not in kit.flags(b_id)
    assert "\\Seen" not in kit.flags(a_id)


def unmarked(cursor: str) -> str:
    """The cursor as written before arrival marks ("UIDVALIDITY:UID")."""
    return ":".join(cursor.split(":")[:2])


def second(t: datetime) -> datetime:
    """A whole second, as IMAP's INTERNALDATE keeps it."""
    return t.replace(microsecond=0)


def reconnect_renumbered(kit: Kit) -> None:
    kit.renumber()
    kit.source.close()  # a server renumbering drops the connection: the daemon reconnects
    kit.source.open()


def test_a_renumbered_folder_is_read_again_from_what_arrived_after_the_mark(
    kit: Kit, caplog: pytest.LogCaptureFixture
) -> None:
    now = datetime.now(UTC)
    old, old_id = message("old")
    recent, recent_id = message("recent")
    kit.deliver(old, received=now - 10 * DAY)
    kit.deliver(recent)
    before = read(kit, None, lookback=30 * DAY)
    assert mids(before) == [old_id, recent_id]
    assert len(before.cursor.split(":")) == 3  # UIDVALIDITY:UID:MARK
    reconnect_renumbered(kit)
    with caplog.at_level(logging.WARNING):
        after = read(kit, before.cursor)
    assert any("UIDVALIDITY changed" in r.getMessage() for r in caplog.records)
    # The mail read last comes back (the same second as the mark: the core knows it by
    # Message-ID); the old mail does not, whatever the look-back.
    assert mids(after) == [recent_id]
    assert after.messages[0].ref != before.messages[1].ref
    assert mids(read(kit, before.cursor, lookback=30 * DAY)) == [recent_id]
    # A cursor from before arrival marks re-reads recent mail, or the look-back, as it did.
    assert mids(read(kit, unmarked(before.cursor))) == [recent_id]
    assert mids(read(kit, unmarked(before.cursor), lookback=30 * DAY)) == [old_id, recent_id]
    assert kit.source.flagged() == frozenset()
    assert read(kit, after.cursor).messages == ()
    new, new_id = message("after the renumbering")
    kit.deliver(new)
    assert mids(read(kit, after.cursor)) == [new_id]


def test_mail_skipped_at_the_first_start_never_comes_back_after_a_renumbering(kit: Kit) -> None:
    now = second(datetime.now(UTC))
    for subject, age in (("skipped an hour ago", timedelta(hours=1)), ("skipped", 5 * DAY)):
        raw, _ = message(subject)
        kit.deliver(raw, received=now - age)
    first = read(kit, None)
    assert first.messages == ()
    between, between_id = message("after the position, not read before the renumbering")
    kit.deliver(between)
    reconnect_renumbered(kit)
    batch = read(kit, first.cursor)
    assert mids(batch) == [between_id] and not batch.more
    assert mids(read(kit, first.cursor, lookback=30 * DAY)) == [between_id]
    assert read(kit, batch.cursor).messages == ()
    new, new_id = message("after the renumbering")
    kit.deliver(new)
    moved, moved_id = message("moved in from another folder: an old arrival time")
    kit.deliver(moved, received=now - 3 * DAY)
    assert mids(read(kit, batch.cursor)) == [new_id, moved_id]  # by position, not by mark


def test_an_old_cursor_without_a_mark_gets_one_from_the_folder(kit: Kit) -> None:
    now = second(datetime.now(UTC))
    skipped, _ = message("in the inbox before the first start")
    kit.deliver(skipped, received=now - 5 * DAY)  # older than the recent mail looked at first
    old_style = unmarked(read(kit, None).cursor)
    upgraded = read(kit, old_style)
    assert upgraded.messages == () and upgraded.cursor != old_style
    assert unmarked(upgraded.cursor) == old_style  # the same position, now with a mark
    between, between_id = message("after the position")
    kit.deliver(between)
    reconnect_renumbered(kit)
    assert mids(read(kit, upgraded.cursor, lookback=30 * DAY)) == [between_id]


def test_mail_in_the_second_of_the_last_one_read_is_not_lost_to_a_renumbering(kit: Kit) -> None:
    t = second(datetime.now(UTC) - timedelta(hours=1))
    start = read(kit, None)
    a, a_id = message("read")
    kit.deliver(a, received=t)
    batch = read(kit, start.cursor)
    assert mids(batch) == [a_id]
    b, b_id = message("same second, after the read")
    kit.deliver(b, received=t)
    reconnect_renumbered(kit)
    # The one read comes back too: the core recognises it by Message-ID.
    assert mids(read(kit, batch.cursor)) == [a_id, b_id]


def test_a_renumbered_backlog_comes_by_arrival_in_chunks_that_never_split_a_second(
    kit: Kit,
) -> None:
    base = second(datetime.now(UTC) - timedelta(hours=1))
    start = read(kit, None)
    offsets = {"m1": 1, "m2": 3, "m3": 3, "m4": 3, "m5": 2, "m6": 4}  # m5 arrived before m2
    ids = {}
    for name, offset in offsets.items():
        raw, ids[name] = message(name)
        kit.deliver(raw, received=base + timedelta(seconds=offset))
    reconnect_renumbered(kit)
    for limit in (2, 3):
        chunks: list[list[str]] = []
        cursor, more = start.cursor, True
        for _ in range(10):
            if not more:
                break
            batch = read(kit, cursor, limit=limit)
            chunks.append(mids(batch))
            cursor, more = batch.cursor, batch.more
        # Three in one second exceed a limit of two rather than be cut apart.
        expected = [["m1", "m5"], ["m2", "m3", "m4"], ["m6"]]
        assert chunks == [[ids[n] for n in chunk] for chunk in expected], limit
        assert read(kit, cursor).messages == ()
    new, new_id = message("after the backlog")
    kit.deliver(new)
    assert mids(read(kit, cursor)) == [new_id]


def test_limit_below_one_is_a_bug(kit: Kit) -> None:
    with pytest.raises(ValueError):
        read(kit, None, limit=0)


# -- waiting --------------------------------------------------------------------------------
def test_wait_is_true_at_once_when_mail_arrived_after_the_last_read(kit: Kit) -> None:
    cursor = read(kit, None).cursor
    raw, mid = message("arrived between read and wait")
    kit.deliver(raw)
    t0 = time.monotonic()
    assert kit.source.wait(5, never) is True
    assert time.monotonic() - t0 < 0.2
    batch = read(kit, cursor)
    assert mids(batch) == [mid]
    t0 = time.monotonic()
    assert kit.source.wait(5, lambda: True) is False  # interrupted, nothing new
    assert time.monotonic() - t0 < 0.5


# -- IMAP only ------------------------------------------------------------------------------
@pytest.fixture
def imap_kit(mail_servers: MailServers, shop: str) -> Iterator[ImapKit]:
    made = ImapKit(mail_servers, shop)
    made.source.open()
    try:
        yield made
    finally:
        made.source.close()


def test_imap_idle_reports_mail_that_arrives_while_waiting(imap_kit: ImapKit) -> None:
    read(imap_kit, None)
    raw, _ = message("during IDLE")
    timer = threading.Timer(0.1, imap_kit.deliver, (raw,))
    timer.start()
    try:
        t0 = time.monotonic()
        assert imap_kit.source.wait(5, never) is True
        assert time.monotonic() - t0 < 2.0  # Dovecot announces after ~0.5 s
    finally:
        timer.join()


def test_imap_without_idle_sleeps_and_then_a_poll_is_due(
    mail_servers: MailServers, shop: str
) -> None:
    made = ImapKit(mail_servers, shop, idle=False, poll_seconds=1)
    made.source.open()
    try:
        t0 = time.monotonic()
        assert made.source.wait(0.3, never) is True
        assert 0.25 <= time.monotonic() - t0 < 1.0
        t0 = time.monotonic()
        made.source.wait(60, lambda: time.monotonic() - t0 > 0.1)
        assert time.monotonic() - t0 < 0.6  # a stop is noticed within a slice
    finally:
        made.source.close()


def _sent_count(kit: ImapKit) -> int:
    client = kit.servers.imap_client(kit.user)
    try:
        return int(client.folder_status("Sent", [b"MESSAGES"])[b"MESSAGES"])
    finally:
        client.logout()


@pytest.mark.parametrize("multiappend", [True, False])
def test_imap_saves_a_backlog_of_copies_in_bounded_batches_or_one_append_each(
    imap_kit: ImapKit, monkeypatch: pytest.MonkeyPatch, multiappend: bool
) -> None:
    """Dovecot offers MULTIAPPEND (RFC 3502): 250 copies go in three commands of at most
    100; a source told it is absent (another server) sends one APPEND each."""
    box = imap_kit.source.mailbox
    assert box.has_multiappend()
    monkeypatch.setattr(imap_kit.source, "_multiappend", multiappend)
    calls: list[tuple[str, int]] = []
    real_multi, real_one = box.multiappend, box.append

    def multi(folder: str, raws: Any, when: datetime) -> None:
        calls.append(("multiappend", len(raws)))
        real_multi(folder, raws, when)

    def one(folder: str, raw: bytes, when: datetime) -> None:
        calls.append(("append", 1))
        real_one(folder, raw, when)

    monkeypatch.setattr(box, "multiappend", multi)
    monkeypatch.setattr(box, "append", one)
    before = _sent_count(imap_kit)
    copies = [message(f"copy {i}") for i in range(250)]
    imap_kit.source.save_sent([raw for raw, _ in copies], datetime.now(UTC))
    if multiappend:
        assert calls == [("multiappend", 100), ("multiappend", 100), ("multiappend", 50)]
    else:
        assert calls == [("append", 1)] * 250
    assert _sent_count(imap_kit) == before + 250
    for _, mid in (copies[0], copies[99], copies[100], copies[-1]):
        assert "\\Seen" in imap_kit.flags(mid, Stream.SENT)


def test_imap_a_batch_that_fails_counts_only_the_batches_before_it(
    imap_kit: ImapKit, monkeypatch: pytest.MonkeyPatch
) -> None:
    box = imap_kit.source.mailbox
    real_multi, done = box.multiappend, []

    def second_breaks(folder: str, raws: Any, when: datetime) -> None:
        if done:
            raise TransientError("IMAP multiappend: connection reset (simulated)")
        done.append(len(raws))
        real_multi(folder, raws, when)

    monkeypatch.setattr(box, "multiappend", second_breaks)
    copies = [message(f"copy {i}") for i in range(150)]
    with pytest.raises(CopiesNotSaved) as caught:
        imap_kit.source.save_sent([raw for raw, _ in copies], datetime.now(UTC))
    assert caught.value.saved == 100
    assert imap_kit.source.in_sent(copies[99][1]) and not imap_kit.source.in_sent(copies[100][1])


def test_append_batches_bounds_count_and_size_and_keeps_the_order() -> None:
    raws = [bytes([i]) * n for i, n in enumerate([3, 3, 3, 9, 1, 1])]
    assert append_batches(raws, most=2, size=100) == [raws[0:2], raws[2:4], raws[4:6]]
    assert append_batches(raws, most=10, size=6) == [raws[0:2], raws[2:3], raws[3:4], raws[4:]]
    assert append_batches([], most=2, size=6) == []


def test_imap_wrong_password_is_login_failed_and_a_dead_port_is_transient(
    mail_servers: MailServers,
) -> None:
    assert imap.LoginFailed is LoginFailed  # one class for the old and the new daemon
    cfg = ImapConfig(
        "127.0.0.1",
        mail_servers.imap_port,
        "none",
        mail_servers.address("team"),
        Secret("t", "imap"),
        timeout=5,
    )
    with pytest.raises(LoginFailed):
        ImapSource(cfg, "wrong password").open()
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))  # bound, not listening: connecting is refused at once
        dead = ImapConfig("127.0.0.1", s.getsockname()[1], "none", "x", Secret("t", "imap"))
        with pytest.raises(TransientError):
            ImapSource(dead, "pw").open()


# -- memory only ----------------------------------------------------------------------------
def test_memory_fail_next_raises_once_and_no_sent_folder_reads_nothing() -> None:
    source = MemorySource(sent=False)
    source.fail_next = LoginFailed("bad password")
    with pytest.raises(LoginFailed):
        source.open()
    source.open()
    assert not source.has_sent
    now = datetime.now(UTC)
    batch = source.read(Stream.SENT, "7:3", now=now, lookback=ZERO, limit=10)
    assert batch == Batch((), "7:3", False)
    source.fail_next = TransientError("connection reset")
    with pytest.raises(TransientError):
        source.flagged()
    assert source.flagged() == frozenset()
    source.close()
    with pytest.raises(TransientError):
        source.read(Stream.INBOX, None, now=now, lookback=ZERO, limit=10)


# -- new mail before a backlog ----------------------------------------------------------------
def test_new_mail_during_a_backlog_is_read_before_the_rest_of_it(kit: Kit) -> None:
    start = read(kit, None).cursor
    backlog = []
    for i in range(5):
        raw, mid = message(f"waiting {i}")
        kit.deliver(raw)
        backlog.append(mid)
    first = read(kit, start, limit=2)
    assert mids(first) == backlog[:2] and first.more
    raw, new_id = message("written while the backlog is answered")
    kit.deliver(raw)
    fresh = read(kit, first.cursor, limit=2)
    assert mids(fresh) == [new_id] and fresh.more  # alone, ahead of the backlog
    got: list[str] = []
    cursor, more = fresh.cursor, True
    for _ in range(5):
        if not more:
            break
        batch = read(kit, cursor, limit=2)
        got += mids(batch)
        cursor, more = batch.cursor, batch.more
    assert got == backlog[2:]  # the rest in arrival order, the new one not again
    assert cursor.count(":") == 2  # the backlog done: a plain position again
    assert read(kit, cursor, limit=2) == Batch((), cursor, False)


def test_a_restart_in_the_middle_of_a_backlog_reads_nothing_twice_and_misses_nothing(
    kit: Kit,
) -> None:
    start = read(kit, None).cursor
    backlog = []
    for i in range(4):
        raw, mid = message(f"before the crash {i}")
        kit.deliver(raw)
        backlog.append(mid)
    first = read(kit, start, limit=1)
    raw, new_id = message("served first")
    kit.deliver(raw)
    fresh = read(kit, first.cursor, limit=1)
    assert mids(fresh) == [new_id]
    # A crash: the process starts again with the cursor of the last committed read.
    kit.source.close()
    kit.source.open()
    raw, later_id = message("arrived during the restart")
    kit.deliver(raw)
    got: list[str] = []
    cursor, more = fresh.cursor, True
    for _ in range(10):
        if not more:
            break
        batch = read(kit, cursor, limit=1)
        got += mids(batch)
        cursor, more = batch.cursor, batch.more
    # After a restart nothing counts as new: oldest first, every message once.
    assert got == [*backlog[1:], later_id]
