"""A message's body text: its text/plain and text/html parts, decoded.

Why not mail-parser's ``parse_from_bytes``, which found them before: per message it also
parses every address header with its own parser, builds its JSON views and re-encodes
every attachment, none of which we use; that was half of our parse time (issue 12).
This walks the same standard-library tree the headers come from and takes the same
parts by the same rules as mail-parser 4.x ``MailParser.parse`` (an attachment's
insides are not body text; a named inline text part is both; a part whose charset
fails is read as UTF-8), with mail-parser's own helpers for the MIME headers, so the
text is the same: ``tests/test_bodies.py`` compares the two on every sample message.
"""

from __future__ import annotations

import contextlib
import email
from email.message import Message as StdMessage

from mailparser.utils import decode_header_part, find_between, mime_header_view, ported_string

#: mail-parser recovers parts from the epilogue when the parser found no start boundary.
_EPILOGUE_DEFECTS = frozenset({"StartBoundaryNotFoundDefect"})


def _parts(std: StdMessage, walked: list[StdMessage]) -> list[tuple[StdMessage, bool]]:
    """Every part, and whether it lies inside an attachment (RFC 2183 §2.9: a
    disposition applies to the whole container)."""
    parts: list[tuple[StdMessage, bool]] = []
    inside: set[int] = set()
    defects: set[str] = set()
    for p in walked:
        defects.update(type(d).__name__ for d in p.defects)
        within = id(p) in inside
        parts.append((p, within))
        if p.is_multipart():
            disposition = p.get_content_disposition()
            blocks_inline = disposition not in (None, "inline") or (
                disposition != "inline" and bool(p.get_filename())
            )
            if within or blocks_inline:
                inside.update(id(child) for child in p.get_payload())
    if defects & _EPILOGUE_DEFECTS and std.epilogue:
        boundary = std.get_boundary()
        if boundary is not None:
            epilogue = find_between(std.epilogue, f"--{boundary}", f"--{boundary}--")
            if epilogue is not None:
                # As mail-parser: an unreadable epilogue is left out.
                with contextlib.suppress(Exception):
                    parts.append((email.message_from_string(epilogue), True))
    return parts


def _decode(part: StdMessage, charset: str) -> str:
    """The part's text (mail-parser's ``_decode_body_payload``)."""
    payload = part.get_payload(decode=True)
    cte = ported_string(part.get("Content-Transfer-Encoding", "")).strip().lower()
    if not cte or cte in ("7bit", "8bit"):
        raw_text: object = getattr(part, "_payload", None)  # get_payload() decodes lossily
        if isinstance(raw_text, str):
            with contextlib.suppress(UnicodeEncodeError):
                raw_text.encode("utf-8")
                return raw_text
    if not payload or not isinstance(payload, bytes):
        return ""
    try:
        text = payload.decode(charset)
        text.encode("utf-8")  # some codecs make lone surrogates: not text
    except (LookupError, UnicodeError):
        try:
            text = payload.decode("utf-8")
        except UnicodeDecodeError:
            text = payload.decode("utf-8", "replace")
    return text


_MIME_HEADERS = frozenset(
    {"content-type", "content-disposition", "content-id", "content-transfer-encoding"}
)


def _mime_view(part: StdMessage) -> tuple[StdMessage, list[str]]:
    """mail-parser's ``mime_header_view``: a copy of the part's MIME headers only, with
    8-bit bytes read as UTF-8, so each look-up scans four headers, not all of them.
    Plain-text headers are copied as they are (what that function makes of them, at a
    fraction of its cost: a tenth of our parse time was spent there, issue 12)."""
    mime: list[tuple[str, str]] = []
    for name, value in part.raw_items():
        if name.lower() in _MIME_HEADERS:
            text = str(value)
            if not text.isascii():
                view: StdMessage
                found: list[str]
                view, found = mime_header_view(part)
                return view, found
            mime.append((name, text))
    copy = StdMessage()
    copy.set_default_type(part.get_default_type())
    for name, text in mime:
        copy[name] = text
    return copy, []


def _filename(meta: StdMessage) -> str | None:
    """``get_filename()``, which parses both MIME headers' parameters to look for a
    ``filename`` or ``name`` one; neither can be there if neither header says "name"."""
    says = " ".join(meta.get_all("content-disposition", []) + meta.get_all("content-type", []))
    return meta.get_filename() if "name" in says.lower() else None


def body_parts(
    std: StdMessage, walked: list[StdMessage] | None = None
) -> tuple[list[str], list[str]]:
    """(text/plain parts, text/html parts), in order, empty ones left out.

    ``walked`` is ``list(std.walk())`` when the caller has it already.
    """
    plain: list[str] = []
    html: list[str] = []
    for p, within in _parts(std, list(std.walk()) if walked is None else walked):
        meta, meta_defects = _mime_view(p)
        disposition = ported_string(meta.get_content_disposition()).lower()
        multipart = p.is_multipart()
        if multipart and disposition != "attachment":
            continue
        ctype = meta.get_content_type()  # read once: each read parses the header again
        kind = ctype.split("/")[1]  # get_content_subtype()
        filename = decode_header_part(_filename(meta), defects=meta_defects)
        content_id = ported_string(meta.get("content-id"))
        subtype = ported_string(kind)
        is_attachment = (
            bool(filename)
            or bool(content_id and subtype not in ("html", "plain"))
            or subtype in "rtf"  # sic: mail-parser tests ``in ("rtf")``, a string
            or disposition == "attachment"
        )
        inline_body = (
            not within
            and not multipart
            and disposition == "inline"
            and ctype in ("text/plain", "text/html")
        )
        if is_attachment and not inline_body:
            continue
        text = _decode(p, meta.get_content_charset("utf-8"))
        if text:
            if kind == "html":
                html.append(text)
            elif kind == "plain":
                plain.append(text)
    return plain, html
