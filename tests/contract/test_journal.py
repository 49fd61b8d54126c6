"""The file store's journal and snapshots: what a crash at any point leaves, and what a
reopen reads back (the state before == the state after)."""

from __future__ import annotations

import dataclasses
import errno
import logging
import os
from pathlib import Path
from typing import Any

import pytest
from tinydb import TinyDB

from inboxwatch.adapters import journal, migrations, statefile, tinydb_store
from inboxwatch.adapters.statefile import read_json, write_json_atomic
from inboxwatch.adapters.tinydb_store import TinyDbStore, load_tables
from inboxwatch.core.lead import Ended
from inboxwatch.errors import StateError

from .test_store import T0, D, H, full_lead, item, lead


def fill(store: TinyDbStore, n: int = 5) -> None:
    """Transactions of every kind of row."""
    for i in range(n):
        with store.transaction() as st:
            st.put_lead(lead(f"l{i}@customer.test"), T0 + i * H)
            st.put_outbox(item(f"<{i}@shop.test>"))
            st.record_ack(f"l{i}@customer.test", T0)
            st.set_cursor("inbox", f"7:{i}")
    with store.transaction() as st:
        st.put_lead(full_lead(), T0)
        st.put_outbox(item("<0@shop.test>").sent(T0))
        st.suppress("x@customer.test", "opted out", T0)
        st.reject("7:3", "no From", T0)
        st.add_ours("<alert@shop.test>", T0)
        st.set_marker("digest-day", "2024-05-06")
        st.put_lead(lead("old@customer.test").end(T0, Ended.STOPPED), None)
        st.put_lead(lead("l1@customer.test"), None)  # its wake row goes


def everything(path: Path) -> dict[str, Any]:
    """The state as a fresh process reads it, with every row, and what the reads say."""
    tables = load_tables(path)
    store = TinyDbStore.open(path, readonly=True)
    with store.transaction() as st:
        reads = (
            [x.address for x in st.due(T0 + 9 * H)],
            [i.id for i in st.queued()],
            st.known(),
            st.cursor("inbox"),
        )
    return {"rows": {k: v for k, v in tables.items() if k != "meta"}, "reads": reads}


def test_the_state_after_reopening_is_the_state_before(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    store = TinyDbStore.open(path)
    fill(store)
    with store.transaction():
        before = {name: dict(rows) for name, rows in store.model.tables.items()}
    assert journal.read(store.journal_path).records, "nothing went to the journal"
    again = TinyDbStore.open(path)  # a writer: it may compact; the state is the same
    assert {name: dict(rows) for name, rows in again.model.tables.items()} == before
    assert everything(path) == everything(path)
    again.compact()
    assert {name: dict(rows) for name, rows in again.model.tables.items()} == before
    assert journal.read(again.journal_path).records == []


def test_a_value_that_is_not_utf8_is_written_and_read_back(tmp_path: Path) -> None:
    """Bytes of a malformed message read as text (a lone surrogate) reach a lead: the
    write must not fail (it would fail every tick), and the value must come back."""
    path = tmp_path / "state.json"
    store = TinyDbStore.open(path)
    odd = dataclasses.replace(lead("odd@customer.test"), name="Ren\udce9e", subject="x\udcff")
    with store.transaction() as st:
        st.put_lead(odd, T0 + H)
    with TinyDbStore.open(path, readonly=True).transaction() as st:  # from the journal
        assert st.lead(odd.address) == odd
    store.compact()  # the snapshot too
    with TinyDbStore.open(path).transaction() as st:
        assert st.lead(odd.address) == odd


def test_a_transaction_writes_what_changed_not_the_state(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    store = TinyDbStore.open(path)
    with store.transaction() as st:
        for i in range(300):
            st.put_lead(lead(f"l{i}@customer.test"), T0 + i * H)
    store.compact()
    snapshot = path.stat().st_size
    size = store.journal_path.stat().st_size
    with store.transaction() as st:
        st.record_ack("l5@customer.test", T0)
    assert path.stat().st_size == snapshot  # the snapshot is not rewritten
    grew = store.journal_path.stat().st_size - size
    assert 0 < grew < 200, grew
    with store.transaction() as st:  # a put that changes nothing writes nothing
        st.put_lead(lead("l5@customer.test"), T0 + 5 * H)
    assert store.journal_path.stat().st_size - size == grew


def test_a_torn_last_record_is_dropped_and_cut_off_by_the_next_writer(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    store = TinyDbStore.open(path)
    fill(store, 2)
    before = everything(path)
    with store.transaction() as st:
        st.set_cursor("inbox", "7:99")
        st.put_lead(lead("torn@customer.test"), T0)
    data = store.journal_path.read_bytes()
    last = data.rfind(b"\n", 0, len(data) - 1) + 1
    for cut in (len(data) - 1, last + 5, last + 40):  # a crash mid-append, at any byte
        store.journal_path.write_bytes(data[:cut])
        assert everything(path) == before
    # The next writer cuts the torn tail off before it appends: nothing is lost after it.
    writer = TinyDbStore.open(path)
    with writer.transaction() as st:
        st.set_cursor("inbox", "7:100")
    assert everything(path)["reads"][3] == "7:100"
    assert not journal.read(writer.journal_path).torn


def test_a_damaged_record_in_the_middle_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    store = TinyDbStore.open(path)
    fill(store, 3)
    data = bytearray(store.journal_path.read_bytes())
    second = data.index(b"\n", data.index(b"\n") + 1) + 1
    data[second + 30] ^= 0x01  # a flipped bit inside a record that others follow
    store.journal_path.write_bytes(bytes(data))
    with pytest.raises(StateError, match="damaged at byte"):
        TinyDbStore.open(path, readonly=True)


@pytest.mark.parametrize("crash_at", [1, 2])
def test_compaction_interrupted_at_each_step_loses_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, crash_at: int
) -> None:
    """Crash 1: before the new snapshot replaces the old one (old snapshot and journal
    stand). Crash 2: after it, before the new journal (the old journal is ignored: its
    generation is not the snapshot's, and its records are in the snapshot)."""
    path = tmp_path / "state.json"
    store = TinyDbStore.open(path)
    fill(store)
    before = everything(path)
    calls: list[str] = []
    real = os.replace

    class Crash(BaseException):
        pass

    def replace(src: Any, dst: Any) -> None:
        calls.append(str(dst))
        if len(calls) == crash_at:
            Path(str(src) + ".left").write_bytes(b"")  # a crash leaves its temp file
            raise Crash
        real(src, dst)

    monkeypatch.setattr(statefile.os, "replace", replace)
    with pytest.raises(Crash), store.transaction():
        store.compact()
    monkeypatch.setattr(statefile.os, "replace", real)
    assert calls[-1] == str(path if crash_at == 1 else store.journal_path)
    assert everything(path) == before
    # A writer after the crash goes on from there; what it writes counts.
    writer = TinyDbStore.open(path)
    with writer.transaction() as st:
        st.set_cursor("inbox", "7:500")
    assert everything(path)["reads"][3] == "7:500"
    assert everything(path)["rows"]["leads"] == before["rows"]["leads"]


def test_a_writer_beside_the_daemon_is_caught_up_with_from_the_journal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "state.json"
    daemon = TinyDbStore.open(path)
    fill(daemon, 2)
    loads: list[Path] = []
    real = tinydb_store.read_json

    def counting(p: Path) -> Any:
        loads.append(p)
        return real(p)

    monkeypatch.setattr(tinydb_store, "read_json", counting)
    command = TinyDbStore.open(path)  # `inboxwatch stop` beside the running daemon
    with command.transaction() as st:
        st.suppress("l0@customer.test", "stopped by hand", T0)
    with daemon.transaction() as st:
        assert "l0@customer.test" in st.suppressed()
        st.record_ack("l1@customer.test", T0 + D)
    with command.transaction() as st:
        assert st.last_ack("l1@customer.test") == T0 + D
    assert loads == [path]  # only the command's open read the snapshot: no reloads


def test_a_failed_append_changes_nothing_in_memory_or_on_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "state.json"
    store = TinyDbStore.open(path)
    fill(store, 2)
    before, files = everything(path), store.journal_path.read_bytes()

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device (simulated)")

    monkeypatch.setattr(journal.os, "fdatasync", full)
    with pytest.raises(OSError, match="simulated"), store.transaction() as st:
        st.put_lead(lead("new@customer.test"), T0)
    assert store.journal_path.read_bytes() == files  # the record was cut back off
    monkeypatch.undo()
    with store.transaction() as st:
        assert st.lead("new@customer.test") is None
    assert everything(path) == before


def test_the_journal_is_folded_into_the_snapshot_when_idle_and_past_a_hard_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tinydb_store, "COMPACT_MIN", 2000)
    path = tmp_path / "state.json"
    store = TinyDbStore.open(path)
    snapshots = []
    real = tinydb_store.write_json_atomic

    def counted(p: Path, data: Any) -> None:
        snapshots.append(p)
        real(p, data)

    monkeypatch.setattr(tinydb_store, "write_json_atomic", counted)
    fill(store, 30)
    # In the middle of work only past the hard bound (a few times the snapshot).
    hard = tinydb_store.COMPACT_HARD * path.stat().st_size + 2000
    assert store.journal_path.stat().st_size < hard + 8000  # at most a record beyond it
    assert snapshots, "the journal grew without bound"
    assert len(read_json(path)["leads"]) >= 10  # compacted: the snapshot holds leads written
    # When idle, past the soft bound: folded; below it: nothing written.
    with store.transaction() as st:
        for i in range(40):
            st.record_ack(f"x{i}@customer.test", T0)
    before = len(snapshots)
    store.maintain()
    assert len(snapshots) == before + 1
    assert journal.read(store.journal_path).records == []
    store.maintain()
    assert len(snapshots) == before + 1
    assert everything(path)["reads"][3] == "7:29"
    TinyDbStore.open(path, readonly=True).maintain()  # a reader never writes
    assert len(snapshots) == before + 1


def test_the_snapshot_stays_readable_by_tinydb(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    store = TinyDbStore.open(path)
    fill(store, 2)
    store.compact()
    with TinyDB(path, access_mode="r") as db:
        leads = {row["address"] for row in db.table("leads").all()}
    assert leads == {
        "l0@customer.test",
        "l1@customer.test",
        "lea@customer.test",
        "old@customer.test",
    }


def test_a_version_2_file_is_kept_as_a_backup_and_older_versions_refuse_the_new_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "state.json"
    v2 = {
        "meta": {"1": {"version": 2, "created": "2024-05-01T00:00:00.000+00:00"}},
        "leads": {"1": lead().to_dict()},
        "wakes": {"1": {"address": "lea@customer.test", "at": "2024-05-06T10:30:15.123+00:00"}},
    }
    write_json_atomic(path, v2)
    with caplog.at_level(logging.INFO, logger="inboxwatch"):
        store = TinyDbStore.open(path)
    backup = tmp_path / "state.json.v2.bak"
    assert read_json(backup) == v2
    assert f"kept as {backup}" in caplog.text
    with store.transaction() as st:
        assert st.lead("lea@customer.test") == lead()
        assert st.next_wake() == T0 + H
    assert read_json(path)["meta"]["1"]["version"] == 3
    # inboxwatch of version 2 (the same check, one version back) refuses the file.
    monkeypatch.setattr(migrations, "SCHEMA_VERSION", 2)
    with pytest.raises(StateError, match=r"newer inboxwatch \(version 3\)"):
        TinyDbStore.open(path, readonly=True)


def test_a_reader_sees_a_writers_new_records_and_a_compaction_it_did(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    daemon = TinyDbStore.open(path)
    fill(daemon, 2)
    reader = TinyDbStore.open(path, readonly=True)  # `inboxwatch leads` beside the daemon
    with daemon.transaction() as st:
        st.set_cursor("inbox", "7:41")
    with reader.transaction() as st:
        assert st.cursor("inbox") == "7:41"
    daemon.compact()  # a new snapshot and a new journal under the reader's feet
    with daemon.transaction() as st:
        st.set_cursor("inbox", "7:42")
        st.unsuppress("x@customer.test")
    with reader.transaction() as st:
        assert st.cursor("inbox") == "7:42"
        assert st.suppressed() == frozenset()
        assert len(st.leads()) == 4
    # A reader's own changes never reach the files, nor its memory after the transaction.
    with reader.transaction() as st:
        st.set_cursor("inbox", "7:0")
    with reader.transaction() as st:
        assert st.cursor("inbox") == "7:42"


def test_a_transaction_that_fails_after_a_compaction_inside_it_is_read_back(
    tmp_path: Path,
) -> None:
    """A snapshot written inside a transaction holds its changes so far; if the
    transaction then fails, the store reads the files again rather than trust memory."""
    path = tmp_path / "state.json"
    store = TinyDbStore.open(path)
    fill(store, 2)

    class Boom(Exception):
        pass

    with pytest.raises(Boom), store.transaction() as st:
        st.set_cursor("inbox", "7:77")
        store.compact()
        raise Boom
    on_disk = everything(path)["reads"][3]
    with store.transaction() as st:  # memory agrees with what the files now hold
        assert st.cursor("inbox") == on_disk == "7:77"
