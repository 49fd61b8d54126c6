"""Issue 12 target 1, "also printed": arrival → acknowledgement when the daemon polls.

Without IDLE (``[imap] idle = false``, or a server that does not offer it) the daemon
looks at the inbox every ``poll_seconds``, 60 by default. Mail waits for the next look:
for mail arriving at a random moment, half the interval on average, plus our own time
once it is seen. Measuring 200 enquiries one at a time would take hours at 60 s, so the
enquiries are delivered at random moments over a whole number of intervals (each lands
at a random phase of the poll cycle, whatever the others do), one in each equal slice of
that time, all while the daemon runs, and the acknowledgements counted at the end. Those delivered
within one interval are read and answered by the same poll, one after the other, as
they would be in real use. The poll interval is the config's default, read from the
loaded config, so the figure follows it if the default changes.

It runs in the background (:meth:`PollingRun.start` … :meth:`PollingRun.finish`) while
the bench measures the raw server probes, so it costs no extra time in a full run.
"""

from __future__ import annotations

import itertools
import math
import random
import statistics
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import corpus
from instrument import Recorder, instrument
from live import NO_CAPS, RULES, TEMPLATES, Runner, build_daemon, is_ack
from waiting import wait_until

from inboxwatch.service.commands import load_all
from inboxwatch.testing.devservers import MailServers

#: IDLE off; ``poll_seconds`` left out, so it is the default.
POLL_EXTRA = "idle = false"


class PollingRun:
    """A daemon that polls at the default interval, and enquiries at random phases."""

    def __init__(
        self,
        servers: MailServers,
        shop: str,
        leads: Sequence[str],
        folder: Path,
        *,
        intervals: int,
        seed: int = 11,
    ) -> None:
        self.servers, self.shop, self.leads = servers, shop, list(leads)
        cfg_path = servers.inboxwatch_config(
            shop, folder, rules=RULES, templates=TEMPLATES, imap_extra=POLL_EXTRA, extra=NO_CAPS
        )
        imap = load_all(cfg_path)[0].imap
        if imap.idle:
            raise RuntimeError(f"{cfg_path}: [imap] idle should be off for the polling figure")
        self.interval = float(imap.poll_seconds)
        self.window = intervals * self.interval
        rng = random.Random(seed)
        # One random moment in each of n equal slices of the window (stratified): every
        # phase is still random, but 20 of them cover the cycle evenly, where 20 drawn
        # freely often bunch up (one such run gave a median of 40 s instead of ~30 s).
        step = self.window / len(self.leads)
        self.offsets = [(i + rng.random()) * step for i in range(len(self.leads))]
        self.rng = rng
        self.rec = Recorder()
        self.daemon = build_daemon(cfg_path)
        self.runner = Runner(self.daemon, self.rec, instrument(self.daemon, self.rec))
        self.delivered: dict[str, tuple[float, float]] = {}  # lead → (start, done)
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None
        self.error: BaseException | None = None

    def start(self) -> PollingRun:
        """Start the daemon; once it waits, deliver the enquiries in a thread of their own."""
        self.runner.start()
        try:
            wait_until(self.runner.ready, 30, "the polling daemon to wait for mail")
        except BaseException:
            self.runner.stop()
            raise
        self.thread = threading.Thread(target=self._deliver, name="bench-poll-mail", daemon=True)
        self.thread.start()
        return self

    def _deliver(self) -> None:
        shop_address = self.servers.address(self.shop)
        begin = time.monotonic()
        try:
            for offset, lead in zip(self.offsets, self.leads, strict=True):
                if self.stopping.wait(max(0.0, begin + offset - time.monotonic())):
                    return
                raw = corpus.enquiry(lead, shop_address, self.rng)
                t0 = time.time()
                self.servers.deliver(self.shop, raw, sender=lead)
                self.delivered[lead] = (t0, time.time())
        except BaseException as exc:  # reported by finish()
            self.error = exc

    def stop(self) -> None:
        """Stop delivering and stop the daemon, without waiting for anything (repeatable)."""
        self.stopping.set()
        self.runner.stop()

    def finish(self) -> dict[str, Any]:
        """Wait for the last delivery and its acknowledgement (bounded), stop the daemon,
        and split each enquiry's time: delivery → the poll that found it → ack captured."""
        try:
            assert self.thread is not None, "start() first"
            self.thread.join(self.window + 30)
            if self.thread.is_alive() or self.error is not None:
                raise RuntimeError(f"delivering the polling enquiries failed: {self.error}")
            shop_address = self.servers.address(self.shop)
            acks = self.servers.smtp_wait(
                len(self.leads), timeout=self.interval + 30, match=is_ack(shop_address)
            )
        finally:
            self.stop()
        last = max(m.at for m in acks)
        # The wake stamped when the daemon is stopped is no poll: only those up to the last ack.
        polls = sorted(w for w in self.rec.events_named("wake") if w <= last)
        out: dict[str, Any] = {"total": [], "to_poll": [], "poll_to_ack": []}
        for lead, (_, done) in self.delivered.items():
            at = min(m.at for m in acks if lead in m.rcpt_tos)
            poll = max((w for w in polls if w <= at), default=math.nan)
            out["total"].append(at - done)
            out["to_poll"].append(poll - done)
            out["poll_to_ack"].append(at - poll)
        out["polls"] = len(polls)
        gaps = [b - a for a, b in itertools.pairwise(polls)]
        out["cycle"] = statistics.median(gaps) if gaps else math.nan
        return out
