"""Upgrading a state file written by an earlier inboxwatch, one version at a time.

A step works on the raw tables (``{table: {doc_id: row}}``) rather than through the
store, so it never depends on code that a later version changes; the steps run in order
from the file's version to :data:`SCHEMA_VERSION`. To change the layout: raise
``SCHEMA_VERSION``, add a step from the old version to :data:`MIGRATIONS`, and a test
that hand-writes a file of the old version.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from inboxwatch.adapters.statefile import Data
from inboxwatch.errors import StateError

SCHEMA_VERSION = 3


@dataclass(frozen=True)
class Context:
    """What a step needs to know beyond the file (version 1 named folders, not streams)."""

    inbox_folder: str = "INBOX"


Step = Callable[[Data, Context], Data]


def version(data: Data) -> int:
    """A file without a meta table is new (empty) or predates versions: version 1."""
    meta = next(iter(data.get("meta", {}).values()), None)
    if meta is None:
        return SCHEMA_VERSION if not data else 1
    return int(meta.get("version", 1))


def migrate(data: Data, ctx: Context) -> Data:
    """``data`` brought to :data:`SCHEMA_VERSION`; the input is left as it was.

    A newer file is refused: guessing at its layout could lose what it holds.
    """
    v = version(data)
    if v > SCHEMA_VERSION:
        raise StateError(
            f"the state file was written by a newer inboxwatch (version {v}); upgrade inboxwatch"
        )
    while v < SCHEMA_VERSION:
        data = MIGRATIONS[v](data, ctx)
        v += 1
        data = {**data, "meta": {k: {**m, "version": v} for k, m in data["meta"].items()}}
    return data


def _rows(data: Data, table: str) -> list[dict[str, Any]]:
    """A table's rows in the order they were written (TinyDB's ids only grow)."""
    docs = data.get(table, {})
    return [dict(docs[k]) for k in sorted(docs, key=int)]


def _table(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {str(i): row for i, row in enumerate(rows, 1)}


def _v1_to_v2(data: Data, ctx: Context) -> Data:
    """Mailbox positions become opaque refs and cursors; the outbox gets an explicit order.

    No wake times are written: the daemon recomputes every active lead's wake on start.
    """
    leads = _rows(data, "leads")
    for row in leads:
        uid = row.pop("enquiry_uid", 0)
        uidvalidity = row.pop("enquiry_uidvalidity", 0)
        row["enquiry_ref"] = f"{uidvalidity}:{uid}" if uid else ""
    outbox = _rows(data, "outbox")
    for seq, row in enumerate(outbox, 1):
        row.pop("save_sent", None)  # follows from the purpose now
        if row.get("status") == "sending":  # a mark of older versions: still to be sent
            row["status"] = "pending"
        row["seq"] = seq
    cursors = [
        {
            "stream": "inbox" if row["folder"] == ctx.inbox_folder else "sent",
            "cursor": f"{row['uidvalidity']}:{row['last_uid']}",
        }
        for row in _rows(data, "cursors")
    ]
    rejects: dict[str, dict[str, Any]] = {}
    for row in _rows(data, "rejects"):
        ref = f"{row['uidvalidity']}:{row['uid']}"
        rejects[ref] = {"ref": ref, "error": row.get("error", ""), "at": row.get("at", "")}
    meta = {"1": {**next(iter(data.get("meta", {}).values()), {})}}
    return {
        **data,
        "meta": meta,
        "leads": _table(leads),
        "outbox": _table(outbox),
        "cursors": _table(cursors),
        "rejects": _table(list(rejects.values())),
    }


def _v2_to_v3(data: Data, ctx: Context) -> Data:
    """The tables stay as they were; what changes is beside them: a journal of changes
    (``state.json.journal``) of the snapshot's ``generation``, which the store adds when
    it writes the upgraded snapshot. Version 2 would read the snapshot alone and miss
    the journal: the version number makes it refuse the file instead."""
    return data


#: version → the step that upgrades a file of that version to the next one.
MIGRATIONS: dict[int, Step] = {1: _v1_to_v2, 2: _v2_to_v3}
