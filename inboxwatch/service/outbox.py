"""Intent first: every message is written to the state (with its Message-ID) before it is sent.

A row goes pending → sent (or failed, or cancelled when the lead's state moved on). After
a restart, queued rows are looked up by Message-ID in the Sent folder first, so a send
that completed just before a crash is not repeated where the server keeps a copy; a step
is never lost. Caps are counted over the rows sent in the last hour/day; the excess
waits, it is never dropped.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from inboxwatch.adapters.tinydb_store import Store
from inboxwatch.core.decide import Send
from inboxwatch.core.lead import iso
from inboxwatch.core.mime import to_bytes
from inboxwatch.core.timing import SendingWindow

#: Lower sorts first: a lead's acknowledgement goes before alerts and follow-ups.
PRIORITY = {"ack": 0, "owner-alert": 1, "owner-reply": 1, "followup": 2, "owner-task": 3}
MAX_ATTEMPTS = 12


@dataclass(frozen=True)
class Caps:
    per_hour: int
    per_day: int


@dataclass(frozen=True)
class Item:
    id: str
    purpose: str
    lead: str
    step: str
    mail_from: str
    rcpt: str
    raw: bytes
    status: str
    attempts: int
    save_sent: bool

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Item:
        return cls(
            id=row["id"],
            purpose=row["purpose"],
            lead=row.get("lead", ""),
            step=row.get("step", ""),
            mail_from=row["mail_from"],
            rcpt=row["rcpt"],
            raw=row["raw"].encode("utf-8"),
            status=row["status"],
            attempts=row.get("attempts", 0),
            save_sent=row.get("save_sent", False),
        )


def row_for(send: Send, now: datetime) -> dict[str, Any]:
    """The outbox row for a message; building it may raise (an address we cannot write)."""
    out = send.out
    return {
        "id": out.message_id,
        "purpose": out.purpose,
        "lead": out.lead,
        "step": send.step,
        "mail_from": out.from_.addr,
        "rcpt": out.to.addr,
        "raw": to_bytes(out).decode("utf-8"),
        "status": "pending",
        "created": iso(now),
        "next_try": iso(now),
        "attempts": 0,
        "save_sent": out.purpose in ("ack", "followup"),
    }


def enqueue(store: Store, send: Send, now: datetime) -> None:
    enqueue_row(store, row_for(send, now), now)


def enqueue_row(store: Store, row: dict[str, Any], now: datetime) -> None:
    store.put_outbox(row)
    if not row["save_sent"]:
        store.add_ours(row["id"], now)


def due(store: Store, now: datetime, caps: Caps, window: SendingWindow | None = None) -> list[Item]:
    """Rows to send now, in priority order, within the caps.

    A follow-up held back (caps, retries) waits for the sending window again: it must not
    go out at 3 a.m. because it was due at 4 p.m.
    """
    rows = store.outbox_rows()
    hour, day = iso(now - timedelta(hours=1)) or "", iso(now - timedelta(days=1)) or ""
    sent_day = [r for r in rows if r["status"] == "sent" and r.get("sent_at", "") >= day]
    sent_hour = sum(1 for r in sent_day if r["sent_at"] >= hour)
    room = max(0, min(caps.per_hour - sent_hour, caps.per_day - len(sent_day)))
    closed = window is not None and not window.is_open(now)
    ready = [
        r
        for r in rows
        if r["status"] in ("pending", "sending")
        and r.get("next_try", "") <= (iso(now) or "")
        and not (closed and r["purpose"] == "followup")
    ]
    ready.sort(key=lambda r: (PRIORITY.get(r["purpose"], 5), r["created"]))
    return [Item.from_row(r) for r in ready[:room]]


def next_send_time(
    store: Store, now: datetime, caps: Caps, window: SendingWindow | None = None
) -> datetime | None:
    """When the next queued row may go: its retry time, or when a full cap has room again.

    Without this a capped queue would look due at once and the daemon would spin.
    """
    rows = store.outbox_rows()
    queued = [r for r in rows if r["status"] in ("pending", "sending")]
    if not queued:
        return None

    def ready_at(row: dict[str, Any]) -> datetime:
        at = datetime.fromisoformat(row["next_try"])
        if window is not None and row["purpose"] == "followup":
            at = window.next_open(max(at, now))
        return at

    earliest = min(ready_at(r) for r in queued)
    sent = sorted(
        datetime.fromisoformat(r["sent_at"])
        for r in rows
        if r["status"] == "sent" and r.get("sent_at")
    )
    for per, span in ((caps.per_hour, timedelta(hours=1)), (caps.per_day, timedelta(days=1))):
        recent = [t for t in sent if t > now - span]
        if per <= 0:
            return None  # sending switched off: nothing will ever be due
        if len(recent) >= per:
            # Room again when enough of the recent sends have aged out of the window.
            earliest = max(earliest, recent[len(recent) - per] + span)
    return earliest


def backlog(store: Store) -> int:
    return sum(1 for r in store.outbox_rows() if r["status"] in ("pending", "sending"))


def mark(store: Store, item_id: str, status: str, now: datetime, **extra: Any) -> None:
    fields: dict[str, Any] = {"status": status, **extra}
    if status == "sent":
        fields["sent_at"] = iso(now)
        fields["raw"] = ""  # the copy is in Sent (or the provider's); keep the file small
    row = store.outbox_row(item_id)
    if row is not None:
        store.put_outbox({**row, **fields})


def retry_later(store: Store, item: Item, now: datetime, error: str, count: bool = True) -> bool:
    """Back off exponentially (30 s doubling, at most an hour); give up after MAX_ATTEMPTS.

    ``count=False`` (the server was not reached at all) retries without using up the
    message's attempts: an outage of a day must not lose the queue.
    """
    attempts = item.attempts + (1 if count else 0)
    if attempts >= MAX_ATTEMPTS:
        mark(store, item.id, "failed", now, attempts=attempts, error=error)
        return False
    delay = timedelta(seconds=min(3600, 30 * 2 ** max(0, attempts - 1)))
    mark(store, item.id, "pending", now, attempts=attempts, error=error, next_try=iso(now + delay))
    return True


class SendJournal:
    """Message-IDs the SMTP server accepted, one line each, fsynced at once.

    Writing the whole state after every message would be slow; this file is what makes a
    crash in the middle of a batch repeat nothing that was accepted.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def record(self, message_id: str) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, (message_id + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)

    def read(self) -> set[str]:
        try:
            return {line.strip() for line in self.path.read_text().splitlines() if line.strip()}
        except FileNotFoundError:
            return set()

    def clear(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
