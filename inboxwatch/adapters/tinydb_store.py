"""The state: active leads, the outbox, mailbox positions, suppressions. One file, one lock.

Only *active* leads live in the state file, so the daemon's work grows with them, not with
history: a lead that has been closed for ``ARCHIVE_AFTER`` moves to an append-only archive
(``<state>.archive.jsonl``) that only ``leads --all`` and ``show`` read.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any

from tinydb import Query

from inboxwatch.adapters.statefile import StateFile
from inboxwatch.core.classify import Known
from inboxwatch.core.lead import Automation, Lead, from_iso, iso, message_ids
from inboxwatch.errors import StateError

SCHEMA_VERSION = 1
ARCHIVE_AFTER = timedelta(days=30)
SEEN_KEEP = timedelta(days=60)
SENT_KEEP = timedelta(days=2)

Q = Query()
#: The key of each table that is read and written through :class:`Keyed`.
KEYS = {
    "leads": "address",
    "outbox": "id",
    "acks": "address",
    "suppressed": "address",
    "cursors": "folder",
    "ours": "id",
}


class Keyed:
    """One table as ``{key: row}`` for the length of a transaction, written back in bulk.

    TinyDB scans a table on every query and rebuilds it on every insert or update, so a
    cycle touching many rows would cost rows squared (measured: 7 of the 12 s of a
    1,000-message backlog). A transaction loads each table it uses once and writes it back
    with at most three TinyDB calls.
    """

    def __init__(self, table: Any, key: str) -> None:
        self.table, self.key = table, key
        self.rows: dict[str, dict[str, Any]] = {}
        self.ids: dict[str, int] = {}
        for doc in table.all():
            self.rows[doc[key]] = dict(doc)
            self.ids[doc[key]] = doc.doc_id
        # Ordered: rows inserted in one transaction keep the order they were queued in.
        self.changed: dict[str, None] = {}
        self.removed: set[str] = set()

    def get(self, key: str) -> dict[str, Any] | None:
        return self.rows.get(key)

    def values(self) -> list[dict[str, Any]]:
        return list(self.rows.values())

    def put(self, row: dict[str, Any]) -> None:
        key = row[self.key]
        self.rows[key] = row
        self.changed[key] = None
        self.removed.discard(key)

    def remove(self, key: str) -> bool:
        if self.rows.pop(key, None) is None:
            return False
        self.removed.add(key)
        self.changed.pop(key, None)
        return True

    def write(self) -> None:
        gone = [self.ids[k] for k in self.removed if k in self.ids]
        updates = {k: self.rows[k] for k in self.changed if k in self.ids}
        new = [self.rows[k] for k in self.changed if k not in self.ids]
        if gone:
            self.table.remove(doc_ids=gone)
        if updates:

            def replace(doc: dict[str, Any]) -> None:
                row = updates[doc[self.key]]
                doc.clear()
                doc.update(row)

            self.table.update(replace, doc_ids=[self.ids[k] for k in updates])
        if new:
            self.table.insert_multiple(new)


class Store:
    """Typed operations on the state; call them inside :meth:`transaction`."""

    def __init__(self, path: Path, readonly: bool = False) -> None:
        self.path = path
        self.file = StateFile(path, readonly=readonly)
        self.archive_path = path.with_name(path.name + ".archive.jsonl")
        self._tables: dict[str, Keyed] = {}
        self._leads: dict[str, Lead] = {}
        self._depth = 0

    @classmethod
    def open(cls, path: Path, readonly: bool = False, simulated: bool = False) -> Store:
        store = cls(path, readonly)
        with store.transaction():
            meta = store.meta()
            if not meta and not readonly:
                store._t("meta").insert(
                    {
                        "version": SCHEMA_VERSION,
                        "created": iso(datetime.now(UTC)),
                        "simulated": simulated,
                    }
                )
            elif meta.get("version", 1) > SCHEMA_VERSION:
                raise StateError(
                    f"state file {path} was written by a newer inboxwatch "
                    f"(version {meta['version']}); upgrade inboxwatch"
                )
        return store

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Store]:
        """Everything read and changed inside lands in one atomic write at the end."""
        with self.file.transaction():
            self._depth += 1
            try:
                yield self
                if self._depth == 1:
                    for table in self._tables.values():
                        table.write()
            finally:
                self._depth -= 1
                if self._depth == 0:
                    self._tables.clear()
                    self._leads.clear()

    # -- tables ---------------------------------------------------------------------------
    def _t(self, name: str) -> Any:
        return self.file.db.table(name, cache_size=0)

    def _k(self, name: str) -> Keyed:
        if self._depth == 0:
            raise RuntimeError("Store used outside a transaction")
        if name not in self._tables:
            self._tables[name] = Keyed(self._t(name), KEYS[name])
        return self._tables[name]

    def meta(self) -> dict[str, Any]:
        rows = self._t("meta").all()
        return dict(rows[0]) if rows else {}

    @property
    def simulated(self) -> bool:
        return bool(self.meta().get("simulated"))

    # -- leads ----------------------------------------------------------------------------
    def leads(self) -> list[Lead]:
        return [self._lead(row) for row in self._k("leads").values()]

    def _lead(self, row: dict[str, Any]) -> Lead:
        """Rows become Lead objects once per transaction (parsing times is not free)."""
        address = row["address"]
        if (lead := self._leads.get(address)) is None:
            lead = self._leads[address] = Lead.from_dict(row)
        return lead

    def lead(self, address: str) -> Lead | None:
        row = self._k("leads").get(address.lower())
        return self._lead(row) if row else None

    def put_lead(self, lead: Lead) -> None:
        self._k("leads").put(lead.to_dict())
        self._leads[lead.address] = lead

    def archive_closed(self, now: datetime) -> int:
        """Move leads whose automation ended long ago to the append-only archive."""
        moved = 0
        for lead in self.leads():
            last = lead.events[-1].at if lead.events else lead.arrived
            if lead.automation is Automation.ENDED and now - last >= ARCHIVE_AFTER:
                self.file.append_line(self.archive_path, lead.to_dict())
                self._k("leads").remove(lead.address)
                self._leads.pop(lead.address, None)
                moved += 1
        return moved

    def archived(self) -> Iterator[Lead]:
        try:
            with self.archive_path.open(encoding="utf-8") as fh:
                for line in fh:
                    if line.strip():
                        with contextlib.suppress(ValueError, KeyError, TypeError):
                            yield Lead.from_dict(json.loads(line))
        except FileNotFoundError:
            return

    def known(self) -> Known:
        by_address: dict[str, str] = {}
        by_mid: dict[str, str] = {}
        for row in self._k("leads").values():
            by_address[row["address"]] = row["address"]
            for mid in message_ids(row):
                by_mid[mid] = row["address"]
        ours = frozenset(self._k("ours").rows)
        return Known(by_address, by_mid, self.suppressed(), ours)

    # -- suppression ----------------------------------------------------------------------
    def suppressed(self) -> frozenset[str]:
        return frozenset(self._k("suppressed").rows)

    def suppress(self, address: str, why: str, now: datetime) -> None:
        self._k("suppressed").put({"address": address.lower(), "why": why, "at": iso(now)})

    def unsuppress(self, address: str) -> bool:
        return self._k("suppressed").remove(address.lower())

    # -- acknowledgement period -----------------------------------------------------------
    def last_ack(self, address: str) -> datetime | None:
        row = self._k("acks").get(address)
        return from_iso(row["at"]) if row else None

    def record_ack(self, address: str, at: datetime) -> None:
        self._k("acks").put({"address": address, "at": iso(at)})

    # -- mailbox positions and processed messages -----------------------------------------
    def cursor(self, folder: str) -> dict[str, Any] | None:
        row = self._k("cursors").get(folder)
        return dict(row) if row else None

    def set_cursor(self, folder: str, uidvalidity: int, last_uid: int) -> None:
        self._k("cursors").put({"folder": folder, "uidvalidity": uidvalidity, "last_uid": last_uid})

    def reject(self, folder: str, uidvalidity: int, uid: int, error: str, now: datetime) -> None:
        """A message we could not parse: recorded (and logged), left untouched in the mailbox."""
        self._t("rejects").insert(
            {
                "folder": folder,
                "uidvalidity": uidvalidity,
                "uid": uid,
                "error": error,
                "at": iso(now),
            }
        )

    def rejects(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self._t("rejects").all()]

    def add_ours(self, message_id: str, now: datetime) -> None:
        self._k("ours").put({"id": message_id, "at": iso(now)})

    def prune(self, now: datetime) -> None:
        """Keep the live file bounded: old own IDs, acks, rejects and sent outbox rows go."""
        cut = iso(now - SEEN_KEEP) or ""
        for name in ("ours", "acks"):
            table = self._k(name)
            for key in [k for k, row in table.rows.items() if row.get("at", "") < cut]:
                table.remove(key)
        if any(r.get("at", "") < cut for r in self._t("rejects").all()):
            self._t("rejects").remove(Q.at < cut)
        sent_cut = iso(now - SENT_KEEP) or ""
        outbox = self._k("outbox")
        for key in [
            k
            for k, r in outbox.rows.items()
            if r["status"] in ("sent", "cancelled", "failed")
            and r.get("sent_at", r["created"]) < sent_cut
        ]:
            outbox.remove(key)

    # -- outbox ---------------------------------------------------------------------------
    def outbox_rows(self) -> list[dict[str, Any]]:
        return self._k("outbox").values()

    def outbox_row(self, message_id: str) -> dict[str, Any] | None:
        return self._k("outbox").get(message_id)

    def put_outbox(self, row: dict[str, Any]) -> None:
        self._k("outbox").put(row)
