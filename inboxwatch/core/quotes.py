"""The new text of a reply: quoted history, attribution lines and signature removed.

The owner is alerted with what the lead actually wrote, not with our own message quoted
back. Mail clients mark quotes in a handful of known ways; this module recognises them by
shape, with no IO and no learning. Plain text is read line by line; HTML-only mail is
first turned into the same kind of plain text, with each quote container's content
prefixed by "> ", so one set of rules decides for both.

Limits, on purpose: a quote that no client marks (a pasted paragraph) stays; a signature
without a "-- " delimiter ("Thanks, Jane / CEO") stays, since telling it from text would
be a guess; an attribution with no date, time or address ("Jane wrote:") is taken for
prose. The cost is linear in the input, hostile markup included.
"""

from __future__ import annotations

import re

from inboxwatch.core.message import Message, html_to_text

# --- plain text -----------------------------------------------------------------------

_QUOTED = re.compile(r"^\s*>")
# RFC 3676 "-- " and the bare "--" that clients or editors leave after trimming spaces.
_SIG_DELIM = re.compile(r"^\s*--[ \t]*$")
# Mobile / app footers; bounded in length so a sentence that happens to start alike stays.
_FOOTER = re.compile(
    r"^\s*(?:sent from my \S.{0,40}"
    r"|sent (?:from|with) (?:mail|outlook|yahoo mail|gmail|proton ?mail)\b.{0,80}"
    r"|get outlook for (?:ios|android)\b.{0,60}"
    r"|von meinem \S.{0,30} gesendet\.?|gesendet von meinem \S.{0,40}"
    r"|envoyé de mon \S.{0,40}|enviado desde mi \S.{0,40}|enviado do meu \S.{0,40}"
    r"|inviato da(?:l mio)? \S.{0,40}|verzonden (?:vanaf|met) (?:mijn )?\S.{0,40})\s*$",
    re.I,
)
# "-----Original Message-----", Gmail/Thunderbird forward rulers, Apple Mail forward intro.
_SEPARATOR = re.compile(
    r"^\s*-{2,}\s*(?:original message|reply message|forwarded message"
    r"|ursprüngliche nachricht|weitergeleitete nachricht|message d'origine|message transféré"
    r"|mensaje original|mensaje reenviado|messaggio originale|messaggio inoltrato"
    r"|oorspronkelijk bericht|doorgestuurd bericht|mensagem original|mensagem encaminhada"
    # QQ/Foxmail, Outlook ru/uk/pl/cs/tr/sv/da/no/fi (the "-----Original Message-----" ruler)
    r"|原始邮件|原始郵件|исходное сообщение|пересылаемое сообщение|вихідне повідомлення"
    r"|oryginalna wiadomość|wiadomość oryginalna|původní zpráva|özgün ileti|orijinal mesaj"
    r"|ursprungligt meddelande|oprindelig meddelelse|opprinnelig melding|alkuperäinen viesti)"
    r"\s*-{2,}\s*$"
    r"|^\s*(?:begin forwarded message|anfang der weitergeleiteten nachricht"
    r"|début du message réexpédié|inicio del mensaje reenviado)\s*:\s*$",
    re.I,
)
_UNDERSCORES = re.compile(r"^\s*_{10,}\s*$")
# Outlook-style header block keys (en, de, fr, es, pt, nl, it, sv/da, pl, tr, ru, and the
# zh/ja/ko blocks of Outlook, QQ, 163, Naver), optionally *bold*; CJK clients may use "：".
_FROM_KEYS = r"from|von|de|van|da|fra|från|od|kimden|от|发件人|寄件者|差出人|보낸\s?사람"
_HDR_FROM = re.compile(rf"^\s*\*?(?:{_FROM_KEYS})\s*[:：]", re.I)
_HDR_ANY = re.compile(
    rf"^\s*\*?(?:{_FROM_KEYS}|sent|date|to|cc|subject|gesendet|datum|an"
    r"|betreff|envoyé|à|objet|enviado|enviada|fecha|para|asunto|assunto|data|verzonden"
    r"|aan|onderwerp|inviato|a|oggetto|sendt|skickat|til|till|emne|ämne"
    r"|wysłano|do|temat|gönderildi|kime|konu|tarih|отправлено|дата|кому|копия|тема"
    r"|发送时间|日期|收件人|抄送|主题|傳送時間|收件者|副本|主旨|送信日時|宛先|件名"
    r"|받는\s?사람|날짜|제목)\s*[:：]",
    re.I,
)
_HDR_WINDOW = 7  # a block's header lines, allowing a wrapped To: or From: line
_HDR_MIN = 3  # From plus at least two of Sent/Date/To/Subject
# Attribution lines: "... wrote:" (verb last) or "Am ... schrieb Jane <j@x>:" (intro word
# first, verb inside), and always some date, time or address so prose ending in "wrote:"
# is not taken for one.
_ATTR_VERB_LAST = re.compile(
    r"(?:\bwrote|\ba écrit|\bescribió|\bha scritto|\bscrisse|\bescreveu|\bschreef"
    r"|\bgeschreven|\bschrieb|\bskrev|\bnapisał(?:\(a\)|a)?|\bkirjoitti|\byazdı|\bnapsal[a]?"
    r"|\bírta|\ba scris|\bпишет|\bнаписал[аи]?|写道|寫道|작성)\s*[:：]\s*$",
    re.I,
)
# Verbless attributions (Yandex "02.03.2027, 10:00, "Shop" <a@b>:", Mail.ru "… от Shop
# <a@b>:", Gmail ja/ko "2027年3月2日(火) 10:00 Shop <a@b>:"): a time and an address in
# angle brackets right before the final colon.
_ATTR_ADDR_END = re.compile(r"<[^\s<>@]+@[^\s<>@]+\.\w+>\s*[:：]\s*$")
_ATTR_TIME = re.compile(r"\d{1,2}:\d{2}")
_ATTR_INTRO = re.compile(r"^\s*(?:on|am|le|el|il|em|op|den|på|w dniu|在)\b", re.I)
_ATTR_VERB = re.compile(r"\b(?:schrieb|schreef|skrev|wrote|escribió|escreveu)\b", re.I)
_ATTR_EVIDENCE = re.compile(
    r"\d{1,2}:\d{2}|[^\s<>()@]@[^\s<>()@]+\.\w|\b\d{1,4}[./-]\d{1,2}[./-]\d{2,4}\b"
    r"|\b(?:19|20)\d{2}\b"
)
# Where an attribution starts mid-line after new text ("ok On Mon, ... wrote:").
_INLINE_INTRO = re.compile(r"(?<=\S)\s+(?=(?:On|Am|Le|El|Il|Em|Op)\s)")
_ATTR_MAX_LINES = 3  # Gmail wraps a long attribution, at worst inside the address
_ATTR_MAX_CHARS = 400


def _is_attribution(line: str) -> bool:
    s = line.strip()
    if len(s) > _ATTR_MAX_CHARS or not s.endswith((":", "：")) or not _ATTR_EVIDENCE.search(s):
        return False
    if _ATTR_ADDR_END.search(s) and _ATTR_TIME.search(s):
        return True
    return bool(_ATTR_VERB_LAST.search(s) or (_ATTR_INTRO.match(s) and _ATTR_VERB.search(s)))


def _split_attribution(line: str) -> list[str]:
    """Split new text off an attribution that shares its line, so the text is kept."""
    if _ATTR_INTRO.match(line) or not _is_attribution(line):
        return [line]
    for m in _INLINE_INTRO.finditer(line):
        if _is_attribution(line[m.end() :]):
            return [line[: m.start()], line[m.end() :]]
    return [line]


def _attribution_length(lines: list[str], i: int) -> int:
    """How many lines from ``i`` form one attribution (0 if none); wrapped ones start
    with an intro word so the tail of a sentence above is never swallowed."""
    if _is_attribution(lines[i]):
        return 1
    if not _ATTR_INTRO.match(lines[i]):
        return 0
    for n in range(2, _ATTR_MAX_LINES + 1):
        part = lines[i : i + n]
        if len(part) < n or not part[-1].strip() or _QUOTED.match(part[-1]):
            return 0
        if _is_attribution(" ".join(p.strip() for p in part)):
            return n
    return 0


def _is_header_block(lines: list[str], i: int) -> bool:
    """A header line that opens a run holding a From-like key and two more keys."""
    if not _HDR_ANY.match(lines[i]):
        return False
    window = lines[i : i + _HDR_WINDOW]
    keys = [line for line in window if _HDR_ANY.match(line)]
    return len(keys) >= _HDR_MIN and any(_HDR_FROM.match(line) for line in keys)


def _next_nonblank(lines: list[str], i: int) -> int:
    while i < len(lines) and not lines[i].strip():
        i += 1
    return i


# Line kinds: t text, b blank, q quoted ("> "), a attribution, h start of quoted history
# (header block, separator), s signature delimiter or footer.
def _kinds(lines: list[str]) -> list[str]:
    kinds = ["t" if line.strip() else "b" for line in lines]
    for i, line in enumerate(lines):
        if kinds[i] != "t":
            continue
        if _QUOTED.match(line):
            kinds[i] = "q"
        elif _SEPARATOR.match(line) or _is_header_block(lines, i):
            kinds[i] = "h"
        elif _UNDERSCORES.match(line):
            j = _next_nonblank(lines, i + 1)
            kinds[i] = "h" if j < len(lines) and _is_header_block(lines, j) else "t"
        elif _SIG_DELIM.match(line) or _FOOTER.match(line):
            kinds[i] = "s"
        elif n := _attribution_length(lines, i):
            kinds[i : i + n] = ["a"] * n
    return kinds


def _tidy(lines: list[str]) -> str:
    """Join, dropping outer blank lines, trailing spaces and repeated blank lines, and
    the leading space some clients put before the first word (Yahoo's plain part)."""
    out: list[str] = []
    for line in (line.rstrip() for line in lines):
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out).strip()


def _new_plain(text: str) -> str:
    raw = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    lines = [part for line in raw for part in _split_attribution(line)]
    kinds = _kinds(lines)
    n = len(lines)
    first = next((i for i, k in enumerate(kinds) if k in "qahs"), n)
    keep = list(range(first))
    if first < n and kinds[first] in "qa":
        # Text below a "> " quote, before any harder cut, means the reply is
        # bottom-posted or interleaved: keep every unquoted line of that stretch.
        end = next((i for i in range(first, n) if kinds[i] in "hs"), n)
        first_q = next((i for i in range(first, end) if kinds[i] == "q"), end)
        if any(kinds[i] == "t" for i in range(first_q, end)):
            keep += [i for i in range(first, end) if kinds[i] in "tb"]
    result = _tidy([lines[i] for i in keep])
    if result:
        return result
    # Nothing but a signature or footer of its own (e.g. an empty reply "Sent from my
    # iPhone"): still the sender's text, so return it rather than "".
    stop = next((i for i, k in enumerate(kinds) if k == "h"), n)
    return _tidy([lines[i] for i in range(stop) if kinds[i] in "tbs"])


# --- HTML ---------------------------------------------------------------------------------

# Unclosed comments and <pre> run to the end, as in browsers (and keeps these linear).
_COMMENT = re.compile(r"<!--.*?(?:-->|\Z)", re.S)
# HTML whitespace collapses, except in <pre>; html_to_text would keep source newlines.
_HTML_SPACE = re.compile(r"(<pre\b.*?(?:</pre\s*>|\Z))|\s+", re.S | re.I)
# Start of a tag that may open a quote, with its attributes (up to the next "<" or ">", so
# the scan stays linear on hostile input); which kind it is is told by substrings below.
_HTML_CANDIDATE = re.compile(r"<(div|span|blockquote|pre|hr)\b([^<>]*)", re.I)
# Containers whose element holds the quote (cut as one balanced element) ...
_BLOCK_MARKS = (
    "gmail_quote",  # Gmail: attribution + blockquote
    "gmail_extra",  # older Gmail
    "gmail_signature",  # Gmail signature and its "-- " prefix span
    "yahoo_quoted",
    "moz-cite-prefix",  # Thunderbird attribution, before <blockquote type="cite">
    "moz-forward-container",
    "moz-signature",
    "protonmail_quote",
    "__quoted_text__",  # Zimbra data-marker
)
# ... and markers after which everything is quoted history (Outlook, new Outlook, Zimbra).
_REST_MARKS = (
    "divrplyfwdmsg",
    "appendonsend",
    "olk_src_body_section",
    "mail-editor-reference-message-container",
    "zwchr",
    "__divider__",
    "__headers__",
)
# Gmail's "indent" button also makes a blockquote, with border:none: that is not a quote.
_INDENT = re.compile(r"border\s*:\s*none", re.I)


def _quote_kind(tag: str, attrs: str) -> str:
    """Whether a candidate tag opens a quote element ("block"), starts the quoted rest
    of the mail ("rest"), is a blockquote with no quote marking ("bare"), or neither ("")."""
    attrs = attrs.lower()
    if any(mark in attrs for mark in _REST_MARKS):
        return "rest"
    if any(mark in attrs for mark in _BLOCK_MARKS):
        return "block"
    if tag.lower() == "blockquote" and not _INDENT.search(attrs):
        return "block" if _CITE.search(attrs) or "quote" in attrs else "bare"
    return ""


# Mail clients mark the blockquote of a reply (type="cite": Apple Mail, Thunderbird,
# Roundcube, iOS; a "...quote" class: Gmail, Proton, Tutanota) or put an attribution
# right before it. A bare <blockquote> with neither is content: a marketplace or shop
# notification quoting the customer's message, or a person quoting a passage.
_CITE = re.compile(r"\btype\s*=\s*[\"']?cite\b|\bcite\s*=")
_BARE_CONTEXT = 600  # characters before a bare blockquote searched for an attribution


def _after_attribution(html: str, start: int, pos: int) -> bool:
    """Whether the text just before ``start`` (not before ``pos``) ends in an attribution."""
    text = _html_text(html[max(pos, start - _BARE_CONTEXT) : start])
    lines = [line for line in text.splitlines() if line.strip()][-_ATTR_MAX_LINES:]
    return any(_is_attribution(" ".join(lines[i:])) for i in range(len(lines)))


_TAG_START = re.compile(r"<(/?)([a-zA-Z][\w:-]*)")


def _element_end(html: str, start: int) -> int:
    """End of the element opened at ``start``, counting nested tags of the same name.

    Only tag starts are matched, so the scan is linear whatever the attributes hold."""
    opener = _TAG_START.match(html, start)
    name = opener.group(2).lower() if opener else ""
    depth = 0
    for m in _TAG_START.finditer(html, start):
        if m.group(2).lower() != name:
            continue
        depth += -1 if m.group(1) else 1
        if depth == 0:
            close = html.find(">", m.end())
            return len(html) if close < 0 else close + 1
    return len(html)


def _html_text(fragment: str) -> str:
    return "\n".join(line.strip() for line in html_to_text(fragment).splitlines())


def _html_as_plain(html: str) -> str:
    """The HTML as plain text, with quote containers' text marked "> " line by line."""
    html = _HTML_SPACE.sub(lambda m: m.group(1) or " ", _COMMENT.sub("", html))
    parts: list[str] = []
    pos = 0
    for m in _HTML_CANDIDATE.finditer(html):
        kind = _quote_kind(m.group(1), m.group(2))
        if m.start() < pos or not kind:
            continue
        if kind == "bare" and not _after_attribution(html, m.start(), pos):
            continue
        end = len(html) if kind == "rest" else _element_end(html, m.start())
        parts.append(_html_text(html[pos : m.start()]))
        quoted = _html_text(html[m.start() : end])
        parts.append("\n".join(f"> {line}" for line in quoted.splitlines()))
        pos = end
    parts.append(_html_text(html[pos:]))
    return "\n".join(p for p in parts if p)


# --- API ----------------------------------------------------------------------------------


def new_text(text: str, html: str = "") -> str:
    """The message's own new text: quoted history, attribution and signature removed.

    Uses the plain text when present (it is what the sender's client meant as text);
    for HTML-only mail, quote containers (Gmail, Outlook, Apple Mail, Thunderbird,
    Yahoo, Zimbra, any <blockquote>) are cut before conversion. Top-posted replies keep
    the text above the first quote; bottom-posted and interleaved ones keep the unquoted
    lines. Trailing spaces and repeated blank lines are dropped. Returns "" only when
    everything is quoted.
    """
    if text.strip():
        return _new_plain(text)
    if html.strip():
        return _new_plain(_html_as_plain(html))
    return ""


def new_text_of(msg: Message) -> str:
    """:func:`new_text` of a parsed message."""
    return new_text(msg.text, msg.html)
