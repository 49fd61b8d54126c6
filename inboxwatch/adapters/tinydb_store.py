"""The state: active leads, the outbox, mailbox positions, suppressions. Files and a lock.

The state lives in memory (:mod:`.model`), loaded once at open; each transaction appends
its changed rows to a journal and fsyncs it (:mod:`.journal`), so a write costs what
changed, not what the state weighs. Now and then the journal is folded into a new
snapshot (``state.json``, TinyDB's JSON layout), written atomically.

Only *active* leads live in the state, so the daemon's work grows with them, not with
history: a lead that has been closed for ``ARCHIVE_AFTER`` moves to an append-only archive
(``<state>.archive.jsonl``) that only ``leads --all``, ``show`` and the digest read.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from inboxwatch.adapters import erasure_files, journal, migrations
from inboxwatch.adapters.erasure import Erased
from inboxwatch.adapters.model import TABLES as TABLES
from inboxwatch.adapters.model import DamagedRow, Model
from inboxwatch.adapters.model_state import ARCHIVE_AFTER as ARCHIVE_AFTER
from inboxwatch.adapters.model_state import SEEN_KEEP as SEEN_KEEP
from inboxwatch.adapters.model_state import SENT_KEEP as SENT_KEEP
from inboxwatch.adapters.model_state import ModelState
from inboxwatch.adapters.ports import State, StateStore
from inboxwatch.adapters.statefile import (
    StateFile,
    StateUnwritable,
    fingerprint,
    read_json,
    remove_temp_files,
    write_json_atomic,
)
from inboxwatch.core.lead import Lead, iso
from inboxwatch.errors import StateError

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


def _damaged(path: Path, exc: DamagedRow) -> StateError:
    """Every stored row must read back: a damaged one stops start-up with a clear message
    (nothing is written, so the files are left exactly as they were)."""
    what = "lead" if exc.table == "leads" else "row"
    return StateError(
        f"state file {path} has a damaged {what} ({exc}); inboxwatch will not start with "
        f"it. Restore the file from a backup, or remove that {what}."
    )


#: The journal is folded into a new snapshot when the daemon has a moment with nothing to
#: do (:meth:`TinyDbStore.maintain`) once it outgrows this many times the snapshot (and
#: this minimum), and at once, in the middle of work, only past :data:`COMPACT_HARD`
#: times: writing 10 MB of snapshot (5,000 leads) must not hold up an acknowledgement,
#: and the state on disk still stays within a few times its size.
COMPACT_RATIO = 1
COMPACT_HARD = 4
COMPACT_MIN = 1 << 20


class TinyDbStore(StateStore):
    """The state behind :class:`~inboxwatch.adapters.ports.StateStore`: a snapshot
    (TinyDB's JSON layout) and a journal, with the whole state in memory.

    A transaction holds the file's lock; first it catches up with what other processes
    (``inboxwatch stop`` beside the daemon) appended to the journal, then it reads and
    writes the model in memory, and at its end appends the rows it changed as one record
    and fsyncs it. An exception inside writes nothing and puts the model back as it was.
    """

    def __init__(self, path: Path, *, readonly: bool = False, inbox_folder: str = "INBOX") -> None:
        self.path = path
        self.journal_path = path.with_name(path.name + ".journal")
        self.file = StateFile(path, readonly=readonly)
        self.archive_path = path.with_name(path.name + ".archive.jsonl")
        self._context = migrations.Context(inbox_folder=inbox_folder)
        self.model = Model()
        self._state: ModelState | None = None
        self._told = False
        self._simulated = False
        #: What was loaded: the snapshot's fingerprint, the journal's inode and end
        #: (end None: no journal of this snapshot's generation yet; the next write makes one).
        self._loaded_snapshot: tuple[int, int, int] | None = None
        self._loaded = False
        self._journal_ino: int | None = None
        self._journal_end: int | None = None
        #: A snapshot was written inside the open transaction.
        self._compacted = False

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
        store._simulated = simulated
        with store.transaction():
            pass  # loads (and upgrades or creates) the state, or says what is wrong
        return store

    # -- loading and catching up ----------------------------------------------------------
    def _catch_up(self) -> None:
        """Bring memory up to what the files hold (under the lock): usually nothing or a
        few records another process appended; everything only after a compaction."""
        try:
            self._read_news()
        except DamagedRow as exc:
            self._loaded = False
            raise _damaged(self.path, exc) from None

    def _read_news(self) -> None:
        snap = fingerprint(self.path)
        if snap is None and self._loaded and not self.file.readonly:
            self._write_back()
            return
        if not self._loaded or snap != self._loaded_snapshot:
            self._load()
            return
        if not self._read_journal_tail():
            self._load()

    def _read_journal_tail(self) -> bool:
        """Replay what others appended to our journal; False if it is not ours any more."""
        try:
            st = self.journal_path.stat()
        except FileNotFoundError:
            st = None
        if self._journal_end is None:
            return True  # our generation has no journal yet: nobody else can have written one
        if st is None or st.st_ino != self._journal_ino or st.st_size < self._journal_end:
            return False
        if st.st_size > self._journal_end:
            tail = journal.read(self.journal_path, self._journal_end)
            self.model.replay(tail.records)
            self._journal_end = tail.end
        return True

    def _write_back(self) -> None:
        """The state file went away under us (deleted by hand, a clean-up script, the
        folder emptied): memory still holds all of it, so it is written again, instead of
        being read back as a new, empty state that would forget every lead, cadence,
        opt-out and queued message. A file *replaced* by another (a backup put back) is
        read, as the user meant."""
        self._read_journal_tail()  # a command's change after the file went, if any
        log.warning("state file %s was deleted while running: written again from memory", self.path)
        self.compact()

    def _load(self) -> None:
        self._loaded = False
        data = read_json(self.path)
        found = migrations.version(data)
        if found > migrations.SCHEMA_VERSION:
            raise StateError(
                f"state file {self.path} was written by a newer inboxwatch "
                f"(version {found}); upgrade inboxwatch"
            )
        upgraded = found < migrations.SCHEMA_VERSION
        if upgraded:
            data = migrations.migrate(data, self._context)
        self.model.load(data)
        # Older versions kept no journal: one beside their file is not theirs to read.
        generation = None if upgraded else self.model.meta.get("generation")
        tail = journal.read(self.journal_path) if generation else journal.Tail()
        self._journal_end = None
        if generation and tail.generation == generation:
            self.model.replay(tail.records)
            self._journal_end = tail.end
            with contextlib.suppress(FileNotFoundError):
                self._journal_ino = self.journal_path.stat().st_ino
        self._loaded_snapshot = fingerprint(self.path)
        self._loaded = True
        if self.file.readonly:
            if upgraded:
                self._log_upgrade(found, "in memory (read-only)")
            return
        if not data:  # a new state
            self.model.meta = {
                "version": migrations.SCHEMA_VERSION,
                "created": iso(datetime.now(UTC)),
                "simulated": self._simulated,
            }
        if upgraded and self.path.exists():
            backup = self._backup(found)
            self._log_upgrade(found, f"and saved (the old file is kept as {backup})")
        if upgraded or self._journal_end is None or self._journal_too_long():
            remove_temp_files(self.path)
            self.compact()

    def _backup(self, version: int) -> Path:
        """The file as the older version wrote it, kept once: a way back if needed."""
        backup = self.path.with_name(f"{self.path.name}.v{version}.bak")
        if not backup.exists():
            tmp = backup.with_name(backup.name + ".tmp")
            shutil.copyfile(self.path, tmp)
            tmp.chmod(0o600)
            with tmp.open("rb+") as fh:
                os.fsync(fh.fileno())
            tmp.replace(backup)
        return backup

    def _log_upgrade(self, found: int, how: str) -> None:
        if not self._told:
            log.info(
                "state file %s upgraded from version %d to %d %s",
                self.path,
                found,
                migrations.SCHEMA_VERSION,
                how,
            )
            self._told = True

    # -- writing --------------------------------------------------------------------------
    def _journal_too_long(self, ratio: float = COMPACT_RATIO) -> bool:
        end = self._journal_end or 0
        size = self._loaded_snapshot[1] if self._loaded_snapshot else 0
        return end > max(COMPACT_MIN, ratio * size)

    def maintain(self) -> None:
        """A moment with nothing else to do: fold a long journal into a new snapshot. A
        failure (a full disk) is logged and tried again next time; nothing is lost."""
        if self.file.readonly:
            return
        with self.file.locked():
            self._catch_up()
            if self._journal_end is not None and not self._journal_too_long():
                return
            try:
                self.compact()
            except OSError as exc:
                log.warning("state snapshot of %s not written: %s", self.path, exc)

    def compact(self) -> None:
        """A new snapshot of everything, then a new journal of its generation (call under
        the lock). A crash after the snapshot leaves the old journal, whose generation
        no longer matches: it is ignored, as its records are in the snapshot.

        Inside a transaction the snapshot holds its changes so far: if the transaction
        then fails, memory is read back from the files, not just rolled back."""
        if self._state is not None:
            self._compacted = True
        generation = uuid.uuid4().hex
        meta = {**self.model.meta, "version": migrations.SCHEMA_VERSION, "generation": generation}
        self._journal_end = None  # until the new journal is there, the old one is stale
        write_json_atomic(self.path, self.model.snapshot(meta))
        self.model.meta = meta
        self._loaded_snapshot = fingerprint(self.path)
        end = journal.start(self.journal_path, generation)
        self._journal_ino = self.journal_path.stat().st_ino
        self._journal_end = end

    def _persist(self, changes: list[journal.Change]) -> None:
        if self._journal_end is None:
            self.compact()  # the changes are in the model: the snapshot holds them
        else:
            self._journal_end = journal.append(self.journal_path, changes, self._journal_end)
        if self._journal_too_long(COMPACT_HARD):
            try:
                self.compact()
            except OSError as exc:  # what was written stands; compaction is tried again
                log.warning("state snapshot of %s not written: %s", self.path, exc)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[State]:
        """A transaction inside another joins it: the outer one writes, or drops, both."""
        if self._state is not None:
            yield self._state
            return
        with self.file.locked():
            self._catch_up()
            state = self._state = ModelState(self.model)
            self.model.begin()
            try:
                yield state
                changes = self.model.changes()
                if changes and not self.file.readonly:
                    try:
                        for row in state.to_archive:
                            self.file.append_line(self.archive_path, row)
                        self._persist(changes)
                    except OSError as exc:
                        self._loaded = False  # what reached the disk is read back next time
                        raise StateUnwritable(self.path.parent, exc) from exc
                    except BaseException:
                        self._loaded = False
                        raise
                    self.model.commit()
                else:
                    self.model.rollback()  # a reader never writes: memory stays the file's
            except BaseException:
                self.model.rollback()
                if self._compacted:
                    self._loaded = False  # a snapshot holds changes that did not stand
                raise
            finally:
                self._state = None
                self._compacted = False

    @property
    def simulated(self) -> bool:
        return bool(self.model.meta.get("simulated"))

    def archived(self) -> Iterator[Lead]:
        return _read_archive(self.archive_path)

    def erase(self, address: str, now: datetime, *, keep_suppression: bool = False) -> Erased:
        """Rows, archive, then a new snapshot and journal: see :mod:`.erasure_files`."""
        return erasure_files.erase_file_store(self, address, now, keep_suppression)

    def purge_archive(self, closed_before: datetime) -> int:
        """Streams the archive (never loaded whole); rewrites it only if a lead goes."""
        return erasure_files.purge_file_store(self, closed_before)


def read_state(path: Path) -> dict[str, dict[str, Any]]:
    """The state as one TinyDB-layout document, snapshot and journal together (read-only:
    for tests and tools that look at the files without a store)."""
    store = TinyDbStore.open(path, readonly=True)
    with store.transaction():
        return store.model.snapshot(dict(store.model.meta))


def load_tables(path: Path) -> dict[str, list[dict[str, Any]]]:
    """:func:`read_state` as table → rows."""
    return {name: list(rows.values()) for name, rows in read_state(path).items()}
