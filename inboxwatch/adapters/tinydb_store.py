"""The state: active leads, the outbox, mailbox positions, suppressions. One file, one lock.

Only *active* leads live in the state file, so the daemon's work grows with them, not with
history: a lead that has been closed for ``ARCHIVE_AFTER`` moves to an append-only archive
(``<state>.archive.jsonl``) that only ``leads --all`` and ``show`` read.
"""

from __future__ import annotations

import bisect
import contextlib
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from inboxwatch.adapters import migrations
from inboxwatch.adapters.ports import Rejected, State, StateStore
from inboxwatch.adapters.statefile import Keyed, StateFile
from inboxwatch.core.actions import Notice
from inboxwatch.core.classify import Known
from inboxwatch.core.lead import Automation, Lead, from_iso, iso, message_ids
from inboxwatch.core.queue import OutboxItem, Purpose, Status
from inboxwatch.errors import StateError

ARCHIVE_AFTER = timedelta(days=30)
SEEN_KEEP = timedelta(days=60)
SENT_KEEP = timedelta(days=2)


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
log = logging.getLogger("inboxwatch")


def _read_archive(path: Path) -> Iterator[Lead]:
    """A damaged line (a crash mid-append) is skipped: the archive is history, not state."""
    try:
        with path.open(encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    with contextlib.suppress(ValueError, KeyError, TypeError):
                        yield Lead.from_dict(json.loads(line))
    except FileNotFoundError:
        return


def _outbox_row(item: OutboxItem, seq: int) -> dict[str, Any]:
    return {
        "id": item.id,
        "seq": seq,
        "purpose": item.purpose.value,
        "lead": item.lead,
        "step": item.step,
        "mail_from": item.mail_from,
        "rcpt": item.rcpt,
        "raw": item.raw.decode("utf-8"),  # what we write is always ASCII or UTF-8
        "created": iso(item.created),
        "next_try": iso(item.next_try),
        "status": item.status.value,
        "attempts": item.attempts,
        "error": item.error,
        "sent_at": iso(item.sent_at),
    }


def _outbox_item(row: dict[str, Any]) -> OutboxItem:
    created = datetime.fromisoformat(row["created"])
    return OutboxItem(
        id=row["id"],
        purpose=Purpose(row["purpose"]),
        lead=row.get("lead", ""),
        step=row.get("step", ""),
        mail_from=row["mail_from"],
        rcpt=row["rcpt"],
        raw=row.get("raw", "").encode("utf-8"),
        created=created,
        next_try=from_iso(row.get("next_try")) or created,
        status=Status(row["status"]),
        attempts=row.get("attempts", 0),
        error=row.get("error", ""),
        sent_at=from_iso(row.get("sent_at")),
    )


class _Wakes:
    """Wake times sorted once per transaction, so ``due`` reads only the leads it returns."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.at = {row["address"]: datetime.fromisoformat(row["at"]) for row in rows}
        self.order = sorted((t, a) for a, t in self.at.items())

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


class _FileState(State):
    """One transaction's view: each table is loaded on first use and written back at the end."""

    def __init__(self, db: Any) -> None:
        self._db = db
        self._tables: dict[str, Keyed] = {}
        self._leads: dict[str, Lead] = {}
        self._wakes: _Wakes | None = None
        self._next_seq = 0
        #: Rows of leads archived in this transaction, for the archive file once it succeeds.
        self.to_archive: list[dict[str, Any]] = []

    def _k(self, name: str) -> Keyed:
        if name not in self._tables:
            self._tables[name] = Keyed(self._db.table(name, cache_size=0), TABLES[name])
        return self._tables[name]

    def write(self) -> None:
        for table in self._tables.values():
            table.write()

    # -- leads ----------------------------------------------------------------------------
    def _lead(self, row: dict[str, Any]) -> Lead:
        """Rows become Lead objects once per transaction (parsing times is not free)."""
        address = row["address"]
        if (lead := self._leads.get(address)) is None:
            lead = self._leads[address] = Lead.from_dict(row)
        return lead

    def lead(self, address: str) -> Lead | None:
        row = self._k("leads").get(address.lower())
        return self._lead(row) if row else None

    def leads(self) -> list[Lead]:
        return [self._lead(row) for row in self._k("leads").values()]

    def put_lead(self, lead: Lead, wake: datetime | None) -> None:
        self._k("leads").put(lead.to_dict())
        self._leads[lead.address] = lead
        self._set_wake(lead.address, wake)

    def _index(self) -> _Wakes:
        if self._wakes is None:
            self._wakes = _Wakes(self._k("wakes").values())
        return self._wakes

    def _set_wake(self, address: str, wake: datetime | None) -> None:
        at, table = iso(wake), self._k("wakes")
        if (row := table.get(address)) is not None and row["at"] == at:
            return  # most puts keep the wake: do not rewrite its row
        if at is None:
            table.remove(address)
        else:
            table.put({"address": address, "at": at})
        # The index holds what the file will: times to the millisecond, as iso() writes them.
        self._index().set(address, from_iso(at))

    def due(self, before: datetime) -> list[Lead]:
        rows = (self._k("leads").get(a) for a in self._index().due(before))
        return [self._lead(row) for row in rows if row]

    def next_wake(self) -> datetime | None:
        return self._index().first()

    def known(self) -> Known:
        by_address: dict[str, str] = {}
        by_mid: dict[str, str] = {}
        for row in self._k("leads").values():
            by_address[row["address"]] = row["address"]
            for mid in message_ids(row):
                by_mid[mid] = row["address"]
        return Known(by_address, by_mid, self.suppressed(), frozenset(self._k("ours").rows))

    # -- suppression, acknowledgements, positions, rejects, own IDs ------------------------
    def suppressed(self) -> frozenset[str]:
        return frozenset(self._k("suppressed").rows)

    def suppress(self, address: str, why: str, at: datetime) -> None:
        self._k("suppressed").put({"address": address.lower(), "why": why, "at": iso(at)})

    def unsuppress(self, address: str) -> bool:
        return self._k("suppressed").remove(address.lower())

    def last_ack(self, address: str) -> datetime | None:
        row = self._k("acks").get(address)
        return from_iso(row["at"]) if row else None

    def record_ack(self, address: str, at: datetime) -> None:
        self._k("acks").put({"address": address, "at": iso(at)})

    def cursor(self, stream: str) -> str | None:
        row = self._k("cursors").get(stream)
        return str(row["cursor"]) if row else None

    def set_cursor(self, stream: str, cursor: str) -> None:
        self._k("cursors").put({"stream": stream, "cursor": cursor})

    def reject(self, ref: str, error: str, at: datetime) -> None:
        self._k("rejects").put({"ref": ref, "error": error, "at": iso(at)})

    def rejects(self) -> list[Rejected]:
        return [
            Rejected(r["ref"], r["error"], datetime.fromisoformat(r["at"]))
            for r in self._k("rejects").values()
        ]

    def add_ours(self, message_id: str, at: datetime) -> None:
        self._k("ours").put({"id": message_id, "at": iso(at)})

    # -- outbox ---------------------------------------------------------------------------
    def outbox_item(self, item_id: str) -> OutboxItem | None:
        row = self._k("outbox").get(item_id)
        return _outbox_item(row) if row else None

    def put_outbox(self, item: OutboxItem) -> None:
        """An item keeps the place in the queue it got when first put."""
        table = self._k("outbox")
        old = table.get(item.id)
        if old is not None:
            seq = int(old["seq"])
        else:
            if not self._next_seq:
                self._next_seq = max((int(r["seq"]) for r in table.values()), default=0) + 1
            seq, self._next_seq = self._next_seq, self._next_seq + 1
        table.put(_outbox_row(item, seq))

    def queued(self) -> list[OutboxItem]:
        rows = [r for r in self._k("outbox").values() if r["status"] == Status.PENDING]
        return [_outbox_item(r) for r in sorted(rows, key=lambda r: int(r["seq"]))]

    def sent_times(self, since: datetime) -> list[datetime]:
        times = (
            datetime.fromisoformat(r["sent_at"])
            for r in self._k("outbox").values()
            if r["status"] == Status.SENT and r.get("sent_at")
        )
        return [t for t in times if t > since]

    # -- housekeeping ---------------------------------------------------------------------
    # -- markers --------------------------------------------------------------------------
    def marker(self, name: str) -> str | None:
        row = self._k("markers").get(name)
        return str(row["value"]) if row else None

    def set_marker(self, name: str, value: str) -> None:
        self._k("markers").put({"name": name, "value": value})

    # -- notices --------------------------------------------------------------------------
    def notices(self) -> list[Notice]:
        return [
            Notice(r["key"], r["text"], _since(r), from_iso(r.get("until")))
            for r in self._k("notices").values()
        ]

    def put_notice(self, notice: Notice) -> None:
        self._k("notices").put(
            {
                "key": notice.key,
                "text": notice.text,
                "since": iso(notice.since),
                "until": iso(notice.until),
            }
        )

    def clear_notice(self, key: str) -> bool:
        return self._k("notices").remove(key)

    def archive_closed(self, now: datetime) -> int:
        """The lines reach the archive after the transaction's body, just before the state
        is written: a crash in between repeats a lead there rather than lose it."""
        moved = 0
        ended = [r for r in self._k("leads").values() if r.get("automation") == Automation.ENDED]
        for lead in map(self._lead, ended):
            last = lead.events[-1].at if lead.events else lead.arrived
            if now - last >= ARCHIVE_AFTER:
                self.to_archive.append(lead.to_dict())
                self._k("leads").remove(lead.address)
                self._leads.pop(lead.address, None)
                self._set_wake(lead.address, None)
                moved += 1
        return moved

    def prune(self, now: datetime) -> None:
        """Keep the live file bounded: old own IDs, acks, rejects and finished outbox rows go."""
        cut = iso(now - SEEN_KEEP) or ""
        for name in ("ours", "acks", "rejects"):
            table = self._k(name)
            for key in [k for k, row in table.rows.items() if row.get("at", "") < cut]:
                table.remove(key)
        sent_cut = iso(now - SENT_KEEP) or ""
        outbox = self._k("outbox")
        for key in [
            k
            for k, r in outbox.rows.items()
            if r["status"] != Status.PENDING and (r.get("sent_at") or r["created"]) < sent_cut
        ]:
            outbox.remove(key)


def _since(row: dict[str, Any]) -> datetime:
    return from_iso(row.get("since")) or datetime.now(UTC)


def _check_leads(path: Path, state: State) -> None:
    """Every stored lead must read back: a damaged row stops start-up with a clear message
    (the exception aborts the transaction, so the file is left exactly as it was)."""
    try:
        state.leads()
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise StateError(
            f"state file {path} has a damaged lead ({type(exc).__name__}: {exc}); inboxwatch "
            "will not start with it. Restore the file from a backup, or remove that lead."
        ) from None


class TinyDbStore(StateStore):
    """The state in one JSON file (TinyDB), behind :class:`~inboxwatch.adapters.ports.StateStore`.

    A transaction holds the file's lock, loads each table it touches once and writes the
    whole state once, atomically, at its end; an exception inside writes nothing.
    """

    def __init__(self, path: Path, *, readonly: bool = False, inbox_folder: str = "INBOX") -> None:
        self.path = path
        self.file = StateFile(path, readonly=readonly)
        self.archive_path = path.with_name(path.name + ".archive.jsonl")
        self._context = migrations.Context(inbox_folder=inbox_folder)
        self._meta: dict[str, Any] = {}
        self._state: _FileState | None = None
        self._told = False

    @classmethod
    def open(
        cls,
        path: Path,
        *,
        readonly: bool = False,
        simulated: bool = False,
        inbox_folder: str = "INBOX",
    ) -> TinyDbStore:
        """Open (creating, or upgrading from an earlier version, unless ``readonly``).

        ``inbox_folder`` names the folder that version 1 kept the inbox's position under.
        """
        store = cls(path, readonly=readonly, inbox_folder=inbox_folder)
        with store.transaction() as state:
            _check_leads(path, state)
            if not store._meta and not readonly:
                store._meta = {
                    "version": migrations.SCHEMA_VERSION,
                    "created": iso(datetime.now(UTC)),
                    "simulated": simulated,
                }
                store.file.db.table("meta").insert(store._meta)
        return store

    def _upgrade(self) -> None:
        """Bring what was read to the current version; in memory only if read-only.

        Runs in every transaction, as each may re-read a file another process wrote.
        """
        storage = self.file.storage
        found = migrations.version(storage.data)
        if found > migrations.SCHEMA_VERSION:
            raise StateError(
                f"state file {self.path} was written by a newer inboxwatch "
                f"(version {found}); upgrade inboxwatch"
            )
        if found < migrations.SCHEMA_VERSION:
            storage.data = migrations.migrate(storage.data, self._context)
            storage.dirty = True  # a read-only StateFile never writes, dirty or not
            if not self._told:
                how = "in memory (read-only)" if self.file.readonly else "and saved"
                log.info(
                    "state file %s upgraded from version %d to %d %s",
                    self.path,
                    found,
                    migrations.SCHEMA_VERSION,
                    how,
                )
                self._told = True
        self._meta = dict(next(iter(storage.data.get("meta", {}).values()), {}))

    @contextlib.contextmanager
    def transaction(self) -> Iterator[State]:
        """A transaction inside another joins it: the outer one writes, or drops, both."""
        if self._state is not None:
            yield self._state
            return
        with self.file.transaction() as db:
            self._upgrade()
            state = self._state = _FileState(db)
            try:
                yield state
                state.write()
                if not self.file.readonly:
                    for row in state.to_archive:
                        self.file.append_line(self.archive_path, row)
            finally:
                self._state = None

    @property
    def simulated(self) -> bool:
        return bool(self._meta.get("simulated"))

    def archived(self) -> Iterator[Lead]:
        return _read_archive(self.archive_path)
