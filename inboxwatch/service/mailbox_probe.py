"""`inboxwatch init --probe`: log in once and ask the server what the config needs.

What it finds: the Sent folder by its RFC 6154 ``\\Sent`` flag (its name is localized on
Gmail and Microsoft 365: "[Google Mail]/Gesendet", "Gesendete Elemente"), and whether
IDLE (RFC 2177) is offered; then it logs in to the SMTP server the same way, so a
wrong SMTP port, TLS mode or login shows at init and not at the first acknowledgement.

Failures read as advice: a certificate that is valid but made out for another name (a
shared host's certificate, a typo in the host) is reported with both names, which a
bare "certificate verify failed" does not say; one no trusted issuer vouches for (a
self-signed one, a private CA) names the ``cafile`` key; a refused login gives the
server's words and the key the password or token came from; and a port that speaks TLS
from its first byte while the config says ``starttls`` (or the other way round) is
named with the ``tls`` value that fits it, found by one TLS handshake before the login
(mail servers greet first, so a plain port fails that handshake at once).
"""

from __future__ import annotations

import ast
import asyncio
import re
import socket
import ssl
from dataclasses import dataclass
from typing import Any

from inboxwatch.adapters.oauth import Credential
from inboxwatch.adapters.ports import LoginFailed
from inboxwatch.errors import InboxwatchError, TransientError
from inboxwatch.userfiles.config import ImapConfig
from inboxwatch.userfiles.servers import ServerConfig

#: The TLS-mode check is one handshake: a mail server's greeting ends it at once.
_MODE_CHECK_TIMEOUT = 10.0


@dataclass(frozen=True)
class Found:
    sent: str | None  # the folder flagged \Sent, else a folder of the preset's usual name
    sent_by_flag: bool
    idle: bool


class CertificateMismatch(InboxwatchError):
    """The server's certificate is valid but not for the host we connected to."""


class ProbeFailed(InboxwatchError):
    """The probe could not log in; the message says why and what to change."""


def probe(cfg: ImapConfig, password: Credential, usual_sent: str = "") -> Found:
    """Log in, look, log out. Raises :class:`CertificateMismatch` or
    :class:`ProbeFailed` (with the server's own words) when it cannot."""
    from inboxwatch.adapters.imap import Mailbox

    check_tls_mode(cfg, "imap")
    box = Mailbox(cfg, password)
    try:
        box.connect()
    except LoginFailed as exc:
        raise ProbeFailed(f"IMAP {login_refused(cfg, 'imap', str(exc))}") from None
    except TransientError as exc:
        cert = _certificate_error(exc)
        if cert is not None and _is_mismatch(cert):
            names = certificate_names(cfg)
            raise CertificateMismatch(
                f"the certificate of {cfg.host}:{cfg.port} is for "
                f"{', '.join(names) or 'no name'}, not for {cfg.host}: use one of those "
                "names as the host (or ask the provider which name to use)"
            ) from None
        if cert is not None:
            raise ProbeFailed(untrusted(cfg, "imap", cert)) from None
        raise
    try:
        idle = box.has_idle()
        flagged = box.sent_folder()
        sent = flagged
        if flagged is None and usual_sent:
            try:
                folders = {str(f[2]) for f in box.c.list_folders()}
            except Exception as exc:  # imapclient's errors, or the connection
                raise TransientError(f"IMAP list folders: {exc}") from exc
            sent = usual_sent if usual_sent in folders else None
        return Found(sent=sent, sent_by_flag=flagged is not None, idle=idle)
    finally:
        box.close()


def _starttls(sock: Any) -> bool:
    """IMAP's greeting, then ``STARTTLS`` until its tagged OK (RFC 3501 6.2.1), by hand:
    only the certificate is wanted, no capabilities or login after it."""
    reader = sock.makefile("rb")
    try:
        if not reader.readline(8192).startswith(b"* "):
            return False
        sock.sendall(b"p1 STARTTLS\r\n")
        for _ in range(20):  # bounded: a few untagged lines may come first
            line = reader.readline(8192)
            if not line or line.startswith(b"p1 "):
                return bool(line.upper().startswith(b"P1 OK"))
        return False
    finally:
        reader.close()  # the socket stays open: the makefile holds only a reference


def _is_mismatch(err: ssl.SSLCertVerificationError) -> bool:
    # 62 is X509_V_ERR_HOSTNAME_MISMATCH (64: IP address mismatch) in OpenSSL.
    return err.verify_code in (62, 64) or "mismatch" in str(err.verify_message).lower()


def certificate_names(cfg: ImapConfig) -> list[str]:
    """The DNS names and IP addresses the server's certificate is made out for.

    A second connection that checks the chain (so these are names a trusted issuer
    vouched for) but not the host name; a STARTTLS server is asked over IMAP first.
    """
    import socket

    ctx = ssl.create_default_context(cafile=cfg.cafile or None)
    ctx.check_hostname = False
    try:
        with socket.create_connection((cfg.host, cfg.port), timeout=cfg.timeout) as raw:
            if cfg.tls == "starttls" and not _starttls(raw):
                return []
            with ctx.wrap_socket(raw, server_hostname=cfg.host) as tls:
                cert: dict[str, Any] = tls.getpeercert() or {}
    except (OSError, ValueError):  # the names are a courtesy: the mismatch is reported
        return []
    names = [str(v) for k, v in cert.get("subjectAltName", ()) if k in ("DNS", "IP Address")]
    if not names:  # an old certificate with the name only in its subject
        for rdn in cert.get("subject", ()):
            names += [str(v) for k, v in rdn if k == "commonName"]
    return names


# -- SMTP -----------------------------------------------------------------------------------
def probe_smtp(cfg: ServerConfig, password: Credential) -> str:
    """Connect to the SMTP server as the daemon will (TLS mode, EHLO, AUTH), then QUIT.
    Returns how it went, for the user; raises :class:`ProbeFailed` with advice."""
    import aiosmtplib

    from inboxwatch.adapters import smtp

    check_tls_mode(cfg, "smtp")
    sender = smtp.SmtpSender(cfg, password)

    async def login() -> None:
        client = await sender._open(lambda: False)
        try:
            await client.quit(timeout=min(cfg.timeout, 2.0))
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            pass  # QUIT is a courtesy; the login is what was asked
        finally:
            await smtp._close(client)

    try:
        asyncio.run(login())
    except smtp._Failed as failed:
        cert = _certificate_error(failed)
        if cert is not None and _is_mismatch(cert):
            raise ProbeFailed(
                f"the certificate of SMTP {cfg.host}:{cfg.port} is not made out for "
                f"{cfg.host}: use the name the provider gives for its SMTP server"
            ) from None
        if cert is not None:
            raise ProbeFailed(untrusted(cfg, "smtp", cert)) from None
        error = failed.result.error
        if "login failed" in error.lower() or "auth" in error.lower():
            raise ProbeFailed(f"SMTP {login_refused(cfg, 'smtp', error)}") from None
        raise ProbeFailed(f"{error} (smtp.port, smtp.tls = {cfg.tls!r})") from None
    login_text = f"as {cfg.username}" if cfg.username else "without a login"
    return f"SMTP {cfg.host}:{cfg.port} ({cfg.tls}) accepted the login {login_text}"


# -- advice ---------------------------------------------------------------------------------
def check_tls_mode(cfg: ServerConfig, section: str) -> None:
    """One TLS handshake, unverified (it only asks which protocol the port speaks first):
    a port of implicit TLS (465, 993) completes it; a plain or STARTTLS port (25, 587,
    143) sends its greeting instead, which breaks it at once. A mismatch with
    ``[section] tls`` is a :class:`ProbeFailed` naming the port and the fitting mode;
    a port out of reach is left to the login, which reports it in its own words."""
    if cfg.tls not in ("ssl", "starttls", "none"):
        return
    tls_first = _speaks_tls_first(cfg.host, cfg.port, min(cfg.timeout, _MODE_CHECK_TIMEOUT))
    if tls_first is None:
        return
    if tls_first and cfg.tls != "ssl":
        raise ProbeFailed(
            f"{section.upper()} {cfg.host}:{cfg.port} speaks TLS from the first byte "
            f'(implicit TLS), but {section}.tls = {cfg.tls!r}: set {section}.tls = "ssl" '
            f"for this port (or use the server's STARTTLS port, usually "
            f"{'587' if section == 'smtp' else '143'})"
        )
    if not tls_first and cfg.tls == "ssl":
        raise ProbeFailed(
            f"{section.upper()} {cfg.host}:{cfg.port} does not start with TLS (it greets in "
            f'plain text), but {section}.tls = "ssl": set {section}.tls = "starttls" for '
            f"this port (or use the server's implicit-TLS port, usually "
            f"{'465' if section == 'smtp' else '993'})"
        )


def _speaks_tls_first(host: str, port: int, timeout: float) -> bool | None:
    """True: a TLS handshake succeeded at once; False: the server answered something
    else; None: no answer either way (out of reach, or silent)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        with socket.create_connection((host, port), timeout=timeout) as raw:
            try:
                with ctx.wrap_socket(raw, server_hostname=host):
                    return True
            except ssl.SSLError:
                return False  # "wrong version number": the plain greeting came back
            except ConnectionError:
                return False  # it hung up on a ClientHello it did not expect
    except OSError:  # includes timeouts: nothing to say, the login will say it
        return None


def login_refused(cfg: ServerConfig, section: str, error: str) -> str:
    """The server's refusal in its own words, and where the secret came from."""
    words = server_words(error)
    return (
        f"login as {cfg.username!r} refused by {cfg.host}:{cfg.port}: {words}; "
        f"check {login_source(cfg, section)}"
    )


def login_source(cfg: ServerConfig, section: str) -> str:
    """Which key gave the secret, e.g. ``the password from imap.password_file (/etc/pw)``."""
    if cfg.auth == "oauth2":
        key = cfg.token_key or f"{section}.token_command"
        return f"the access token from {key} (its account and scopes)"
    for key, value in cfg.password.sources().items():
        if value:
            shown = f"${value}" if key == "password_env" else value
            return f"the password from {section}.{key} ({shown})"
    return f"the password ({section}.password_env)"


def server_words(error: str) -> str:
    """``b'[AUTHENTICATIONFAILED] Authentication failed.'`` → the text inside, decoded
    (imaplib hands the server's line over as bytes, and str() of it shows the repr)."""

    def decode(m: re.Match[str]) -> str:
        try:
            raw = ast.literal_eval(m.group(0))
        except (ValueError, SyntaxError):
            return m.group(0)
        return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)

    text = re.sub(r"b'(?:[^'\\]|\\.)*'" + r'|b"(?:[^"\\]|\\.)*"', decode, error)
    return re.sub(r"^(IMAP |SMTP )?login failed( for '[^']*')?:\s*", "", text, flags=re.I)


def untrusted(cfg: ServerConfig, section: str, err: ssl.SSLCertVerificationError) -> str:
    """A certificate no trusted issuer vouches for: name the cafile key."""
    why = err.verify_message or str(err)
    return (
        f"the certificate of {section.upper()} {cfg.host}:{cfg.port} cannot be verified "
        f"({why}): if the server uses a self-signed certificate or a private certificate "
        f"authority, give that certificate (PEM) as {section}.cafile, e.g. "
        f"--set '{section}.cafile=\"/etc/inboxwatch/ca.pem\"'"
    )


def _certificate_error(exc: BaseException) -> ssl.SSLCertVerificationError | None:
    """The certificate error somewhere in ``exc``'s chain of causes, if any."""
    seen: BaseException | None = exc
    for _ in range(8):  # bounded: chains are short
        if seen is None:
            return None
        if isinstance(seen, ssl.SSLCertVerificationError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None
