"""What erasing and retention do to the state's files: the archive rewritten, the
snapshot and journal written anew, and the backups beside them searched.

Why apart from :mod:`.erasure` (the rules about rows): these are file operations under
the state's lock, with their own atomicity (a new file, fsynced, renamed) and their own
cost rule: the archive is streamed, never loaded whole, as it grows with the years.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from inboxwatch.adapters.erasure import (
    Erased,
    closed_at,
    erase_model,
    mentions,
    message_mentions,
    names_lead,
    normalize,
    redact,
    strings,
)
from inboxwatch.core.lead import iso

if TYPE_CHECKING:
    from inboxwatch.adapters.tinydb_store import TinyDbStore


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


# -- the archive file ----------------------------------------------------------------------
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
        if any("\n" in s and message_mentions(s, address) for s in strings(doc)):
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
