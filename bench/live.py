"""The daemon as a service on the private servers, watched from outside: shared by the
benchmarks that run it live (``run.py``'s ack-latency, backlog and idle, ``polling.py``).

``build_daemon`` builds it as ``inboxwatch run`` does; ``Runner`` runs its ``run()`` in a
thread and stops it like a service; ``is_ack`` picks its acknowledgements out of what the
SMTP stand-in captured; ``start_servers`` starts Dovecot + the stand-in or says why not.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from instrument import Recorder, TimedSource

from inboxwatch.service.commands import load_all
from inboxwatch.service.daemon import Daemon
from inboxwatch.service.runner import make_daemon
from inboxwatch.testing.devservers import MailServers, dovecot_missing

REPO = Path(__file__).resolve().parent.parent
RULES, TEMPLATES = REPO / "rules", REPO / "templates"
#: Caps high enough that they never hold a benchmark back (defaults: 50/hour, 300/day).
NO_CAPS = "[sending]\nmax_per_hour = 1000000\nmax_per_day = 1000000\n"
#: IDLE wakes the daemon; no poll in between.
IMAP_EXTRA = "poll_seconds = 3600\nidle_renew_seconds = 600"


def is_ack(shop_address: str, lead: str | None = None) -> Callable[[Any], bool]:
    def match(m: Any) -> bool:
        return (
            m.mail_from == shop_address
            and (lead is None or lead in m.rcpt_tos)
            and b"\nX-Inboxwatch: ack\r" in m.data
        )

    return match


class Runner:
    """The real daemon's run() in a thread, started and stopped like a service."""

    def __init__(self, daemon: Daemon, rec: Recorder, source: TimedSource | None) -> None:
        self.daemon, self.rec, self.source = daemon, rec, source
        self.thread: threading.Thread | None = None
        self.result: int | None = None

    def ready(self) -> bool:
        """Started, and (if its source is timed) waiting for mail."""
        return self.rec.ticks_done > 0 and (self.source is None or self.source.waiting)

    def start(self) -> Runner:
        def run() -> None:
            self.result = self.daemon.run()

        self.thread = threading.Thread(target=run, name="bench-daemon", daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        if self.thread is None:
            return
        self.daemon.stop_event.set()
        self.thread.join(timeout=15)
        if self.thread.is_alive():
            print("  warning: the daemon thread did not stop within 15 s", file=sys.stderr)
        self.thread = None


def build_daemon(config_path: Path) -> Daemon:
    """As ``inboxwatch run`` builds it (IMAP, SMTP, TinyDB state)."""
    cfg, book = load_all(config_path)
    return make_daemon(cfg, book, (cfg.imap.password.resolve(), cfg.smtp.password.resolve()))


def start_servers(workdir: Path, users: Sequence[str], *, sieve: bool = False) -> MailServers:
    """Dovecot + the SMTP stand-in; ``sieve``: with Pigeonhole (see ``sieve_floor.py``).
    The stand-in runs in a process of its own, as a real MTA does: in a thread it would
    share the daemon's GIL (:mod:`inboxwatch.testing.smtp_process`)."""
    missing = dovecot_missing()
    if missing:
        raise SystemExit(f"cannot run server benchmarks: {missing}")
    servers = MailServers(workdir, users, tls=False, sieve=sieve, smtp_process=True)
    servers.start()
    return servers
