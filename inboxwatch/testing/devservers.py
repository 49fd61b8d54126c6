"""Private, disposable mail servers for the tests and the live demo.

A real Dovecot (IMAP + LMTP) runs from its own config file in a work directory, and an
aiosmtpd server stands in for the outgoing MTA: it records every message and hands
mail for our own domain to Dovecot over LMTP, so a test lead can read our replies over
IMAP. Everything listens on 127.0.0.1 ports picked free, so nothing touches a system
mail service and several instances can run side by side.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import re
import secrets
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

__all__ = ["CapturedMail", "DovecotStartError", "MailServers", "dovecot_missing", "find_dovecot"]

HOST = "127.0.0.1"
INSTALL_HINT = "apt-get install -y dovecot-imapd dovecot-lmtpd"
_DOVECOT_FALLBACK = "/usr/sbin/dovecot"
_START_TRIES = 5
_READY_TIMEOUT = 10.0
_STOP_TIMEOUT = 5.0
_IO_TIMEOUT = 10.0
# An LMTP hand-off from the SMTP stand-in is retried this long, so that mail sent while
# restart_imap() runs (about 1.2 s) is delivered late instead of refused.
_LMTP_RETRY_FOR = 8.0


@dataclasses.dataclass(frozen=True)
class CapturedMail:
    """One message as the SMTP stand-in received it (bytes untouched)."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    at: float
    auth_login: str | None = None  # who logged in with AUTH, None if nobody did


class DovecotStartError(RuntimeError):
    """Dovecot exited or never greeted; the message carries the tail of its logs."""

    def __init__(self, message: str, *, address_in_use: bool = False) -> None:
        super().__init__(message)
        self.address_in_use = address_in_use


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


def _free_port() -> int:
    """A port that was free a moment ago (the kernel's pick for port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


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


def _make_traversable(path: Path) -> None:
    """Add o+x up the path so Dovecot's service users can reach homes and the passwd-file.

    pytest's temp folders are 0700; only the search bit for others is added, nothing else.
    """
    for p in [path, *path.parents]:
        mode = p.stat().st_mode
        if not mode & 0o001:
            os.chmod(p, (mode & 0o7777) | 0o001)


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


class _Running:
    """What is running, kept apart from MailServers so a finalizer can stop it."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        self.controllers: list[Any] = []

    def stop_dovecot(self) -> None:
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

    def stop_smtp(self) -> None:
        controllers, self.controllers = self.controllers, []
        for controller in controllers:
            with contextlib.suppress(Exception):
                controller.stop()

    def stop(self) -> None:
        self.stop_smtp()
        self.stop_dovecot()


class _QuietLoginData(logging.Filter):
    """aiosmtpd 1.4 warns about its own deprecated Session.login_data on every AUTH."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "login_data is deprecated" not in record.getMessage()


def _quiet_aiosmtpd() -> None:
    logger = logging.getLogger("mail.log")
    if not any(isinstance(f, _QuietLoginData) for f in logger.filters):
        logger.addFilter(_QuietLoginData())


class _SmtpHandler:
    """aiosmtpd handler: record everything, hand local recipients to Dovecot via LMTP."""

    def __init__(self, servers: MailServers) -> None:
        self._servers = weakref.proxy(servers)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        """Deliver local recipients first, so a 250 means the mail is in their INBOX."""
        data = envelope.original_content or envelope.content or b""
        if isinstance(data, str):
            data = data.encode("utf-8", "surrogateescape")
        mail_from = str(envelope.mail_from or "")
        rcpts = tuple(str(r) for r in envelope.rcpt_tos)
        login = None
        auth = getattr(session, "auth_data", None)
        if session.authenticated and auth is not None and hasattr(auth, "login"):
            login = bytes(auth.login).decode("utf-8", "replace")
        servers = self._servers
        local = [r for r in rcpts if servers.is_local(r)]
        deadline = time.monotonic() + _LMTP_RETRY_FOR
        pending = list(local)
        while pending:
            rcpt = pending[0]
            try:
                # In a thread: concurrent SMTP sessions must not wait for each other.
                await asyncio.to_thread(servers.deliver, rcpt, data, mail_from)
            except (OSError, smtplib.SMTPException) as exc:
                if isinstance(exc, smtplib.SMTPResponseException) and exc.smtp_code >= 500:
                    return f"554 5.3.0 local delivery to {rcpt} failed: {exc}"
                if time.monotonic() >= deadline:
                    return f"451 4.3.0 local delivery to {rcpt} failed: {exc}"
                await asyncio.sleep(0.1)
                continue
            pending.pop(0)
        servers.record(CapturedMail(mail_from, rcpts, bytes(data), time.time(), login))
        return "250 2.0.0 OK"


def _authenticator(servers: MailServers) -> Callable[..., Any]:
    """AUTH PLAIN/LOGIN succeeds for a known user (address or local part) and password."""
    ref = weakref.ref(servers)

    def authenticate(
        server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> Any:
        from aiosmtpd.smtp import AuthResult

        owner = ref()
        login = getattr(auth_data, "login", None)
        password = getattr(auth_data, "password", None)
        ok = (
            owner is not None
            and isinstance(login, bytes)
            and isinstance(password, bytes)
            and owner.check_login(
                login.decode("utf-8", "replace"), password.decode("utf-8", "replace")
            )
        )
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    return authenticate


class MailServers:
    """Private Dovecot (IMAP + LMTP) and an aiosmtpd SMTP 'MTA' on 127.0.0.1 free ports.

    Each user (a local part) gets the mailbox ``user@domain`` with a random password.
    With ``tls=True`` Dovecot also serves IMAPS and STARTTLS, and the SMTP stand-in
    STARTTLS plus an implicit-TLS port, all with one self-signed P-256 certificate
    (``cafile``) valid for ``localhost`` and ``127.0.0.1``.
    """

    imap_host: str = HOST

    def __init__(
        self,
        workdir: Path,
        users: Sequence[str],
        domain: str = "example.test",
        tls: bool = False,
        *,
        extra_config: str = "",
    ) -> None:
        if not users:
            raise ValueError("at least one user is needed")
        for user in users:
            if not re.fullmatch(r"[A-Za-z0-9._+-]+(@[A-Za-z0-9.-]+)?", user):
                raise ValueError(
                    f"user {user!r}: use a local part (letters, digits, ._+-), optionally "
                    "with @domain for a mailbox in another domain"
                )
        self.workdir = Path(workdir).absolute()
        self.users: tuple[str, ...] = tuple(dict.fromkeys(users))
        self.domain = domain
        self.tls = tls
        self.extra_config = extra_config
        self._passwords = {self.address(u).lower(): secrets.token_hex(8) for u in self.users}
        self.imap_port = 0
        self.lmtp_port = 0
        self.smtp_port = 0
        self.imaps_port: int | None = None
        self.smtps_port: int | None = None
        self.cafile: Path | None = None
        self._keyfile: Path | None = None
        self.smtp_sent: list[CapturedMail] = []
        self._smtp_cond = threading.Condition()
        self._running = _Running()
        self._finalizer = weakref.finalize(self, self._running.stop)
        self.config_path = self.workdir / "dovecot.conf"
        self.log_path = self.workdir / "dovecot.log"
        self._out_path = self.workdir / "dovecot.out"

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> None:
        """Start Dovecot (retrying on a port clash), wait for its greetings, then SMTP."""
        if self._running.proc is not None:
            raise RuntimeError("MailServers already started")
        dovecot = find_dovecot()
        try:
            self._prepare()
            for attempt in range(_START_TRIES):
                self.imap_port, self.lmtp_port = _free_port(), _free_port()
                self.imaps_port = _free_port() if self.tls else None
                try:
                    self._start_dovecot(dovecot)
                    break
                except DovecotStartError as exc:
                    if not exc.address_in_use or attempt == _START_TRIES - 1:
                        raise
            self._start_smtp()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop SMTP and Dovecot (SIGTERM, bounded wait, then SIGKILL); safe to repeat."""
        self._running.stop()

    def restart_imap(self) -> None:
        """Restart Dovecot on the same ports, keeping mail: for reconnect tests."""
        if self._running.proc is None:
            raise RuntimeError("MailServers is not running")
        self._running.stop_dovecot()
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

    def __enter__(self) -> MailServers:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def dovecot_pid(self) -> int | None:
        """PID of the Dovecot master (also its process group), None when stopped."""
        proc = self._running.proc
        return proc.pid if proc is not None else None

    def log_tail(self, lines: int = 30) -> str:
        """The end of Dovecot's logs, for error messages."""
        return _tail([self._out_path, self.log_path], lines)

    # ------------------------------------------------------------------- users

    def address(self, user: str) -> str:
        """``user@domain`` for a local part (an address is returned as it is)."""
        return user if "@" in user else f"{user}@{self.domain}"

    def password(self, user: str) -> str:
        """The password of a user (local part or address)."""
        address = self.address(user).lower()
        if address not in self._passwords:
            raise KeyError(f"unknown user {user!r}; known: {', '.join(self.users)}")
        return self._passwords[address]

    def is_local(self, address: str) -> bool:
        """True for ``known-user@domain`` (what the SMTP stand-in delivers into Dovecot)."""
        return address.strip().strip("<>").lower() in self._passwords

    def check_login(self, login: str, password: str) -> bool:
        """SMTP AUTH check: a known user's address or local part with its password."""
        try:
            expected = self.password(login)
        except KeyError:
            return False
        return secrets.compare_digest(expected.encode(), password.encode())

    def inboxwatch_config(
        self,
        user: str,
        folder: Path,
        *,
        rules: Path,
        templates: Path,
        owner: str = "owner",
        team: Sequence[str] = ("team",),
        tls: bool = False,
        extra: str = "",
        imap_extra: str = "",
        timezone: str = "UTC",
    ) -> Path:
        """Write a config.toml (and password files) that points inboxwatch at this user."""
        folder.mkdir(parents=True, exist_ok=True)
        pw = folder / "password"
        pw.write_text(self.password(user))
        pw.chmod(0o600)
        if tls:
            imap = f'port = {self.imaps_port}\ntls = "ssl"\ncafile = "{self.cafile}"'
            smtp = f'port = {self.smtp_port}\ntls = "starttls"\ncafile = "{self.cafile}"'
        else:
            imap = f'port = {self.imap_port}\ntls = "none"'
            smtp = f'port = {self.smtp_port}\ntls = "none"'
        team_list = ", ".join(f'"{self.address(t)}"' for t in team)
        text = f"""timezone = "{timezone}"

[imap]
host = "127.0.0.1"
{imap}
username = "{self.address(user)}"
password_file = "{pw}"
timeout = 10
{imap_extra}

[smtp]
host = "127.0.0.1"
{smtp}
username = "{self.address(user)}"
password_file = "{pw}"
timeout = 10

[identity]
address = "{self.address(user)}"
name = "Example Shop"

[team]
addresses = [{team_list}]

[owner]
address = "{self.address(owner)}"

[state]
path = "{folder / "state" / "inboxwatch.json"}"

[paths]
rules = "{rules}"
templates = "{templates}"
{extra}
"""
        path = folder / "config.toml"
        path.write_text(text)
        return path

    # -------------------------------------------------------------------- mail

    def deliver(self, rcpt: str, raw: bytes, sender: str = "") -> None:
        """Deliver raw bytes into a user's INBOX over LMTP, as an MTA would."""
        with smtplib.LMTP(
            HOST, self.lmtp_port, local_hostname="localhost", timeout=_IO_TIMEOUT
        ) as lmtp:
            lmtp.sendmail(sender, [self.address(rcpt)], raw)

    def imap_client(self, user: str | None = None, *, tls: bool = False) -> Any:
        """A connected IMAPClient (logged in as user, if given); the caller logs out.

        ``tls=True`` uses the IMAPS port and trusts ``cafile``.
        """
        from imapclient import IMAPClient

        if tls:
            if self.imaps_port is None:
                raise RuntimeError("MailServers was made without tls=True")
            client = IMAPClient(
                HOST,
                self.imaps_port,
                ssl=True,
                ssl_context=self.client_ssl_context(),
                timeout=_IO_TIMEOUT,
            )
        else:
            client = IMAPClient(HOST, self.imap_port, ssl=False, timeout=_IO_TIMEOUT)
        if user is not None:
            try:
                client.login(self.address(user), self.password(user))
            except BaseException:
                client.shutdown()
                raise
        return client

    @contextlib.contextmanager
    def _imap(self, user: str) -> Iterator[Any]:
        client = self.imap_client(user)
        try:
            yield client
        finally:
            with contextlib.suppress(Exception):
                client.logout()

    def client_ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts our self-signed certificate."""
        if self.cafile is None:
            raise RuntimeError("MailServers was made without tls=True")
        return ssl.create_default_context(cafile=str(self.cafile))

    def append(
        self,
        user: str,
        folder: str,
        raw: bytes,
        flags: Sequence[str] = (),
        when: datetime | None = None,
    ) -> int:
        """IMAP APPEND as the user (creating the folder if needed); returns the new UID."""
        with self._imap(user) as client:
            if not client.folder_exists(folder):
                client.create_folder(folder)
            response = client.append(folder, raw, flags=tuple(flags), msg_time=when)
            text = (
                response.decode("ascii", "replace")
                if isinstance(response, bytes)
                else str(response)
            )
            match = re.search(r"\[APPENDUID \d+ (\d+)\]", text)
            if match:
                return int(match.group(1))
            client.select_folder(folder, readonly=True)  # no UIDPLUS: the newest UID
            uids = [int(u) for u in client.search("ALL")]
            return max(uids) if uids else 0

    @staticmethod
    def _fetch_raw(client: Any) -> list[bytes]:
        uids = sorted(int(u) for u in client.search("ALL"))
        if not uids:
            return []
        response = client.fetch(uids, ["BODY.PEEK[]"])
        return [bytes(response[u][b"BODY[]"]) for u in uids if u in response]

    def fetch_all(self, user: str, folder: str = "INBOX") -> list[bytes]:
        """Raw messages of a folder, oldest (lowest UID) first, without setting \\Seen."""
        with self._imap(user) as client:
            client.select_folder(folder, readonly=True)
            return self._fetch_raw(client)

    def wait_for(
        self, user: str, count: int, folder: str = "INBOX", timeout: float = 5.0
    ) -> list[bytes]:
        """Poll until the folder holds at least count messages, then return them all.

        A folder that does not exist yet counts as empty.
        """
        from imapclient.exceptions import IMAPClientError

        deadline = time.monotonic() + timeout
        seen = 0
        with self._imap(user) as client:
            selected = False
            while True:
                if not selected:
                    try:
                        client.select_folder(folder, readonly=True)
                        selected = True
                    except IMAPClientError:
                        selected = False
                if selected:
                    seen = len(client.search("ALL"))
                    if seen >= count:
                        return self._fetch_raw(client)
                if time.monotonic() >= deadline:
                    raise TimeoutError(
                        f"folder {folder!r} of {self.address(user)} has {seen} message(s)"
                        f"{'' if selected else ' (folder does not exist)'}, "
                        f"wanted >= {count} within {timeout} s"
                    )
                time.sleep(0.03)
                if selected:
                    client.noop()

    def record(self, mail: CapturedMail) -> None:
        """Add a message to smtp_sent and wake smtp_wait (called from the SMTP thread)."""
        with self._smtp_cond:
            self.smtp_sent.append(mail)
            self._smtp_cond.notify_all()

    def smtp_wait(
        self,
        count: int,
        timeout: float = 5.0,
        match: Callable[[CapturedMail], bool] | None = None,
    ) -> list[CapturedMail]:
        """Wait until smtp_sent holds at least count messages (that match, if given)."""
        deadline = time.monotonic() + timeout
        with self._smtp_cond:
            while True:
                found = [m for m in self.smtp_sent if match is None or match(m)]
                if len(found) >= count:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"SMTP stand-in received {len(found)} matching message(s), "
                        f"wanted >= {count} within {timeout} s"
                    )
                self._smtp_cond.wait(left)

    def smtp_clear(self) -> None:
        """Forget what the SMTP stand-in received so far."""
        with self._smtp_cond:
            self.smtp_sent.clear()

    # --------------------------------------------------------------- internals

    def _prepare(self) -> None:
        """Work dir, homes, passwd-file and (with tls) the certificate."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        root = os.geteuid() == 0
        if root:
            _make_traversable(self.workdir)
        homes = self.workdir / "home"
        homes.mkdir(exist_ok=True)
        os.chmod(homes, 0o755)
        lines = []
        nobody = _ids("nobody", "nogroup") if root else None
        for user in self.users:
            address = self.address(user)
            home = homes / address
            home.mkdir(exist_ok=True)
            if nobody is not None:
                os.chown(home, *nobody)
            os.chmod(home, 0o700)
            lines.append(f"{address}:{{PLAIN}}{self.password(user)}::::{home}::\n")
        passwd = self.workdir / "passwd"
        passwd.write_text("".join(lines))
        if root:
            # The auth process runs as the dovecot user: let its group read the file.
            os.chown(passwd, 0, _ids("dovecot", "dovecot")[1])
        os.chmod(passwd, 0o640 if root else 0o600)
        if self.tls:
            self._make_cert()

    def _make_cert(self) -> None:
        tls_dir = self.workdir / "tls"
        tls_dir.mkdir(exist_ok=True)
        cert, key = tls_dir / "cert.pem", tls_dir / "key.pem"
        if not (cert.exists() and key.exists()):
            openssl = shutil.which("openssl")
            if openssl is None:
                raise RuntimeError("tls=True needs the openssl command: apt-get install -y openssl")
            args = [openssl, "req", "-x509", "-nodes", "-days", "30", "-subj", "/CN=localhost"]
            args += ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]
            args += ["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"]
            args += ["-addext", "basicConstraints=critical,CA:TRUE"]
            args += ["-keyout", str(key), "-out", str(cert)]
            result = subprocess.run(
                args, stdin=subprocess.DEVNULL, capture_output=True, timeout=30, check=False
            )
            if result.returncode != 0:
                raise RuntimeError(f"openssl failed: {result.stderr.decode(errors='replace')}")
            os.chmod(key, 0o600)
        self.cafile, self._keyfile = cert, key

    def _config(self) -> str:
        work = self.workdir
        root = os.geteuid() == 0
        ssl_lines = "ssl = no\n"
        imaps = ""
        if self.tls:
            assert self.cafile is not None and self._keyfile is not None
            ssl_lines = (
                "ssl = yes\n"
                f"ssl_cert = <{self.cafile}\n"
                f"ssl_key = <{self._keyfile}\n"
                "ssl_min_protocol = TLSv1.2\n"
            )
            imaps = (
                f"  inet_listener imaps {{\n    address = {HOST}\n"
                f"    port = {self.imaps_port}\n    ssl = yes\n  }}\n"
            )
        else:
            imaps = "  inet_listener imaps {\n    port = 0\n  }\n"
        if root:
            users = (
                "mail_uid = nobody\nmail_gid = nogroup\nfirst_valid_uid = 1\nfirst_valid_gid = 1\n"
                "default_internal_user = dovecot\ndefault_login_user = dovenull\n"
            )
            chroots = anvil_chroot = login_chroot = ""
        else:
            import grp
            import pwd

            me = pwd.getpwuid(os.geteuid()).pw_name
            my_group = grp.getgrgid(os.getegid()).gr_name
            users = (
                f"default_internal_user = {me}\ndefault_internal_group = {my_group}\n"
                f"default_login_user = {me}\n"
                "first_valid_uid = 1\nfirst_valid_gid = 1\n"
            )
            anvil_chroot = login_chroot = "  chroot =\n"
            chroots = "service stats {\n  chroot =\n}\n"
        return f"""\
# Written by inboxwatch.testing.devservers: a private, disposable Dovecot. Do not edit.
instance_name = inboxwatch-{os.getpid()}-{id(self):x}
base_dir = {work}/run
state_dir = {work}/state
log_path = {work}/dovecot.log
protocols = imap lmtp
listen = {HOST}
hostname = mail.{self.domain}
postmaster_address = postmaster@{self.domain}
{ssl_lines}disable_plaintext_auth = no
auth_mechanisms = plain login
# A wrong password must not slow the tests after it: no failure delay (a failure still
# takes up to 0.5 s), and no auth penalty (below; by default one failure from
# 127.0.0.1 delays the next login from anywhere on 127.0.0.1 by 2-15 s).
auth_failure_delay = 0
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {work}/passwd
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {work}/passwd
}}
{users}mail_location = maildir:~/Maildir
mail_fsync = never
# A daemon under test, its helpers and the test itself all log in as the same user.
mail_max_userip_connections = 200
namespace inbox {{
  inbox = yes
  separator = /
  mailbox Drafts {{
    special_use = \\Drafts
    auto = subscribe
  }}
  mailbox Sent {{
    special_use = \\Sent
    auto = subscribe
  }}
  mailbox Trash {{
    special_use = \\Trash
    auto = subscribe
  }}
  mailbox Junk {{
    special_use = \\Junk
    auto = subscribe
  }}
}}
service imap-login {{
{login_chroot}  inet_listener imap {{
    address = {HOST}
    port = {self.imap_port}
  }}
{imaps}}}
service lmtp {{
  inet_listener lmtp {{
    address = {HOST}
    port = {self.lmtp_port}
  }}
}}
service anvil {{
{anvil_chroot}  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
{chroots}{self.extra_config}
"""

    def _start_dovecot(self, dovecot: str) -> None:
        """Spawn the master with output to a file and wait for both greetings."""
        self.config_path.write_text(self._config())
        for path in (self._out_path, self.log_path):
            # Keep earlier runs' logs apart, so a start only judges its own lines.
            if path.exists() and path.stat().st_size:
                with open(path.with_name(path.name + ".old"), "ab") as old:
                    old.write(path.read_bytes())
            path.write_bytes(b"")
        with open(self._out_path, "ab") as out:
            proc = subprocess.Popen(
                [dovecot, "-F", "-c", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                start_new_session=True,
            )
        self._running.proc = proc
        tls_ctx = self.client_ssl_context() if self.imaps_port is not None else None
        waiting: list[tuple[int, bytes, ssl.SSLContext | None]] = [
            (self.imap_port, b"* OK", None),
            (self.lmtp_port, b"220", None),
        ]
        if self.imaps_port is not None:
            waiting.append((self.imaps_port, b"* OK", tls_ctx))
        deadline = time.monotonic() + _READY_TIMEOUT
        time.sleep(0.03)  # a port clash makes the master exit within a few ms
        while waiting:
            rc = proc.poll()
            # A fatal start error is printed ~1 s before the master exits: act on it now.
            fatal = rc is None and b"Fatal:" in self._out_path.read_bytes()
            if rc is not None or fatal:
                self._running.stop_dovecot()
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
                self._running.stop_dovecot()
                raise DovecotStartError(
                    f"dovecot did not greet on ports {[w[0] for w in waiting]} within "
                    f"{_READY_TIMEOUT} s (config {self.config_path}):\n{self.log_tail()}"
                )
            time.sleep(0.02)

    def _start_smtp(self) -> None:
        from aiosmtpd.controller import Controller

        _quiet_aiosmtpd()
        tls_context = None
        if self.tls:
            assert self.cafile is not None and self._keyfile is not None
            tls_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            tls_context.load_cert_chain(self.cafile, self._keyfile)
        handler = _SmtpHandler(self)
        common: dict[str, Any] = {
            "server_hostname": f"mx.{self.domain}",
            "auth_required": False,
            "auth_require_tls": False,
            "authenticator": _authenticator(self),
            "ready_timeout": 5.0,
        }
        variants: list[tuple[str, dict[str, Any]]] = [("smtp", {"tls_context": tls_context})]
        if tls_context is not None:
            variants.append(("smtps", {"ssl_context": tls_context}))
        for name, extra in variants:
            for attempt in range(_START_TRIES):
                port = _free_port()
                controller = Controller(handler, hostname=HOST, port=port, **common, **extra)
                try:
                    controller.start()
                except OSError:
                    with contextlib.suppress(Exception):
                        controller.stop(no_assert=True)
                    if attempt == _START_TRIES - 1:
                        raise
                    continue
                self._running.controllers.append(controller)
                setattr(self, f"{name}_port", port)
                break


def _ids(user: str, group: str) -> tuple[int, int]:
    import grp
    import pwd

    return pwd.getpwnam(user).pw_uid, grp.getgrnam(group).gr_gid


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
