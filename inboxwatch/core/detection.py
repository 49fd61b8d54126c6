"""The result of recognising machine mail, and the evidence helpers its recognisers share.

Bounce recognition (:mod:`inboxwatch.core.bounces`) and automatic-reply recognition
(:mod:`inboxwatch.core.autodetect`) read the same signs: the null sender, RFC 3834
``Auto-Submitted``, the report type of a ``multipart/report``, a reply/forward prefix in
the subject, the sender's own (unquoted, accent-folded) text. They live here so both
modules use one definition without importing each other.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from inboxwatch.core.message import Message


@dataclass(frozen=True)
class Detection:
    kind: str  # "bounce" | "auto_reply" | "list"
    reasons: tuple[str, ...]
    # Bounces: permanent failure (True) vs delay/warning (False). (A success report is an
    # "auto_reply": see :func:`inboxwatch.core.bounces.detect_bounce`.)
    hard: bool = True
    # Bounces: lower-cased addresses that failed (or, for a delay, that are delayed).
    recipients: tuple[str, ...] = ()


def fold(s: str) -> str:
    """Lower-case and drop accents so "Réponse" matches "reponse"; CJK is unchanged.

    Only the diacritics of alphabets (Latin, Greek, Cyrillic) go. The rest is composed
    again (NFC): NFKD splits every Hangul syllable into letters (jamo) and Japanese kana
    lose their voicing mark, so "부재중" or "ご不在" would never match a pattern written as
    people type it.
    """
    if s.isascii():  # no accents to drop (most text): the same result, far cheaper
        return s.lower()
    s = _ALPHABET_MARKS.sub(r"\1", unicodedata.normalize("NFKD", s))
    return unicodedata.normalize("NFC", s).lower().replace("’", "'")


# A letter of an alphabet (below U+0530: Latin, Greek, Cyrillic) and its combining marks.
_ALPHABET_MARKS = re.compile(r"([\x00-\u052f])[\u0300-\u036f\u0483-\u0489]+")


def rx(*alternatives: str) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{a})" for a in alternatives), re.I)


# "Re:", "AW:", "Fwd:", "[External] RE:", ... : a person replying to or forwarding something.
REPLY_PREFIX = re.compile(
    r"^\W*(?:\[[^\]]{1,30}\]\s*)?(?:re|aw|sv|vs|antw|antwort|ref|rif|r|res|odp|fw|fwd|wg|tr|rv"
    r"|enc|doorst|vb|回复|答复|转发)\s*(?:\[\d+\]|\(\d+\))?\s*:",
    re.I,
)

SCAN = 20_000  # characters of a body worth reading; generators put their text first


def unquoted(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith(">"))


def report_type(msg: Message) -> str:
    m = re.search(r"report-type\s*=\s*\"?([\w-]+)", msg.header("content-type"), re.I)
    return m.group(1).lower() if m else ""


def null_sender(msg: Message) -> bool:
    """``Return-Path: <>``: the null reverse-path, used only for notifications."""
    return msg.has_header("return-path") and msg.header("return-path").strip() in ("<>", "")


def auto_submitted(msg: Message) -> str:
    """The RFC 3834 keyword of Auto-Submitted if it is not "no", else ""."""
    m = re.match(r"\s*([\w-]+)", msg.header("auto-submitted"))
    keyword = m.group(1).lower() if m else ""
    return "" if keyword in ("", "no") else keyword
