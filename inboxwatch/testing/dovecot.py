"""Running one private Dovecot master: start it, know when it is ready, stop all of it.

Starting is judged by the greetings on its ports (IMAP ``* OK``, LMTP ``220``), not by
the process being alive, and a port clash is reported as such so the caller can pick
new ports. Stopping ends the whole process group, because a child serving an open IMAP
connection would otherwise outlive the master and hide the disconnect a real restart
causes. The files it runs from are written by ``dovecot_config.py``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from inboxwatch.testing.loopback import HOST

_READY_TIMEOUT = 10.0
_STOP_TIMEOUT = 5.0


class DovecotStartError(RuntimeError):
    """Dovecot exited or never greeted; the message carries the tail of its logs."""

    def __init__(self, message: str, *, address_in_use: bool = False) -> None:
        super().__init__(message)
        self.address_in_use = address_in_use


class DovecotProcess:
    """The Dovecot master of one work dir (``dovecot.conf``, ``dovecot.log``, ``.out``).

    Holds no reference to its owner, so a finalizer may call stop().
    """

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.config_path = workdir / "dovecot.conf"
        self.log_path = workdir / "dovecot.log"
        self.out_path = workdir / "dovecot.out"
        self.proc: subprocess.Popen[bytes] | None = None

    def log_tail(self, lines: int = 30) -> str:
        """The end of Dovecot's logs, for error messages."""
        return _tail([self.out_path, self.log_path], lines)

    def start(
        self,
        binary: str,
        config: str,
        *,
        imap_port: int,
        lmtp_port: int,
        imaps_port: int | None = None,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        """Write config, spawn the master with output to a file, wait for all greetings.

        tls_context is what the IMAPS greeting is read with (needed with imaps_port).
        """
        self.config_path.write_text(config)
        for path in (self.out_path, self.log_path):
            # Keep earlier runs' logs apart, so a start only judges its own lines.
            if path.exists() and path.stat().st_size:
                with open(path.with_name(path.name + ".old"), "ab") as old:
                    old.write(path.read_bytes())
            path.write_bytes(b"")
        with open(self.out_path, "ab") as out:
            proc = subprocess.Popen(
                [binary, "-F", "-c", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                start_new_session=True,
            )
        self.proc = proc
        waiting: list[tuple[int, bytes, ssl.SSLContext | None]] = [
            (imap_port, b"* OK", None),
            (lmtp_port, b"220", None),
        ]
        if imaps_port is not None:
            waiting.append((imaps_port, b"* OK", tls_context))
        deadline = time.monotonic() + _READY_TIMEOUT
        time.sleep(0.03)  # a port clash makes the master exit within a few ms
        while waiting:
            rc = proc.poll()
            # A fatal start error is printed ~1 s before the master exits: act on it now.
            fatal = rc is None and b"Fatal:" in self.out_path.read_bytes()
            if rc is not None or fatal:
                self.stop()
                tail = self.log_tail()
                raise DovecotStartError(
                    f"dovecot failed to start (exit code {proc.returncode}, "
                    f"config {self.config_path}):\n{tail}",
                    address_in_use="Address already in use" in tail,
                )
            waiting = [w for w in waiting if not _greets(*w)]
            if not waiting:
                break
            if time.monotonic() >= deadline:
                self.stop()
                raise DovecotStartError(
                    f"dovecot did not greet on ports {[w[0] for w in waiting]} within "
                    f"{_READY_TIMEOUT} s (config {self.config_path}):\n{self.log_tail()}"
                )
            time.sleep(0.02)

    def stop(self) -> None:
        """SIGTERM, a bounded wait, SIGKILL; then end what is left of the group. Repeatable."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        pgid = proc.pid  # started with start_new_session, so its group id is its pid
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pgid, signal.SIGKILL)
                proc.wait(_STOP_TIMEOUT)
        # A child serving an open IMAP connection outlives the master by ~9 s, holding
        # the client's socket: end it (and the log/stats helpers) so clients see the
        # disconnect a real restart causes. Zombies do not count: init reaps them.
        for sig in (signal.SIGTERM, signal.SIGKILL):
            if not _live_group_members(pgid):
                return
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, sig)
            deadline = time.monotonic() + 1.0
            while _live_group_members(pgid) and time.monotonic() < deadline:
                time.sleep(0.01)


def _tail(paths: Sequence[Path], lines: int = 30) -> str:
    parts = []
    for path in paths:
        try:
            text = path.read_text(errors="replace")
        except OSError:
            continue
        if text.strip():
            parts.append(f"--- {path} ---\n" + "\n".join(text.splitlines()[-lines:]))
    return "\n".join(parts) or "(no log output)"


def _greets(port: int, prefix: bytes, context: ssl.SSLContext | None = None) -> bool:
    """True when a server on the port sends a greeting line starting with prefix.

    The timeout is short because the caller retries: a port taken by another program
    that never greets must not hold up noticing that Dovecot exited.
    """
    try:
        with contextlib.ExitStack() as stack:
            sock = stack.enter_context(socket.create_connection((HOST, port), timeout=0.3))
            if context is not None:
                sock = stack.enter_context(context.wrap_socket(sock, server_hostname="localhost"))
            data = b""
            while b"\n" not in data and len(data) < 4096:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                data += chunk
            return data.startswith(prefix)
    except (OSError, ssl.SSLError):
        return False


def _live_group_members(pgid: int) -> list[int]:
    """PIDs of the process group that are not zombies (all members if /proc is missing)."""
    proc = Path("/proc")
    if not proc.is_dir():
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return []
        return [pgid]
    members = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rpartition(")")[2].split()
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] not in ("Z", "X"):
            members.append(int(entry.name))
    return members
