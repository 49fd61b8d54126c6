"""SMTP adapter (aiosmtplib): send a batch over one connection, classify each failure.

A 5xx reply for a message is permanent (the row fails, the lead is told); anything else
(connection, timeout, 4xx) is transient and retried with back-off by the outbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import aiosmtplib

from inboxwatch.userfiles.config import ServerConfig

log = logging.getLogger("inboxwatch.smtp")
_WARNED: set[tuple[str, int]] = set()  # warn once per server, not on every connection


@dataclass(frozen=True)
class Result:
    ok: bool
    permanent: bool = False
    error: str = ""
    #: The server was not reached (or refused us): says nothing about this message, so it
    #: does not count as one of the message's attempts.
    connection: bool = False


@dataclass(frozen=True)
class Envelope:
    id: str
    mail_from: str
    rcpt: str
    raw: bytes


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
    def __init__(self, cfg: ServerConfig, password: str) -> None:
        self.cfg = cfg
        self._password = password

    def send(
        self, batch: Sequence[Envelope], on_sent: Callable[[str], None] | None = None
    ) -> dict[str, Result]:
        """Send every envelope; a result per id. Never raises for a network fault.

        ``on_sent(id)`` runs right after the server accepted each message, so the caller
        can record it before the next one (a crash mid-batch then repeats nothing).
        """
        if not batch:
            return {}
        return asyncio.run(self._send(batch, on_sent))

    async def _send(
        self, batch: Sequence[Envelope], on_sent: Callable[[str], None] | None
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
            return {e.id: Result(False, False, err, connection=True) for e in batch}
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            await _close(client)  # a failed TLS handshake leaves a transport open otherwise
            err = f"cannot connect to SMTP {cfg.host}:{cfg.port}: {exc}"
            return {e.id: Result(False, False, err, connection=True) for e in batch}
        try:
            for env in batch:
                results[env.id] = result = await self._one(client, env)
                if result.ok and on_sent is not None:
                    on_sent(env.id)
        finally:
            with contextlib.suppress(aiosmtplib.SMTPException, OSError, TimeoutError):
                await client.quit()
            await _close(client)
        return results

    async def _one(self, client: aiosmtplib.SMTP, env: Envelope) -> Result:
        try:
            await client.sendmail(env.mail_from, [env.rcpt], env.raw)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [r.code for r in exc.recipients]
            return Result(False, all(c >= 500 for c in codes), f"recipient refused: {exc}")
        except aiosmtplib.SMTPResponseException as exc:
            # 5.4.5 / 5.2.2 are quotas (Gmail's daily limit, a full mailbox): they pass.
            quota = any(code in exc.message for code in ("5.4.5", "5.2.2", "4.4.5"))
            permanent = exc.code >= 500 and not quota
            return Result(False, permanent, f"SMTP {exc.code} {exc.message}")
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            return Result(False, False, f"SMTP error: {exc}")
        return Result(True)
