"""SMTP adapter (aiosmtplib): send a batch over one connection, classify each failure.

Each message gets a :class:`~inboxwatch.adapters.ports.Result`: a 5xx reply for that
message is REFUSED (the lead is told, never retried); a 4xx or an error mid-message is
DEFERRED (retried with back-off by the outbox); a server we could not reach or log in to
is UNREACHABLE for the whole batch (it says nothing about the messages, so it does not
use up their attempts). Quota replies are never permanent, whatever their class.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Callable, Sequence

import aiosmtplib

from inboxwatch.adapters.ports import Envelope, Outcome, Result
from inboxwatch.userfiles.config import ServerConfig

# Result and Envelope used to be defined here: older imports keep working.
__all__ = ["Envelope", "Result", "SmtpSender", "tls_context"]

log = logging.getLogger("inboxwatch.smtp")
_WARNED: set[tuple[str, int]] = set()  # warn once per server, not on every connection
#: Enhanced status codes of quotas (a provider's daily limit, a full mailbox): they pass,
#: so they are deferred even when the server puts them in a 5xx reply.
QUOTA_CODES = ("5.4.5", "5.2.2", "4.4.5")


def _refusal(code: int, message: str) -> Outcome:
    """REFUSED for a 5xx that is not a quota, else DEFERRED."""
    quota = any(q in message for q in QUOTA_CODES)
    return Outcome.REFUSED if code >= 500 and not quota else Outcome.DEFERRED


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


class SmtpSender:
    """The :class:`~inboxwatch.adapters.ports.Sender` over SMTP: one connection per batch."""

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
        ``stop()`` is asked before each message (see the Sender port).
        """
        if not batch:
            return {}
        return asyncio.run(self._send(batch, on_accepted, stop or (lambda: False)))

    async def _send(
        self,
        batch: Sequence[Envelope],
        on_accepted: Callable[[str], None] | None,
        stop: Callable[[], bool],
    ) -> dict[str, Result]:
        cfg = self.cfg
        client = aiosmtplib.SMTP(
            hostname=cfg.host,
            port=cfg.port,
            use_tls=cfg.tls == "ssl",
            start_tls=cfg.tls == "starttls",
            tls_context=tls_context(cfg) if cfg.tls != "none" else None,
            timeout=cfg.timeout,
        )
        results: dict[str, Result] = {}
        try:
            await client.connect()
            if cfg.username:
                await client.login(cfg.username, self._password)
        except aiosmtplib.SMTPAuthenticationError as exc:
            await _close(client)
            err = f"SMTP login failed for {cfg.username!r}: {exc.code} {exc.message}"
            return {e.id: Result(Outcome.UNREACHABLE, err) for e in batch}
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            await _close(client)  # a failed TLS handshake leaves a transport open otherwise
            err = f"cannot connect to SMTP {cfg.host}:{cfg.port}: {exc}"
            return {e.id: Result(Outcome.UNREACHABLE, err) for e in batch}
        try:
            for env in batch:
                if stop():
                    results[env.id] = Result(Outcome.DEFERRED, "not attempted: stopping")
                    continue
                results[env.id] = result = await self._one(client, env)
                if result.ok and on_accepted is not None:
                    on_accepted(env.id)
        finally:
            with contextlib.suppress(aiosmtplib.SMTPException, OSError, TimeoutError):
                await client.quit()
            await _close(client)
        return results

    async def _one(self, client: aiosmtplib.SMTP, env: Envelope) -> Result:
        try:
            await client.sendmail(env.mail_from, [env.rcpt], env.raw)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            # One recipient per envelope: its reply decides (a full mailbox is a quota).
            outcomes = {_refusal(r.code, r.message) for r in exc.recipients}
            outcome = Outcome.REFUSED if outcomes == {Outcome.REFUSED} else Outcome.DEFERRED
            return Result(outcome, f"recipient refused: {exc}")
        except aiosmtplib.SMTPResponseException as exc:
            return Result(_refusal(exc.code, exc.message), f"SMTP {exc.code} {exc.message}")
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            return Result(Outcome.DEFERRED, f"SMTP error: {exc}")
        return Result(Outcome.ACCEPTED)
