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
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import ssl
from collections.abc import Callable, Coroutine, Sequence
from datetime import timedelta
from enum import StrEnum
from typing import Any, TypeVar

import aiosmtplib

from inboxwatch.adapters.ports import Envelope, Outcome, Result
from inboxwatch.userfiles.config import ServerConfig

# Result and Envelope used to be defined here: older imports keep working.
__all__ = [
    "MAX_RECONNECTS",
    "STOPPING",
    "Envelope",
    "Result",
    "SmtpSender",
    "Stage",
    "classify_reply",
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

#: Pauses when the reply names no time: a provider's daily quota, an hourly one, a rate.
DAILY_QUOTA = timedelta(hours=24)
HOURLY_QUOTA = timedelta(hours=1)
RATE_LIMIT = timedelta(minutes=15)
#: A time the server gives ("try again in 5 minutes") is kept within these.
_HINT_MIN, _HINT_MAX = timedelta(seconds=30), timedelta(hours=25)


class Stage(StrEnum):
    """Where in the session a reply came (RFC 5321 §3.3: a mail transaction's steps)."""

    CONNECT = "connect"  # greeting, EHLO, STARTTLS, AUTH: before any message
    MAIL = "mail"
    RCPT = "rcpt"
    DATA = "data"  # the DATA command and the reply after the message's end

    @property
    def command(self) -> str:
        return {
            Stage.CONNECT: "the greeting, EHLO or login",
            Stage.MAIL: "MAIL FROM",
            Stage.RCPT: "RCPT TO",
            Stage.DATA: "DATA",
        }[self]


# -- reading replies ----------------------------------------------------------------------

_ENHANCED = re.compile(r"^\s*([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])", re.M)
#: The recipient's mailbox is full (X.2.2 without the code): their quota, it passes.
_MAILBOX_FULL = re.compile(
    r"mailbox (?:is )?full|over ?quota|mailbox\b.{0,30}\bquota|quota\b.{0,30}\bmailbox"
    r"|insufficient (?:system )?storage|storage (?:allocation|limit)|disk quota",
    re.I,
)
#: Words that make a quota ours (the account's sending), not the recipient's mailbox.
_OUR_QUOTA = re.compile(
    r"\b(?:send|sending|submission|daily|hourly|outbound|per (?:day|hour))\b", re.I
)
#: A quota or rate limit on our sending.
_RATE = re.compile(
    r"rate.?limit|throttl|unusual rate|unexpected volume|too fast|slow down"
    r"|too many (?:messages|mails?|e-?mails?|recipients|connections|sessions|requests|sends?"
    r"|login|auth)"
    r"|(?:sending|send|submission|message|daily|hourly|outbound|user) ?(?:quota|limit)"
    r"|(?:quota|limit) ?(?:exceeded|reached|was exceeded)"
    r"|exceeded (?:the |your )?(?:\w+ ){0,2}(?:quota|limit)",
    re.I,
)
_HOURLY = re.compile(r"\bhour(?:ly)?\b", re.I)
_DAILY = re.compile(r"\bdaily\b|\bper day\b|\b24 ?h(?:ours?|rs?)?\b|\bday\b", re.I)
_HINT = re.compile(
    r"(?:try (?:again|later)|retry|wait|again)\D{0,20}?\b(?:in|after|for)\s+"
    r"(\d+(?:\.\d+)?)\s*(seconds?|secs?|s|minutes?|mins?|m|hours?|hrs?|h)\b",
    re.I,
)
#: The refusal is about us (our sender address, our login, relaying, our domain).
_SENDER = re.compile(
    r"relay|sender address|sender domain|\bsender (?:is )?(?:not|rejected|refused|blocked|"
    r"denied|unknown)|from address|envelope from|mail from|authenticat|auth required"
    r"|not (?:allowed|authori[sz]ed|permitted) to (?:send|relay)|send ?as\b|client host"
    r"|your (?:ip|account|domain)|account (?:is )?(?:disabled|suspended|blocked|locked)",
    re.I,
)
#: The refusal names the recipient (when a policy code could be either).
_RECIPIENT = re.compile(
    r"recipient|user unknown|unknown user|no such (?:user|mailbox|address|recipient)"
    r"|mailbox (?:unavailable|not found|does not exist|disabled|inactive)|does not exist"
    r"|invalid (?:mailbox|address)|address unknown",
    re.I,
)
#: Enhanced codes (subject, detail) about us: X.1.7/X.1.8 our sender address (RFC 3463
#: §3.2); X.7.8/X.7.9/X.7.11 authentication (RFC 4954 §6); X.7.13/X.7.14 our account
#: (RFC 5248); X.7.20-X.7.27 our domain's DKIM/SPF/DMARC (RFC 7372).
_SENDER_CODES = {(1, 7), (1, 8), (7, 8), (7, 9), (7, 11), (7, 13), (7, 14)} | {
    (7, n) for n in range(20, 28)
}


def parse_reply(reply: str) -> tuple[int, str]:
    """``"550 5.1.1 no such user"`` → ``(550, "5.1.1 no such user")``."""
    code, _, text = reply.strip().partition(" ")
    return int(code[:3]), text.strip()


def enhanced_code(text: str) -> tuple[int, int, int] | None:
    """The RFC 3463 status code a reply's text starts with (``5.1.1``), if any."""
    m = _ENHANCED.search(text)
    return (int(m[1]), int(m[2]), int(m[3])) if m else None


def _hint(text: str) -> timedelta | None:
    """A wait the server names ("try again in 10 minutes"), within sane bounds."""
    m = _HINT.search(text)
    if m is None:
        return None
    n, unit = float(m[1]), m[2].lower()
    span = (
        timedelta(hours=n)
        if unit.startswith("h")
        else timedelta(minutes=n)
        if unit.startswith("m")
        else timedelta(seconds=n)
    )
    return min(_HINT_MAX, max(_HINT_MIN, span))


def _rate_limited(code: int, esc: tuple[int, int, int] | None, text: str) -> bool:
    sd = esc[1:] if esc else None
    # X.4.5 (Gmail's "550 5.4.5 daily sending quota"), X.7.28 (a rate of unsolicited
    # mail), X.5.3 "too many recipients" for a message that has only one (RFC 5321
    # §4.5.3.1.10: a limit per period, then).
    return sd in ((4, 5), (7, 28), (5, 3)) or bool(_RATE.search(text))


def _pause(code: int, esc: tuple[int, int, int] | None, text: str) -> timedelta:
    """How long a quota or rate limit should stop all sending."""
    hint = _hint(text)
    if hint is not None:
        return hint
    if _HOURLY.search(text) and not _DAILY.search(text):
        return HOURLY_QUOTA
    if (
        _DAILY.search(text)
        or "quota" in text.lower()
        or (code >= 500 and esc and esc[1:] == (4, 5))
    ):
        return DAILY_QUOTA  # until a daily quota can have reset
    return RATE_LIMIT


def _recipient_quota(stage: Stage, esc: tuple[int, int, int] | None, text: str) -> bool:
    """The recipient's mailbox is full (X.2.2): it passes, for them alone."""
    if stage not in (Stage.RCPT, Stage.DATA) or _OUR_QUOTA.search(text):
        return False
    if esc is not None:
        return esc[1:] == (2, 2)
    return bool(_MAILBOX_FULL.search(text))


def _outcome(stage: Stage, code: int, text: str) -> Outcome:
    esc = enhanced_code(text)
    sd = esc[1:] if esc else None
    if stage is Stage.CONNECT:
        return Outcome.PAUSED if _rate_limited(code, esc, text) else Outcome.UNREACHABLE
    if _recipient_quota(stage, esc, text):
        return Outcome.DEFERRED
    if _rate_limited(code, esc, text):
        return Outcome.PAUSED
    if not 500 <= code < 600:
        return Outcome.DEFERRED  # 4yz (a 421 closes the connection too), or nonsense
    if stage is Stage.MAIL:
        # Nothing about the recipient yet: our sender, unless our message is too big
        # (X.3.4, X.2.3; 552 to a SIZE parameter, RFC 1870).
        too_big = sd in ((3, 4), (2, 3)) or (esc is None and code == 552)
        return Outcome.CONTENT_REFUSED if too_big else Outcome.SENDER_REFUSED
    if sd in _SENDER_CODES or code == 530:
        return Outcome.SENDER_REFUSED
    if esc is None and _SENDER.search(text) and not _RECIPIENT.search(text):
        return Outcome.SENDER_REFUSED
    if stage is Stage.RCPT:
        if code in (500, 502, 503, 504, 555):  # our client and this server disagree
            return Outcome.SENDER_REFUSED
        if sd in ((3, 4), (2, 3)):
            return Outcome.CONTENT_REFUSED
        if sd is not None and sd[0] == 7 and not _RECIPIENT.search(text):
            # Policy (X.7.x) before any content: relaying, our account, our address.
            return Outcome.SENDER_REFUSED
        return Outcome.REFUSED  # 550 5.1.1 and the like: this address
    # After DATA: the recipient only when the code (or plain words) say so.
    if sd is not None and (sd[0] in (1, 4) or (sd[0] == 2 and sd != (2, 3))):
        return Outcome.REFUSED
    if esc is None and _RECIPIENT.search(text):
        return Outcome.REFUSED
    return Outcome.CONTENT_REFUSED  # X.7.x policy/spam, X.6.x content, X.3.4 size, ...


def classify_reply(stage: Stage | str, code: int, text: str) -> Result:
    """The :class:`Result` for an SMTP reply ``code text`` at ``stage``.

    Reads the enhanced status code (RFC 3463) where there is one, else the reply code
    and plain words; see :class:`~inboxwatch.core.queue.Outcome` for what each outcome
    means. ``retry_after``: how long a PAUSED outcome should stop all sending (a daily
    quota: 24 h, until it can have reset; a rate limit: 15 min), or a time the server
    named ("try again in 5 minutes").
    """
    stage = Stage(stage)
    outcome = _outcome(stage, code, text)
    esc = enhanced_code(text)
    after = _pause(code, esc, text) if outcome is Outcome.PAUSED else _hint(text)
    error = f"SMTP {code} {text} (reply to {stage.command})".replace("\n", " ")
    return Result(outcome, error, retry_after=after)


def halts_batch(stage: Stage | str, result: Result) -> bool:
    """After ``result`` (at ``stage``) the rest of the batch is not attempted.

    A quota or rate limit, a server that cannot be reached, and a refusal at MAIL FROM
    (nothing about a recipient yet, so every message would get it). A SENDER_REFUSED
    later in a transaction is not: it might be about one recipient after all.
    """
    if result.outcome in (Outcome.PAUSED, Outcome.UNREACHABLE):
        return True
    return result.outcome is Outcome.SENDER_REFUSED and Stage(stage) is Stage.MAIL


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


class SmtpSender:
    """The :class:`~inboxwatch.adapters.ports.Sender` over SMTP: one connection per batch
    (opened again after a 421 or a drop)."""

    def __init__(self, cfg: ServerConfig, password: str) -> None:
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
            if cfg.username:
                await _unless_stopped(stop, client.login(cfg.username, self._password))
        except _Stopped:
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
        return client

    async def _send(
        self,
        batch: Sequence[Envelope],
        on_accepted: Callable[[str], None] | None,
        stop: Callable[[], bool],
    ) -> dict[str, Result]:
        cfg = self.cfg
        results: dict[str, Result] = {}
        client: aiosmtplib.SMTP | None = None
        reused = False  # the connection has carried a transaction already
        opened = 0
        halt: Result | None = None  # the result of every message not yet sent
        try:
            for env in batch:
                while env.id not in results:
                    if halt is not None:
                        results[env.id] = halt
                        break
                    if stop():
                        results[env.id] = STOPPING
                        break
                    if client is not None and not client.is_connected:
                        await _close(client)  # closed while idle: nobody's fault
                        client = None
                    if client is None:
                        if opened > MAX_RECONNECTS:
                            halt = Result(
                                Outcome.UNREACHABLE,
                                f"not attempted: the connection to SMTP {cfg.host}:{cfg.port} "
                                f"was lost {opened} times in this batch",
                                attempted=False,
                            )
                            continue
                        opened += 1
                        try:
                            client = await self._open(stop)
                        except _Stopped:
                            results[env.id] = STOPPING
                            break
                        except _Failed as failed:
                            results[env.id] = failed.result
                            halt = failed.result.not_attempted()
                            break
                        reused = False
                    try:
                        result, stage, alive = await self._one(client, env, stop, reused)
                    except _Stale:
                        await _close(client)
                        client = None
                        continue
                    reused = True
                    results[env.id] = result
                    if result.ok and on_accepted is not None:
                        on_accepted(env.id)
                    if not alive:
                        await _close(client)
                        client = None
                    if halts_batch(stage, result):
                        halt = result.not_attempted()
        finally:
            if client is not None:
                with contextlib.suppress(aiosmtplib.SMTPException, OSError, TimeoutError):
                    await client.quit(timeout=min(cfg.timeout, _QUIT_TIMEOUT))
                await _close(client)
        return results

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
