"""Erasing one person (``StateStore.erase``) and purging old archived leads
(``StateStore.purge_archive``): the file store and its in-memory twin must agree.

What only the file store can show (no file holds the address afterwards; a second
process, as the daemon is, does not write erased rows back) is at the end.
"""

from __future__ import annotations

import base64
import dataclasses
import email.header
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from inboxwatch.adapters.memory_store import MemoryStore
from inboxwatch.adapters.ports import StateStore
from inboxwatch.adapters.tinydb_store import TinyDbStore
from inboxwatch.core.actions import Notice
from inboxwatch.core.lead import Ended, Event
from inboxwatch.core.queue import Purpose
from inboxwatch.core.suppression import hashed, is_suppressed

from .test_store import T0, D, H, item, lead

ANN = "ann@customer.test"
#: Ann's address inside a longer one: never touched by erasing Ann.
JOANN = "joann@customer.test"
JO = "jo@customer.test"


@pytest.fixture(params=["tinydb", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StateStore]:
    if request.param == "tinydb":
        yield TinyDbStore.open(tmp_path / "state.json")
    else:
        yield MemoryStore()


def b64_message(text: str) -> bytes:
    """A message whose body is base64 (as UTF-8 text parts often are): the address is
    not in its bytes, only in its decoded text."""
    body = base64.encodebytes(text.encode()).decode().replace("\n", "\r\n")
    subject = email.header.Header("Neue Anfrage", "utf-8").encode()
    return (
        f"Subject: {subject}\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"Content-Transfer-Encoding: base64\r\n\r\n{body}"
    ).encode()


def fill(store: StateStore, joann: str = JOANN) -> None:
    """Ann everywhere an address can be, beside Joann and Bo, who must stay as they are
    (the file tests search bytes, where Joann's address holds Ann's: they pass another)."""
    ann = lead(ANN, events=(Event(T0, "arrived"),), fields={"message": "hello"})
    bo = lead("bo@customer.test", fields={"message": f"my colleague {ANN} asked too"})
    with store.transaction() as st:
        st.put_lead(ann, T0 + D)
        st.put_lead(lead(joann), T0 + D)
        st.put_lead(bo, T0 + 2 * D)
        st.record_ack(ANN, T0)
        st.record_ack(joann, T0)
        st.suppress(ANN.upper(), "opted out", T0)
        st.suppress("x@customer.test", f"complaint forwarded by {ANN}", T0)
        st.put_outbox(item("<ack-ann@shop.test>", lead=ANN, rcpt=ANN))  # pending
        st.put_outbox(item("<sent-ann@shop.test>", lead=ANN, rcpt=ANN).sent(T0 + H))
        st.put_outbox(
            item(
                "<digest@shop.test>",
                purpose=Purpose.DIGEST,
                lead="",
                rcpt="owner@shop.test",
                raw=b64_message(f"Waiting for you: Ann <{ANN}> since Monday"),
            )
        )
        st.put_outbox(item("<ack-joann@shop.test>", lead=joann, rcpt=joann))
        st.put_notice(Notice("bounce:" + ANN, f"mail to {ANN} bounced", T0))
        st.put_notice(Notice("smtp", "the SMTP server is out of reach", T0))
        st.reject("7:3", f"From {ANN}: no body", T0)
        st.reject("7:4", "no From", T0)
        st.set_marker("note", f"last: {ANN}")
        st.set_marker("digest", "2024-05-06")


def test_erase_removes_every_record_of_the_address_and_only_that(store: StateStore) -> None:
    fill(store)
    erased = store.erase(ANN.title(), T0 + 2 * H)  # any case names the same person
    assert erased.found and erased.address == ANN and erased.suppression == ""
    assert erased.removed == {
        "lead": 1,
        "wake": 1,
        "ack": 1,
        "suppression": 1,
        "outbox": 2,  # Ann's acknowledgement and the digest naming her, neither sent
        "notice": 1,
        "reject": 1,
    }
    assert erased.redacted == {
        "sent": 1,
        "other lead": 1,
        "marker": 1,
        "suppression reason": 1,
    }
    with store.transaction() as st:
        assert st.lead(ANN) is None
        assert ANN not in st.known().by_address
        assert [x.address for x in st.due(T0 + 10 * D)] == [JOANN, "bo@customer.test"]
        assert st.last_ack(ANN) is None and st.last_ack(JOANN) == T0
        assert st.suppressed() == {"x@customer.test"}
        assert [i.id for i in st.queued()] == ["<ack-joann@shop.test>"]
        sent = st.outbox_item("<sent-ann@shop.test>")
        assert sent is not None and (sent.rcpt, sent.lead, sent.raw) == ("", "", b"")
        assert st.sent_times(T0) == [T0 + H]  # the caps still count what went out
        bo = st.lead("bo@customer.test")
        assert bo is not None and bo.fields["message"] == "my colleague [erased] asked too"
        assert [n.key for n in st.notices()] == ["smtp"]
        assert [r.ref for r in st.rejects()] == ["7:4"]
        assert st.marker("note") == "last: [erased]" and st.marker("digest") == "2024-05-06"
        joann = st.lead(JOANN)
        assert joann is not None and joann == lead(JOANN)


def test_erase_removes_archived_records(store: StateStore) -> None:
    old = lead(ANN).end(T0, Ended.NO_RESPONSE)
    other = lead("bo@customer.test", subject=f"for {ANN}").end(T0, Ended.REPLIED)
    with store.transaction() as st:
        st.put_lead(old, None)
        st.put_lead(other, None)
    with store.transaction() as st:
        st.archive_closed(T0 + 30 * D)
    with store.transaction() as st:
        st.put_lead(lead(ANN, arrived=T0 + 40 * D), T0 + 41 * D)  # she came back
    erased = store.erase(ANN, T0 + 50 * D)
    assert erased.removed["archived"] == 1 and erased.removed["lead"] == 1
    assert erased.redacted == {"other archived": 1}
    (kept,) = store.archived()
    assert kept == dataclasses.replace(other, subject="for [erased]")


def test_keep_suppression_leaves_only_a_hash_that_counts_as_suppressed(
    store: StateStore,
) -> None:
    fill(store)
    erased = store.erase(ANN, T0 + 2 * H, keep_suppression=True)
    assert erased.suppression == hashed(ANN) == hashed(" Ann@Customer.TEST ")
    with store.transaction() as st:
        entries = st.suppressed()
        assert entries == {"x@customer.test", hashed(ANN)}
        assert ANN not in entries
        assert is_suppressed(ANN.upper(), st.known().suppressed)
        assert not is_suppressed(JOANN, st.known().suppressed)
    # A second request (the person asks again): the hash is kept, nothing else is found.
    again = store.erase(ANN, T0 + 3 * H, keep_suppression=True)
    assert not again.found and again.suppression == hashed(ANN)


def test_erase_without_keep_also_removes_an_earlier_hashed_entry(store: StateStore) -> None:
    store.erase(ANN, T0, keep_suppression=True)
    erased = store.erase(ANN, T0 + H)
    assert erased.removed == {"suppression": 1}
    with store.transaction() as st:
        assert st.suppressed() == frozenset()


def test_an_unknown_address_is_not_found_and_changes_nothing(store: StateStore) -> None:
    fill(store)
    with store.transaction() as st:
        before = (st.leads(), st.queued(), st.suppressed(), st.notices(), st.rejects())
    erased = store.erase("nobody@customer.test", T0)
    assert not erased.found and erased.removed == {} and erased.redacted == {}
    with store.transaction() as st:
        assert (st.leads(), st.queued(), st.suppressed(), st.notices(), st.rejects()) == before


def test_purge_archive_removes_leads_closed_before_the_cut_only(store: StateStore) -> None:
    # Arrived long ago but closed late: its age counts from the close.
    long_open = lead("long@customer.test", arrived=T0 - 300 * D).end(T0 + 5 * D, Ended.REPLIED)
    old = lead("old@customer.test").end(T0, Ended.NO_RESPONSE)
    newer = lead("new@customer.test").end(T0 + 10 * D, Ended.STOPPED)
    with store.transaction() as st:
        for x in (long_open, old, newer):
            st.put_lead(x, None)
    with store.transaction() as st:
        st.archive_closed(T0 + 60 * D)
    assert store.purge_archive(T0 + 5 * D) == 1  # "old" only; "long" closed exactly then
    assert [x.address for x in store.archived()] == ["long@customer.test", "new@customer.test"]
    assert store.purge_archive(T0 + 5 * D) == 0
    with store.transaction():  # inside a transaction it joins it, as the daemon calls it
        assert store.purge_archive(T0 + 11 * D) == 2
    assert list(store.archived()) == []


def test_purge_of_an_empty_archive_is_nothing(store: StateStore) -> None:
    assert store.purge_archive(T0) == 0


# -- the file store: no trace in its files ---------------------------------------------------


def traces(folder: Path, address: str, skip: tuple[Path, ...] = ()) -> list[str]:
    """Every file of ``folder`` that holds ``address``: its bytes (any case), or once a
    stored message's parts are decoded (base64, quoted-printable, RFC 2047 words)."""
    from inboxwatch.adapters.erasure import message_mentions

    needle = address.lower().encode()
    found = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p not in skip):
        data = path.read_bytes()
        if needle in data.lower() or needle.replace(b"@", b"=40") in data.lower():
            found.append(f"{path.name}: bytes")
            continue
        for s in _json_strings(data):
            if "\n" in s and message_mentions(s, address):
                found.append(f"{path.name}: in a stored message")
                break
    return found


def _json_strings(data: bytes) -> Iterator[str]:
    text = data.decode("utf-8", "replace")
    docs: list[Any] = []
    for chunk in (text, *text.splitlines()):
        for body in (chunk, chunk.split(" ", 2)[-1]):  # a journal line: "crc len json"
            try:
                docs.append(json.loads(body))
            except ValueError:
                continue
    stack = docs
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            yield v
        elif isinstance(v, dict):
            stack += [*v.keys(), *v.values()]
        elif isinstance(v, list):
            stack += v


def test_the_trace_check_finds_an_address_only_a_decoded_message_shows(tmp_path: Path) -> None:
    raw = b64_message(f"Waiting for you: Ann <{ANN}>")
    assert ANN.encode() not in raw.lower()
    (tmp_path / "state.json").write_text(json.dumps({"outbox": {"1": {"raw": raw.decode()}}}))
    assert traces(tmp_path, ANN) == ["state.json: in a stored message"]


def test_no_file_of_the_state_holds_the_address_after_erase(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    store = TinyDbStore.open(path)
    fill(store, JO)
    with store.transaction() as st:
        st.put_lead(lead("old@customer.test", subject=ANN).end(T0 - 40 * D, Ended.STOPPED), None)
        st.put_lead(lead(ANN, arrived=T0 - 90 * D).end(T0 - 60 * D, Ended.STOPPED), None)
    with store.transaction() as st:
        st.archive_closed(T0)  # Ann's first enquiry goes to the archive
    with store.transaction() as st:  # and she came back (her key is in the journal again)
        st.put_lead(lead(ANN, arrived=T0), T0 + D)
    assert traces(tmp_path, ANN)  # the check sees what is there

    store.erase(ANN, T0 + D)
    assert traces(tmp_path, ANN) == []
    assert traces(tmp_path, JO)  # the others are all there
    reopened = TinyDbStore.open(path, readonly=True)
    with reopened.transaction() as st:
        assert st.lead(ANN) is None and st.lead(JO) is not None
    assert [x.address for x in reopened.archived()] == ["old@customer.test"]


def test_a_second_process_does_not_write_erased_rows_back(tmp_path: Path) -> None:
    """The daemon's store is open (its rows in memory) while `forget` runs in another
    process: at its next transaction it reads the new files, and its writes after that
    carry none of the erased rows."""
    path = tmp_path / "state.json"
    daemon = TinyDbStore.open(path)
    fill(daemon, JO)
    with daemon.transaction() as st:
        assert st.lead(ANN) is not None  # loaded in the daemon's memory
    TinyDbStore.open(path).erase(ANN, T0 + H)
    with daemon.transaction() as st:
        assert st.lead(ANN) is None
        st.put_lead(lead("new@customer.test"), T0 + D)  # a write of the daemon's own
        st.set_marker("heard", "now")
    with daemon.transaction() as st:  # a compaction, as the daemon's own would be
        daemon.compact()
    assert traces(tmp_path, ANN) == []
    with TinyDbStore.open(path, readonly=True).transaction() as st:
        assert st.lead("new@customer.test") is not None and st.lead(ANN) is None
