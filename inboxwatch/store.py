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

from inboxwatch.classify import Known
from inboxwatch.errors import StateError
from inboxwatch.lead import Automation, Lead, from_iso, iso
from inboxwatch.storage import StateFile

SCHEMA_VERSION = 1
ARCHIVE_AFTER = timedelta(days=30)
SEEN_KEEP = timedelta(days=60)
SENT_KEEP = timedelta(days=2)

Q = Query()


class Store:
    """Typed operations on the state; call them inside :meth:`transaction`."""

    def __init__(self, path: Path, readonly: bool = False) -> None:
        self.path = path
        self.file = StateFile(path, readonly=readonly)
        self.archive_path = path.with_name(path.name + ".archive.jsonl")

    @classmethod
    def open(cls, path: Path, readonly: bool = False, simulated: bool = False) -> Store:
        store = cls(path, readonly)
        with store.transaction():
            meta = store.meta()
            if not meta and not readonly:
                store._meta().insert(
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
        with self.file.transaction():
            yield self

    # -- tables ---------------------------------------------------------------------------
    def _t(self, name: str) -> Any:
        return self.file.db.table(name, cache_size=0)

    def _meta(self) -> Any:
        return self._t("meta")

    def meta(self) -> dict[str, Any]:
        rows = self._meta().all()
        return dict(rows[0]) if rows else {}

    @property
    def simulated(self) -> bool:
        return bool(self.meta().get("simulated"))

    # -- leads ----------------------------------------------------------------------------
    def leads(self) -> list[Lead]:
        return [Lead.from_dict(d) for d in self._t("leads").all()]

    def lead(self, address: str) -> Lead | None:
        row = self._t("leads").get(Q.address == address.lower())
        return Lead.from_dict(row) if row else None

    def put_lead(self, lead: Lead) -> None:
        self._t("leads").upsert(lead.to_dict(), Q.address == lead.address)

    def archive_closed(self, now: datetime) -> int:
        """Move leads whose automation ended long ago to the append-only archive."""
        moved = 0
        for lead in self.leads():
            last = lead.events[-1].at if lead.events else lead.arrived
            if lead.automation is Automation.ENDED and now - last >= ARCHIVE_AFTER:
                self.file.append_line(self.archive_path, lead.to_dict())
                self._t("leads").remove(Q.address == lead.address)
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
        for row in self._t("leads").all():
            by_address[row["address"]] = row["address"]
            for mid in (*row.get("thread", ()), *row.get("inbound", ()), row.get("enquiry_id")):
                if mid:
                    by_mid[mid] = row["address"]
        ours = frozenset(r["id"] for r in self._t("ours").all())
        return Known(by_address, by_mid, self.suppressed(), ours)

    # -- suppression ----------------------------------------------------------------------
    def suppressed(self) -> frozenset[str]:
        return frozenset(r["address"] for r in self._t("suppressed").all())

    def suppress(self, address: str, why: str, now: datetime) -> None:
        self._t("suppressed").upsert(
            {"address": address.lower(), "why": why, "at": iso(now)}, Q.address == address.lower()
        )

    def unsuppress(self, address: str) -> bool:
        return bool(self._t("suppressed").remove(Q.address == address.lower()))

    # -- acknowledgement period -----------------------------------------------------------
    def last_ack(self, address: str) -> datetime | None:
        row = self._t("acks").get(Q.address == address)
        return from_iso(row["at"]) if row else None

    def record_ack(self, address: str, at: datetime) -> None:
        self._t("acks").upsert({"address": address, "at": iso(at)}, Q.address == address)

    # -- mailbox positions and processed messages -----------------------------------------
    def cursor(self, folder: str) -> dict[str, Any] | None:
        row = self._t("cursors").get(Q.folder == folder)
        return dict(row) if row else None

    def set_cursor(self, folder: str, uidvalidity: int, last_uid: int) -> None:
        self._t("cursors").upsert(
            {"folder": folder, "uidvalidity": uidvalidity, "last_uid": last_uid},
            Q.folder == folder,
        )

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

    def add_ours(self, message_id: str, now: datetime) -> None:
        self._t("ours").insert({"id": message_id, "at": iso(now)})

    def prune(self, now: datetime) -> None:
        """Keep the live file bounded: old own IDs, acks, rejects and sent outbox rows go."""
        seen_cut = iso(now - SEEN_KEEP)
        self._t("ours").remove(Q.at < seen_cut)
        self._t("acks").remove(Q.at < seen_cut)
        self._t("rejects").remove(Q.at < seen_cut)
        self._t("outbox").remove((Q.status == "sent") & (Q.sent_at < iso(now - SENT_KEEP)))

    # -- outbox ---------------------------------------------------------------------------
    def outbox(self) -> Any:
        return self._t("outbox")
