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


#: Later than any ISO time: the oldest row of an empty table.
NEVER = "\uffff"


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


class DamagedRow(ValueError):
    """A row the current version cannot read (a hand edit, a bug): named for the error."""

    def __init__(self, table: str, key: str, error: Exception) -> None:
        super().__init__(f"{table} row {key!r}: {type(error).__name__}: {error}")
        self.table = table


def _lead(key: str, row: Row) -> Lead:
    try:
        return Lead.from_dict(row)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise DamagedRow("leads", key, exc) from None


def _mids(lead: Lead | None) -> Iterable[str]:
    if lead is None:
        return ()
    ids = {"thread": lead.thread, "inbound": lead.inbound, "enquiry_id": lead.enquiry_id}
    return message_ids(ids)


class Model:
    """Every table's rows (JSON values, as the files hold them) plus derived indexes.

    Leads are the exception: they are kept as :class:`Lead` objects only, parsed once
    when read from a file and turned back into rows only for the journal and snapshots
    (rows and objects both would hold every lead twice: ~40 MB more at 5,000 leads).
    """

    def __init__(self) -> None:
        self.meta: Row = {}
        self.tables: dict[str, dict[str, Any]] = {name: {} for name in TABLES}
        self.wakes = Wakes()
        self.by_mid: dict[str, str] = {}
        self.ended: set[str] = set()
        #: Pending outbox items: id → place in the queue.
        self.pending: dict[str, int] = {}
        #: The items made from pending rows, with the row each was made from (a cache for
        #: ``ModelState.queued``).
        self.pending_items: dict[str, tuple[Row, Any]] = {}
        self.last_seq = 0
        #: When each sent outbox item went out (the caps read them every tick).
        self.sent_at: dict[str, datetime] = {}
        #: A time no older than the oldest row of "ours", "acks", "rejects" and finished
        #: "outbox" items (ISO text): pruning skips a table with nothing old enough.
        self.oldest: dict[str, str] = {}
        #: Counts changes to what classification looks up (leads, suppressions, own
        #: Message-IDs): a lookup built at one count serves until the next change.
        self.known_stamp = 0
        self.known_cache: tuple[int, Any] | None = None
        #: (table, key) → the value before the open transaction touched it (None: absent).
        self._undo: dict[tuple[str, str], Any] | None = None

    # -- loading --------------------------------------------------------------------------
    def load(self, data: Data) -> None:
        """Replace everything with a snapshot (TinyDB layout: rows in doc-id order).

        Raises :class:`DamagedRow` for a row that cannot be read."""
        self.__init__()  # type: ignore[misc]
        self.meta = dict(next(iter(data.get("meta", {}).values()), {}))
        for table, key in TABLES.items():
            docs = data.get(table, {})
            for doc_id in sorted(docs, key=_doc_order):
                row = docs[doc_id]
                try:
                    name = str(row[key])
                except (KeyError, TypeError) as exc:
                    raise DamagedRow(table, doc_id, exc) from None
                self._set(table, name, _lead(name, row) if table == "leads" else row)

    def replay(self, records: Iterable[list[Change]]) -> None:
        """Journal records written by any process, applied in order (whole rows: a record
        applied twice leaves the same state)."""
        for changes in records:
            for table, key, row in changes:
                if table == "leads" and row is not None:
                    self._set(table, key, _lead(key, row))
                elif table in self.tables:
                    self._set(table, key, row)

    def row(self, table: str, value: Any) -> Row | None:
        """What the files hold for a value of ``table``."""
        if value is None or table != "leads":
            return value  # type: ignore[no-any-return]
        return value.to_dict()  # type: ignore[no-any-return]

    def snapshot(self, meta: Row) -> Data:
        data: Data = {"meta": {"1": meta}}
        for table, rows in self.tables.items():
            data[table] = {str(i): self.row(table, v) for i, v in enumerate(rows.values(), 1)}
        return data

    # -- rows -----------------------------------------------------------------------------
    def get(self, table: str, key: str) -> Row | None:
        return self.tables[table].get(key)

    def rows(self, table: str) -> dict[str, Row]:
        """The live table: read it, never change it (use :meth:`put`/:meth:`remove`)."""
        return self.tables[table]

    def put_lead(self, lead: Lead) -> None:
        old = self.tables["leads"].get(lead.address)
        if old is lead or old == lead:
            return  # unchanged (a rewake puts every lead, mostly as it was)
        self._touch("leads", lead.address, old)
        self._set("leads", lead.address, lead)

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
                out.append((table, key, self.row(table, now)))
        return out

    def commit(self) -> None:
        self._undo = None

    def rollback(self) -> None:
        undo, self._undo = self._undo or {}, None
        for (table, key), old in reversed(undo.items()):
            self._set(table, key, old)

    def _touch(self, table: str, key: str, old: Any) -> None:
        if self._undo is not None and (table, key) not in self._undo:
            self._undo[(table, key)] = old

    # -- indexes --------------------------------------------------------------------------
    def _set(self, table: str, key: str, row: Any) -> None:
        """The one place rows change: the indexes follow."""
        rows = self.tables[table]
        old = rows.get(key)
        if table in ("leads", "suppressed", "ours"):
            self.known_stamp += 1
        if row is None:
            rows.pop(key, None)
        else:
            rows[key] = row
        if table == "leads":
            for mid in _mids(old):
                if self.by_mid.get(mid) == key:
                    del self.by_mid[mid]
            for mid in _mids(row):
                self.by_mid[mid] = key
            if row is not None and row.automation is Automation.ENDED:
                self.ended.add(key)
            else:
                self.ended.discard(key)
        elif table == "wakes":
            self.wakes.set(key, datetime.fromisoformat(row["at"]) if row else None)
        elif table == "outbox":
            self.pending.pop(key, None)
            self.sent_at.pop(key, None)
            if row is not None:
                self.last_seq = max(self.last_seq, int(row.get("seq", 0)))
                status = row.get("status")
                if status == "pending":
                    self.pending[key] = int(row["seq"])
                else:
                    self._older("outbox", row.get("sent_at") or row.get("created") or "")
                if status == "sent" and row.get("sent_at"):
                    self.sent_at[key] = datetime.fromisoformat(row["sent_at"])
        elif table in ("ours", "acks", "rejects") and row is not None:
            self._older(table, row.get("at", ""))

    def _older(self, table: str, at: str) -> None:
        if at < self.oldest.get(table, NEVER):
            self.oldest[table] = at

    def lead(self, key: str) -> Lead | None:
        return self.tables["leads"].get(key)

    def leads(self) -> list[Lead]:
        return list(self.tables["leads"].values())


def _doc_order(doc_id: str) -> tuple[int, str]:
    return (int(doc_id), "") if doc_id.isdigit() else (0, doc_id)
