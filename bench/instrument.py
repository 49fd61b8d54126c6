"""Timing the daemon's pieces without touching the product: wrappers on one Daemon's methods,
its Mailbox, Store and sender, and (for as long as the ``patched`` context lasts) on the
module-level functions the daemon calls (parse, classify, engine, compose, state file IO).

Each wrapped call records its *exclusive* time (minus the wrapped calls inside it), so the
categories of one cycle add up to the cycle's wall time. Per cycle a report is kept; calls
outside a cycle (connect, the wait between cycles) go to ``outside``.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import inboxwatch.adapters.statefile
import inboxwatch.service.daemon
import inboxwatch.service.outbox

#: Name of a wrapped call → category in the summary.
CATEGORY = {
    "mailbox.select": "IMAP select/search",
    "mailbox.uids_after": "IMAP select/search",
    "mailbox.uids_since": "IMAP select/search",
    "mailbox.flagged": "IMAP select/search",
    "mailbox.noop": "IMAP select/search",
    "mailbox.fetch": "IMAP fetch",
    "mailbox.append": "IMAP APPEND (copy to Sent)",
    "mailbox.add_keyword": "IMAP keyword",
    "parse_message": "parse (mail-parser)",
    "classify": "classify",
    "on_enquiry": "decide (engine)",
    "on_message": "decide (engine)",
    "plan": "decide (engine)",
    "to_bytes": "compose (render MIME)",
    "write_json_atomic": "state: write file (json+fsync)",
    "read_json": "state: read file",
    "sender.send": "SMTP send",
}
STATE_QUERIES = "state: TinyDB queries/updates (memory)"
DAEMON = "daemon code (rest)"
STORE_METHODS = (
    "known",
    "leads",
    "lead",
    "put_lead",
    "last_ack",
    "record_ack",
    "cursor",
    "set_cursor",
    "suppress",
    "suppressed",
    "archive_closed",
    "prune",
    "reject",
    "add_ours",
)
OUTBOX_FUNCS = ("enqueue", "mark", "due", "retry_later")
DAEMON_METHODS = (
    "_reload_rules_if_changed",
    "_new_uids",
    "_read_sent",
    "_process_inbox",
    "_process_one",
    "_process_sent",
    "_process_flagged",
    "_plan",
    "_apply",
    "_presend_check",
    "_send",
    "_after_sent",
    "_copy_to_sent",
    "_seconds_to_next_due",
    "_recover_interrupted_sends",
)
MAILBOX_METHODS = ("select", "uids_after", "uids_since", "flagged", "noop", "add_keyword", "append")


def category(name: str) -> str:
    if name in CATEGORY:
        return CATEGORY[name]
    if name.startswith(("store.", "outbox.")):
        return STATE_QUERIES
    return DAEMON


@dataclass
class CycleReport:
    start: float  # time.time()
    end: float = 0.0
    excl: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    calls: Counter[str] = field(default_factory=Counter)
    #: Direct children of the cycle: (name, start offset, duration), for a timeline.
    timeline: list[tuple[str, float, float]] = field(default_factory=list)

    @property
    def wall(self) -> float:
        return self.end - self.start

    def by_category(self) -> dict[str, float]:
        out: dict[str, float] = defaultdict(float)
        for name, secs in self.excl.items():
            out[category(name)] += secs
        return dict(sorted(out.items(), key=lambda kv: -kv[1]))


class Recorder:
    """Collects exclusive times per cycle; events (wall-clock stamps) for latency splits."""

    def __init__(self) -> None:
        self._local = threading.local()
        self.cycles: list[CycleReport] = []
        self.outside = CycleReport(time.time())
        self.current: CycleReport | None = None
        self.events: list[tuple[str, float]] = []  # (what, time.time())
        self.lock = threading.Lock()

    def _stack(self) -> list[list[Any]]:
        stack = getattr(self._local, "stack", None)
        if stack is None:
            stack = self._local.stack = []
        return stack

    def event(self, what: str) -> None:
        with self.lock:
            self.events.append((what, time.time()))

    def events_named(self, what: str) -> list[float]:
        with self.lock:
            return [t for w, t in self.events if w == what]

    def wrap(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            stack = self._stack()
            frame = [name, time.perf_counter(), 0.0]
            stack.append(frame)
            try:
                return fn(*args, **kwargs)
            finally:
                stack.pop()
                dur = time.perf_counter() - frame[1]
                report = self.current or self.outside
                report.excl[name] += dur - frame[2]
                report.calls[name] += 1
                if stack:
                    stack[-1][2] += dur
                    if len(stack) == 1 and stack[0][0] == "cycle" and self.current:
                        offset = frame[1] - stack[0][1]
                        report.timeline.append((name, offset, dur))

        return timed

    def wrap_cycle(self, fn: Callable[[], None]) -> Callable[[], None]:
        inner = self.wrap("cycle", fn)

        @functools.wraps(fn)
        def cycle() -> None:
            self.current = CycleReport(time.time())
            self.event("cycle-start")
            try:
                inner()
            finally:
                report, self.current = self.current, None
                if report is not None:
                    report.end = time.time()
                    self.cycles.append(report)
                self.event("cycle-end")

        return cycle


def _generator_to_list(fn: Callable[..., Iterator[Any]]) -> Callable[..., Iterator[Any]]:
    """Time the whole FETCH, not just making the generator."""

    @functools.wraps(fn)
    def fetch(*args: Any, **kwargs: Any) -> Iterator[Any]:
        return iter(list(fn(*args, **kwargs)))

    return fetch


def instrument(daemon: inboxwatch.service.daemon.Daemon, rec: Recorder) -> None:
    """Wrap one daemon's methods and those of its mailbox, store and sender."""
    d: Any = daemon
    # Missing names are skipped: the product changes under the benchmark.
    for name in DAEMON_METHODS:
        if hasattr(d, name):
            setattr(d, name, rec.wrap(name, getattr(daemon, name)))
    d.cycle = rec.wrap_cycle(daemon.cycle)
    mb: Any = daemon.mailbox
    for name in MAILBOX_METHODS:
        if hasattr(mb, name):
            setattr(mb, name, rec.wrap(f"mailbox.{name}", getattr(mb, name)))
    mb.fetch = rec.wrap("mailbox.fetch", _generator_to_list(mb.fetch))
    idle_wait = mb.idle_wait

    def idle_wait_marked(seconds: float) -> bool:
        woke = bool(idle_wait(seconds))
        if woke:
            rec.event("idle-wake")
        return woke

    mb.idle_wait = idle_wait_marked
    st: Any = daemon.store
    for name in STORE_METHODS:
        if hasattr(st, name):
            setattr(st, name, rec.wrap(f"store.{name}", getattr(st, name)))
    sender: Any = daemon.sender
    send = rec.wrap("sender.send", sender.send)

    def send_marked(batch: Any, on_accepted: Any = None) -> Any:
        rec.event("send-start")
        return send(batch, on_accepted=on_accepted)

    sender.send = send_marked


@contextlib.contextmanager
def patched(rec: Recorder) -> Iterator[None]:
    """Module-level functions the daemon calls, wrapped for the duration of the block."""
    targets: list[tuple[Any, str]] = [
        (inboxwatch.service.daemon, "parse_message"),
        (inboxwatch.service.daemon, "classify"),
        (inboxwatch.service.daemon, "on_enquiry"),
        (inboxwatch.service.daemon, "on_message"),
        (inboxwatch.service.daemon, "plan"),
        (inboxwatch.service.outbox, "to_bytes"),
        (inboxwatch.adapters.statefile, "write_json_atomic"),
        (inboxwatch.adapters.statefile, "read_json"),
    ]
    targets += [(inboxwatch.service.outbox, name) for name in OUTBOX_FUNCS]
    saved = [(mod, name, getattr(mod, name)) for mod, name in targets if hasattr(mod, name)]
    try:
        for mod, name, fn in saved:
            label = (
                f"outbox.{name}"
                if mod is inboxwatch.service.outbox and name != "to_bytes"
                else name
            )
            setattr(mod, name, rec.wrap(label, fn))
        yield
    finally:
        for mod, name, fn in saved:
            setattr(mod, name, fn)
