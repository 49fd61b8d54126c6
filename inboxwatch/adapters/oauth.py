"""OAuth2 logins: an access token from the user's own helper command, cached until it expires.

Gmail, Google Workspace and Microsoft 365 want OAuth2 access tokens instead of passwords.
inboxwatch does not talk to the providers' token endpoints itself: like mutt, aerc and
isync, it runs a ``token_command`` (``mutt_oauth2.py``, ``oama``, ``pizauth``...) that
keeps the refresh token in its own store and prints a fresh access token. So no client
secret or refresh token ever passes through inboxwatch's config or state.

:class:`TokenProvider` runs that command once per token lifetime (less a margin), not
once per connection, and again when a server refuses the token; IMAP and SMTP share one
provider when they use the same command. A command that fails, hangs or prints nothing
raises :class:`TokenError`, a :class:`~inboxwatch.errors.TransientError`: the daemon
then treats it as the server being out of reach (back-off, an owner alert after
``unreachable_alert_minutes``), because the usual causes pass (the network down at
boot, the provider's token endpoint busy) or need a person (a refresh token that
expired), and neither is helped by exiting. The token is never logged or shown in a repr.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from inboxwatch.errors import TransientError

if TYPE_CHECKING:
    from inboxwatch.userfiles.config import Config, ServerConfig

log = logging.getLogger("inboxwatch")
_T = TypeVar("_T")

#: How long a token command may take (a helper refreshing over a slow network).
TIMEOUT = 30.0
#: A token is renewed this long before its lifetime ends (at most a tenth of the lifetime),
#: so a connection never logs in with a token about to expire on the way.
MARGIN = 60.0
#: Only this much of a failing command's error output reaches the log.
_STDERR_CHARS = 200


class TokenError(TransientError):
    """The token command failed (exit status, timeout, no output): retried with back-off."""


class TokenProvider:
    """A cached access token from ``command``; thread-safe (IMAP and SMTP may share it).

    ``where`` names the config key for errors ("config.toml: imap.token_command");
    ``clock`` is monotonic seconds (tests pass a fake one).
    """

    def __init__(
        self,
        command: str,
        *,
        where: str,
        lifetime: float = 3000.0,
        timeout: float = TIMEOUT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.command = command
        self.where = where
        self.lifetime = lifetime
        self.margin = min(MARGIN, lifetime / 10)
        self.timeout = timeout
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires = 0.0
        #: How often the command ran (for logs and tests).
        self.runs = 0

    def __repr__(self) -> str:  # never the token
        return f"TokenProvider({self.where})"

    def token(self) -> str:
        """The cached token while it is valid, else a fresh one from the command."""
        with self._lock:
            now = self._clock()
            if self._token is not None and now < self._expires:
                return self._token
            self._token = None
            token = self._run()
            self._token, self._expires = token, now + self.lifetime - self.margin
            return token

    def rejected(self, token: str) -> None:
        """A server refused ``token``: the next :meth:`token` runs the command again
        (unless another caller already replaced it)."""
        with self._lock:
            if self._token == token:
                self._token = None

    def _run(self) -> str:
        self.runs += 1
        try:
            argv = shlex.split(self.command)
        except ValueError as exc:
            raise TokenError(f"{self.where}: cannot be split into words: {exc}") from None
        if not argv:
            raise TokenError(f"{self.where}: is empty")
        try:
            code, out, err = _run_bounded(argv, self.timeout)
        except OSError as exc:
            raise TokenError(f"{self.where}: cannot run {argv[0]!r}: {exc.strerror}") from None
        except subprocess.TimeoutExpired:
            raise TokenError(
                f"{self.where}: gave no token within {self.timeout:g} s (killed)"
            ) from None
        if code < 0:
            raise TokenError(f"{self.where}: was killed by signal {-code}{_said(err)}")
        if code != 0:
            raise TokenError(f"{self.where}: exited with status {code}{_said(err)}")
        lines = [line.strip() for line in out.splitlines() if line.strip()]
        if not lines:
            raise TokenError(f"{self.where}: printed no token{_said(err)}")
        log.debug("%s: a new access token (run %d)", self.where, self.runs)
        return lines[0]


def _said(stderr: str) -> str:
    """The last line the command wrote to stderr, shortened: what a person needs to act."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    if not lines:
        return ""
    last = lines[-1]
    return f": {last[:_STDERR_CHARS]}{'...' if len(last) > _STDERR_CHARS else ''}"


def _run_bounded(argv: list[str], timeout: float) -> tuple[int, str, str]:
    """Run ``argv`` for at most ``timeout`` seconds: (status, stdout, stderr).

    The command runs in its own process group, and on a timeout the whole group is
    killed: a helper that left a child holding its output pipe open (a shell script
    around curl) would otherwise keep ``communicate`` waiting for ever.
    """
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        encoding="utf-8",
        errors="replace",  # a helper's odd bytes must not become our crash
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.communicate(timeout=5)
        proc.kill()
        proc.wait()
        raise
    return proc.returncode, out, err


class OAuth2Login:
    """How to log in with OAuth2: the token source and the SASL mechanism
    (``xoauth2`` as Gmail and Microsoft 365 speak it, or RFC 7628 ``oauthbearer``)."""

    def __init__(self, provider: TokenProvider, mechanism: str = "xoauth2") -> None:
        self.provider = provider
        self.mechanism = mechanism

    def __repr__(self) -> str:
        return f"OAuth2Login({self.mechanism}, {self.provider!r})"

    def login(self, attempt: Callable[[str], _T], refused: type[BaseException]) -> _T:
        """``attempt(token)``; if the server refuses it (``refused``), once more with a
        fresh token from the command, then the refusal stands."""
        token = self.provider.token()
        try:
            return attempt(token)
        except refused:
            self.provider.rejected(token)
            log.info("%s: the server refused the access token; getting a fresh one", self.where)
        token = self.provider.token()
        try:
            return attempt(token)
        except refused:
            self.provider.rejected(token)  # never offered again
            raise

    @property
    def where(self) -> str:
        return self.provider.where


#: What an adapter logs in with: a password, or an OAuth2 token source.
Credential = str | OAuth2Login


def credential(
    server: ServerConfig, shared: dict[tuple[str, float], TokenProvider] | None = None
) -> Credential:
    """The login for one server: its password, read now (a missing one is a ConfigError
    before any connection), or an OAuth2 token source whose command runs only when a
    connection needs a token. Servers given the same ``shared`` dict share a provider
    for the same command."""
    if server.auth != "oauth2":
        return server.password.resolve()
    shared = {} if shared is None else shared
    key = (server.token_command, server.token_lifetime_seconds)
    if key not in shared:
        shared[key] = TokenProvider(
            server.token_command,
            where=f"{server.password.file}: {server.token_key}",
            lifetime=server.token_lifetime_seconds,
        )
    return OAuth2Login(shared[key], server.oauth2_mechanism)


def credentials(cfg: Config) -> tuple[Credential, Credential]:
    """(IMAP, SMTP) logins for ``cfg``; with the same command they share one cached token."""
    shared: dict[tuple[str, float], TokenProvider] = {}
    return credential(cfg.imap, shared), credential(cfg.smtp, shared)
