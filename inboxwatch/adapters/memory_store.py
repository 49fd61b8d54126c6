"""The state in plain dicts: the store's twin for tests of the core and the service.

It keeps typed values (no JSON), so it is fast and shows what the file store must do;
``tests/contract/`` holds both to the same behaviour. Unlike the file it keeps times to
the microsecond (the file keeps milliseconds).
"""

from __future__ import annotations

import contextlib
import copy
import threading
from collections.abc import Iterator
from datetime import datetime

from inboxwatch.adapters.erasure import Erased, erase_tables, purge_lead_list
from inboxwatch.adapters.model_state import ARCHIVE_AFTER, SEEN_KEEP, SENT_KEEP
from inboxwatch.adapters.ports import Rejected, State, StateStore
from inboxwatch.core.actions import Notice
from inboxwatch.core.classify import Known
from inboxwatch.core.lead import Automation, Lead, message_ids
from inboxwatch.core.queue import OutboxItem, Status


class _Tables(State):
    """One copy of everything; a transaction changes its own copy and replaces the store's."""

    def __init__(self) -> None:
        self.active: dict[str, Lead] = {}
        self.wakes: dict[str, datetime] = {}
        self.suppressions: dict[str, tuple[str, datetime]] = {}
        self.acks: dict[str, datetime] = {}
        self.cursors: dict[str, str] = {}
        self.rejected: dict[str, Rejected] = {}
        self.ours: dict[str, datetime] = {}
        #: Insertion order is queue order: replacing an item keeps its place.
        self.outbox: dict[str, OutboxItem] = {}
        self.notice_board: dict[str, Notice] = {}
        self.markers: dict[str, str] = {}
        self.archive: list[Lead] = []

    def copy(self) -> _Tables:
        new = copy.copy(self)
        for name, value in vars(self).items():
            setattr(new, name, copy.copy(value))  # the values are immutable: containers suffice
        return new

    def lead(self, address: str) -> Lead | None:
        return self.active.get(address.lower())

    def leads(self) -> list[Lead]:
        return list(self.active.values())

    def put_lead(self, lead: Lead, wake: datetime | None) -> None:
        self.active[lead.address] = lead
        self.wakes.pop(lead.address, None)
        if wake is not None:
            self.wakes[lead.address] = wake

    def due(self, before: datetime) -> list[Lead]:
        order = sorted((t, a) for a, t in self.wakes.items() if t <= before)
        return [self.active[a] for _, a in order if a in self.active]

    def next_wake(self) -> datetime | None:
        return min(self.wakes.values(), default=None)

    def known(self) -> Known:
        by_mid = {
            mid: lead.address
            for lead in self.active.values()
            for mid in message_ids(
                {"thread": lead.thread, "inbound": lead.inbound, "enquiry_id": lead.enquiry_id}
            )
        }
        by_address = {a: a for a in self.active}
        return Known(by_address, by_mid, self.suppressed(), frozenset(self.ours))

    def suppressed(self) -> frozenset[str]:
        return frozenset(self.suppressions)

    def suppress(self, address: str, why: str, at: datetime) -> None:
        self.suppressions[address.lower()] = (why, at)

    def unsuppress(self, address: str) -> bool:
        return self.suppressions.pop(address.lower(), None) is not None

    def last_ack(self, address: str) -> datetime | None:
        return self.acks.get(address)

    def record_ack(self, address: str, at: datetime) -> None:
        self.acks[address] = at

    def cursor(self, stream: str) -> str | None:
        return self.cursors.get(stream)

    def set_cursor(self, stream: str, cursor: str) -> None:
        self.cursors[stream] = cursor

    def reject(self, ref: str, error: str, at: datetime) -> None:
        self.rejected[ref] = Rejected(ref, error, at)

    def rejects(self) -> list[Rejected]:
        return list(self.rejected.values())

    def add_ours(self, message_id: str, at: datetime) -> None:
        self.ours[message_id] = at

    def outbox_item(self, item_id: str) -> OutboxItem | None:
        return self.outbox.get(item_id)

    def put_outbox(self, item: OutboxItem) -> None:
        self.outbox[item.id] = item

    def queued(self) -> list[OutboxItem]:
        return [i for i in self.outbox.values() if i.status is Status.PENDING]

    def sent_times(self, since: datetime) -> list[datetime]:
        return [
            i.sent_at
            for i in self.outbox.values()
            if i.status is Status.SENT and i.sent_at is not None and i.sent_at > since
        ]

    def marker(self, name: str) -> str | None:
        return self.markers.get(name)

    def set_marker(self, name: str, value: str) -> None:
        self.markers[name] = value

    def notices(self) -> list[Notice]:
        return list(self.notice_board.values())

    def put_notice(self, notice: Notice) -> None:
        self.notice_board[notice.key] = notice

    def clear_notice(self, key: str) -> bool:
        return self.notice_board.pop(key, None) is not None

    def archive_closed(self, now: datetime) -> int:
        gone = [
            lead
            for lead in self.active.values()
            if lead.automation is Automation.ENDED
            and now - (lead.events[-1].at if lead.events else lead.arrived) >= ARCHIVE_AFTER
        ]
        for lead in gone:
            self.archive.append(lead)
            del self.active[lead.address]
            self.wakes.pop(lead.address, None)
        return len(gone)

    def prune(self, now: datetime) -> None:
        for table in (self.ours, self.acks):
            for key in [k for k, at in table.items() if at < now - SEEN_KEEP]:
                del table[key]
        for ref in [r for r, rej in self.rejected.items() if rej.at < now - SEEN_KEEP]:
            del self.rejected[ref]
        for item_id in [
            i.id
            for i in self.outbox.values()
            if i.status is not Status.PENDING and (i.sent_at or i.created) < now - SENT_KEEP
        ]:
            del self.outbox[item_id]


class MemoryStore(StateStore):
    """A :class:`~inboxwatch.adapters.ports.StateStore` that lives as long as the object."""

    def __init__(self, *, simulated: bool = False) -> None:
        self._simulated = simulated
        self._tables = _Tables()
        self._open: _Tables | None = None
        #: Transactions of two threads take turns, as the file's lock makes them (a test
        #: reads the state while a daemon thread runs); one thread's nested ones join.
        self._lock = threading.RLock()

    @property
    def simulated(self) -> bool:
        return self._simulated

    @contextlib.contextmanager
    def transaction(self) -> Iterator[State]:
        """Works on a copy, kept only if the body ends without an exception, as the file's.

        A transaction inside another joins it, as the file store's does.
        """
        with self._lock:
            if self._open is not None:
                yield self._open
                return
            self._open = self._tables.copy()
            try:
                yield self._open
                self._tables = self._open
            finally:
                self._open = None

    def archived(self) -> Iterator[Lead]:
        return iter(list(self._tables.archive))

    def maintain(self) -> None:
        """Nothing to fold: the tables are all there is."""

    def erase(self, address: str, now: datetime, *, keep_suppression: bool = False) -> Erased:
        """Joins an open transaction, as the file store's does; else one of its own."""
        with self.transaction():
            assert self._open is not None
            return erase_tables(self._open, address, now, keep_suppression)

    def purge_archive(self, closed_before: datetime) -> int:
        with self.transaction():
            assert self._open is not None
            before = len(self._open.archive)
            self._open.archive = purge_lead_list(self._open.archive, closed_before)
            return before - len(self._open.archive)
