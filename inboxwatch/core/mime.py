"""Build outgoing RFC 5322 messages. Pure: every value, the time and the Message-ID come in.

Lead-supplied text (names, subjects) reaches headers only through :func:`clean_header`
and the email library's encoder, so a CR/LF in a form field cannot add a header.
"""

from __future__ import annotations

import base64
import contextlib
import email
import email.utils
import hashlib
import io
import quopri
import re
import secrets
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from email import encoders
from email.generator import BytesGenerator
from email.header import Header, decode_header, make_header
from email.message import Message
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText

from inboxwatch.core.message import Address, is_valid_address

_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
_REPLY_PREFIX = re.compile(
    r"^\s*((re|aw|sv|vs|antw|ant|odp|rif|r|res|ynt|atb|vá|sv|réf|wg|fw|fwd|tr)\s*(\[\d+\])?\s*:\s*)+",
    re.IGNORECASE,
)
#: Marks every message inboxwatch writes, so our own mail in Sent is never taken for a person's.
MARK_HEADER = "X-Inboxwatch"


def clean_header(value: str, limit: int = 200) -> str:
    """One line of plain text: control characters (CR, LF, NUL, ...) become spaces."""
    return " ".join(_CONTROL.sub(" ", value).split())[:limit]


def reply_subject(subject: str) -> str:
    """``Re: <subject>`` without stacking prefixes (Re: AW: Re: ...)."""
    base = _REPLY_PREFIX.sub("", clean_header(subject, 900)).strip()
    return f"Re: {base}" if base else "Re: your enquiry"


#: Every Message-ID inboxwatch makes starts so: ``<iw.HEX@our-domain>``.
ID_PREFIX = "<iw."


def new_message_id(address: str) -> str:
    """A globally unique Message-ID in our own domain, made before sending (intent first)."""
    domain = address.rpartition("@")[2] or "localhost"
    return f"{ID_PREFIX}{secrets.token_hex(12)}@{domain}>"


def made_by_us(mid: str, domains: frozenset[str] | None = None) -> bool:
    """Does this Message-ID have the shape of ours (in one of ``domains``, if given)?"""
    if not mid.startswith(ID_PREFIX):
        return False
    return domains is None or mid[1:-1].rpartition("@")[2].lower() in domains


@dataclass(frozen=True)
class Attachment:
    """A file carried on to the owner (the new-lead alert): a safe name, a checked
    content type, the decoded bytes."""

    filename: str
    content_type: str
    data: bytes


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
    #: More Reply-To addresses beside ``reply_to`` (the business mailbox, so that an
    #: owner's answer to an alert is also seen by the watched inbox).
    reply_to_also: tuple[Address, ...] = ()
    #: RFC 3834: "auto-replied" answers a message; "auto-generated" is anything else.
    auto_submitted: str = "auto-generated"
    lead: str = ""
    #: Files attached after the text (multipart/mixed).
    attachments: tuple[Attachment, ...] = ()


def _safe_id(mid: str) -> bool:
    """Message-IDs from other systems go into our headers only if short, plain ASCII."""
    return 2 < len(mid) <= 250 and mid.isascii() and mid.isprintable() and " " not in mid


def _plain(value: str) -> bool:
    """Can ``value`` go into a header as it is? Not if it is not ASCII, nor if it holds
    ``=?``: a reader would take that for an encoded word (a sender's undecodable
    ``=?x-unknown?B?!!!?=`` copied into our alert), so it is encoded as text instead."""
    return value.isascii() and "=?" not in value


def _header_address(addr: Address) -> str:
    """``Name <addr>``, the name RFC 2047-encoded when it is not plain (see ``_plain``)."""
    if not is_valid_address(addr.addr):
        raise ValueError(f"refusing to write to an invalid address: {addr.addr!r}")
    name = clean_header(addr.name, 100)
    if name and not _plain(name):
        return f"{Header(name, 'utf-8').encode()} <{addr.addr}>"
    return email.utils.formataddr((name, addr.addr), charset="utf-8")


def _text_header(value: str, name: str) -> str | Header:
    if _plain(value):
        return value
    return Header(value, "utf-8", header_name=name)


def _text_part(text: str, subtype: str) -> MIMEText:
    part = MIMEText("", subtype, "utf-8")
    del part["Content-Transfer-Encoding"]
    part.set_payload(quopri.encodestring(text.replace("\r\n", "\n").encode("utf-8")).decode())
    part["Content-Transfer-Encoding"] = "quoted-printable"
    return part


def _boundary(message_id: str, subtype: str) -> str:
    """A MIME boundary no part can hold: "=_" never occurs in quoted-printable or base64
    text (our text parts and files), and the rest comes from the Message-ID, which no
    sender of a forwarded original can know. Set here, the generator need not make one
    (it compiles a fresh regular expression for each: a third of composing a message)."""
    digest = hashlib.sha256(f"{message_id}/{subtype}".encode("utf-8", "replace")).hexdigest()
    return f"=_iw{digest[:28]}"


def build(out: Outgoing) -> Message:
    """The message, built with the classic email API: 4-5x faster than EmailMessage's
    modern policy, which matters when a backlog produces thousands of messages."""
    body = out.body.strip("\n") + "\n"
    msg: Message
    if out.html:
        msg = MIMEMultipart("alternative", boundary=_boundary(out.message_id, "alternative"))
        msg.attach(_text_part(body, "plain"))
        msg.attach(_text_part(out.html, "html"))
    else:
        msg = _text_part(body, "plain")
    if out.attachments:
        text, msg = msg, MIMEMultipart("mixed", boundary=_boundary(out.message_id, "mixed"))
        msg.attach(text)
        for a in out.attachments:
            msg.attach(_file_part(a))
    msg["From"] = _header_address(out.from_)
    msg["To"] = _header_address(out.to)
    if out.reply_to is not None:
        msg["Reply-To"] = ", ".join(_header_address(a) for a in (out.reply_to, *out.reply_to_also))
    # compat32 takes a Header object and RFC 2047-encodes it; the stubs only know str.
    msg["Subject"] = _text_header(clean_header(out.subject, 250), "Subject")  # type: ignore[assignment]
    msg["Date"] = email.utils.format_datetime(out.date)
    msg["Message-ID"] = out.message_id
    if _safe_id(out.in_reply_to):
        msg["In-Reply-To"] = out.in_reply_to
    if refs := [r for r in out.references if _safe_id(r)]:
        msg["References"] = " ".join(refs)
    msg["Auto-Submitted"] = out.auto_submitted
    if out.purpose.startswith("owner") or out.purpose == "digest":
        # Ask Exchange and others not to answer our internal mail with out-of-office notes.
        msg["X-Auto-Response-Suppress"] = "All"
    msg[MARK_HEADER] = clean_header(out.purpose, 40)
    return msg


_DATE_LINE = re.compile(rb"^Date:[^\r\n]*(?:\r?\n[ \t][^\r\n]*)*", re.M | re.I)


def restamp(raw: bytes, when: datetime) -> bytes:
    """The Date header set to the moment of sending (a queued message may wait for hours)."""
    head, sep, body = raw.partition(b"\r\n\r\n")
    new = b"Date: " + email.utils.format_datetime(when).encode("ascii")
    return _DATE_LINE.sub(lambda _: new, head, count=1) + sep + body


#: A header value written as it is: printable ASCII words with single spaces (what the
#: library's folding would give back unchanged when the line fits).
_AS_IS = re.compile(r"[!-~]+(?: [!-~]+)*")
_BARE_NEWLINE = re.compile(rb"\r\n(?![ \t])|\r(?![ \t\n])|(?<!\r)\n(?![ \t])")
#: RFC 5322's recommended line length, which headers are folded to.
MAX_LINE = 78


class _Generator(BytesGenerator):
    """The library's generator, with a short cut for the common header: one that fits
    on its line as plain words is written as it is, not run through ``Header``'s
    folding (which cost half the time of composing a message; the output is the same,
    byte for byte, as ``tests/test_mime_fast_headers.py`` checks)."""

    def _write_headers(self, msg: Message) -> None:
        policy, fp = self.policy, self._fp  # type: ignore[attr-defined]
        assert policy is not None  # set by flatten()
        for name, value in msg.raw_items():
            if (
                isinstance(value, str)
                and len(name) + len(value) + 2 <= MAX_LINE
                and _AS_IS.fullmatch(value)
            ):
                fp.write(f"{name}: {value}{policy.linesep}".encode("ascii"))
            else:
                folded = policy.fold_binary(name, value)
                # As newer Pythons' generator does (verify_generated_headers): a line
                # break that does not fold would start a header of the sender's making.
                if _BARE_NEWLINE.search(folded.removesuffix(policy.linesep.encode())):
                    raise ValueError(f"refusing to write a header with a bare line break: {name}")
                fp.write(folded)
        self.write(self._NL)  # type: ignore[attr-defined]


def to_bytes(out: Outgoing) -> bytes:
    """RFC 5322 bytes with CRLF line ends, headers folded at 78 characters."""
    return flatten(build(out))


def flatten(msg: Message, fast: bool = True) -> bytes:
    """``msg`` as bytes with CRLF line ends; ``fast=False``: by the library alone."""
    buf = io.BytesIO()
    gen = _Generator if fast else BytesGenerator
    gen(buf, mangle_from_=False, maxheaderlen=MAX_LINE).flatten(msg, linesep="\r\n")
    return buf.getvalue()


# -- attachments: the enquiry's files, carried on to the owner ------------------------------

_TOKEN = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,62}/[a-z0-9][a-z0-9!#$&^_.+-]{0,62}$")
_CHARSET = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:+-]{0,39}$")
_PATH = re.compile(r"^.*[/\\]")
#: A file name's length in a header once RFC 2231-encoded (UTF-8, percent-escaped): kept
#: well under the 998 characters a line may have.
MAX_ENCODED_NAME = 300
#: Parts looked at in one message (a hostile one may have thousands).
MAX_PARTS = 200


def safe_filename(name: str, content_type: str = "application/octet-stream") -> str:
    """A file name fit for a header and for the owner's disk: encoded words decoded, no
    control characters, no folders ("../../x" → "x"), bounded; "attachment" if nothing
    is left. The header itself is written by the email library (quoted, or RFC 2231)."""
    if "=?" in name:
        with contextlib.suppress(ValueError, LookupError, UnicodeError):
            name = str(make_header(decode_header(name)))
    name = _PATH.sub("", clean_header(name, 2000)).strip(" .")
    stem, dot, ext = name.rpartition(".")
    if not dot or len(ext) > 10:
        stem, ext = name, ""
    while stem and len(urllib.parse.quote(f"{stem}.{ext}".encode())) > MAX_ENCODED_NAME:
        stem = stem[: max(0, len(stem) - 8)].rstrip()
    if not stem:
        sub = content_type.partition("/")[2]
        stem = "attachment"
        ext = ext or (sub if re.fullmatch(r"[a-z0-9]{1,10}", sub) else "")
    return f"{stem}.{ext}" if ext else stem


def _parts(msg: Message) -> Iterator[Message]:
    """Leaf parts, depth first; an attached message is one part (not walked into)."""
    stack = [msg]
    seen = 0
    while stack and seen < MAX_PARTS:
        part = stack.pop()
        seen += 1
        if part.is_multipart() and part.get_content_maintype() == "multipart":
            payload = part.get_payload()
            if isinstance(payload, list):
                stack.extend(reversed([p for p in payload if isinstance(p, Message)]))
            continue
        yield part


def _is_file(part: Message) -> bool:
    """An attachment, not the body: said so, or named; an image inline in the HTML (a
    logo in a signature, with a Content-ID) is part of the body."""
    disposition = (part.get_content_disposition() or "").lower()
    if disposition == "attachment":
        return True
    named = bool(part.get_filename() or part.get_param("name"))
    if disposition == "inline" and part["Content-ID"]:
        return False
    if part.get_content_type() == "message/rfc822":
        return True
    return named


def _data(part: Message) -> bytes | None:
    if part.get_content_type() == "message/rfc822":
        inner = part.get_payload()
        if isinstance(inner, list) and inner and isinstance(inner[0], Message):
            try:
                data = inner[0].as_bytes()
                cte = str(part.get("Content-Transfer-Encoding", "")).strip().lower()
                if cte == "base64":  # forbidden (RFC 2046 §5.2.1), but Outlook sends it:
                    return base64.b64decode(data)  # the parser took the text for a message
                if cte == "quoted-printable":
                    return quopri.decodestring(data.lstrip(b"\r\n"))
                return data
            except (UnicodeError, LookupError, ValueError, email.errors.MessageError):
                return None  # e.g. a header the library will not write back (a stray
                # vertical tab: "embedded header"): the file is left out, not the alert
        return None
    payload = part.get_payload(decode=True)
    return payload if isinstance(payload, bytes) else None


def attachments(
    raw: bytes, limit: int
) -> tuple[tuple[Attachment, ...], tuple[tuple[str, int], ...]]:
    """The message's attached files: those that fit in ``limit`` bytes in all, in order,
    and (name, size) of the rest (too large, or past the total). ``limit`` 0: none is
    kept, each is named. Pure: the bytes come from the message itself."""
    try:
        msg = email.message_from_bytes(raw)
    except Exception:  # the stdlib parser is lenient; anything else is no attachment
        return (), ()
    kept: list[Attachment] = []
    left: list[tuple[str, int]] = []
    total = 0
    for part in _parts(msg):
        if not _is_file(part) or (data := _data(part)) is None:
            continue
        ctype = part.get_content_type()
        ctype = ctype if _TOKEN.match(ctype) else "application/octet-stream"
        raw_name = part.get_filename() or str(part.get_param("name") or "")
        name = safe_filename(
            raw_name or ("message.eml" if ctype == "message/rfc822" else ""), ctype
        )
        if data and total + len(data) <= limit:
            charset = part.get_content_charset() if ctype.startswith("text/") else None
            if charset and _CHARSET.match(charset):
                ctype = f"{ctype}; charset={charset}"
            kept.append(Attachment(name, ctype, data))
            total += len(data)
        else:
            left.append((name, len(data)))
    return tuple(kept), tuple(left)


def _file_part(a: Attachment) -> MIMEBase:
    """An attachment as a base64 part; the name through the library's parameter
    encoding (quoted, or RFC 2231 for non-ASCII), never pasted into a header."""
    ctype, _, charset = a.content_type.partition("; charset=")
    maintype, _, subtype = ctype.partition("/")
    name = clean_header(a.filename, 250) or "attachment"
    if maintype.lower() == "message":
        # A forwarded email: RFC 2046 §5.2.1 allows no base64 for message/*, and as a
        # file (.eml, which mail programs open) it needs none of the rules of one.
        maintype, subtype, charset = "application", "octet-stream", ""
        stem, dot, ext = name.rpartition(".")
        if not dot or ext.lower() in ("rfc822", "global"):
            name = f"{stem if dot else name}.eml"
    part = MIMEBase(maintype, subtype)
    if charset:
        part.set_param("charset", charset)
    part.set_payload(a.data)
    encoders.encode_base64(part)
    value: str | tuple[str, str, str] = name if name.isascii() else ("utf-8", "", name)
    part.set_param("name", name, charset="utf-8" if not name.isascii() else None)
    part.add_header("Content-Disposition", "attachment", filename=value)
    return part


def size_words(n: int) -> str:
    """A size as people read it: "820 KB", "4.5 MB" (of 1024)."""
    if n < 1024 * 1024:
        return f"{max(1, round(n / 1024))} KB"
    return f"{n / (1024 * 1024):.1f} MB"
