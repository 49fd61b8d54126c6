"""One suite for every StateStore: the file store and its in-memory twin must agree.

Times are whole milliseconds, the precision the file keeps.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from inboxwatch.adapters.memory_store import MemoryStore
from inboxwatch.adapters.ports import Rejected, StateStore
from inboxwatch.adapters.tinydb_store import TinyDbStore
from inboxwatch.core.lead import Automation, Conversation, Ended, Event, Lead
from inboxwatch.core.queue import OutboxItem, Purpose, Status

T0 = datetime(2024, 5, 6, 9, 30, 15, 123000, tzinfo=UTC)
H = timedelta(hours=1)
D = timedelta(days=1)


@pytest.fixture(params=["tinydb", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StateStore]:
    if request.param == "tinydb":
        yield TinyDbStore.open(tmp_path / "state.json")
    else:
        yield MemoryStore()


def lead(address: str = "lea@customer.test", **kw: Any) -> Lead:
    return dataclasses.replace(Lead(address, "Lea", "web-form", "site", "default", T0), **kw)


def full_lead() -> Lead:
    """Every field away from its default, so a field the store drops shows."""
    return Lead(
        address="lea@customer.test",
        name="Lea Lead",
        source="web-form",
        rule="site",
        sequence="standard",
        arrived=T0,
        enquiry_id="<e1@customer.test>",
        subject="Need a quote",
        thread_subject="Re: Need a quote",
        thread=("<e1@customer.test>", "<a1@shop.test>"),
        answers_own_message=False,
        phone="+49 30 1234",
        fields={"size": "large", "colour": "grün"},
        enquiry_ref="77:1042",
        enquiry_flagged=True,
        inbound=("<r1@customer.test>",),
        automation=Automation.ENDED,
        ended=Ended.REPLIED,
        hold_until=T0 + 2 * D,
        dormant=True,
        conversation=Conversation.WAITING_THEM,
        steps_done={"ack": "2024-05-06T09:31:00.000+00:00"},
        last_email_at=T0 + H,
        acked=T0 + timedelta(seconds=40),
        first_response=T0 + timedelta(seconds=40),
        undeliverable=True,
        simulated=True,
        events=(Event(T0, "arrived"), Event(T0 + H, "acknowledged", "day 0 ✓")),
    )


def item(item_id: str, **kw: Any) -> OutboxItem:
    base = OutboxItem(
        id=item_id,
        purpose=Purpose.ACK,
        lead="lea@customer.test",
        step="ack",
        mail_from="shop@shop.test",
        rcpt="lea@customer.test",
        raw="Subject: Grüße\r\n\r\nHallo\r\n".encode(),
        created=T0,
        next_try=T0,
    )
    return dataclasses.replace(base, **kw)


# -- leads ----------------------------------------------------------------------------------


def test_a_lead_comes_back_with_every_field(store: StateStore) -> None:
    original = full_lead()
    with store.transaction() as st:
        st.put_lead(original, None)
    with store.transaction() as st:
        assert st.lead("lea@customer.test") == original
        assert st.lead("Lea@Customer.TEST") == original
        assert st.leads() == [original]
        assert st.lead("nobody@customer.test") is None


def test_reads_see_earlier_writes_of_the_same_transaction(store: StateStore) -> None:
    with store.transaction() as st:
        st.put_lead(lead(), T0 + H)
        assert st.lead("lea@customer.test") == lead()
        st.put_lead(lead(name="Lea B."), T0 + 2 * H)
        assert [x.name for x in st.leads()] == ["Lea B."]
        assert st.next_wake() == T0 + 2 * H
        st.put_outbox(item("<1@shop.test>"))
        assert st.outbox_item("<1@shop.test>") == item("<1@shop.test>")
        assert st.queued() == [item("<1@shop.test>")]
        st.suppress("x@customer.test", "opted out", T0)
        assert st.suppressed() == {"x@customer.test"}
        st.set_cursor("inbox", "7:10")
        assert st.cursor("inbox") == "7:10"
        st.record_ack("lea@customer.test", T0)
        assert st.last_ack("lea@customer.test") == T0


def test_an_exception_inside_a_transaction_changes_nothing(store: StateStore) -> None:
    with store.transaction() as st:
        st.put_lead(lead(), T0 + H)
        st.put_outbox(item("<1@shop.test>"))
        st.set_cursor("inbox", "7:10")
    with pytest.raises(RuntimeError), store.transaction() as st:
        st.put_lead(lead(name="Changed"), None)
        st.put_lead(lead("new@customer.test"), T0)
        st.put_outbox(item("<1@shop.test>").sent(T0))
        st.put_outbox(item("<2@shop.test>"))
        st.set_cursor("inbox", "7:99")
        st.suppress("lea@customer.test", "opted out", T0)
        st.record_ack("lea@customer.test", T0)
        st.reject("7:11", "bad", T0)
        st.add_ours("<o@shop.test>", T0)
        st.put_lead(lead("old@customer.test", automation=Automation.ENDED), None)
        assert st.archive_closed(T0 + 60 * D) == 1
        raise RuntimeError("boom")
    with store.transaction() as st:
        assert st.leads() == [lead()]
        assert st.next_wake() == T0 + H
        assert st.queued() == [item("<1@shop.test>")]
        assert st.outbox_item("<2@shop.test>") is None
        assert st.cursor("inbox") == "7:10"
        assert st.suppressed() == frozenset()
        assert st.last_ack("lea@customer.test") is None
        assert st.rejects() == []
        assert st.known().ours == frozenset()
    assert list(store.archived()) == []


def test_a_transaction_inside_another_joins_it(store: StateStore) -> None:
    with pytest.raises(RuntimeError), store.transaction() as outer:
        with store.transaction() as inner:
            inner.put_lead(lead(), None)
        assert outer.lead("lea@customer.test") == lead()
        raise RuntimeError("boom")
    with store.transaction() as st:
        assert st.leads() == []


# -- wake index -----------------------------------------------------------------------------


def test_due_returns_leads_whose_wake_has_come_in_wake_order(store: StateStore) -> None:
    with store.transaction() as st:
        assert st.next_wake() is None
        assert st.due(T0 + 100 * D) == []
        st.put_lead(lead("c@customer.test"), T0 + 3 * H)
        st.put_lead(lead("a@customer.test"), T0 + 2 * H)
        st.put_lead(lead("b@customer.test"), T0 + H)
        st.put_lead(lead("never@customer.test"), None)
    with store.transaction() as st:
        assert st.next_wake() == T0 + H
        assert st.due(T0) == []
        assert [x.address for x in st.due(T0 + H)] == ["b@customer.test"]  # at counts
        assert [x.address for x in st.due(T0 + 10 * H)] == [
            "b@customer.test",
            "a@customer.test",
            "c@customer.test",
        ]


def test_a_wake_moves_or_goes_when_the_lead_is_put_again(store: StateStore) -> None:
    with store.transaction() as st:
        st.put_lead(lead("a@customer.test"), T0 + H)
        st.put_lead(lead("b@customer.test"), T0 + 2 * H)
    with store.transaction() as st:
        st.put_lead(lead("a@customer.test"), T0 + 5 * H)  # later
        assert st.next_wake() == T0 + 2 * H
        st.put_lead(lead("b@customer.test"), None)  # cleared
        assert st.next_wake() == T0 + 5 * H
    with store.transaction() as st:
        assert st.next_wake() == T0 + 5 * H
        assert st.due(T0 + 4 * H) == []
        assert [x.address for x in st.due(T0 + 5 * H)] == ["a@customer.test"]
        st.put_lead(lead("a@customer.test"), None)
    with store.transaction() as st:
        assert st.next_wake() is None
        assert len(st.leads()) == 2


def test_archived_leads_leave_the_wake_index(store: StateStore) -> None:
    with store.transaction() as st:
        st.put_lead(lead("gone@customer.test", automation=Automation.ENDED), T0 + H)
        st.put_lead(lead("stays@customer.test"), T0 + 2 * H)
        assert st.archive_closed(T0 + 30 * D) == 1
        assert st.next_wake() == T0 + 2 * H
    with store.transaction() as st:
        assert st.next_wake() == T0 + 2 * H
        assert [x.address for x in st.due(T0 + 3 * H)] == ["stays@customer.test"]


# -- lookups --------------------------------------------------------------------------------


def test_known_maps_addresses_and_message_ids_to_leads(store: StateStore) -> None:
    with store.transaction() as st:
        st.put_lead(full_lead(), None)
        st.put_lead(lead("bo@customer.test", thread=("<b1@shop.test>",)), None)
        st.suppress("Spam@Customer.test", "bounced", T0)
        st.add_ours("<alert@shop.test>", T0)
    with store.transaction() as st:
        known = st.known()
    assert dict(known.by_address) == {
        "lea@customer.test": "lea@customer.test",
        "bo@customer.test": "bo@customer.test",
    }
    assert dict(known.by_message_id) == {
        "<e1@customer.test>": "lea@customer.test",
        "<a1@shop.test>": "lea@customer.test",
        "<r1@customer.test>": "lea@customer.test",
        "<b1@shop.test>": "bo@customer.test",
    }
    assert known.suppressed == {"spam@customer.test"}
    assert known.ours == {"<alert@shop.test>"}


def test_suppression_ignores_case_and_can_be_undone(store: StateStore) -> None:
    with store.transaction() as st:
        st.suppress("Lea@Customer.test", "opted out", T0)
    with store.transaction() as st:
        assert st.suppressed() == {"lea@customer.test"}
        assert st.unsuppress("LEA@customer.test") is True
        assert st.unsuppress("lea@customer.test") is False
    with store.transaction() as st:
        assert st.suppressed() == frozenset()


def test_acknowledgements(store: StateStore) -> None:
    with store.transaction() as st:
        assert st.last_ack("lea@customer.test") is None
        st.record_ack("lea@customer.test", T0)
        st.record_ack("lea@customer.test", T0 + H)
    with store.transaction() as st:
        assert st.last_ack("lea@customer.test") == T0 + H
        assert st.last_ack("bo@customer.test") is None


def test_cursors_are_kept_per_stream_as_given(store: StateStore) -> None:
    with store.transaction() as st:
        assert st.cursor("inbox") is None
        st.set_cursor("inbox", "7:10")
        st.set_cursor("sent", "opaque/any thing")
        st.set_cursor("inbox", "7:12")
    with store.transaction() as st:
        assert st.cursor("inbox") == "7:12"
        assert st.cursor("sent") == "opaque/any thing"


def test_rejects_are_listed_in_order(store: StateStore) -> None:
    with store.transaction() as st:
        st.reject("7:3", "no From", T0)
        st.reject("7:1", "MessageError: bad MIME", T0 + H)
    with store.transaction() as st:
        assert st.rejects() == [
            Rejected("7:3", "no From", T0),
            Rejected("7:1", "MessageError: bad MIME", T0 + H),
        ]


# -- outbox ---------------------------------------------------------------------------------


def test_an_outbox_item_comes_back_with_every_field(store: StateStore) -> None:
    done = dataclasses.replace(
        item("<2@shop.test>", purpose=Purpose.OWNER_ALERT, lead="", step="alert", attempts=3),
        error="451 try later",
        next_try=T0 + H,
    ).sent(T0 + 2 * H)
    with store.transaction() as st:
        st.put_outbox(item("<1@shop.test>"))
        st.put_outbox(done)
    with store.transaction() as st:
        assert st.outbox_item("<1@shop.test>") == item("<1@shop.test>")
        assert st.outbox_item("<2@shop.test>") == done
        assert st.outbox_item("<3@shop.test>") is None


def test_queued_keeps_queue_order_across_transactions(store: StateStore) -> None:
    with store.transaction() as st:
        for n in (5, 1, 3):
            st.put_outbox(item(f"<{n}@shop.test>", created=T0 + n * H))
    with store.transaction() as st:
        st.put_outbox(item("<0@shop.test>"))
        # Updating an item (a retry) keeps its place; leaving PENDING drops it from the queue.
        st.put_outbox(dataclasses.replace(item("<5@shop.test>", created=T0 + 5 * H), attempts=1))
        st.put_outbox(item("<1@shop.test>", created=T0 + H).cancelled())
    with store.transaction() as st:
        assert [i.id for i in st.queued()] == ["<5@shop.test>", "<3@shop.test>", "<0@shop.test>"]
        assert st.queued()[0].attempts == 1
        assert all(i.status is Status.PENDING for i in st.queued())


def test_sent_times_are_those_after_since(store: StateStore) -> None:
    with store.transaction() as st:
        st.put_outbox(item("<1@shop.test>").sent(T0))
        st.put_outbox(item("<2@shop.test>").sent(T0 + H))
        st.put_outbox(item("<3@shop.test>").sent(T0 + 2 * H))
        st.put_outbox(item("<4@shop.test>").failed("550 no such user"))
        st.put_outbox(item("<5@shop.test>"))
    with store.transaction() as st:
        assert sorted(st.sent_times(T0)) == [T0 + H, T0 + 2 * H]
        assert st.sent_times(T0 + 2 * H) == []


# -- housekeeping ---------------------------------------------------------------------------


def test_archive_closed_moves_leads_ended_thirty_days_ago(store: StateStore) -> None:
    ended = lead("old@customer.test").end(T0, Ended.NO_RESPONSE)
    recent = lead("recent@customer.test").end(T0 + D, Ended.REPLIED)
    with store.transaction() as st:
        st.put_lead(ended, None)
        st.put_lead(recent, None)
        st.put_lead(lead("active@customer.test"), T0 + 100 * D)  # arrived long ago, still active
    with store.transaction() as st:
        assert st.archive_closed(T0 + 30 * D - timedelta(milliseconds=1)) == 0
        assert st.archive_closed(T0 + 30 * D) == 1
        assert st.lead("old@customer.test") is None
    with store.transaction() as st:
        assert {x.address for x in st.leads()} == {"recent@customer.test", "active@customer.test"}
        assert "old@customer.test" not in st.known().by_address
    assert list(store.archived()) == [ended]
    with store.transaction() as st:
        assert st.archive_closed(T0 + 31 * D) == 1
    assert list(store.archived()) == [ended, recent]


def test_prune_forgets_old_sent_items_acks_own_ids_and_rejects(store: StateStore) -> None:
    now = T0 + 100 * D
    with store.transaction() as st:
        st.put_outbox(item("<old-sent@shop.test>").sent(now - 3 * D))
        st.put_outbox(item("<new-sent@shop.test>").sent(now - D))
        st.put_outbox(item("<old-cancelled@shop.test>", created=now - 3 * D).cancelled())
        st.put_outbox(item("<old-pending@shop.test>", created=now - 50 * D))
        st.record_ack("old@customer.test", now - 61 * D)
        st.record_ack("new@customer.test", now - 59 * D)
        st.add_ours("<old@shop.test>", now - 61 * D)
        st.add_ours("<new@shop.test>", now - 59 * D)
        st.reject("7:1", "old", now - 61 * D)
        st.reject("7:2", "new", now - 59 * D)
        st.suppress("x@customer.test", "opted out", now - 400 * D)
    with store.transaction() as st:
        st.prune(now)
    with store.transaction() as st:
        assert st.outbox_item("<old-sent@shop.test>") is None
        assert st.outbox_item("<old-cancelled@shop.test>") is None
        assert st.outbox_item("<new-sent@shop.test>") is not None
        assert [i.id for i in st.queued()] == ["<old-pending@shop.test>"]
        assert st.last_ack("old@customer.test") is None
        assert st.last_ack("new@customer.test") == now - 59 * D
        assert st.known().ours == {"<new@shop.test>"}
        assert [r.ref for r in st.rejects()] == ["7:2"]
        assert st.suppressed() == {"x@customer.test"}  # a suppression is for good


def test_a_new_store_is_not_simulated(store: StateStore) -> None:
    assert store.simulated is False


def test_markers_and_notices_round_trip(store: StateStore) -> None:
    from inboxwatch.core.actions import Notice

    at = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)
    with store.transaction() as state:
        assert state.marker("digest") is None
        state.set_marker("digest", "2027-03-01")
        state.put_notice(Notice("smtp-paused", "quota", at, at + timedelta(hours=24)))
    with store.transaction() as state:
        assert state.marker("digest") == "2027-03-01"
        (notice,) = state.notices()
        assert (notice.key, notice.until) == ("smtp-paused", at + timedelta(hours=24))
        assert state.clear_notice("smtp-paused") and not state.clear_notice("smtp-paused")
    with store.transaction() as state:
        assert state.notices() == []


def test_maintain_changes_nothing_a_transaction_sees(store: StateStore) -> None:
    with store.transaction() as st:
        st.put_lead(full_lead(), T0 + H)
        st.put_outbox(item("<m@shop.test>"))
    store.maintain()
    with store.transaction() as st:
        assert st.lead("lea@customer.test") == full_lead()
        assert [i.id for i in st.queued()] == ["<m@shop.test>"]
        assert st.next_wake() == T0 + H
