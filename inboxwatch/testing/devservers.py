"""Private, disposable mail servers for the tests, the bench and the live demo.

A real Dovecot (IMAP + LMTP) runs from its own config file in a work directory, and an
aiosmtpd server stands in for the outgoing MTA: it records every message and hands
mail for our own domain to Dovecot over LMTP, so a test lead can read our replies over
IMAP. Everything listens on 127.0.0.1 ports picked free, so nothing touches a system
mail service and several instances can run side by side.

This module is the front door the tests, the bench and the demo import:
``MailServers`` (start, stop, restart; users and mail access it inherits from
``mail_access.MailAccess``), ``dovecot_missing`` to skip where Dovecot is not
installed, and ``main`` to run the servers by hand
(``python -m inboxwatch.testing.devservers``). Behind it: ``dovecot.py`` runs the
Dovecot process, ``dovecot_config.py`` writes the files it runs from,
``smtp_capture.py`` is the SMTP stand-in, ``inboxwatch_config.py`` points inboxwatch at
a user, and ``loopback.py`` picks the ports.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import threading
import time
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from inboxwatch.testing.dovecot import DovecotProcess
from inboxwatch.testing.dovecot import DovecotStartError as DovecotStartError
from inboxwatch.testing.dovecot import _live_group_members as _live_group_members
from inboxwatch.testing.dovecot_config import (
    SIEVE_PLUGIN,
    make_certificate,
    render_config,
    sieve_config,
    write_mailboxes,
    write_sieve_script,
)
from inboxwatch.testing.loopback import HOST as HOST
from inboxwatch.testing.loopback import free_port as _free_port
from inboxwatch.testing.mail_access import MailAccess
from inboxwatch.testing.smtp_capture import CapturedMail as CapturedMail
from inboxwatch.testing.smtp_capture import start_smtp
from inboxwatch.testing.smtp_process import SmtpProcess

__all__ = [
    "CapturedMail",
    "DovecotStartError",
    "MailServers",
    "dovecot_missing",
    "find_dovecot",
    "sieve_missing",
]

INSTALL_HINT = "apt-get install -y dovecot-imapd dovecot-lmtpd"
SIEVE_HINT = "scripts/setup --bench, or apt-get install -y dovecot-sieve"
_DOVECOT_FALLBACK = "/usr/sbin/dovecot"
_START_TRIES = 5


def find_dovecot() -> str:
    """Path of the dovecot binary, or RuntimeError saying how to install it."""
    found = shutil.which("dovecot")
    if found:
        return found
    if os.access(_DOVECOT_FALLBACK, os.X_OK):
        return _DOVECOT_FALLBACK
    raise RuntimeError(f"dovecot not found on PATH nor at {_DOVECOT_FALLBACK}: {INSTALL_HINT}")


def dovecot_missing() -> str | None:
    """Why the servers cannot run here, or None when Dovecot is installed."""
    try:
        find_dovecot()
    except RuntimeError as exc:
        return str(exc)
    return None


def sieve_missing() -> str | None:
    """Why ``MailServers(sieve=True)`` cannot run here, or None (Dovecot and Pigeonhole in)."""
    missing = dovecot_missing()
    if missing:
        return missing
    if not SIEVE_PLUGIN.exists():
        return f"dovecot-sieve not installed (no {SIEVE_PLUGIN}): {SIEVE_HINT}"
    return None


class _Running:
    """What is running, kept apart from MailServers so a finalizer can stop it."""

    def __init__(self, dovecot: DovecotProcess) -> None:
        self.dovecot = dovecot
        self.controllers: list[Any] = []

    def stop_smtp(self) -> None:
        controllers, self.controllers = self.controllers, []
        for controller in controllers:
            with contextlib.suppress(Exception):
                controller.stop()

    def stop(self) -> None:
        self.stop_smtp()
        self.dovecot.stop()


class MailServers(MailAccess):
    """Private Dovecot (IMAP + LMTP) and an aiosmtpd SMTP 'MTA' on 127.0.0.1 free ports.

    Each user (a local part) gets the mailbox ``user@domain`` with a random password.
    With ``tls=True`` Dovecot also serves IMAPS and STARTTLS, and the SMTP stand-in
    STARTTLS plus an implicit-TLS port, all with one self-signed P-256 certificate
    (``cafile``) valid for ``localhost`` and ``127.0.0.1``. Users, passwords, delivering
    and reading mail come from ``MailAccess``; this class adds running the servers.

    With ``smtp_process=True`` (the bench) the SMTP stand-in runs in a process of its own,
    as an MTA does, instead of a thread that shares the GIL with the daemon under test
    (:mod:`inboxwatch.testing.smtp_process`).

    With ``sieve=True`` (opt-in, for the bench; needs ``dovecot-sieve``) LMTP runs each
    user's Sieve script at delivery (:meth:`set_sieve_script`) and sends what it sends
    through the SMTP stand-in, which is then started first so Dovecot knows its port.
    """

    def __init__(
        self,
        workdir: Path,
        users: Sequence[str],
        domain: str = "example.test",
        tls: bool = False,
        *,
        extra_config: str = "",
        sieve: bool = False,
        smtp_process: bool = False,
    ) -> None:
        super().__init__(users, domain)
        self.workdir = Path(workdir).absolute()
        self.tls = tls
        self.extra_config = extra_config
        self.sieve = sieve
        self.smtp_process = smtp_process
        self._smtp_child: SmtpProcess | None = None
        self._keyfile: Path | None = None
        self._running = _Running(DovecotProcess(self.workdir))
        self._finalizer = weakref.finalize(self, self._running.stop)
        self.config_path = self._running.dovecot.config_path
        self.log_path = self._running.dovecot.log_path

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> None:
        """Start Dovecot (retrying on a port clash), wait for its greetings, then SMTP."""
        if self._running.dovecot.proc is not None:
            raise RuntimeError("MailServers already started")
        dovecot = find_dovecot()
        if self.sieve and (missing := sieve_missing()):
            raise RuntimeError(missing)
        try:
            self._prepare()
            if self.sieve:  # Dovecot's config names the stand-in's port
                self._start_smtp()
            for attempt in range(_START_TRIES):
                self.imap_port, self.lmtp_port = _free_port(), _free_port()
                self.imaps_port = _free_port() if self.tls else None
                try:
                    self._start_dovecot(dovecot)
                    break
                except DovecotStartError as exc:
                    if not exc.address_in_use or attempt == _START_TRIES - 1:
                        raise
            if not self.sieve:
                self._start_smtp()
            if self._smtp_child is not None:
                self._smtp_child.set_lmtp_port(self.lmtp_port)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop SMTP and Dovecot (SIGTERM, bounded wait, then SIGKILL); safe to repeat."""
        self._running.stop()

    def restart_imap(self) -> None:
        """Restart Dovecot on the same ports, keeping mail: for reconnect tests."""
        if self._running.dovecot.proc is None:
            raise RuntimeError("MailServers is not running")
        self._running.dovecot.stop()
        dovecot = find_dovecot()
        deadline = time.monotonic() + 5.0
        while True:
            try:
                self._start_dovecot(dovecot)
                return
            except DovecotStartError as exc:
                if not exc.address_in_use or time.monotonic() >= deadline:
                    raise
                time.sleep(0.2)

    def set_sieve_script(self, user: str, script: str) -> Path:
        """Make ``script`` the user's active Sieve script (with ``sieve=True``): every mail
        delivered to them from then on runs it."""
        if not self.sieve:
            raise RuntimeError("Sieve scripts need MailServers(..., sieve=True)")
        return write_sieve_script(self.workdir, self.address(user), script)

    def __enter__(self) -> MailServers:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def dovecot_pid(self) -> int | None:
        """PID of the Dovecot master (also its process group), None when stopped."""
        proc = self._running.dovecot.proc
        return proc.pid if proc is not None else None

    def log_tail(self, lines: int = 30) -> str:
        """The end of Dovecot's logs, for error messages."""
        return self._running.dovecot.log_tail(lines)

    # --------------------------------------------------------------- internals

    def _tls_files(self) -> tuple[Path, Path] | None:
        """(cert, key) with tls=True (made by start), else None."""
        if not self.tls:
            return None
        assert self.cafile is not None and self._keyfile is not None
        return self.cafile, self._keyfile

    def _prepare(self) -> None:
        """Work dir, homes, passwd-file and (with tls) the certificate."""
        write_mailboxes(self.workdir, [(self.address(u), self.password(u)) for u in self.users])
        if self.tls:
            self.cafile, self._keyfile = make_certificate(self.workdir)

    def _start_dovecot(self, dovecot: str) -> None:
        """Write dovecot.conf for the current ports, start the master, wait for greetings."""
        config = render_config(
            workdir=self.workdir,
            instance_name=f"inboxwatch-{os.getpid()}-{id(self):x}",
            domain=self.domain,
            imap_port=self.imap_port,
            lmtp_port=self.lmtp_port,
            imaps_port=self.imaps_port,
            tls_files=self._tls_files(),
            extra_config=self.extra_config + (sieve_config(self.smtp_port) if self.sieve else ""),
        )
        self._running.dovecot.start(
            dovecot,
            config,
            imap_port=self.imap_port,
            lmtp_port=self.lmtp_port,
            imaps_port=self.imaps_port,
            tls_context=self.client_ssl_context() if self.imaps_port is not None else None,
        )

    def _start_smtp(self) -> None:
        if self.smtp_process:
            users = {self.address(u): self.password(u) for u in self.users}
            child = SmtpProcess(self, domain=self.domain, users=users, tls_files=self._tls_files())
            self._running.controllers.append(child)
            self._smtp_child = child
            for name, port in child.ports.items():
                setattr(self, f"{name}_port", port)
            return
        # Each one is registered as soon as it runs, so a failed start stops the others.
        for name, port, controller in start_smtp(
            self, domain=self.domain, tls_files=self._tls_files(), pick_port=_free_port
        ):
            self._running.controllers.append(controller)
            setattr(self, f"{name}_port", port)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the servers for a live demo and print how to reach them (as JSON) until stopped."""
    import argparse
    import json

    parser = argparse.ArgumentParser(
        prog="python -m inboxwatch.testing.devservers", description=main.__doc__
    )
    parser.add_argument("workdir", type=Path, help="folder for Dovecot's config, logs and mail")
    parser.add_argument("--users", default="shop,owner,team,lead1,lead2,lead3")
    parser.add_argument("--domain", default="example.test")
    parser.add_argument("--tls", action="store_true", help="also IMAPS/STARTTLS and SMTPS")
    parser.add_argument("--seconds", type=float, default=None, help="stop after this long")
    args = parser.parse_args(argv)
    users = [u.strip() for u in args.users.split(",") if u.strip()]
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with MailServers(args.workdir, users, args.domain, tls=args.tls) as servers:
        info = {
            "host": servers.imap_host,
            "imap_port": servers.imap_port,
            "imaps_port": servers.imaps_port,
            "lmtp_port": servers.lmtp_port,
            "smtp_port": servers.smtp_port,
            "smtps_port": servers.smtps_port,
            "cafile": str(servers.cafile) if servers.cafile else None,
            "users": {servers.address(u): servers.password(u) for u in servers.users},
        }
        print(json.dumps(info, indent=2), flush=True)
        stop.wait(args.seconds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
