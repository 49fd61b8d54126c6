"""The SMTP stand-in in a process of its own, for the bench.

In the tests the stand-in (:mod:`inboxwatch.testing.smtp_capture`) runs in a thread of
the test's process: simple, and plenty fast for a few messages. Under a backlog of 1,000
it is not a fair stand-in for an MTA: its Python work per message holds the same GIL
as the daemon it serves, so a daemon sending over three connections measured *slower*
than over one (1.1 s → 2.1 s for 900 messages, where against a server in another
process three connections cut 1.9 s to 1.2 s). A real MTA is another process; with
``MailServers(..., smtp_process=True)`` so is the stand-in.

The child runs the very same server (:func:`~inboxwatch.testing.smtp_capture.start_smtp`:
local recipients delivered into Dovecot over LMTP before the 250, AUTH checked against
the users' passwords) and reports each message on its stdout as one JSON line; a thread
of the parent turns them back into :class:`CapturedMail` for the owner's ``record``, so
``smtp_sent`` and ``smtp_wait`` work as they always do. The parent writes the LMTP port
on the child's stdin when it knows it (Dovecot may start after the stand-in); the child
ends when its stdin closes, so it never outlives the parent.
"""

from __future__ import annotations

import base64
import contextlib
import json
import smtplib
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any

from inboxwatch.testing.loopback import HOST
from inboxwatch.testing.smtp_capture import CapturedMail, LocalMailboxes, start_smtp

_READY_TIMEOUT = 15.0
_IO_TIMEOUT = 10.0


class SmtpProcess:
    """The child process; ``stop()`` ends it (as the controllers of the thread mode do)."""

    def __init__(
        self,
        owner: LocalMailboxes,
        *,
        domain: str,
        users: Mapping[str, str],
        tls_files: tuple[Path, Path] | None,
    ) -> None:
        self.owner = owner
        config = {
            "domain": domain,
            "users": dict(users),
            "tls_files": [str(p) for p in tls_files] if tls_files else None,
        }
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "inboxwatch.testing.smtp_process"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(config) + "\n")
        self.proc.stdin.flush()
        self.ports = self._read_ports(self.proc.stdout)
        self._reader = threading.Thread(
            target=self._read, args=(self.proc.stdout,), name="smtp-process", daemon=True
        )
        self._reader.start()

    def _read_ports(self, out: IO[str]) -> dict[str, int]:
        timer = threading.Timer(_READY_TIMEOUT, self.proc.kill)  # a child that hangs
        timer.start()
        try:
            line = out.readline()
        finally:
            timer.cancel()
        if not line:
            raise RuntimeError("the SMTP stand-in process did not start")
        ports = json.loads(line)["ports"]
        return {str(k): int(v) for k, v in ports.items()}

    def _read(self, out: IO[str]) -> None:
        for line in out:
            got = json.loads(line)
            self.owner.record(
                CapturedMail(
                    got["mail_from"],
                    tuple(got["rcpt_tos"]),
                    base64.b64decode(got["data"]),
                    float(got["time"]),
                    got["login"],
                )
            )

    def set_lmtp_port(self, port: int) -> None:
        """Where local recipients are delivered (known once Dovecot runs)."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"lmtp_port": port}) + "\n")
        self.proc.stdin.flush()

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(OSError):
                assert self.proc.stdin is not None
                self.proc.stdin.close()
            try:
                self.proc.wait(5.0)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5.0)
        self._reader.join(5.0)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


class _ChildMailboxes:
    """The owner's part the server needs, in the child: users, LMTP, and reporting."""

    def __init__(self, users: Mapping[str, str]) -> None:
        self.users = {k.lower(): v for k, v in users.items()}
        self.domain = ""
        self.lmtp_port = 0
        self.ready = threading.Event()  # the LMTP port is known
        self._out = threading.Lock()

    def is_local(self, address: str) -> bool:
        return address.strip().strip("<>").lower() in self.users

    def deliver(self, rcpt: str, raw: bytes, sender: str = "") -> None:
        if not self.ready.wait(_IO_TIMEOUT):
            raise OSError("no LMTP port yet")
        with smtplib.LMTP(
            HOST, self.lmtp_port, local_hostname="localhost", timeout=_IO_TIMEOUT
        ) as lmtp:
            lmtp.sendmail(sender, [rcpt], raw)

    def check_login(self, login: str, password: str) -> bool:
        address = login if "@" in login else f"{login}@{self.domain}"
        return self.users.get(address.lower()) == password

    def record(self, mail: CapturedMail) -> None:
        line = json.dumps(
            {
                "mail_from": mail.mail_from,
                "rcpt_tos": list(mail.rcpt_tos),
                "data": base64.b64encode(mail.data).decode("ascii"),
                "time": mail.at,
                "login": mail.auth_login,
            }
        )
        with self._out:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()


def _child() -> None:
    config: dict[str, Any] = json.loads(sys.stdin.readline())
    owner = _ChildMailboxes(config["users"])
    owner.domain = config["domain"]
    tls = config["tls_files"]
    tls_files = (Path(tls[0]), Path(tls[1])) if tls else None
    controllers: list[Any] = []
    ports: dict[str, int] = {}
    try:
        server: Iterator[tuple[str, int, Any]] = start_smtp(
            owner, domain=owner.domain, tls_files=tls_files
        )
        for name, port, controller in server:
            controllers.append(controller)
            ports[name] = port
        sys.stdout.write(json.dumps({"ports": ports}) + "\n")
        sys.stdout.flush()
        for line in sys.stdin:  # until the parent closes it
            update = json.loads(line)
            if "lmtp_port" in update:
                owner.lmtp_port = int(update["lmtp_port"])
                owner.ready.set()
    finally:
        for controller in controllers:
            with contextlib.suppress(Exception):
                controller.stop()


if __name__ == "__main__":
    _child()
