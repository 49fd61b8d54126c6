"""SMTP adapter (aiosmtplib): send a batch, one transaction per message, read each reply.

Each message is sent with explicit ``MAIL FROM``, ``RCPT TO`` and ``DATA`` steps (RFC 5321
§3.3), so the stage of a refusal is known; :func:`classify_reply` turns the reply code,
its enhanced status code (RFC 3463, carried as RFC 2034 says) and that stage into an
:class:`~inboxwatch.core.queue.Outcome` (the table is on ``Outcome``).

Batch rules, shared with the in-memory twin (:mod:`inboxwatch.adapters.memory_sender`):

- a 421 or a dropped connection costs only the message whose transaction it hit
  (DEFERRED); the sender reconnects (at most :data:`MAX_RECONNECTS` times a batch) and
  carries on with the next message. A connection found closed between two messages is
  not the next message's fault: it is simply opened again;
- if the server cannot be reached (again), that message and the rest are UNREACHABLE;
- after a quota or rate limit (PAUSED) or a refusal at MAIL FROM (SENDER_REFUSED: the
  recipient is not even named yet) the rest are not attempted and come back with the
  same outcome, marked "not attempted" (``Result.attempted`` false): no hammering;
- ``stop()`` is asked before each message and while connecting or waiting for a reply
  to MAIL/RCPT (nothing is sent yet then); once DATA has begun the message is always
  finished (cutting it short could send it twice). The rest come back DEFERRED,
  "not attempted".

A large batch (a backlog's acknowledgements) goes over several connections at once
(``[smtp] connections``, :func:`connections_for`): each takes the next message when it
is done with one, and a halt on one stops them all. The extra connections are opened
only once the first has logged in (a wrong password is tried once). While others are
sending, a connection that meets a temporary refusal (none at all, a 4xx, a drop before
DATA) hands its message back, once, and ends, so a provider's limit on connections costs
speed, not a pause of the queue; the last one left keeps the rules above. If one raises,
the others finish their message in flight and start no other.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import ssl
from collections import deque
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aiosmtplib

from inboxwatch.adapters.oauth import Credential, OAuth2Login, TokenError
from inboxwatch.adapters.ports import Envelope, Outcome, Result
from inboxwatch.adapters.smtp_replies import (
    Stage,
    classify_reply,
    enhanced_code,
    halts_batch,
    parse_reply,
)
from inboxwatch.userfiles.config import ServerConfig

# Result and Envelope used to be defined here: older imports keep working.
__all__ = [
    "MAX_RECONNECTS",
    "PER_CONNECTION",
    "STOPPING",
    "Envelope",
    "Result",
    "SmtpSender",
    "Stage",
    "classify_reply",
    "connections_for",
    "enhanced_code",
    "halts_batch",
    "parse_reply",
    "tls_context",
]

log = logging.getLogger("inboxwatch.smtp")
_WARNED: set[tuple[str, int]] = set()  # warn once per server, not on every connection
_T = TypeVar("_T")

#: Connections opened again in one batch after a 421 or a drop, at most.
MAX_RECONNECTS = 3
#: What a message gets when ``stop()`` is true before it began.
STOPPING = Result(Outcome.DEFERRED, "not attempted: stopping", attempted=False)
#: How often ``stop()`` is asked while waiting for a reply that may be cut short.
_POLL = 0.05
#: QUIT is a courtesy: a slow server must not hold up the end of a batch (or a stop).
_QUIT_TIMEOUT = 2.0

# -- the connection -----------------------------------------------------------------------


def tls_context(cfg: ServerConfig) -> ssl.SSLContext:
    """Verification on by default; skipping it must be asked for by name, and is logged."""
    ctx = ssl.create_default_context(cafile=cfg.cafile or None)
    if cfg.tls_insecure_skip_verify:
        if (cfg.host, cfg.port) not in _WARNED:
            _WARNED.add((cfg.host, cfg.port))
            logging.getLogger("inboxwatch").warning(
                "TLS certificate verification is OFF for %s:%s (tls_insecure_skip_verify): "
                "anyone on the network path can read the password and the mail",
                cfg.host,
                cfg.port,
            )
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


async def _close(client: aiosmtplib.SMTP) -> None:
    """Close, then let the loop run so the transport is really closed before asyncio.run
    ends (a transport left "closing" would leak its socket)."""
    client.close()
    for _ in range(3):
        await asyncio.sleep(0)


class _Stopped(Exception):
    """``stop()`` became true while waiting for a reply that was safe to abandon."""


class _Failed(Exception):
    """The connection could not be opened: the result for this message and the rest."""

    def __init__(self, result: Result) -> None:
        super().__init__(result.error)
        self.result = result


class _Stale(Exception):
    """A reused connection was found closed as a message began: open it again."""


async def _unless_stopped(stop: Callable[[], bool], step: Coroutine[Any, Any, _T]) -> _T:
    """Await ``step``, abandoning it (:class:`_Stopped`) as soon as ``stop()`` is true.

    Only for steps that send nothing of a message (connecting, MAIL, RCPT): the
    connection is closed afterwards, so the server forgets the transaction.
    """
    task = asyncio.ensure_future(step)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=_POLL)
            if done:
                return task.result()
            if stop():
                raise _Stopped
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


def _size(raw: bytes) -> int:
    """The SIZE parameter (RFC 1870): octets as sent, with CRLF line ends."""
    return len(re.sub(rb"\r\n|\r|\n", b"\r\n", raw))


#: An extra connection is opened for every this many messages of a batch, up to
#: ``[smtp] connections``: a handshake (TLS, login) costs more than a few messages.
PER_CONNECTION = 10


def connections_for(messages: int, most: int) -> int:
    """How many connections a batch of ``messages`` uses at once: one for a few (the
    usual acknowledgement or follow-up), more for a backlog."""
    return max(1, min(most, messages // PER_CONNECTION))


@dataclass
class _Run:
    """One batch shared by its connections (one event loop: no locks needed)."""

    queue: deque[Envelope]
    on_accepted: Callable[[str], None] | None
    stop: Callable[[], bool]
    results: dict[str, Result] = field(default_factory=dict)
    #: The result of every message not yet sent, once the batch is halted.
    halt: Result | None = None
    #: Connections opened again in this batch (bounded by MAX_RECONNECTS).
    reconnects: int = 0
    #: Connections sending now; and the messages one of them handed back when it stepped down.
    active: int = 0
    handed_back: set[str] = field(default_factory=set)
    #: A connection raised (a bug, or the caller's on_accepted): the batch ends.
    failed: bool = False
    #: Set once the first connection has tried to log in: the extras wait for it.
    logged_in: asyncio.Event = field(default_factory=asyncio.Event)


#: Refusals another connection may not meet (a limit on connections is one of them).
_TEMPORARY = frozenset({Outcome.DEFERRED, Outcome.PAUSED, Outcome.UNREACHABLE})


class SmtpSender:
    """The :class:`~inboxwatch.adapters.ports.Sender` over SMTP: one connection per batch
    (opened again after a 421 or a drop), more at once for a large one.

    ``password`` is the password, or an :class:`~inboxwatch.adapters.oauth.OAuth2Login`
    (``auth = "oauth2"``): then the login is aiosmtplib's ``AUTH XOAUTH2``.
    """

    def __init__(self, cfg: ServerConfig, password: Credential) -> None:
        self.cfg = cfg
        self._password = password

    def send(
        self,
        batch: Sequence[Envelope],
        on_accepted: Callable[[str], None] | None = None,
        stop: Callable[[], bool] | None = None,
    ) -> dict[str, Result]:
        """Send every envelope; a result per id. Never raises for a network fault.

        ``on_accepted(id)`` runs right after the server accepted each message, so the
        caller can record it before the next one (a crash mid-batch then repeats nothing).
        ``stop()`` is asked before each message (see the Sender port and this module).
        """
        if not batch:
            return {}
        return asyncio.run(self._send(batch, on_accepted, stop or (lambda: False)))

    def _client(self) -> aiosmtplib.SMTP:
        cfg = self.cfg
        return aiosmtplib.SMTP(
            hostname=cfg.host,
            port=cfg.port,
            use_tls=cfg.tls == "ssl",
            start_tls=cfg.tls == "starttls",
            tls_context=tls_context(cfg) if cfg.tls != "none" else None,
            timeout=cfg.timeout,
        )

    async def _open(self, stop: Callable[[], bool]) -> aiosmtplib.SMTP:
        """A connection ready for MAIL FROM (greeting, EHLO, STARTTLS, AUTH done)."""
        cfg = self.cfg
        where = f"SMTP {cfg.host}:{cfg.port}"
        client = self._client()
        try:
            await _unless_stopped(stop, client.connect())
            if client.is_ehlo_or_helo_needed:
                try:
                    await _unless_stopped(stop, client.ehlo())
                except aiosmtplib.SMTPHeloError as exc:
                    if exc.code == 421 or not client.is_connected:
                        raise
                    await _unless_stopped(stop, client.helo())  # an old server
            if isinstance(self._password, OAuth2Login):
                await self._oauth2_login(client, self._password, stop)
            elif cfg.username:
                await _unless_stopped(stop, client.login(cfg.username, self._password))
        except (_Stopped, _Failed):
            await _close(client)
            raise
        except aiosmtplib.SMTPAuthenticationError as exc:
            await _close(client)
            res = classify_reply(Stage.CONNECT, exc.code, exc.message)
            err = f"SMTP login failed for {cfg.username!r}: {exc.code} {exc.message}"
            raise _Failed(Result(res.outcome, err, res.retry_after)) from exc
        except aiosmtplib.SMTPResponseException as exc:
            await _close(client)
            res = classify_reply(Stage.CONNECT, exc.code, exc.message)
            err = f"cannot connect to {where}: {exc.code} {exc.message}"
            raise _Failed(Result(res.outcome, err, res.retry_after)) from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            await _close(client)  # a failed TLS handshake leaves a transport open otherwise
            raise _Failed(Result(Outcome.UNREACHABLE, f"cannot connect to {where}: {exc}")) from exc
        except TokenError as exc:  # no token to log in with: as if the server were away
            await _close(client)
            raise _Failed(Result(Outcome.UNREACHABLE, f"cannot log in to {where}: {exc}")) from None
        return client

    async def _oauth2_login(
        self, client: aiosmtplib.SMTP, cred: OAuth2Login, stop: Callable[[], bool]
    ) -> None:
        """AUTH XOAUTH2 with the cached token; a refused one is replaced by a fresh one from
        the token command and tried once more, then the refusal stands. The command runs
        in a thread: ``stop()`` is still heard while it works."""
        cfg = self.cfg
        if "xoauth2" not in client.server_auth_methods:
            offered = " ".join(client.server_auth_methods).upper() or "no AUTH"
            err = f"SMTP {cfg.host}:{cfg.port} does not offer AUTH XOAUTH2 (it offers {offered})"
            raise _Failed(Result(Outcome.UNREACHABLE, err))  # a login refused, as the table says
        for attempt in (1, 2):
            token = await _unless_stopped(stop, asyncio.to_thread(cred.provider.token))
            try:
                await _unless_stopped(stop, client.auth_xoauth2(cfg.username, token))
                return
            except aiosmtplib.SMTPAuthenticationError as exc:
                cred.provider.rejected(token)
                if attempt == 2:
                    why = f"{exc.message} (a fresh token from {cred.where} was refused too)"
                    raise aiosmtplib.SMTPAuthenticationError(exc.code, why) from None
                if not client.is_connected:
                    raise
                log.info("%s: SMTP refused the access token; getting a fresh one", cred.where)

    async def _send(
        self,
        batch: Sequence[Envelope],
        on_accepted: Callable[[str], None] | None,
        stop: Callable[[], bool],
    ) -> dict[str, Result]:
        """The batch over :func:`connections_for` connections at once, each taking the
        next message when it is done with one (see the module docstring)."""
        run = _Run(deque(batch), on_accepted, stop)
        count = connections_for(len(batch), self.cfg.connections)
        workers = [self._worker(run), *(self._extra(run) for _ in range(count - 1))]
        # Every connection finishes its message in flight, even if another one raised
        # (a DATA cut short could be delivered and sent again); then the error goes on.
        errors = [e for e in await asyncio.gather(*workers, return_exceptions=True) if e]
        if errors:
            raise errors[0]
        for _ in range(len(batch)):  # left by a connection that stepped down last
            if not run.queue:
                break
            await self._worker(run)
        return run.results

    async def _extra(self, run: _Run) -> None:
        """An extra connection: opened only once the first one has logged in (a wrong
        password is tried once, not once per connection), and not at all if the batch
        was halted meanwhile or is done."""
        await run.logged_in.wait()
        if run.halt is None and run.queue and not run.stop():
            await self._worker(run)

    async def _worker(self, run: _Run) -> None:
        """One connection taking messages from ``run.queue`` until it is empty or the
        batch is halted. While others are still sending, a temporary refusal (no
        connection, a 4xx, a drop) makes this one step down and hand its message back
        (once per message): a provider's limit on connections (Microsoft 365: 432 4.3.2
        beyond 3) must cost speed, not a 15-minute pause of the whole queue. The last
        connection keeps the batch rules."""
        cfg, results, queue, stop = self.cfg, run.results, run.queue, run.stop
        client: aiosmtplib.SMTP | None = None
        reused = False  # the connection has carried a transaction already
        first = True  # this worker's first connection (a later one is a reconnect)
        run.active += 1

        def step_down(env: Envelope) -> bool:
            if run.active > 1 and env.id not in run.handed_back:
                run.handed_back.add(env.id)
                queue.appendleft(env)
                return True
            return False

        try:
            while queue and not run.failed:
                env = queue.popleft()
                if run.halt is not None:
                    results[env.id] = run.halt
                    continue
                if stop():
                    results[env.id] = STOPPING
                    continue
                if client is not None and not client.is_connected:
                    await _close(client)  # closed while idle: nobody's fault
                    client = None
                if client is None:
                    if not first and run.reconnects >= MAX_RECONNECTS:
                        if step_down(env):
                            return
                        run.halt = Result(
                            Outcome.UNREACHABLE,
                            f"not attempted: the connection to SMTP {cfg.host}:{cfg.port} "
                            f"was lost {run.reconnects + 1} times in this batch",
                            attempted=False,
                        )
                        results[env.id] = run.halt
                        continue
                    run.reconnects += 0 if first else 1
                    first = False
                    try:
                        client = await self._open(stop)
                    except _Stopped:
                        results[env.id] = STOPPING
                        continue
                    except _Failed as failed:
                        if step_down(env):
                            log.debug("an extra SMTP connection was refused: %s", failed)
                            return
                        results[env.id] = failed.result
                        run.halt = run.halt or failed.result.not_attempted()
                        continue
                    finally:
                        run.logged_in.set()  # (or failed: the extras look at the halt)
                    reused = False
                    if run.halt is not None:  # halted while this one was connecting
                        queue.appendleft(env)
                        continue
                try:
                    result, stage, alive = await self._one(client, env, stop, reused)
                except _Stale:
                    await _close(client)
                    client = None
                    queue.appendleft(env)
                    continue
                reused = True
                # A refusal, not a connection lost in DATA (the server may have it all:
                # that one waits for the outbox's retry, as with one connection).
                refused = alive or stage is not Stage.DATA
                if not result.ok and result.outcome in _TEMPORARY and refused and step_down(env):
                    log.debug("an extra SMTP connection stepped down: %s", result.error)
                    return
                results[env.id] = result
                if result.ok and run.on_accepted is not None:
                    run.on_accepted(env.id)
                if not alive:
                    await _close(client)
                    client = None
                if halts_batch(stage, result):
                    run.halt = run.halt or result.not_attempted()
        except BaseException:
            run.failed = True  # the others finish their message in flight, start no other
            raise
        finally:
            run.active -= 1
            run.logged_in.set()  # never leave the extras waiting (a stop before any login)
            if client is not None:
                with contextlib.suppress(aiosmtplib.SMTPException, OSError, TimeoutError):
                    await client.quit(timeout=min(cfg.timeout, _QUIT_TIMEOUT))
                await _close(client)

    async def _one(
        self, client: aiosmtplib.SMTP, env: Envelope, stop: Callable[[], bool], reused: bool
    ) -> tuple[Result, Stage, bool]:
        """One transaction: its result, the stage it ended at, and whether the
        connection can carry the next one."""
        stage = Stage.MAIL
        utf8 = not (env.mail_from.isascii() and env.rcpt.isascii())
        options = [f"SIZE={_size(env.raw)}"] if client.supports_extension("size") else []
        if utf8:
            if not client.supports_extension("smtputf8"):
                # Our server cannot carry the address (RFC 6531): ours to solve.
                err = "the address needs SMTPUTF8 (RFC 6531), which the SMTP server lacks"
                who = Stage.MAIL if not env.mail_from.isascii() else Stage.RCPT
                return Result(Outcome.SENDER_REFUSED, err), who, True
            options.append("SMTPUTF8")
        encoding = "utf-8" if utf8 else "ascii"
        try:
            try:
                await _unless_stopped(
                    stop, client.mail(env.mail_from, options=options, encoding=encoding)
                )
            except aiosmtplib.SMTPServerDisconnected:
                if reused:
                    raise _Stale from None
                raise
            stage = Stage.RCPT
            await _unless_stopped(stop, client.rcpt(env.rcpt, encoding=encoding))
            stage = Stage.DATA
            await client.data(env.raw)  # never cut short: it could then be sent twice
        except _Stopped:
            return STOPPING, stage, False
        except aiosmtplib.SMTPResponseException as exc:
            result = classify_reply(stage, exc.code, exc.message)
            alive = exc.code != 421 and client.is_connected and await self._reset(client)
            return result, stage, alive
        except ValueError as exc:  # an address aiosmtplib cannot write
            outcome = Outcome.SENDER_REFUSED if stage is Stage.MAIL else Outcome.REFUSED
            return (
                Result(outcome, f"cannot write the address for {stage.command}: {exc}"),
                stage,
                True,
            )
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            err = f"SMTP connection lost during {stage.command}: {exc}"
            return Result(Outcome.DEFERRED, err), stage, False
        return Result(Outcome.ACCEPTED), stage, True

    async def _reset(self, client: aiosmtplib.SMTP) -> bool:
        """RSET after a refused transaction; False when the connection is not usable."""
        try:
            await client.rset(timeout=min(self.cfg.timeout, _QUIT_TIMEOUT))
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            return False
        return client.is_connected
