"""What only the file store has: a file that outlives the process, its versions, its mode."""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from inboxwatch.adapters.ports import Rejected, State
from inboxwatch.adapters.statefile import read_json, write_json_atomic
from inboxwatch.adapters.tinydb_store import TinyDbStore
from inboxwatch.core.lead import Ended, Event
from inboxwatch.core.queue import Purpose, Status
from inboxwatch.errors import StateError

from .test_store import T0, D, H, full_lead, item, lead


def test_everything_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    store = TinyDbStore.open(path, simulated=True)
    with store.transaction() as st:
        st.put_lead(full_lead(), T0 + H)
        st.put_lead(lead("bo@customer.test"), T0 + 2 * H)
        st.put_outbox(item("<1@shop.test>"))
        st.put_outbox(item("<2@shop.test>").sent(T0))
        st.set_cursor("inbox", "7:10")
        st.suppress("x@customer.test", "opted out", T0)
        st.record_ack("lea@customer.test", T0)
        st.reject("7:3", "no From", T0)
        st.add_ours("<alert@shop.test>", T0)
        st.put_lead(lead("old@customer.test").end(T0, Ended.STOPPED), None)
        st.archive_closed(T0 + 30 * D)

    again = TinyDbStore.open(path, readonly=True)
    assert again.simulated is True
    with again.transaction() as st:
        assert st.lead("lea@customer.test") == full_lead()
        assert st.next_wake() == T0 + H
        assert [x.address for x in st.due(T0 + 2 * H)] == ["lea@customer.test", "bo@customer.test"]
        assert [i.id for i in st.queued()] == ["<1@shop.test>"]
        assert st.outbox_item("<2@shop.test>") == item("<2@shop.test>").sent(T0)
        assert st.sent_times(T0 - H) == [T0]
        assert st.cursor("inbox") == "7:10"
        assert st.suppressed() == {"x@customer.test"}
        assert st.last_ack("lea@customer.test") == T0
        assert st.rejects() == [Rejected("7:3", "no From", T0)]
        assert st.known().ours == {"<alert@shop.test>"}
    assert [x.address for x in again.archived()] == ["old@customer.test"]


def test_the_queue_order_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    with TinyDbStore.open(path).transaction() as st:
        st.put_outbox(item("<b@shop.test>"))
        st.put_outbox(item("<a@shop.test>"))
    with TinyDbStore.open(path).transaction() as st:
        st.put_outbox(item("<c@shop.test>"))
        st.put_outbox(item("<b@shop.test>", attempts=2))
    with TinyDbStore.open(path).transaction() as st:
        assert [i.id for i in st.queued()] == ["<b@shop.test>", "<a@shop.test>", "<c@shop.test>"]


def test_the_file_is_private(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    with TinyDbStore.open(path).transaction() as st:
        st.put_lead(lead(), None)
    assert path.stat().st_mode & 0o777 == 0o600


# -- versions -------------------------------------------------------------------------------


def ref(st: State, address: str) -> str:
    found = st.lead(address)
    assert found is not None
    return found.enquiry_ref


#: A lead row as version 1 wrote it: the enquiry's place as folder numbers.
V1_LEAD = {
    "address": "lea@customer.test",
    "name": "Lea",
    "source": "web-form",
    "rule": "site",
    "sequence": "default",
    "arrived": "2024-05-06T09:30:15.123+00:00",
    "enquiry_id": "<e1@customer.test>",
    "subject": "Need a quote",
    "thread_subject": "Need a quote",
    "thread": ["<e1@customer.test>"],
    "answers_own_message": True,
    "phone": "",
    "fields": {},
    "enquiry_uid": 1042,
    "enquiry_uidvalidity": 77,
    "enquiry_flagged": False,
    "inbound": [],
    "automation": "active",
    "ended": None,
    "hold_until": None,
    "dormant": False,
    "conversation": "waiting_us",
    "steps_done": {},
    "last_email_at": None,
    "acked": None,
    "first_response": None,
    "undeliverable": False,
    "simulated": False,
    "events": [{"at": "2024-05-06T09:30:15.123+00:00", "what": "arrived", "detail": ""}],
}


def v1_file() -> dict[str, Any]:
    """A state as the version-1 store wrote it (doc ids as TinyDB numbers them)."""
    row = {
        "purpose": "ack",
        "lead": "lea@customer.test",
        "step": "ack",
        "mail_from": "shop@shop.test",
        "rcpt": "lea@customer.test",
        "raw": "Subject: Hi\r\n\r\nHallo\r\n",
        "created": "2024-05-06T09:30:15.123+00:00",
        "next_try": "2024-05-06T09:30:15.123+00:00",
        "attempts": 0,
    }
    return {
        "meta": {
            "1": {"version": 1, "created": "2024-05-01T00:00:00.000+00:00", "simulated": False}
        },
        "leads": {
            "1": V1_LEAD,
            "2": {**V1_LEAD, "address": "web@customer.test", "enquiry_uid": 0},
        },
        "outbox": {
            "1": {**row, "id": "<1@shop.test>", "status": "sending", "save_sent": True},
            "2": {
                **row,
                "id": "<2@shop.test>",
                "status": "sent",
                "raw": "",
                "sent_at": "2024-05-06T09:31:00.000+00:00",
                "save_sent": True,
            },
            "3": {
                **row,
                "id": "<3@shop.test>",
                "purpose": "owner-alert",
                "status": "pending",
                "error": "451 later",
                "attempts": 2,
                "save_sent": False,
            },
        },
        "cursors": {
            "1": {"folder": "Posteingang", "uidvalidity": 77, "last_uid": 1050},
            "2": {"folder": "Gesendet", "uidvalidity": 5, "last_uid": 9},
        },
        "rejects": {
            "1": {
                "folder": "Posteingang",
                "uidvalidity": 77,
                "uid": 1043,
                "error": "x",
                "at": "2024-05-06T10:00:00.000+00:00",
            },
        },
        "suppressed": {
            "1": {
                "address": "x@customer.test",
                "why": "opted out",
                "at": "2024-05-06T10:00:00.000+00:00",
            }
        },
        "acks": {"1": {"address": "lea@customer.test", "at": "2024-05-06T09:31:00.000+00:00"}},
        "ours": {"1": {"id": "<alert@shop.test>", "at": "2024-05-06T09:31:00.000+00:00"}},
    }


def test_a_version_1_file_is_upgraded_on_open(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "state.json"
    write_json_atomic(path, v1_file())
    with caplog.at_level(logging.INFO, logger="inboxwatch"):
        store = TinyDbStore.open(path, inbox_folder="Posteingang")
        with store.transaction() as st:
            st.leads()
        TinyDbStore.open(path, inbox_folder="Posteingang")
    assert [r.getMessage() for r in caplog.records if "upgraded" in r.getMessage()] == [
        f"state file {path} upgraded from version 1 to 3 and saved "
        f"(the old file is kept as {path}.v1.bak)"
    ]
    assert read_json(path.with_name("state.json.v1.bak")) == v1_file()

    data = read_json(path)
    assert data["meta"]["1"]["version"] == 3
    assert all("enquiry_uid" not in r for r in data["leads"].values())
    assert all("save_sent" not in r for r in data["outbox"].values())
    with store.transaction() as st:
        assert st.lead("lea@customer.test") == lead(
            enquiry_id="<e1@customer.test>",
            subject="Need a quote",
            thread_subject="Need a quote",
            thread=("<e1@customer.test>",),
            enquiry_ref="77:1042",
            events=(Event(T0, "arrived"),),
        )
        assert ref(st, "web@customer.test") == ""
        assert st.next_wake() is None  # the daemon recomputes every wake on start
        queued = st.queued()
        assert [(i.id, i.status) for i in queued] == [
            ("<1@shop.test>", Status.PENDING),  # "sending" was never confirmed: send it
            ("<3@shop.test>", Status.PENDING),
        ]
        assert queued[0].raw == b"Subject: Hi\r\n\r\nHallo\r\n"
        assert queued[0].save_sent and not queued[1].save_sent
        assert (queued[1].purpose, queued[1].attempts, queued[1].error) == (
            Purpose.OWNER_ALERT,
            2,
            "451 later",
        )
        assert st.sent_times(T0) == [datetime.fromisoformat("2024-05-06T09:31:00.000+00:00")]
        assert st.cursor("inbox") == "77:1050"
        assert st.cursor("sent") == "5:9"
        assert st.rejects() == [
            Rejected("77:1043", "x", datetime.fromisoformat("2024-05-06T10:00:00.000+00:00"))
        ]
        assert st.suppressed() == {"x@customer.test"}
        assert st.known().ours == {"<alert@shop.test>"}
        assert st.last_ack("lea@customer.test") is not None
        # New items queue after the migrated ones.
        st.put_outbox(item("<4@shop.test>"))
        assert [i.id for i in st.queued()][-1] == "<4@shop.test>"


def test_the_inbox_cursor_is_found_by_the_folder_name_given(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    write_json_atomic(path, v1_file())
    with TinyDbStore.open(path, inbox_folder="INBOX").transaction() as st:
        # Neither folder is "INBOX": both count as Sent, the inbox starts afresh.
        assert st.cursor("inbox") is None


def test_a_readonly_open_upgrades_in_memory_only(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    write_json_atomic(path, v1_file())
    before = path.read_bytes()
    store = TinyDbStore.open(path, readonly=True, inbox_folder="Posteingang")
    with store.transaction() as st:
        assert ref(st, "lea@customer.test") == "77:1042"
        assert st.cursor("inbox") == "77:1050"
        assert [i.id for i in st.queued()] == ["<1@shop.test>", "<3@shop.test>"]
    with store.transaction() as st:
        assert st.cursor("sent") == "5:9"
    assert path.read_bytes() == before


@pytest.mark.parametrize("readonly", [False, True])
def test_a_file_from_a_newer_version_is_refused(tmp_path: Path, readonly: bool) -> None:
    path = tmp_path / "state.json"
    write_json_atomic(path, {"meta": {"1": {"version": 4}}, "leads": {}})
    before = path.read_bytes()
    with pytest.raises(StateError, match="newer inboxwatch"):
        TinyDbStore.open(path, readonly=readonly)
    assert path.read_bytes() == before
