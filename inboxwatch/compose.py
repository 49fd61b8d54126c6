"""Build outgoing RFC 5322 messages. Pure: every value, the time and the Message-ID come in.

Lead-supplied text (names, subjects) reaches headers only through :func:`clean_header`
and the email library's encoder, so a CR/LF in a form field cannot add a header.
"""

from __future__ import annotations

import email.policy
import email.utils
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address as HeaderAddress
from email.message import EmailMessage

from inboxwatch.message import Address

_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
_REPLY_PREFIX = re.compile(
    r"^\s*((re|aw|sv|vs|antw|ant|odp|rif|r|res|ynt|atb|vá|sv|réf|wg|fw|fwd|tr)\s*(\[\d+\])?\s*:\s*)+",
    re.IGNORECASE,
)
#: Marks every message inboxwatch writes, so our own mail in Sent is never taken for a person's.
MARK_HEADER = "X-Inboxwatch"
POLICY = email.policy.SMTP.clone(max_line_length=78)


def clean_header(value: str, limit: int = 200) -> str:
    """One line of plain text: control characters (CR, LF, NUL, ...) become spaces."""
    return " ".join(_CONTROL.sub(" ", value).split())[:limit]


def reply_subject(subject: str) -> str:
    """``Re: <subject>`` without stacking prefixes (Re: AW: Re: ...)."""
    base = _REPLY_PREFIX.sub("", clean_header(subject, 900)).strip()
    return f"Re: {base}" if base else "Re: your enquiry"


def new_message_id(address: str) -> str:
    """A globally unique Message-ID in our own domain, made before sending (intent first)."""
    domain = address.rpartition("@")[2] or "localhost"
    return f"<iw.{secrets.token_hex(12)}@{domain}>"


@dataclass(frozen=True)
class Outgoing:
    purpose: str  # "ack", "followup", "owner-alert", "owner-reply", "owner-task", "digest"
    from_: Address
    to: Address
    subject: str
    body: str
    message_id: str
    date: datetime
    html: str = ""
    in_reply_to: str = ""
    references: tuple[str, ...] = ()
    reply_to: Address | None = None
    #: RFC 3834: "auto-replied" answers a message; "auto-generated" is anything else.
    auto_submitted: str = "auto-generated"
    lead: str = ""


def _header_address(addr: Address) -> HeaderAddress:
    local, _, domain = addr.addr.partition("@")
    return HeaderAddress(display_name=clean_header(addr.name, 100), username=local, domain=domain)


def build(out: Outgoing) -> EmailMessage:
    msg = EmailMessage(policy=POLICY)
    msg["From"] = _header_address(out.from_)
    msg["To"] = _header_address(out.to)
    if out.reply_to is not None:
        msg["Reply-To"] = _header_address(out.reply_to)
    msg["Subject"] = clean_header(out.subject, 250)
    msg["Date"] = email.utils.format_datetime(out.date)
    msg["Message-ID"] = out.message_id
    if out.in_reply_to:
        msg["In-Reply-To"] = out.in_reply_to
    if out.references:
        msg["References"] = " ".join(out.references)
    msg["Auto-Submitted"] = out.auto_submitted
    if out.purpose.startswith("owner") or out.purpose == "digest":
        # Ask Exchange and others not to answer our internal mail with out-of-office notes.
        msg["X-Auto-Response-Suppress"] = "All"
    msg[MARK_HEADER] = clean_header(out.purpose, 40)
    msg.set_content(out.body.strip("\n") + "\n", cte="quoted-printable")
    if out.html:
        msg.add_alternative(out.html, subtype="html", cte="quoted-printable")
    return msg


def to_bytes(out: Outgoing) -> bytes:
    return build(out).as_bytes(policy=POLICY)
