"""The state's journal: each transaction's changed rows, appended as one fsynced record.

Why: rewriting the whole state file per transaction costs what the file weighs (325 ms
at 5,000 active leads); appending what changed costs what changed. The snapshot
(``state.json``) plus this journal (``state.json.journal``) are the state; compaction
folds the journal into a new snapshot now and then.

Format: one line per record, ``<crc32 hex> <length> <json>\\n``. The first record is
the header ``{"journal": 1, "generation": G}``; every later one is a transaction,
``[[table, key, row or null], ...]`` (null: the row was removed). Rows are whole rows, so
replaying a record twice gives the same state. A journal counts only beside a snapshot
of the same generation: compaction writes the snapshot first, then a new journal, so a
crash between the two leaves an old journal that is ignored (its records are in the
snapshot already).

A crash mid-append leaves a torn last record: its length or checksum does not match,
and it is dropped (it was never acknowledged to the caller). A writer holding the lock
cuts such a tail off before it appends, so a bad record can only ever be the last one;
anywhere else it is damage, and the store refuses to guess.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inboxwatch.adapters.statefile import write_bytes_atomic
from inboxwatch.errors import StateError

VERSION = 1
#: (table, key, row); row None: removed.
Change = tuple[str, str, dict[str, Any] | None]


def frame(obj: Any) -> bytes:
    """One journal line. A lone surrogate (bytes of a malformed message read as text) is
    written as its JSON escape, which reads back as the same string: a value that
    cannot be UTF-8 must never make every write fail and stall the daemon."""
    body = json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode(
        "utf-8", "backslashreplace"
    )
    return b"%08x %d " % (zlib.crc32(body), len(body)) + body + b"\n"


def _unframe(line: bytes) -> Any:
    """The record in a whole line (without its newline); ValueError if damaged."""
    crc, _, rest = line.partition(b" ")
    length, _, body = rest.partition(b" ")
    if len(crc) != 8 or not length.isdigit() or int(length) != len(body):
        raise ValueError("length")
    if int(crc, 16) != zlib.crc32(body):
        raise ValueError("checksum")
    return json.loads(body)


@dataclass
class Tail:
    """What a read found after ``offset``."""

    #: The header's generation (only when read from the start; None: no journal).
    generation: str | None = None
    records: list[list[Change]] = field(default_factory=list)
    #: Offset just after the last whole record: where the next append goes.
    end: int = 0
    #: Bytes after ``end`` that are not a whole record (a crash mid-append).
    torn: bool = False


def read(path: Path, offset: int = 0) -> Tail:
    """Records from ``offset`` (0: the header first). A missing journal is an empty one."""
    try:
        with path.open("rb") as fh:
            fh.seek(offset)
            data = fh.read()
    except FileNotFoundError:
        return Tail(end=offset)
    except OSError as exc:
        raise StateError(f"cannot read state journal {path}: {exc}") from None
    tail = Tail(end=offset)
    pos = 0
    while pos < len(data):
        nl = data.find(b"\n", pos)
        try:
            if nl < 0:
                raise ValueError("cut short")
            record = _unframe(data[pos:nl])
        except ValueError:
            if nl < 0 or nl + 1 == len(data):
                tail.torn = True  # the last record, cut short by a crash: never committed
                return tail
            raise StateError(
                f"state journal {path} is damaged at byte {offset + pos} (a record in the "
                "middle does not match its checksum); inboxwatch will not guess. Restore "
                "the state from a backup."
            ) from None
        if offset + pos == 0:
            if not isinstance(record, dict) or record.get("journal") != VERSION:
                raise StateError(f"{path} is not an inboxwatch state journal (version {VERSION})")
            tail.generation = str(record.get("generation", ""))
        else:
            tail.records.append([(str(t), str(k), row) for t, k, row in record])
        pos = nl + 1
        tail.end = offset + pos
    return tail


def start(path: Path, generation: str) -> int:
    """A new journal holding only its header, atomically; returns where records go."""
    header = frame({"journal": VERSION, "generation": generation})
    write_bytes_atomic(path, header)
    return len(header)


def append(path: Path, changes: list[Change], end: int) -> int:
    """One transaction, written at ``end`` and on disk before this returns; the new end.

    Anything after ``end`` (a torn record) is cut off first. If the write fails, the
    file is cut back to ``end`` (as far as the disk lets us), so a half-written record
    that might read as whole cannot count later.
    """
    data = frame([[t, k, row] for t, k, row in changes])
    fd = os.open(path, os.O_WRONLY)
    try:
        try:
            if os.fstat(fd).st_size != end:
                os.ftruncate(fd, end)
            written = os.pwrite(fd, data, end)
            if written != len(data):
                # A regular file is written short only when the disk or a quota is full.
                why = f"No space left on device ({written} of {len(data)} bytes written)"
                raise OSError(errno.ENOSPC, why)
            os.fdatasync(fd)
        except BaseException:
            with contextlib.suppress(OSError):  # if not, the checksum keeps it out
                os.ftruncate(fd, end)
            raise
    finally:
        os.close(fd)
    return end + len(data)
