"""OAuth2 stand-ins for tests: a token issuer with an introspection endpoint, a Dovecot
that checks tokens there, and an SMTP server that accepts only ``AUTH XOAUTH2``.

Gmail and Microsoft 365 cannot run in a test, but the two halves of what they do can:
:class:`TokenIssuer` hands out access tokens (valid for a while, or revoked) and answers
RFC 7662 token introspection over HTTP on 127.0.0.1, which is how a real Dovecot
``oauth2`` passdb validates the token a client logs in with (:class:`OAuth2Dovecot`);
:func:`start_xoauth2_smtp` is an aiosmtpd server that checks the same tokens and, when
one is refused, answers as Gmail does (a ``334`` challenge with a JSON error, then ``535``
after the client's empty line). ``token_script`` writes the kind of helper command a user
configures as ``token_command``, which counts its runs in a file.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import shlex
import stat
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from inboxwatch.testing.dovecot import DovecotProcess, DovecotStartError
from inboxwatch.testing.dovecot_config import render_config, write_mailboxes, write_oauth2_args
from inboxwatch.testing.loopback import HOST, free_port

_START_TRIES = 5


class TokenIssuer:
    """Access tokens by user, and an RFC 7662 introspection endpoint that judges them.

    ``issue`` makes a token valid for ``lifetime`` seconds (None: until revoked); the
    endpoint answers ``{"active": true, "username": ...}`` for a valid one and
    ``{"active": false}`` otherwise, and counts the questions it was asked.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._tokens: dict[str, tuple[str, float | None]] = {}
        self.introspections = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def issue(self, username: str, lifetime: float | None = None) -> str:
        token = "ya29." + secrets.token_urlsafe(24)  # shaped like Google's
        expires = None if lifetime is None else self._clock() + lifetime
        with self._lock:
            self._tokens[token] = (username, expires)
        return token

    def revoke(self, token: str) -> None:
        with self._lock:
            self._tokens.pop(token, None)

    def user_of(self, token: str) -> str | None:
        """The user a token is valid for now, or None."""
        with self._lock:
            found = self._tokens.get(token)
        if found is None or (found[1] is not None and self._clock() >= found[1]):
            return None
        return found[0]

    # -- the HTTP endpoint ----------------------------------------------------------------
    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("TokenIssuer is not started")
        return f"http://{HOST}:{self._server.server_address[1]}/introspect"

    def start(self) -> None:
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                size = min(int(self.headers.get("Content-Length") or 0), 65536)
                form = parse_qs(self.rfile.read(size).decode("utf-8", "replace"))
                token = (form.get("token") or [""])[0]
                with issuer._lock:
                    issuer.introspections += 1
                user = issuer.user_of(token)
                answer = {"active": True, "username": user} if user else {"active": False}
                body = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return None  # quiet: the tests read the counts

        server = ThreadingHTTPServer((HOST, 0), Handler)
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="introspection")
        self._thread.start()

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)


def token_script(folder: Path, token_file: Path) -> tuple[str, Path]:
    """A helper command as a user would configure it: prints the token stored in
    ``token_file`` (or fails with its stderr message if the file says ``FAIL``), and
    appends a line to the returned runs file each time it runs. Returns (command, runs)."""
    folder.mkdir(parents=True, exist_ok=True)
    runs = folder / "token-runs"
    script = folder / "print-token.py"
    script.write_text(
        "import sys\n"
        f"with open({str(runs)!r}, 'a') as f:\n"
        "    f.write('run\\n')\n"
        f"text = open({str(token_file)!r}).read().strip()\n"
        "if text == 'FAIL':\n"
        "    print('invalid_grant: Token has been expired or revoked.', file=sys.stderr)\n"
        "    sys.exit(1)\n"
        "print(text)\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return f"{shlex.quote(sys.executable)} {shlex.quote(str(script))}", runs


def runs_of(runs: Path) -> int:
    """How often a :func:`token_script` command ran."""
    with contextlib.suppress(FileNotFoundError):
        return len(runs.read_text().splitlines())
    return 0


class OAuth2Dovecot:
    """A private Dovecot (IMAP, plain, on 127.0.0.1) whose users log in with tokens the
    ``issuer`` made (XOAUTH2 or OAUTHBEARER), checked at its introspection endpoint.

    Users still have a passwd-file entry (their home; a random password that only the
    PLAIN/LOGIN mechanisms accept), as the oauth2 passdb only says who may log in.
    """

    def __init__(
        self, workdir: Path, users: Sequence[str], issuer: TokenIssuer, domain: str = "example.test"
    ) -> None:
        self.workdir = Path(workdir).absolute()
        self.users = tuple(users)
        self.issuer = issuer
        self.domain = domain
        self.imap_port = self.lmtp_port = 0
        self._process = DovecotProcess(self.workdir)

    def address(self, user: str) -> str:
        return f"{user}@{self.domain}"

    def start(self) -> None:
        from inboxwatch.testing.devservers import find_dovecot

        binary = find_dovecot()
        write_mailboxes(self.workdir, [(self.address(u), secrets.token_hex(8)) for u in self.users])
        args = write_oauth2_args(self.workdir, self.issuer.url)
        for attempt in range(_START_TRIES):
            self.imap_port, self.lmtp_port = free_port(), free_port()
            config = render_config(
                workdir=self.workdir,
                instance_name=f"inboxwatch-oauth2-{os.getpid()}-{id(self):x}",
                domain=self.domain,
                imap_port=self.imap_port,
                lmtp_port=self.lmtp_port,
                imaps_port=None,
                tls_files=None,
                extra_config="",
                oauth2_args=args,
            )
            try:
                self._process.start(
                    binary, config, imap_port=self.imap_port, lmtp_port=self.lmtp_port
                )
                return
            except DovecotStartError as exc:
                if not exc.address_in_use or attempt == _START_TRIES - 1:
                    raise

    def deliver(self, user: str, raw: bytes, sender: str = "lead@customer.test") -> None:
        """Put a message in a user's inbox (LMTP), as a mail server's delivery would."""
        import smtplib

        with smtplib.LMTP(HOST, self.lmtp_port, timeout=10) as lmtp:
            lmtp.sendmail(sender, [self.address(user)], raw)

    def stop(self) -> None:
        self._process.stop()

    def log_tail(self, lines: int = 30) -> str:
        return self._process.log_tail(lines)


# -- SMTP with XOAUTH2 only -------------------------------------------------------------------


@dataclass
class XOAuth2Log:
    """What the XOAUTH2 SMTP server saw: each AUTH's user and verdict, and the mail."""

    logins: list[tuple[str, bool]] = field(default_factory=list)
    messages: list[tuple[str, tuple[str, ...], bytes]] = field(default_factory=list)


class _XOAuth2Handler:
    def __init__(self, issuer: TokenIssuer, seen: XOAuth2Log) -> None:
        self.issuer = issuer
        self.seen = seen

    async def auth_XOAUTH2(self, server: Any, args: list[str]) -> Any:
        """The SASL XOAUTH2 exchange as Gmail answers it (aiosmtpd's ``auth_<NAME>`` hook)."""
        from aiosmtpd.smtp import MISSING, AuthResult

        if len(args) > 1:
            try:
                blob = base64.b64decode(args[1], validate=True)
            except ValueError:
                return AuthResult(
                    success=False, handled=False, message="501 5.5.2 Cannot decode base64"
                )
        else:
            answer = await server.challenge_auth("")
            if answer is MISSING:
                return AuthResult(success=False, handled=True)
            blob = answer
        fields = dict(
            part.split("=", 1) for part in blob.decode("utf-8", "replace").split("\x01") if part
        )
        user, bearer = fields.get("user", ""), fields.get("auth", "")
        token = bearer[len("Bearer ") :] if bearer.startswith("Bearer ") else ""
        ok = bool(token) and self.issuer.user_of(token) == user
        self.seen.logins.append((user, ok))
        if ok:
            return AuthResult(success=True, auth_data=user)
        error = {"status": "400", "schemes": "Bearer", "scope": "https://mail.google.com/"}
        await server.challenge_auth(json.dumps(error))  # the client answers with an empty line
        return AuthResult(
            success=False,
            handled=False,
            message="535 5.7.8 Username and Password not accepted (token)",
        )

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        """No mail before a successful AUTH (as ``auth_required`` would, without the
        warning aiosmtpd gives for it on a plain-text port)."""
        if not session.authenticated:
            return "530 5.7.0 Authentication Required"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        data = envelope.original_content or envelope.content or b""
        if isinstance(data, str):
            data = data.encode("utf-8", "surrogateescape")
        rcpts = tuple(str(r) for r in envelope.rcpt_tos)
        self.seen.messages.append((str(envelope.mail_from or ""), rcpts, bytes(data)))
        return "250 2.0.0 OK"


def start_xoauth2_smtp(issuer: TokenIssuer) -> tuple[Any, int, XOAuth2Log]:
    """An aiosmtpd server on 127.0.0.1 offering only ``AUTH XOAUTH2`` (needed before
    MAIL), plain text (loopback only). Returns (controller, port, what it saw); the
    caller stops the controller."""
    from aiosmtpd.controller import Controller

    from inboxwatch.testing.smtp_capture import _quiet_aiosmtpd, start_controller

    _quiet_aiosmtpd()  # aiosmtpd 1.4 logs a deprecation of its own on every AUTH
    seen = XOAuth2Log()
    handler = _XOAuth2Handler(issuer, seen)
    controller, port = start_controller(
        lambda port: Controller(
            handler,
            hostname=HOST,
            port=port,
            server_hostname="smtp.example.test",
            auth_required=False,  # handle_MAIL requires it
            auth_require_tls=False,
            auth_exclude_mechanism=["LOGIN", "PLAIN"],
            ready_timeout=5.0,
        )
    )
    return controller, port, seen
