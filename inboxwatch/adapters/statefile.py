"""TinyDB underneath, made safe for a daemon: atomic writes, batching, a lock, loud corruption.

TinyDB's ``JSONStorage`` rewrites its file in place on every write: slow as the file grows
and truncated by a crash mid-write. Here reads and writes go to memory inside a
transaction; at its end the whole state is written once to a new file, fsynced and
renamed over the old one (mode 0600), so the file is always either the old or the new
state. An exclusive ``flock`` on a side file serialises the daemon and the CLI; each
transaction re-reads the file if another process changed it, so no update is lost.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tinydb import TinyDB
from tinydb.storages import Storage

from inboxwatch.errors import StateError

Data = dict[str, dict[str, Any]]


class MemoryBackedStorage(Storage):
    """TinyDB storage whose writes stay in memory until :meth:`flush`."""

    def __init__(self) -> None:
        self.data: Data = {}
        self.dirty = False

    def read(self) -> Data:
        return self.data

    def write(self, data: Data) -> None:
        self.data = data
        self.dirty = True


def _fingerprint(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def read_json(path: Path) -> Data:
    """Read a state file; a damaged one stops us with a clear message, never an empty start."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise StateError(f"cannot read state file {path}: {exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise StateError(
            f"state file {path} is damaged (line {exc.lineno}: {exc.msg}); inboxwatch will not "
            "start with empty state. Restore it from a backup, or move it away to start afresh "
            "(every lead would then be forgotten)."
        ) from None
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise StateError(f"state file {path} is not an inboxwatch state (expected JSON tables)")
    return data


def write_json_atomic(path: Path, data: Data) -> None:
    """Write to a temp file in the same folder, fsync, rename, fsync the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with contextlib.suppress(FileNotFoundError, PermissionError):
            # `sudo inboxwatch stop` must not leave a root-owned file the service can't replace.
            st = path.stat()
            os.fchown(fd, st.st_uid, st.st_gid)
        # json.dumps uses the C encoder; json.dump(fh) the slow pure-Python one.
        text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class StateFile:
    """One state file: a TinyDB whose changes land atomically at the end of a transaction."""

    def __init__(self, path: Path, readonly: bool = False) -> None:
        self.path = path
        self.readonly = readonly
        self.lock_path = path.with_name(path.name + ".lock")
        self.storage = MemoryBackedStorage()
        self.db = TinyDB(storage=lambda: self.storage)
        self._seen: tuple[int, int, int] | None = None
        self._loaded = False
        self._depth = 0

    def _reload_if_changed(self) -> None:
        fp = _fingerprint(self.path)
        if self._loaded and fp == self._seen:
            return
        self.storage.data = read_json(self.path)
        self.storage.dirty = False
        self._seen = fp
        self._loaded = True
        # TinyDB caches tables (and their next document id): start from fresh ones.
        self.db = TinyDB(storage=lambda: self.storage)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[TinyDB]:
        """Hold the lock, bring memory up to date, yield the db, write once if changed."""
        if self._depth:  # nested: the outer transaction writes
            self._depth += 1
            try:
                yield self.db
            finally:
                self._depth -= 1
            return
        if self.readonly and not self.lock_path.parent.exists():
            self._reload_if_changed()
            yield self.db
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH if self.readonly else fcntl.LOCK_EX)
            self._reload_if_changed()
            self._depth = 1
            try:
                yield self.db
            except BaseException:
                # Drop half-done changes: the next transaction re-reads the file.
                self._loaded = False
                raise
            finally:
                self._depth = 0
            if self.storage.dirty and not self.readonly:
                try:
                    write_json_atomic(self.path, self.storage.data)
                except BaseException:
                    self._loaded = False  # not on disk: forget it, re-read the file next time
                    raise
                self.storage.dirty = False
                self._seen = _fingerprint(self.path)
        finally:
            os.close(fd)  # releases the flock

    def append_line(self, path: Path, record: dict[str, Any]) -> None:
        """Append one JSON line (the archive): history grows there, not in the live file."""
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, (json.dumps(record, ensure_ascii=False) + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)


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
