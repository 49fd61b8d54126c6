"""Erasing one person from the state (a privacy request), and purging old archived leads.

Why a module of its own: an address can be in many places besides the lead's own row
(its wake time, acknowledgement, suppression, the outbox's recipients and message text,
a notice, a rejected message's error, a marker, another lead's words, the archive, and
the journal that recorded all of these), and "erased" has to mean every one of them. The
rules for each place live here once, for the file store and its in-memory twin:

- the person's own rows (lead, wake, acknowledgement, suppression, archived records) go;
- a message for them, or naming them, that was never sent goes; one already sent stays
  as an anonymous row (no recipient, lead or text), because the sending caps count it;
- rows about something else that merely mention them (a notice, a reject) go; the
  words of *another* lead, or a marker, keep their place with the address replaced by
  ``[erased]``;
- with ``keep_suppression`` only ``sha256:<hex>`` of the address stays on the list
  (:mod:`inboxwatch.core.suppression`), so the daemon still never writes to them.

Mentions are found in every string of a row, and in an outbox message's decoded headers
and parts too (an address in a base64 or quoted-printable body is still there). Matching
respects address boundaries: erasing ``ann@example.com`` leaves ``joann@example.com``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import email
import email.header
import email.policy
import json
import os
import re
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from inboxwatch.core.lead import Lead, iso
from inboxwatch.core.queue import Status
from inboxwatch.core.suppression import hashed

if TYPE_CHECKING:
    from inboxwatch.adapters.memory_store import _Tables
    from inboxwatch.adapters.model import Model
    from inboxwatch.adapters.tinydb_store import TinyDbStore

REDACTED = "[erased]"
WHY = "forgotten on request (inboxwatch forget)"


@dataclass(frozen=True)
class Erased:
    """What :meth:`StateStore.erase` did, by kind of record (for the command's report)."""

    address: str
    #: Records gone: "lead", "wake", "ack", "suppression", "outbox" (unsent mail),
    #: "notice", "reject", "archived".
    removed: Mapping[str, int] = field(default_factory=dict)
    #: Records kept with the address taken out: "sent" (outbox rows the caps count),
    #: "other lead", "other archived", "marker", "suppression reason".
    redacted: Mapping[str, int] = field(default_factory=dict)
    #: The hashed suppression entry left behind ("" when none was asked for).
    suppression: str = ""

    @property
    def found(self) -> bool:
        """Anything about the address was stored (a hashed entry kept is not a find)."""
        return any(self.removed.values()) or any(self.redacted.values())


# -- finding and replacing mentions --------------------------------------------------------
def normalize(address: str) -> str:
    return address.strip().lower()


def _pattern(address: str) -> re.Pattern[str]:
    """The address as a whole word: not inside a longer address or domain."""
    return re.compile(
        r"(?<![\w.+-])" + re.escape(normalize(address)) + r"(?![\w-]|\.\w)", re.IGNORECASE
    )


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, bytes):
        yield value.decode("utf-8", "replace")
    elif isinstance(value, Mapping):
        for k, v in value.items():
            yield str(k)
            yield from _strings(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _strings(v)


def mentions(value: Any, address: str) -> bool:
    """Does any string in ``value`` (a row, nested) name ``address``?"""
    pattern = _pattern(address)
    return any(pattern.search(s) for s in _strings(value))


def redact(value: Any, address: str) -> Any:
    """``value`` with every mention of ``address`` replaced (same shape)."""
    pattern = _pattern(address)

    def walk(v: Any) -> Any:
        if isinstance(v, str):
            return pattern.sub(REDACTED, v)
        if isinstance(v, Mapping):
            return {walk(k): walk(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return type(v)(walk(x) for x in v)
        return v

    return walk(value)


def message_mentions(raw: bytes | str, address: str) -> bool:
    """Does a whole message name ``address``, in its bytes or once its headers (RFC 2047)
    and parts (base64, quoted-printable) are decoded?"""
    data = raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else raw
    if not data:
        return False
    pattern = _pattern(address)
    if pattern.search(data.decode("utf-8", "replace")):
        return True
    msg = email.message_from_bytes(data, policy=email.policy.compat32)
    for part in msg.walk():
        for value in part.values():
            with contextlib.suppress(Exception):  # a malformed header: its bytes were searched
                if pattern.search(str(email.header.make_header(email.header.decode_header(value)))):
                    return True
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes):
            charset = part.get_content_charset() or "utf-8"
            try:
                text = payload.decode(charset, "replace")
            except LookupError:
                text = payload.decode("utf-8", "replace")
            if pattern.search(text):
                return True
    return False


def names_lead(row: Mapping[str, Any], address: str) -> bool:
    return normalize(str(row.get("address", ""))) == address


# -- the file store ------------------------------------------------------------------------
def _outbox_named(row: Mapping[str, Any], address: str) -> bool:
    if (
        normalize(str(row.get("lead", ""))) == address
        or normalize(str(row.get("rcpt", ""))) == address
    ):
        return True
    rest = {k: v for k, v in row.items() if k != "raw"}
    return mentions(rest, address) or message_mentions(str(row.get("raw", "")), address)


def anonymous_sent(row: Mapping[str, Any]) -> dict[str, Any]:
    """A sent item kept for the caps: when it went, nothing about whom it went to."""
    return {**row, "lead": "", "rcpt": "", "step": "", "raw": "", "error": ""}


def erase_model(model: Model, address: str, now: datetime, keep_suppression: bool) -> Erased:
    """Erase ``address`` from the model's rows (inside the store's open transaction, so
    the journal records each change)."""
    removed: Counter[str] = Counter()
    redacted: Counter[str] = Counter()
    if model.lead(address) is not None:
        model.remove("leads", address)
        removed["lead"] += 1
    for lead in model.leads():
        row = lead.to_dict()
        if mentions(row, address):
            model.put_lead(Lead.from_dict(redact(row, address)))
            redacted["other lead"] += 1
    for table, label in (("wakes", "wake"), ("acks", "ack")):
        removed[label] += model.remove(table, address)
    for key in _suppression_keys(address, keep_suppression):
        removed["suppression"] += model.remove("suppressed", key)
    for row in list(model.rows("suppressed").values()):
        if mentions(row.get("why", ""), address):
            model.put("suppressed", {**row, "why": redact(row["why"], address)})
            redacted["suppression reason"] += 1
    for row in list(model.rows("outbox").values()):
        if not _outbox_named(row, address):
            continue
        if row.get("status") == "pending":
            model.remove("outbox", str(row["id"]))
            removed["outbox"] += 1
        else:
            model.put("outbox", anonymous_sent(row))
            redacted["sent"] += 1
    for table, label in (("notices", "notice"), ("rejects", "reject"), ("ours", "own id")):
        key_field = {"notices": "key", "rejects": "ref", "ours": "id"}[table]
        for row in list(model.rows(table).values()):
            if mentions(row, address):
                model.remove(table, str(row[key_field]))
                removed[label] += 1
    for row in list(model.rows("markers").values()):
        if mentions(row, address):
            model.put("markers", redact(row, address))
            redacted["marker"] += 1
    kept = ""
    if keep_suppression:
        kept = hashed(address)
        if model.get("suppressed", kept) is None:
            model.put("suppressed", {"address": kept, "why": WHY, "at": iso(now)})
    return Erased(address, _positive(removed), _positive(redacted), kept)


def _suppression_keys(address: str, keep_suppression: bool) -> tuple[str, ...]:
    """The entries that go: the plain one always, a hashed one unless it is to stay."""
    return (address,) if keep_suppression else (address, hashed(address))


def _positive(counts: Counter[str]) -> dict[str, int]:
    return {k: v for k, v in counts.items() if v}


def erase_file_store(
    store: TinyDbStore, address: str, now: datetime, keep_suppression: bool
) -> Erased:
    """Rows first (one transaction: a running daemon reads the removals at its next one,
    and an item it is sending meanwhile is not written back), then the archive and a new
    snapshot with a fresh journal (a second transaction), so that no file of the state
    holds the address any more: the old journal's records, removals included, are gone."""
    address = normalize(address)
    with store.transaction():
        erased = erase_model(store.model, address, now, keep_suppression)
    with store.transaction():
        gone, kept_redacted = rewrite_archive(store.archive_path, address)
        store.compact()
    removed = dict(erased.removed)
    redacted = dict(erased.redacted)
    if gone:
        removed["archived"] = gone
    if kept_redacted:
        redacted["other archived"] = kept_redacted
    return Erased(address, removed, redacted, erased.suppression)


# -- the in-memory twin -------------------------------------------------------------------
def erase_tables(t: _Tables, address: str, now: datetime, keep_suppression: bool) -> Erased:
    """The same rules on the twin's typed tables (a transaction's copy of them)."""
    address = normalize(address)
    removed: Counter[str] = Counter()
    redacted: Counter[str] = Counter()
    removed["lead"] += t.active.pop(address, None) is not None
    for key, lead in list(t.active.items()):
        row = lead.to_dict()
        if mentions(row, address):
            t.active[key] = Lead.from_dict(redact(row, address))
            redacted["other lead"] += 1
    removed["wake"] += t.wakes.pop(address, None) is not None
    removed["ack"] += t.acks.pop(address, None) is not None
    for key in _suppression_keys(address, keep_suppression):
        removed["suppression"] += t.suppressions.pop(key, None) is not None
    for key, (why, at) in list(t.suppressions.items()):
        if mentions(why, address):
            t.suppressions[key] = (redact(why, address), at)
            redacted["suppression reason"] += 1
    for item in list(t.outbox.values()):
        named = normalize(item.lead) == address or normalize(item.rcpt) == address
        if not (named or mentions((item.step, item.error), address)) and not message_mentions(
            item.raw, address
        ):
            continue
        if item.status is Status.PENDING:
            del t.outbox[item.id]
            removed["outbox"] += 1
        else:
            t.outbox[item.id] = dataclasses.replace(
                item, lead="", rcpt="", step="", raw=b"", error=""
            )
            redacted["sent"] += 1
    for ref, rej in list(t.rejected.items()):
        if mentions((rej.ref, rej.error), address):
            del t.rejected[ref]
            removed["reject"] += 1
    for key, notice in list(t.notice_board.items()):
        if mentions((notice.key, notice.text), address):
            del t.notice_board[key]
            removed["notice"] += 1
    for mid in [m for m in t.ours if mentions(m, address)]:
        del t.ours[mid]
        removed["own id"] += 1
    for name, value in list(t.markers.items()):
        if mentions(value, address):
            t.markers[name] = redact(value, address)
            redacted["marker"] += 1
    archive = []
    for lead in t.archive:
        if lead.address == address:
            removed["archived"] += 1
        elif mentions(row := lead.to_dict(), address):
            archive.append(Lead.from_dict(redact(row, address)))
            redacted["other archived"] += 1
        else:
            archive.append(lead)
    t.archive = archive
    kept = ""
    if keep_suppression:
        kept = hashed(address)
        t.suppressions.setdefault(kept, (WHY, now))
    return Erased(address, _positive(removed), _positive(redacted), kept)


def purge_lead_list(leads: list[Lead], closed_before: datetime) -> list[Lead]:
    """The twin's archive without the leads closed before ``closed_before``."""
    cut = iso(closed_before) or ""
    return [lead for lead in leads if not (closed_at(lead.to_dict()) < cut)]


# -- the archive file ----------------------------------------------------------------------
def closed_at(row: Mapping[str, Any]) -> str:
    """When an archived lead closed (ISO text): its last "automation ended" event, or its
    last event, or its arrival."""
    events = [e for e in row.get("events", ()) if isinstance(e, Mapping)]
    ends = [
        str(e.get("at", ""))
        for e in events
        if str(e.get("what", "")).startswith("automation ended")
    ]
    if ends:
        return max(ends)
    if events:
        return str(events[-1].get("at", ""))
    return str(row.get("arrived", ""))


def rewrite_lines(path: Path, change: Callable[[str], str | None]) -> bool:
    """Stream ``path`` through ``change`` (a line → the line to keep, or None to drop);
    write the result atomically (a new file, fsynced, renamed) only if a line changed.

    The file is never held whole in memory: the archive grows with the years."""
    if not path.exists():
        return False
    changed = False
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with (
            path.open(encoding="utf-8", errors="surrogateescape", newline="") as src,
            os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape") as out,
        ):
            os.fchmod(out.fileno(), 0o600)
            with contextlib.suppress(PermissionError):
                st = path.stat()
                os.fchown(out.fileno(), st.st_uid, st.st_gid)
            for line in src:
                new = change(line)
                if new != line:
                    changed = True
                if new is not None:
                    out.write(new)
            out.flush()
            os.fsync(out.fileno())
        if changed:
            os.replace(tmp, path)
            dir_fd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return changed


def rewrite_archive(path: Path, address: str) -> tuple[int, int]:
    """The archive without ``address``'s records (and with it taken out of others'):
    (records removed, records redacted). Call under the state's lock."""
    counts = Counter[str]()
    needle = address.lower()

    def change(line: str) -> str | None:
        if needle not in line.lower():
            return line  # most lines: no JSON parsing
        try:
            row = json.loads(line)
        except ValueError:
            counts["gone"] += 1
            return None  # damaged and naming them: it goes
        if not isinstance(row, dict) or names_lead(row, address):
            counts["gone"] += 1
            return None
        if not mentions(row, address):
            return line  # inside a longer address only
        counts["redacted"] += 1
        return json.dumps(redact(row, address), ensure_ascii=False) + "\n"

    rewrite_lines(path, change)
    return counts["gone"], counts["redacted"]


def purge_archive_file(path: Path, closed_before: datetime) -> int:
    """Drop archived leads that closed before ``closed_before``; how many. Lines that
    cannot be read are kept (history is not ours to guess at). Call under the lock."""
    cut = iso(closed_before) or ""
    gone = 0

    def change(line: str) -> str | None:
        nonlocal gone
        try:
            row = json.loads(line)
        except ValueError:
            return line
        if isinstance(row, dict) and closed_at(row) and closed_at(row) < cut:
            gone += 1
            return None
        return line

    rewrite_lines(path, change)
    return gone


def purge_file_store(store: TinyDbStore, closed_before: datetime) -> int:
    """Under the store's lock (joining a transaction that is open)."""
    with store.transaction():
        if store.file.readonly:
            return 0
        return purge_archive_file(store.archive_path, closed_before)


# -- backups beside the state -------------------------------------------------------------
def live_files(state_path: Path) -> set[Path]:
    """The state's own files (what the store keeps clean itself)."""
    name = state_path.name
    suffixes = ("", ".journal", ".archive.jsonl", ".lock", ".run.lock", ".sent")
    return {state_path.with_name(name + s) for s in suffixes}


def file_mentions(path: Path, address: str) -> bool:
    """Does a file hold ``address``: in its bytes, or in a message stored in it (a JSON
    string holding a whole message with encoded parts)?"""
    try:
        data = path.read_bytes()
    except OSError:
        return False
    if address.lower().encode("utf-8") in data.lower():
        return True
    text = data.decode("utf-8", "replace")
    for chunk in (text, *text.splitlines()):
        body = chunk.split(" ", 2)[-1] if chunk[:8].isalnum() and " " in chunk else chunk
        try:
            doc = json.loads(body)
        except ValueError:
            continue
        if any("\n" in s and message_mentions(s, address) for s in _strings(doc)):
            return True
    return False


def backups_holding(state_path: Path, address: str) -> list[Path]:
    """Files in the state's folder, other than the live state, that hold ``address``
    (the backup an upgrade took, a copy someone made): named, never read as state."""
    folder = state_path.parent
    if not folder.is_dir():
        return []
    live = live_files(state_path)
    found = []
    for path in sorted(folder.iterdir()):
        if path in live or not path.is_file() or path.name.endswith(".tmp"):
            continue
        if file_mentions(path, address):
            found.append(path)
    return found


def is_state_backup(state_path: Path, path: Path) -> bool:
    """A copy of the state (``inboxwatch.json.v1.bak``, ``inboxwatch.json.bak``...):
    the only kind ``--delete-backups`` deletes; other files are only named."""
    return path.name.startswith(state_path.name) and ".bak" in path.name[len(state_path.name) :]
