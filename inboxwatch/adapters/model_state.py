"""The :class:`~inboxwatch.adapters.ports.State` of one transaction over the in-memory
model (:mod:`.model`): what the daemon reads and writes, as typed values.

Reads cost what they return: leads by address, what is due from the wake index, the
pending queue and sent times from their indexes, the classification lookups reused
until something they hold changes. Writes go straight to the model, which remembers
each row's value before the transaction touched it (for the journal, or to put back).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from inboxwatch.adapters.model import NEVER, Model, Row
from inboxwatch.adapters.ports import Rejected, State
from inboxwatch.core.actions import Notice
from inboxwatch.core.classify import Known
from inboxwatch.core.lead import Lead, from_iso, iso
from inboxwatch.core.queue import OutboxItem, Purpose, Status

ARCHIVE_AFTER = timedelta(days=30)
SEEN_KEEP = timedelta(days=60)
SENT_KEEP = timedelta(days=2)


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


class ModelState(State):
    """One transaction's view of the model: reads and writes go straight to it, and the
    model remembers what to write (or to put back if the transaction fails)."""

    def __init__(self, model: Model) -> None:
        self._m = model
        #: Rows of leads archived in this transaction, for the archive file once it succeeds.
        self.to_archive: list[dict[str, Any]] = []

    # -- leads ----------------------------------------------------------------------------
    def lead(self, address: str) -> Lead | None:
        return self._m.lead(address.lower())

    def leads(self) -> list[Lead]:
        return self._m.leads()

    def put_lead(self, lead: Lead, wake: datetime | None) -> None:
        self._m.put_lead(lead)
        self._set_wake(lead.address, wake)

    def _set_wake(self, address: str, wake: datetime | None) -> None:
        # The index holds what the file does: times to the millisecond, as iso() writes them.
        at = iso(wake)
        if at is None:
            self._m.remove("wakes", address)
        else:
            self._m.put("wakes", {"address": address, "at": at})

    def due(self, before: datetime) -> list[Lead]:
        return [lead for a in self._m.wakes.due(before) if (lead := self._m.lead(a))]

    def next_wake(self) -> datetime | None:
        return self._m.wakes.first()

    def known(self) -> Known:
        """Copies: the caller keeps them past the transaction (classification runs
        outside the lock), while the model goes on changing."""
        m = self._m
        if m.known_cache is not None and m.known_cache[0] == m.known_stamp:
            return m.known_cache[1]  # type: ignore[no-any-return]
        leads = m.rows("leads")
        by_address = dict(zip(leads, leads, strict=True))
        known = Known(by_address, dict(m.by_mid), self.suppressed(), self._ours())
        m.known_cache = (m.known_stamp, known)
        return known

    def _ours(self) -> frozenset[str]:
        return frozenset(self._m.rows("ours"))

    # -- suppression, acknowledgements, positions, rejects, own IDs ------------------------
    def suppressed(self) -> frozenset[str]:
        return frozenset(self._m.rows("suppressed"))

    def suppress(self, address: str, why: str, at: datetime) -> None:
        self._m.put("suppressed", {"address": address.lower(), "why": why, "at": iso(at)})

    def unsuppress(self, address: str) -> bool:
        return self._m.remove("suppressed", address.lower())

    def last_ack(self, address: str) -> datetime | None:
        row = self._m.get("acks", address)
        return from_iso(row["at"]) if row else None

    def record_ack(self, address: str, at: datetime) -> None:
        self._m.put("acks", {"address": address, "at": iso(at)})

    def cursor(self, stream: str) -> str | None:
        row = self._m.get("cursors", stream)
        return str(row["cursor"]) if row else None

    def set_cursor(self, stream: str, cursor: str) -> None:
        self._m.put("cursors", {"stream": stream, "cursor": cursor})

    def reject(self, ref: str, error: str, at: datetime) -> None:
        # The error may quote the hostile message (a lone surrogate from an 8-bit byte):
        # a record the state file cannot encode would fail the whole batch's commit.
        error = error.encode("utf-8", "backslashreplace").decode("utf-8")
        self._m.put("rejects", {"ref": ref, "error": error, "at": iso(at)})

    def rejects(self) -> list[Rejected]:
        return [
            Rejected(r["ref"], r["error"], datetime.fromisoformat(r["at"]))
            for r in self._m.rows("rejects").values()
        ]

    def add_ours(self, message_id: str, at: datetime) -> None:
        self._m.put("ours", {"id": message_id, "at": iso(at)})

    # -- outbox ---------------------------------------------------------------------------
    def outbox_item(self, item_id: str) -> OutboxItem | None:
        row = self._m.get("outbox", item_id)
        return _outbox_item(row) if row else None

    def put_outbox(self, item: OutboxItem) -> None:
        """An item keeps the place in the queue it got when first put."""
        old = self._m.get("outbox", item.id)
        seq = int(old["seq"]) if old is not None else self._m.last_seq + 1
        self._m.put("outbox", _outbox_row(item, seq))

    def queued(self) -> list[OutboxItem]:
        """The pending items in queue order. Asked several times a tick (and per chunk of
        a backlog): an item is made from its row again only when the row changed (rows
        are replaced, never changed in place); only pending items are kept."""
        rows = self._m.rows("outbox")
        order = sorted(self._m.pending, key=self._m.pending.__getitem__)
        made = self._m.pending_items
        kept: dict[str, tuple[Row, OutboxItem]] = {}
        out = []
        for key in order:
            row = rows[key]
            hit = made.get(key)
            item = hit[1] if hit is not None and hit[0] is row else _outbox_item(row)
            kept[key] = (row, item)
            out.append(item)
        self._m.pending_items = kept
        return out

    def sent_times(self, since: datetime) -> list[datetime]:
        return [t for t in self._m.sent_at.values() if t > since]

    # -- markers --------------------------------------------------------------------------
    def marker(self, name: str) -> str | None:
        row = self._m.get("markers", name)
        return str(row["value"]) if row else None

    def set_marker(self, name: str, value: str) -> None:
        self._m.put("markers", {"name": name, "value": value})

    # -- notices --------------------------------------------------------------------------
    def notices(self) -> list[Notice]:
        return [
            Notice(r["key"], r["text"], _since(r), from_iso(r.get("until")))
            for r in self._m.rows("notices").values()
        ]

    def put_notice(self, notice: Notice) -> None:
        self._m.put(
            "notices",
            {
                "key": notice.key,
                "text": notice.text,
                "since": iso(notice.since),
                "until": iso(notice.until),
            },
        )

    def clear_notice(self, key: str) -> bool:
        return self._m.remove("notices", key)

    # -- housekeeping ---------------------------------------------------------------------
    def archive_closed(self, now: datetime) -> int:
        """The lines reach the archive after the transaction's body, just before its
        journal record: a crash in between repeats a lead there rather than lose it."""
        moved = 0
        for address in sorted(self._m.ended):  # only ended leads: not every lead per tick
            lead = self._m.lead(address)
            if lead is None:
                continue
            last = lead.events[-1].at if lead.events else lead.arrived
            if now - last >= ARCHIVE_AFTER:
                self.to_archive.append(lead.to_dict())
                self._m.remove("leads", address)
                self._set_wake(address, None)
                moved += 1
        return moved

    def prune(self, now: datetime) -> None:
        """Keep the live state bounded: old own IDs, acks, rejects and finished outbox rows."""
        m = self._m
        cut = iso(now - SEEN_KEEP) or ""
        for name in ("ours", "acks", "rejects"):
            if cut <= m.oldest.get(name, NEVER):
                continue  # nothing that old: no need to look at every row
            rows = m.rows(name)
            for key in [k for k, row in rows.items() if row.get("at", "") < cut]:
                m.remove(name, key)
            m.oldest[name] = min((row.get("at", "") for row in rows.values()), default=NEVER)
        sent_cut = iso(now - SENT_KEEP) or ""
        if sent_cut <= m.oldest.get("outbox", NEVER):
            return
        done = [r for r in m.rows("outbox").values() if r["status"] != Status.PENDING]
        for r in done:
            if (r.get("sent_at") or r["created"]) < sent_cut:
                m.remove("outbox", r["id"])
        times = (r.get("sent_at") or r["created"] for r in done)
        m.oldest["outbox"] = min((t for t in times if t >= sent_cut), default=NEVER)


def _since(row: dict[str, Any]) -> datetime:
    return from_iso(row.get("since")) or datetime.now(UTC)
