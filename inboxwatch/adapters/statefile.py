"""The state's files made safe for a daemon: atomic snapshots, a lock, loud corruption.

The snapshot (``state.json``) is TinyDB's JSON layout (``{table: {doc_id: row}}``), so
``TinyDB(path)`` can still read it; but TinyDB's ``JSONStorage`` rewrites its file in
place (truncated by a crash mid-write) and hands every write the whole data set, so
the store keeps its own model in memory and its own journal (:mod:`.journal`). A
snapshot is written to a new file, fsynced and renamed over the old one (mode 0600), so
the file is always either the old or the new state. An exclusive ``flock`` on a side
file serialises the daemon and the CLI; readers take it shared.
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

from inboxwatch.errors import StateError

Data = dict[str, dict[str, Any]]


class StateUnwritable(OSError):
    """The state cannot be written (a full disk, a folder made read-only, a quota): a
    condition of the machine, not a bug, so one line names it and the folder; nothing
    that would need recording goes out until it can be written. Still an ``OSError``."""

    def __init__(self, folder: Path, exc: OSError) -> None:
        why = exc.strerror or str(exc)
        super().__init__(
            exc.errno, f"cannot write the state in {folder}: {why}; nothing is sent until it can"
        )

    def __str__(self) -> str:
        return str(self.strerror)  # without OSError's "[Errno 28]"


def fingerprint(path: Path) -> tuple[int, int, int] | None:
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
    """The whole state as one JSON document, atomically (a snapshot)."""
    # json.dumps uses the C encoder; json.dump(fh) the slow pure-Python one.
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    write_bytes_atomic(path, text.encode("utf-8", "backslashreplace"))  # see journal.frame


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write to a temp file in the same folder, fsync, rename, fsync the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with contextlib.suppress(FileNotFoundError, PermissionError):
            # `sudo inboxwatch stop` must not leave a root-owned file the service can't replace.
            st = path.stat()
            os.fchown(fd, st.st_uid, st.st_gid)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
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


def remove_temp_files(path: Path) -> list[Path]:
    """Temp files a crash left beside ``path`` (and its journal); call under the lock."""
    gone = []
    for tmp in path.parent.glob(f".{path.name}.*.tmp"):
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
            gone.append(tmp)
    return gone


@contextlib.contextmanager
def folder_locked(folder: Path) -> Iterator[bool]:
    """An exclusive ``flock`` on the state folder itself, held while the block runs; yields
    False (and holds nothing) when another process has it.

    The daemon's run lock is a file, and a file can be deleted under a running daemon (a
    clean-up of "stale" lock files, a user who thinks it is left over): a second daemon
    would then make a new one, lock it, and both would send every queued message. A
    folder cannot be removed while it holds the state, so its lock outlives such a clean-up.
    """
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)  # releases the flock


class StateFile:
    """One state file's lock: the daemon and the commands beside it take turns."""

    def __init__(self, path: Path, readonly: bool = False) -> None:
        self.path = path
        self.readonly = readonly
        self.lock_path = path.with_name(path.name + ".lock")

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Exclusive for a writer, shared for a reader; a reader of a folder that does not
        exist (no state yet) takes no lock and creates nothing."""
        if self.readonly and not self.lock_path.parent.exists():
            yield
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH if self.readonly else fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the flock

    def append_line(self, path: Path, record: dict[str, Any]) -> None:
        """Append one JSON line (the archive): history grows there, not in the live file."""
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            line = json.dumps(record, ensure_ascii=False) + "\n"
            os.write(fd, line.encode("utf-8", "backslashreplace"))  # see journal.frame
            os.fsync(fd)
        finally:
            os.close(fd)
