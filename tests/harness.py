"""Run the real daemon against the private servers, for end-to-end tests.

Test mail comes from :mod:`inboxwatch.testing.mailfactory` (shared with the bench and
the demo).
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from inboxwatch.adapters.tinydb_store import TinyDbStore
from inboxwatch.core.lead import Lead
from inboxwatch.service.clock import Clock, FixedClock, SystemClock
from inboxwatch.service.commands import load_all
from inboxwatch.service.daemon import Daemon
from inboxwatch.service.runner import make_daemon
from inboxwatch.testing.devservers import CapturedMail, MailServers
from inboxwatch.testing.mailfactory import parse
from inboxwatch.userfiles.config import load_config

REPO = Path(__file__).resolve().parent.parent


class RunningDaemon:
    """inboxwatch watching one business mailbox; start/stop/restart like a service.

    On the system clock it runs ``run()`` in a thread, woken by IDLE as in production. On
    a clock the test moves (``FixedClock``) nothing runs by itself: ``tick()`` runs one
    whole tick synchronously (a cycle barrier, no sleeps), and ``wait_until`` ticks
    before each look.
    """

    def __init__(
        self,
        servers: MailServers,
        shop: str,
        folder: Path,
        *,
        extra: str = "",
        clock: Clock | None = None,
        time_scale: float = 1.0,
        rules: Path = REPO / "rules",
        templates: Path = REPO / "templates",
        timezone: str = "UTC",
        poll_seconds: int = 60,
        manual: bool | None = None,
    ) -> None:
        self.servers, self.shop = servers, shop
        self.address = servers.address(shop)
        self.config_path = servers.inboxwatch_config(
            shop,
            folder,
            rules=rules,
            templates=templates,
            timezone=timezone,
            extra=f"{extra}",
            imap_extra=f"poll_seconds = {poll_seconds}\nidle_renew_seconds = 600",
        )
        self.clock = clock or SystemClock()
        self.manual = isinstance(self.clock, FixedClock) if manual is None else manual
        self.time_scale = time_scale
        self.daemon: Daemon | None = None
        self.thread: threading.Thread | None = None
        self.result: int | None = None
        self.ticks_done = 0

    def make(self) -> Daemon:
        cfg, book = load_all(self.config_path)
        pw = cfg.imap.password.resolve()
        daemon = make_daemon(cfg, book, (pw, pw), clock=self.clock, time_scale=self.time_scale)
        daemon.hooks.append(self._count)
        return daemon

    def _count(self, what: str, data: Mapping[str, Any]) -> None:
        if what == "tick-done":
            self.ticks_done += 1

    def start(self) -> RunningDaemon:
        self.daemon = daemon = self.make()
        if self.manual:
            daemon.connect(self.clock.now())
            self.tick()
            return self

        def run() -> None:
            self.result = daemon.run()

        self.thread = threading.Thread(target=run, name=f"daemon-{self.shop}", daemon=True)
        self.thread.start()
        self.wait_until(lambda: self.ticks_done > 0, what="first tick")
        return self

    def tick(self) -> None:
        """One whole tick at the clock's time (manual mode)."""
        assert self.daemon is not None and self.manual
        self.daemon.tick(self.clock.now())

    def stop(self) -> None:
        if self.daemon is not None and self.thread is not None:
            self.daemon.stop_event.set()
            self.thread.join(timeout=10)
            assert not self.thread.is_alive(), "daemon did not stop within 10 s"
        elif self.daemon is not None:
            self.daemon.source.close()
        self.daemon = self.thread = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def __enter__(self) -> RunningDaemon:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait_until(
        self, cond: Callable[[], Any], timeout: float = 30.0, what: str = "condition"
    ) -> Any:
        """Poll ``cond`` (ticking first, in manual mode) until it is true; the bound is
        generous for a loaded machine, and costs nothing when the condition comes."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.manual and self.daemon is not None:
                self.tick()
            if value := cond():
                return value
            time.sleep(0.02)
        raise TimeoutError(f"timed out after {timeout} s waiting for {what}")

    def store(self) -> TinyDbStore:
        cfg = load_config(self.config_path)
        return TinyDbStore.open(cfg.state_path, readonly=True)

    def leads(self) -> list[Lead]:
        with self.store().transaction() as state:
            return state.leads()

    def archived(self) -> list[Lead]:
        return list(self.store().archived())

    def lead(self, address: str) -> Lead | None:
        return next((x for x in self.leads() if x.address == address), None)

    def sent_to(self, rcpt: str, purpose: str | None = None) -> list[CapturedMail]:
        """What the SMTP server got from this daemon for rcpt (optionally one purpose)."""
        out = []
        for m in list(self.servers.smtp_sent):
            if rcpt not in m.rcpt_tos or m.mail_from != self.address:
                continue
            if purpose and parse(m.data).get("X-Inboxwatch") != purpose:
                continue
            out.append(m)
        return out


def smtp_send(servers: MailServers, sender: str, rcpt: str, raw: bytes) -> None:
    """Send as a mail client would: through the SMTP server, which delivers locally."""
    import smtplib

    with smtplib.SMTP("127.0.0.1", servers.smtp_port, timeout=10) as smtp:
        smtp.sendmail(sender, [rcpt], raw)


@contextlib.contextmanager
def with_signal_handlers(rd: RunningDaemon) -> Iterator[RunningDaemon]:
    """``rd`` started with the daemon's own signal handlers in this (main) thread, as
    `inboxwatch run` has them; stopped, and the test process's handlers put back, after."""
    signals = (signal.SIGHUP, signal.SIGTERM, signal.SIGINT, signal.SIGUSR1)
    saved = {s: signal.getsignal(s) for s in signals}
    rd.start()
    assert rd.daemon is not None
    rd.daemon.install_signal_handlers()
    try:
        yield rd
    finally:
        rd.stop()
        for sig, handler in saved.items():
            signal.signal(sig, handler)
