"""`inboxwatch init --probe`: log in once and ask the server what the config needs.

What it finds: the Sent folder by its RFC 6154 ``\\Sent`` flag (its name is localized on
Gmail and Microsoft 365: "[Google Mail]/Gesendet", "Gesendete Elemente"), and whether
IDLE (RFC 2177) is offered. A certificate that is valid but made out for another name
(a shared host's certificate, a typo in the host) is reported with both names, which a
bare "certificate verify failed" does not say.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Any

from inboxwatch.adapters.oauth import Credential
from inboxwatch.errors import InboxwatchError, TransientError
from inboxwatch.userfiles.config import ImapConfig


@dataclass(frozen=True)
class Found:
    sent: str | None  # the folder flagged \Sent, else a folder of the preset's usual name
    sent_by_flag: bool
    idle: bool


class CertificateMismatch(InboxwatchError):
    """The server's certificate is valid but not for the host we connected to."""


def probe(cfg: ImapConfig, password: Credential, usual_sent: str = "") -> Found:
    """Log in, look, log out. Raises :class:`CertificateMismatch`, ``LoginFailed`` or
    :class:`TransientError` (with the server's own words) when it cannot."""
    from inboxwatch.adapters.imap import Mailbox

    box = Mailbox(cfg, password)
    try:
        box.connect()
    except TransientError as exc:
        cause = exc.__cause__
        if isinstance(cause, ssl.SSLCertVerificationError) and _is_mismatch(cause):
            names = certificate_names(cfg)
            raise CertificateMismatch(
                f"the certificate of {cfg.host}:{cfg.port} is for "
                f"{', '.join(names) or 'no name'}, not for {cfg.host}: use one of those "
                "names as the host (or ask the provider which name to use)"
            ) from None
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
