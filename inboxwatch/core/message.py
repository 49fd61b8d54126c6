"""Parse raw mail into an immutable :class:`Message` that the pure core works on.

The standard library parses (compat32, the fastest of its policies); the body's text
parts are taken by mail-parser's rules (:mod:`.bodies`); headers are decoded here,
because mail-parser loses the space at a fold after an encoded word (see
shared/notes/test-servers.md).
"""

from __future__ import annotations

import email.header
import email.parser
import email.utils
import hashlib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from email.message import Message as StdMessage
from functools import cached_property
from typing import Any

from inboxwatch.core.bodies import body_parts
from inboxwatch.errors import MessageError

_WS = re.compile(r"\s+")
_MSGID = re.compile(r"<[^<>\s]+>")


@dataclass(frozen=True)
class Address:
    """A mailbox: ``addr`` is lower-cased for comparison, ``name`` as displayed."""

    addr: str
    name: str = ""

    @property
    def domain(self) -> str:
        return self.addr.rpartition("@")[2]

    @property
    def local(self) -> str:
        return self.addr.rpartition("@")[0]

    def __str__(self) -> str:
        """For people and rule matching: unicode as is (headers are encoded by compose.py)."""
        if not self.name:
            return self.addr
        name = f'"{self.name}"' if _SPECIALS.search(self.name) else self.name
        return f"{name} <{self.addr}>"


#: Characters that make a display name need quotes (a set, not a loop over them: the
#: rules format every sender, issue 12).
_SPECIALS = re.compile(r'[,;:<>@"()\[\]]')


@dataclass(frozen=True)
class Message:
    """The facts of one message that classification and decisions need; no IO."""

    message_id: str
    subject: str
    from_: Address | None
    reply_to: tuple[Address, ...]
    to: tuple[Address, ...]
    cc: tuple[Address, ...]
    date: datetime | None
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    headers: Mapping[str, tuple[str, ...]]
    content_type: str
    part_types: tuple[str, ...]
    text: str
    html: str
    defects: tuple[str, ...] = ()
    raw_size: int = 0
    report_text: str = field(default="", repr=False)
    #: Headers of returned/attached messages (``message/rfc822``, ``text/rfc822-headers``
    #: and their RFC 6532 ``global`` forms), decoded like :attr:`headers`: what a bounce
    #: sends back of the original message.
    attached: tuple[Mapping[str, tuple[str, ...]], ...] = field(default=(), repr=False)

    def header(self, name: str) -> str:
        """First value of header ``name`` (case-insensitive), decoded, or ""."""
        values = self.headers.get(name.lower(), ())
        return values[0] if values else ""

    def header_all(self, name: str) -> tuple[str, ...]:
        return self.headers.get(name.lower(), ())

    def has_header(self, name: str) -> bool:
        return name.lower() in self.headers

    @cached_property
    def thread_ids(self) -> tuple[str, ...]:
        """Message-IDs this message answers: In-Reply-To first, then References (worked
        out once: classification asks four times)."""
        seen: dict[str, None] = {}
        for mid in (*self.in_reply_to, *reversed(self.references)):
            seen.setdefault(mid, None)
        return tuple(seen)

    @cached_property
    def body_text(self) -> str:
        """Plain text if there is any, else text derived from the HTML part."""
        if self.text.strip():
            return self.text
        return html_to_text(self.html) if self.html else ""

    @cached_property
    def scan_text(self) -> str:
        """The sender's own text as the detectors read it, worked out once (issue 12):
        the start of :attr:`body_text` (``detection.SCAN`` characters), quoted lines
        dropped, accent-folded and lower-cased (``detection.fold``)."""
        from inboxwatch.core.detection import SCAN, fold, unquoted  # it reads Message

        return fold(unquoted(self.body_text[:SCAN]))

    @cached_property
    def new_text(self) -> str:
        """What the writer wrote this time (:func:`inboxwatch.core.quotes.new_text`),
        worked out once: the detectors, the rules and the verdict all read it."""
        from inboxwatch.core.quotes import new_text  # quotes reads Message: import here

        return new_text(self.text, self.html)


_ADDR = re.compile(
    r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z0-9-]{2,63}$"
)


def is_valid_address(addr: str) -> bool:
    """A plain ASCII addr-spec we can safely put in a header and an SMTP envelope."""
    return len(addr) <= 254 and bool(_ADDR.match(addr))


_SURROGATE = re.compile("[\udc80-\udcff]")


def _undo_8bit(value: str) -> str:
    """Raw 8-bit header bytes (RFC 6532 UTF-8, or a legacy charset) parsed as surrogates."""
    if not _SURROGATE.search(value):
        return value
    raw = value.encode("utf-8", "surrogateescape")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("windows-1252", "replace")


def decode_header_value(value: str) -> str:
    """Decode RFC 2047 words and unfold; tolerant of broken encodings."""
    value = _undo_8bit(value)
    if "=?" not in value:  # no encoded word: nothing to decode (most headers)
        return _WS.sub(" ", value.replace("\r", " ").replace("\n", " ")).strip()
    try:
        decoded = str(email.header.make_header(email.header.decode_header(value)))
    except _UNDECODABLE:  # one bad word (=?x-unknown?B?!!!?=): decode the others
        decoded = _ENCODED_WORD.sub(_one_word, value)
    return _WS.sub(" ", decoded.replace("\r", " ").replace("\n", " ")).strip()


_UNDECODABLE = (UnicodeError, LookupError, ValueError, email.errors.MessageError)
_ENCODED_WORD = re.compile(r"=\?[^?\s]*\?[bBqQ]\?[^?\s]*\?=")


def _one_word(m: re.Match[str]) -> str:
    """One RFC 2047 word: an unknown charset read as UTF-8, broken base64 as U+FFFD,
    rather than the raw ``=?...?=`` greeting a lead or filling an alert."""
    try:
        chunks = email.header.decode_header(m[0])
    except _UNDECODABLE:
        return "\ufffd"
    out = []
    for chunk, charset in chunks:
        if isinstance(chunk, str):
            out.append(chunk)
            continue
        try:
            out.append(chunk.decode(charset or "ascii", "replace"))
        except LookupError:
            out.append(chunk.decode("utf-8", "replace"))
    return "".join(out)


#: One plain mailbox, ``addr``, ``<addr>``, ``Name Words <addr>`` or ``"Any Name" <addr>``,
#: that the standard library's address parser reads as written: most From/To/Cc headers,
#: read without it (issue 12; ``tests/test_parse_shortcuts.py`` compares the two).
_PLAIN_MAILBOX = re.compile(
    r"[ \t]*(?:(?P<name>[A-Za-z]+(?: [A-Za-z]+)*) <(?P<inner>{a})>|(?P<bare>{a})"
    r'|"(?P<quoted>[\t !#-\[\]-~]*)"[ \t]*<(?P<qaddr>{a})>|<(?P<angle>{a})>)[ \t]*'.format(
        a=r"[A-Za-z0-9_+-]+(?:\.[A-Za-z0-9_+-]+)*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
    )
)


def parse_addresses(values: tuple[str, ...] | list[str]) -> tuple[Address, ...]:
    if not values:
        return ()
    if len(values) == 1 and (m := _PLAIN_MAILBOX.fullmatch(values[0])):
        if m["bare"] or m["angle"]:
            return (Address((m["bare"] or m["angle"]).lower(), ""),)
        if m["qaddr"]:
            name = m["quoted"]
            return (Address(m["qaddr"].lower(), decode_header_value(name) if name else ""),)
        return (Address(m["inner"].lower(), m["name"]),)
    return parse_addresses_by_library(values)


def parse_addresses_by_library(values: tuple[str, ...] | list[str]) -> tuple[Address, ...]:
    """:func:`parse_addresses` by the standard library's parser alone."""
    out: list[Address] = []
    for name, addr in email.utils.getaddresses([_undo_8bit(v) for v in values]):
        addr = addr.strip().strip("<>").lower()
        if "@" not in addr:
            continue
        out.append(Address(addr, decode_header_value(name) if name else ""))
    return tuple(out)


def parse_msgids(value: str) -> tuple[str, ...]:
    """Message-IDs in a raw header value; 8-bit bytes in one (never valid, but a flipped
    bit makes them) are read as text, not kept as lone surrogates the state file cannot
    write."""
    return tuple(dict.fromkeys(_MSGID.findall(_undo_8bit(value))))


_TAG = re.compile(r"<[^<>]*>")  # [^<>]: stays linear on hostile, unclosed tags
#: Bodies beyond this are cut before regex work: classification needs the start, not all.
MAX_TEXT = 512 * 1024
_DROP_OPEN = re.compile(r"<(script|style|head)\b", re.I)
_BREAK = re.compile(r"<\s*(br|/p|/div|/tr|/li|/h\d|/blockquote)\b[^<>]*>", re.I)
_CELL = re.compile(r"<\s*/t[dh]\s*>", re.I)  # table cells must not glue: "NameJane"
_BLOCK_OPEN = re.compile(r"<\s*(p|div|tr|li|blockquote|h\d)\b[^<>]*>", re.I)


def _drop_invisible(html: str) -> str:
    """Remove script/style/head elements in one pass (a lazy regex is quadratic on junk)."""
    out: list[str] = []
    pos = 0
    lower = html.lower()
    while (m := _DROP_OPEN.search(html, pos)) is not None:
        out.append(html[pos : m.start()])
        end = lower.find(f"</{m.group(1).lower()}", m.end())
        if end < 0:
            return "".join(out)
        close = lower.find(">", end)
        pos = len(html) if close < 0 else close + 1
    out.append(html[pos:])
    return "".join(out)


def html_to_text(html: str) -> str:
    """A crude but safe HTML-to-text for classification and quoting (no rendering)."""
    import html as htmllib

    s = _drop_invisible(html[:MAX_TEXT])
    s = _BREAK.sub("\n", s)
    s = _CELL.sub("\t", s)
    s = _BLOCK_OPEN.sub("\n", s)
    s = _TAG.sub("", s)
    s = htmllib.unescape(s).replace("\xa0", " ")
    lines = [line.rstrip() for line in s.splitlines()]
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def _std_headers(msg: StdMessage) -> _Headers:
    """A message's headers by lower-cased name, each decoded when first read."""
    raw: dict[str, list[str]] = {}
    for key, value in msg.raw_items():
        raw.setdefault(key.lower(), []).append(str(value))
    return _Headers(raw)


class _Headers(Mapping[str, tuple[str, ...]]):
    """Header values by lower-cased name, each decoded (:func:`decode_header_value`)
    when first read: a message carries dozens (Received, DKIM-Signature, ARC-*) and
    classification reads a few of them (issue 12)."""

    def __init__(self, raw: dict[str, list[str]]) -> None:
        self._raw = raw
        self._decoded: dict[str, tuple[str, ...]] = {}

    def __getitem__(self, name: str) -> tuple[str, ...]:
        if (values := self._decoded.get(name)) is None:
            values = tuple(decode_header_value(v) for v in self._raw[name])
            self._decoded[name] = values
        return values

    def __contains__(self, name: object) -> bool:
        return name in self._raw

    def get(self, name: str, default: Any = None) -> Any:
        """As ``Mapping.get``, without raising and catching KeyError for a missing name."""
        return self[name] if name in self._raw else default

    def __iter__(self) -> Iterator[str]:
        return iter(self._raw)

    def __len__(self) -> int:
        return len(self._raw)

    def __repr__(self) -> str:
        return repr(dict(self))


def _date(msg: StdMessage) -> datetime | None:
    raw = msg.get("Date")
    if not raw:
        return None
    try:
        return email.utils.parsedate_to_datetime(str(raw))
    except (TypeError, ValueError, IndexError):
        return None


_REPORT_TYPES = frozenset(
    {
        "message/delivery-status",
        "message/global-delivery-status",
        "message/feedback-report",  # RFC 5965: Feedback-Type, Original-Rcpt-To, ...
    }
)


def _fields_text(sub: StdMessage | str) -> str:
    """One block of a report's fields as written. The library refuses to write a value
    that holds a line break followed by ``Name:`` (a broken or hostile report): such a
    block is given field by field instead of failing the whole message."""
    if isinstance(sub, str):
        return sub
    if (plain := _plain_fields(sub)) is not None:
        return plain
    try:
        return str(sub)
    except email.errors.HeaderParseError:
        return "".join(f"{k}: {v}\n" for k, v in sub.raw_items())


#: What ``str.splitlines`` breaks an ASCII line at: the library's folding does too.
_ASCII_BREAKS = re.compile("[\n\r\x0b\x0c\x1c\x1d\x1e]")
_NEWLINES = re.compile(r"\r\n|\r|\n")


def _plain_fields(sub: StdMessage) -> str | None:
    """``str(sub)`` for the usual block (one line of ASCII per field, a text payload),
    without the library's generator, a tenth of a bounce's parse (issue 12): it writes
    such a field as ``Name: value`` and the payload's lines with ``\\n``. None for any
    other block, which the library writes (``tests/test_parse_shortcuts.py`` compares)."""
    payload = sub._payload  # type: ignore[attr-defined]  # what the generator writes
    if not isinstance(payload, str) or not payload.isascii() or "content-type" in sub:
        return None
    if not sub.get_default_type().startswith("text/"):
        return None
    lines = []
    for name, value in sub.raw_items():
        if not isinstance(value, str) or not value.isascii() or _ASCII_BREAKS.search(value):
            return None
        lines.append(f"{name}: {value}\n")
    return "".join(lines) + "\n" + _NEWLINES.sub("\n", payload)


def _report_text(parts: list[tuple[StdMessage, str]]) -> str:
    """Text of delivery-status / disposition parts, which mail-parser does not surface."""
    chunks: list[str] = []
    for part, ctype in parts:
        if ctype in _REPORT_TYPES:
            payload = part.get_payload()
            if isinstance(payload, list):
                chunks += [_fields_text(sub) for sub in payload]
            elif isinstance(payload, str):
                chunks.append(payload)
        elif ctype == "text/rfc822-headers":
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                chunks.append(payload.decode("utf-8", "replace"))
    return "\n".join(chunks)


_ATTACHED_MESSAGE = frozenset({"message/rfc822", "message/global"})
_ATTACHED_HEADERS = frozenset({"text/rfc822-headers", "message/global-headers"})


def _attached(
    parts: list[tuple[StdMessage, str]],
) -> tuple[Mapping[str, tuple[str, ...]], ...]:
    """Headers of the messages a report or forward carries (at most 10)."""
    out: list[Mapping[str, tuple[str, ...]]] = []
    for part, ctype in parts:
        if ctype in _ATTACHED_MESSAGE:
            payload = part.get_payload()
            inner = payload[0] if isinstance(payload, list) and payload else None
            if isinstance(inner, StdMessage):
                heads = _std_headers(inner)
                if heads:
                    out.append(heads)
        elif ctype in _ATTACHED_HEADERS:
            raw = part.get_payload(decode=True)
            if isinstance(raw, bytes):
                text = raw.decode("utf-8", "replace")
                heads = _std_headers(email.parser.HeaderParser().parsestr(text))
                if heads:
                    out.append(heads)
        if len(out) >= 10:
            break
    return tuple(out)


def _decode_text_parts(std: StdMessage, subtype: str) -> str:
    out: list[str] = []
    for part in std.walk():
        if part.get_content_type() != f"text/{subtype}" or part.get_filename():
            continue
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):
            continue
        charset = part.get_content_charset() or "utf-8"
        try:
            out.append(payload.decode(charset, "replace"))
        except LookupError:
            out.append(payload.decode("utf-8", "replace"))
    return "\n".join(out)


#: Domain of the stand-in Message-ID given to a message that has none (never written out).
SYNTHETIC_ID_DOMAIN = "no-message-id.invalid"


def _stand_in_id(std: StdMessage) -> str:
    """A stable ID for a message without Message-ID, so it is recognised when seen again."""
    head = "\n".join(f"{k}:{v}" for k, v in std.raw_items()).encode("utf-8", "surrogateescape")
    return f"<{hashlib.sha256(head).hexdigest()[:32]}@{SYNTHETIC_ID_DOMAIN}>"


def parse_message(raw: bytes) -> Message:
    """Parse raw RFC 5322 bytes. Raises :class:`MessageError` if nothing usable is found.

    The MIME tree is walked once and each part's content type read once (issue 12: the
    parse → classify rate); the raw headers are indexed once for every header read here.
    """
    if not raw or not raw.strip():
        raise MessageError("empty message")
    try:
        std: StdMessage = email.message_from_bytes(raw)
        walked = list(std.walk())
        plain, htmls = body_parts(std, walked)
    except Exception as exc:  # hostile input: deep nesting, broken encodings
        raise MessageError(f"cannot parse message: {exc}") from exc
    raw_headers: dict[str, list[str]] = {}
    for key, value in std.raw_items():
        raw_headers.setdefault(key.lower(), []).append(str(value))
    if not raw_headers:
        raise MessageError("no headers found")
    headers = _Headers(raw_headers)

    def raw_all(name: str) -> tuple[str, ...]:
        return tuple(raw_headers.get(name, ()))

    parts = [(part, part.get_content_type()) for part in walked]
    from_ = parse_addresses(raw_all("from"))
    text = "\n".join(plain)
    html = "\n".join(htmls)
    if "\x1b" in text or "\x1b" in html:
        # 7-bit ISO-2022-* (Japanese, Korean) text is left undecoded by the above.
        text, html = _decode_text_parts(std, "plain"), _decode_text_parts(std, "html")
    defects = tuple(f"{type(d).__name__}" for part in walked for d in part.defects)
    return Message(
        message_id=(parse_msgids(" ".join(raw_all("message-id"))) or (_stand_in_id(std),))[0],
        subject=headers.get("subject", ("",))[0],
        from_=from_[0] if from_ else None,
        reply_to=parse_addresses(raw_all("reply-to")),
        to=parse_addresses(raw_all("to")),
        cc=parse_addresses(raw_all("cc")),
        date=_date(std),
        in_reply_to=parse_msgids(" ".join(raw_all("in-reply-to"))),
        references=parse_msgids(" ".join(raw_all("references"))),
        headers=headers,
        content_type=parts[0][1],
        part_types=tuple(ctype for _, ctype in parts),
        text=text.replace("\r\n", "\n"),
        html=html,
        defects=defects,
        raw_size=len(raw),
        report_text=_report_text(parts),
        attached=_attached(parts),
    )
