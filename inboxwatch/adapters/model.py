"""The state in memory, loaded once: rows by table and key, the indexes reads need, and
the record of what the open transaction changed.

Why: the daemon's reads (a lead, what is due, what is queued, who is known) must cost
what they return, not what the state holds, and a transaction's write must cost what it
changed. So the rows stay in memory between transactions (the file store catches up
with other processes' journal records instead of re-reading), indexes follow each row
change (wake times, Message-IDs, pending outbox items, ended leads), and a transaction
changes rows in place while remembering each row's value before it: the end of the
transaction hands the changed rows to the journal, or puts the old values back.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from inboxwatch.adapters.journal import Change
from inboxwatch.core.lead import Automation, Lead, message_ids

Row = dict[str, Any]
Data = dict[str, dict[str, Any]]

#: Each table and the field that keys its rows.
TABLES = {
    "leads": "address",
    "wakes": "address",
    "outbox": "id",
    "acks": "address",
    "suppressed": "address",
    "cursors": "stream",
    "rejects": "ref",
    "ours": "id",
    "notices": "key",
    "markers": "name",
}


class Wakes:
    """Wake times in order, so ``due`` reads only the leads it returns."""

    def __init__(self) -> None:
        self.at: dict[str, datetime] = {}
        self.order: list[tuple[datetime, str]] = []

    def set(self, address: str, at: datetime | None) -> None:
        old = self.at.pop(address, None)
        if old is not None:
            del self.order[bisect.bisect_left(self.order, (old, address))]
        if at is not None:
            self.at[address] = at
            bisect.insort(self.order, (at, address))

    def due(self, before: datetime) -> list[str]:
        end = bisect.bisect_right(self.order, (before, "\U0010ffff"))
        return [a for _, a in self.order[:end]]

    def first(self) -> datetime | None:
        return self.order[0][0] if self.order else None


class Model:
    """Every table's rows (JSON values, as the files hold them) plus derived indexes."""

    def __init__(self) -> None:
        self.meta: Row = {}
        self.tables: dict[str, dict[str, Row]] = {name: {} for name in TABLES}
        #: Leads parsed from their rows, on first use (parsing times is not free).
        self.parsed: dict[str, Lead] = {}
        self.wakes = Wakes()
        self.by_mid: dict[str, str] = {}
        self.ended: set[str] = set()
        #: Pending outbox items: id → place in the queue.
        self.pending: dict[str, int] = {}
        self.last_seq = 0
        #: (table, key) → the row before the open transaction touched it (None: absent).
        self._undo: dict[tuple[str, str], Row | None] | None = None

    # -- loading --------------------------------------------------------------------------
    def load(self, data: Data) -> None:
        """Replace everything with a snapshot (TinyDB layout: rows in doc-id order)."""
        self.__init__()  # type: ignore[misc]
        self.meta = dict(next(iter(data.get("meta", {}).values()), {}))
        for table, key in TABLES.items():
            docs = data.get(table, {})
            for doc_id in sorted(docs, key=_doc_order):
                row = docs[doc_id]
                self._set(table, str(row[key]), row)

    def replay(self, records: Iterable[list[Change]]) -> None:
        """Journal records written by any process, applied in order (whole rows: a record
        applied twice leaves the same state)."""
        for changes in records:
            for table, key, row in changes:
                if table in self.tables:
                    self._set(table, key, row)

    def snapshot(self, meta: Row) -> Data:
        data: Data = {"meta": {"1": meta}}
        for table, rows in self.tables.items():
            data[table] = {str(i): row for i, row in enumerate(rows.values(), 1)}
        return data

    # -- rows -----------------------------------------------------------------------------
    def get(self, table: str, key: str) -> Row | None:
        return self.tables[table].get(key)

    def rows(self, table: str) -> dict[str, Row]:
        """The live table: read it, never change it (use :meth:`put`/:meth:`remove`)."""
        return self.tables[table]

    def put(self, table: str, row: Row) -> None:
        key = str(row[TABLES[table]])
        old = self.tables[table].get(key)
        if old == row:
            return  # unchanged: nothing to write (a rewake puts every lead, mostly as it was)
        self._touch(table, key, old)
        self._set(table, key, row)

    def remove(self, table: str, key: str) -> bool:
        old = self.tables[table].get(key)
        if old is None:
            return False
        self._touch(table, key, old)
        self._set(table, key, None)
        return True

    # -- transactions ---------------------------------------------------------------------
    def begin(self) -> None:
        self._undo = {}

    def changes(self) -> list[Change]:
        """The rows the open transaction changed, as they are now, in the order touched."""
        assert self._undo is not None
        out: list[Change] = []
        for (table, key), old in self._undo.items():
            now = self.tables[table].get(key)
            if now != old:
                out.append((table, key, now))
        return out

    def commit(self) -> None:
        self._undo = None

    def rollback(self) -> None:
        undo, self._undo = self._undo or {}, None
        for (table, key), old in reversed(undo.items()):
            self._set(table, key, old)

    def _touch(self, table: str, key: str, old: Row | None) -> None:
        if self._undo is not None and (table, key) not in self._undo:
            self._undo[(table, key)] = old

    # -- indexes --------------------------------------------------------------------------
    def _set(self, table: str, key: str, row: Row | None) -> None:
        """The one place rows change: the indexes follow."""
        rows = self.tables[table]
        old = rows.get(key)
        if row is None:
            rows.pop(key, None)
        else:
            rows[key] = row
        if table == "leads":
            self.parsed.pop(key, None)
            for mid in message_ids(old or {}):
                if self.by_mid.get(mid) == key:
                    del self.by_mid[mid]
            for mid in message_ids(row or {}):
                self.by_mid[mid] = key
            if row is not None and row.get("automation") == Automation.ENDED:
                self.ended.add(key)
            else:
                self.ended.discard(key)
        elif table == "wakes":
            self.wakes.set(key, datetime.fromisoformat(row["at"]) if row else None)
        elif table == "outbox":
            if row is not None and row.get("status") == "pending":
                self.pending[key] = int(row["seq"])
            else:
                self.pending.pop(key, None)
            if row is not None:
                self.last_seq = max(self.last_seq, int(row.get("seq", 0)))

    def lead(self, key: str) -> Lead | None:
        if (lead := self.parsed.get(key)) is None:
            row = self.tables["leads"].get(key)
            if row is None:
                return None
            lead = self.parsed[key] = Lead.from_dict(row)
        return lead


def _doc_order(doc_id: str) -> tuple[int, str]:
    return (int(doc_id), "") if doc_id.isdigit() else (0, doc_id)
