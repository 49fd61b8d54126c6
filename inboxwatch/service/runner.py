"""Wiring: the real adapters (or a dry run's stand-ins) put together into a daemon.

One place builds a daemon, for ``inboxwatch run``, the tests and the benchmarks alike.
"""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from inboxwatch.adapters.forwarding import ForwardingSource
from inboxwatch.adapters.memory_store import MemoryStore
from inboxwatch.adapters.oauth import Credential
from inboxwatch.adapters.ports import MailSource, StateStore
from inboxwatch.adapters.tinydb_store import TinyDbStore
from inboxwatch.service.clock import Clock, ScaledClock, SystemClock
from inboxwatch.service.daemon import Daemon
from inboxwatch.service.outbox import DryRunSender
from inboxwatch.service.pause import MARKER as PAUSE_MARKER
from inboxwatch.userfiles.config import Config
from inboxwatch.userfiles.rulebook import RuleBook

log = logging.getLogger("inboxwatch")


def make_daemon(
    cfg: Config,
    book: RuleBook,
    passwords: tuple[Credential, Credential],
    *,
    clock: Clock | None = None,
    time_scale: float = 1.0,
    dry_run: bool = False,
) -> Daemon:
    """IMAP + SMTP + the TinyDB state; for a dry run, the same reads with every write off.

    ``passwords`` are the IMAP and SMTP logins (:func:`inboxwatch.adapters.oauth.credentials`).
    """
    from inboxwatch.adapters.imap_source import ImapSource
    from inboxwatch.adapters.smtp import SmtpSender

    if clock is None:
        clock = ScaledClock(time_scale) if time_scale != 1 else SystemClock()
    source: MailSource = ImapSource(cfg.imap, passwords[0])
    if dry_run:
        return Daemon(
            cfg,
            book,
            dry_run_state(cfg),
            clock,
            ReadOnlySource(source),
            DryRunSender(),
            journal=None,
            time_scale=time_scale,
        )
    store = TinyDbStore.open(cfg.state_path, simulated=time_scale != 1, inbox_folder=cfg.imap.inbox)
    return Daemon(
        cfg,
        book,
        store,
        clock,
        source,
        SmtpSender(cfg.smtp, passwords[1]),
        journal=cfg.state_path.with_name(cfg.state_path.name + ".sent"),
        time_scale=time_scale,
    )


def dry_run_state(cfg: Config) -> StateStore:
    """A throw-away copy of what the real state knows about people (leads, suppressions,
    acknowledgements), read without the daemon's run lock. No reading positions and no
    outbox: a dry run reads from the moment it starts (plus ``lookback_days``)."""
    memory = MemoryStore()
    if not cfg.state_path.exists():
        return memory
    real = TinyDbStore.open(cfg.state_path, readonly=True, inbox_folder=cfg.imap.inbox)
    with real.transaction() as src:
        leads, known = src.leads(), src.known()
        acks = {lead.address: src.last_ack(lead.address) for lead in leads}
        paused = src.marker(PAUSE_MARKER)  # `inboxwatch pause`: held mail is not "would send"
    with memory.transaction() as dst:
        if paused:
            dst.set_marker(PAUSE_MARKER, paused)
        for lead in leads:
            dst.put_lead(lead, None)  # the daemon computes every wake time on start
        for address in known.suppressed:
            dst.suppress(address, "copied from the state", datetime.now().astimezone())
        for address, at in acks.items():
            if at is not None:
                dst.record_ack(address, at)
        for mid in known.ours:
            dst.add_ours(mid, datetime.now().astimezone())
    return memory


class ReadOnlySource(ForwardingSource):
    """A mail source with its two writes (copies in Sent, keywords) switched off."""

    def save_sent(self, raws: Sequence[bytes], when: datetime) -> None:
        return None

    def mark_processed(self, refs: Sequence[str]) -> None:
        return None


class RunLockKeeper:
    """Puts the run lock file back when it is deleted under the running daemon.

    The state folder's lock keeps a second daemon out all the same
    (:func:`inboxwatch.adapters.statefile.folder_locked`), but `status`, `pause` and the
    other commands find the daemon's pid in that file: without it `status` says "not
    running" (exit 1, a false alarm for monitoring) and a command's wake-up is lost.
    Checked after each tick (a file's inode, no read); the new file is locked and kept
    open for the daemon's life, as the first one is."""

    def __init__(self, state_path: Path) -> None:
        self.path = state_path.with_name(state_path.name + ".run.lock")
        self.ino = self._ino()
        self.kept: list[int] = []

    def _ino(self) -> int | None:
        try:
            return self.path.stat().st_ino
        except FileNotFoundError:
            return None

    def hook(self, what: str, data: Mapping[str, Any]) -> None:
        if what == "tick-done":
            self.check()

    def check(self) -> None:
        if self.ino is not None and self._ino() == self.ino:
            return
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            log.warning("run lock %s was deleted and cannot be made again: %s", self.path, exc)
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.ftruncate(fd, 0)
            os.write(fd, str(os.getpid()).encode("ascii"))
        except OSError:  # a second daemon holds it for a moment, on its way out
            os.close(fd)
            return
        for old in self.kept:  # a lock on a file deleted again: nobody can see it
            os.close(old)
        self.kept = [fd]
        self.ino = os.fstat(fd).st_ino
        log.warning("run lock %s was deleted while running: made again", self.path)
