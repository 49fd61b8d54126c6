"""Timing the daemon from the outside, without touching the product or its private methods.

Two public handles are used, nothing else:

* the daemon's event hook (:attr:`Daemon.hooks`): "tick" / "tick-done" delimit a tick,
  "read" counts what the inbox gave, "applied" shows the typed actions (what was queued);
* its adapters, at their Protocols: :class:`TimedSource` (a ``MailSource``),
  :class:`TimedSender` (a ``Sender``) and :class:`TimedStore` (a ``StateStore``) time every
  call and forward it, assigned in place of ``daemon.source``, ``daemon.outbox.sender`` and
  ``daemon.store`` / ``daemon.outbox.store`` by :func:`instrument`.

Each timed call records its *exclusive* time (minus the timed calls inside it) in the
report of the tick it falls in (calls between ticks: connect, the IDLE wait, go to
``outside``). A tick's wall time minus its adapter time is the daemon's own work: parsing,
classifying, deciding, composing and applying, with the state in memory.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from inboxwatch.adapters.ports import Batch, Envelope, MailSource, Result, Sender, State, Stream
from inboxwatch.adapters.ports import StateStore as StateStoreT
from inboxwatch.core.actions import Queue
from inboxwatch.core.lead import Lead
from inboxwatch.core.queue import Purpose
from inboxwatch.service.daemon import Daemon

#: Name of a timed call → category in the summary.
CATEGORY = {
    "source.open": "IMAP connect + login",
    "source.read": "IMAP read (select, search, fetch)",
    "source.flagged": "IMAP search flagged",
    "source.in_sent": "IMAP search Sent",
    "source.refresh": "IMAP NOOP",
    "source.mark_processed": "IMAP keyword",
    "source.save_sent": "IMAP (MULTI)APPEND to Sent",
    "source.wait": "IMAP wait (IDLE)",
    "source.close": "IMAP logout",
    "sender.send": "SMTP send",
    "outbox.accepted": "send journal (fsync)",
    "state.open": "state: lock + catch up",
    "state.commit": "state: write (fsync)",
    "state.maintain": "state: snapshot when idle",
}
#: The tick's wall time minus the adapters': parse, classify, decide, compose, apply.
REST = "daemon code"


def category(name: str) -> str:
    return CATEGORY.get(name, name)


@dataclass
class TickReport:
    start: float  # time.time()
    end: float = 0.0
    excl: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    calls: Counter[str] = field(default_factory=Counter)
    #: Inbox messages read, per "read" event (one per chunk), with the time of each.
    reads: list[tuple[float, int]] = field(default_factory=list)
    queued: Counter[str] = field(default_factory=Counter)  # purpose → items queued
    done: bool = False  # False: the tick raised (no "tick-done")

    @property
    def wall(self) -> float:
        return self.end - self.start

    def by_category(self) -> dict[str, float]:
        out: dict[str, float] = defaultdict(float)
        for name, secs in self.excl.items():
            out[category(name)] += secs
        if self.end:
            out[REST] = max(0.0, self.wall - sum(self.excl.values()))
        return dict(sorted(out.items(), key=lambda kv: -kv[1]))


class Recorder:
    """Per-tick reports from the daemon's hook and the adapter proxies; time stamps
    (``time.time()``, comparable with the SMTP stand-in's) of the events that split a
    latency: "tick", "tick-done", "wake" (the source's wait saw new mail), "send-start",
    "ack-queued"."""

    def __init__(self) -> None:
        self._local = threading.local()
        self.ticks: list[TickReport] = []
        self.outside = TickReport(time.time())
        self.current: TickReport | None = None
        self.events: list[tuple[str, float]] = []
        self.lock = threading.Lock()

    # -- the daemon's hook ----------------------------------------------------------------
    def hook(self, what: str, data: Mapping[str, Any]) -> None:
        now = time.time()
        if what == "tick":
            if self.current is not None:  # the last tick raised: keep what it did
                self.current.end = now
                self.ticks.append(self.current)
            self.current = TickReport(now)
        elif what == "tick-done" and self.current is not None:
            self.current.end, self.current.done = now, True
            self.ticks.append(self.current)
            self.current = None
        elif what == "read" and self.current is not None:
            if data.get("stream") == Stream.INBOX:
                self.current.reads.append((now, int(data.get("count", 0))))
        elif what == "applied":
            report = self.current or self.outside
            for action in data.get("actions", ()):
                if isinstance(action, Queue):
                    report.queued[action.item.purpose.value] += 1
                    if action.item.purpose is Purpose.ACK:
                        self.event("ack-queued", now)
        self.event(what, now)

    @property
    def ticks_done(self) -> int:
        return sum(1 for t in self.ticks if t.done)

    def done_at_least(self, n: int) -> Callable[[], bool]:
        return lambda: self.ticks_done >= n

    # -- events ---------------------------------------------------------------------------
    def event(self, what: str, at: float | None = None) -> None:
        with self.lock:
            self.events.append((what, time.time() if at is None else at))

    def events_named(self, what: str) -> list[float]:
        with self.lock:
            return [t for w, t in self.events if w == what]

    def first_after(self, what: str, t0: float) -> float | None:
        return min((t for t in self.events_named(what) if t >= t0), default=None)

    # -- timing ---------------------------------------------------------------------------
    def _stack(self) -> list[list[Any]]:
        stack = getattr(self._local, "stack", None)
        if stack is None:
            stack = self._local.stack = []
        return stack

    @contextlib.contextmanager
    def timed(self, name: str) -> Iterator[None]:
        stack = self._stack()
        frame: list[Any] = [name, time.perf_counter(), 0.0]
        stack.append(frame)
        try:
            yield
        finally:
            stack.pop()
            dur = time.perf_counter() - frame[1]
            report = self.current or self.outside
            report.excl[name] += dur - frame[2]
            report.calls[name] += 1
            if stack:
                stack[-1][2] += dur


class TimedSource:
    """A ``MailSource`` that times each call of another and forwards it.

    ``wait`` also tells the benchmark when the daemon is waiting for mail (``waiting``,
    set once the source first asks ``interrupted()``, i.e. has done its own checks and
    is about to IDLE) and stamps "wake" when the wait reports new mail. :meth:`kick` ends
    a wait as new mail would, which is how a benchmark asks for another tick.
    """

    def __init__(self, inner: MailSource, rec: Recorder) -> None:
        self.inner, self.rec = inner, rec
        self.waiting = False
        self._kick = threading.Event()

    def kick(self) -> None:
        self._kick.set()

    def open(self) -> None:
        with self.rec.timed("source.open"):
            self.inner.open()

    def close(self) -> None:
        with self.rec.timed("source.close"):
            self.inner.close()

    @property
    def has_sent(self) -> bool:
        return self.inner.has_sent

    def read(
        self,
        stream: Stream,
        cursor: str | None,
        *,
        now: datetime,
        lookback: timedelta,
        limit: int,
        headers_only: bool = False,
    ) -> Batch:
        with self.rec.timed("source.read"):
            return self.inner.read(
                stream, cursor, now=now, lookback=lookback, limit=limit, headers_only=headers_only
            )

    def flagged(self) -> frozenset[str]:
        with self.rec.timed("source.flagged"):
            return self.inner.flagged()

    def in_sent(self, message_id: str) -> bool:
        with self.rec.timed("source.in_sent"):
            return self.inner.in_sent(message_id)

    def save_sent(self, raws: Sequence[bytes], when: datetime) -> None:
        with self.rec.timed("source.save_sent"):
            self.inner.save_sent(raws, when)

    def mark_processed(self, refs: Sequence[str]) -> None:
        with self.rec.timed("source.mark_processed"):
            self.inner.mark_processed(refs)

    def refresh(self) -> None:
        with self.rec.timed("source.refresh"):
            self.inner.refresh()

    def heard_ago(self) -> float | None:
        return self.inner.heard_ago()

    def wait(self, seconds: float, interrupted: Callable[[], bool]) -> bool:
        def asked() -> bool:
            self.waiting = True
            return interrupted() or self._kick.is_set()

        try:
            with self.rec.timed("source.wait"):
                woke = self.inner.wait(seconds, asked)
        finally:
            self.waiting = False
        if self._kick.is_set():
            self._kick.clear()
            woke = True
        if woke:
            self.rec.event("wake")
        return woke


class TimedSender:
    """A ``Sender`` that times each batch (and, apart, the caller's journal callback)."""

    def __init__(self, inner: Sender, rec: Recorder) -> None:
        self.inner, self.rec = inner, rec

    def send(
        self,
        batch: Sequence[Envelope],
        on_accepted: Callable[[str], None] | None = None,
        stop: Callable[[], bool] | None = None,
    ) -> dict[str, Result]:
        self.rec.event("send-start")
        callback = None
        if on_accepted is not None:
            accepted = on_accepted

            def callback(item_id: str) -> None:
                with self.rec.timed("outbox.accepted"):
                    accepted(item_id)

        with self.rec.timed("sender.send"):
            return self.inner.send(batch, callback, stop)


class TimedStore:
    """A ``StateStore`` whose transactions are timed at their two ends: opening (lock,
    catch up with what another process appended) and committing (the journal append
    with fsync). What happens in between is the daemon's (reads in memory)."""

    def __init__(self, inner: StateStoreT, rec: Recorder) -> None:
        self.inner, self.rec = inner, rec

    @property
    def simulated(self) -> bool:
        return self.inner.simulated

    @contextlib.contextmanager
    def transaction(self) -> Iterator[State]:
        cm = self.inner.transaction()
        with self.rec.timed("state.open"):
            state = cm.__enter__()
        ok = False
        try:
            yield state
            ok = True
        finally:
            if ok:
                with self.rec.timed("state.commit"):
                    cm.__exit__(None, None, None)
            else:
                cm.__exit__(*sys.exc_info())

    def archived(self) -> Iterator[Lead]:
        return self.inner.archived()

    def erase(self, address: str, now: datetime, *, keep_suppression: bool = False) -> Any:
        return self.inner.erase(address, now, keep_suppression=keep_suppression)

    def purge_archive(self, closed_before: datetime) -> int:
        return self.inner.purge_archive(closed_before)

    def maintain(self) -> None:
        with self.rec.timed("state.maintain"):
            self.inner.maintain()


def instrument(daemon: Daemon, rec: Recorder, *, adapters: bool = True) -> TimedSource | None:
    """Subscribe ``rec`` to the daemon's hook and (``adapters``) put timing proxies around
    its mail source, its outbox's sender and its store; the source proxy back, if any."""
    daemon.hooks.append(rec.hook)
    if not adapters:
        return None
    source = TimedSource(daemon.source, rec)
    daemon.source = source
    daemon.outbox.sender = TimedSender(daemon.outbox.sender, rec)
    store = TimedStore(daemon.store, rec)
    daemon.store = daemon.outbox.store = store
    return source
