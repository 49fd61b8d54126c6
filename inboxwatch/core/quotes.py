"""The new text of a reply: quoted history, attribution lines and signature removed.

The owner is alerted with what the lead actually wrote, not with our own message quoted
back. Mail clients mark quotes in a handful of known ways; this module recognises them by
shape, with no IO and no learning. Plain text is read line by line; HTML-only mail is
first turned into the same kind of plain text, with each quote container's content
prefixed by "> ", so one set of rules decides for both.

Limits, on purpose: a quote that no client marks (a pasted paragraph) stays; a signature
without a "-- " delimiter ("Thanks, Jane / CEO") stays, since telling it from text would
be a guess; an attribution with no date, time or address ("Jane wrote:") is taken for
prose. A company's legal disclaimer at the end is dropped (a confidentiality notice
with its fixed wording), never a whole mail. The cost is linear in the input, hostile
markup included.
"""

from __future__ import annotations

import re

from inboxwatch.core.disclaimers import without_disclaimer
from inboxwatch.core.message import Message
from inboxwatch.core.quotes_html import html_as_plain

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
    r"|inviato da(?:l mio)? \S.{0,40}|verzonden (?:vanaf|met) (?:mijn )?\S.{0,40}"
    r"|envoyé depuis (?:mon )?\S.{0,40}|gesendet mit der \S.{0,30}\bapp"
    r"|sent via (?:the )?(?:samsung|galaxy|htc|lg|motorola|blackberry|verizon|at&t)\b.{0,80}"
    # sv, da/no, fi, pl, cs, ru, uk, tr, hu, ja, zh, zh-TW, ko (iOS Mail and Android apps)
    r"|skickat från min \S.{0,40}|sendt fra min \S.{0,40}|lähetetty \S{1,30}sta"
    r"|wysłan[eo] z (?:mojego )?\S.{0,40}|odesláno z (?:mého )?\S.{0,40}"
    r"|отправлено с (?:моего )?\S.{0,40}|надіслано з (?:мого )?\S.{0,40}"
    r"|\S.{0,40} gönderildi|\S.{0,30}-r[óő]l küldve|\S.{0,30}から送信"
    r"|发自我的\s?\S.{0,30}|从我的\s?\S.{0,30}发送|從我的\s?\S.{0,30}傳送"
    r"|(?:나의|내) \S.{0,30}에서 보냄)\s*$",
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
    r"|ursprungligt meddelande|oprindelig meddelelse|opprinnelig melding|alkuperäinen viesti"
    # Samsung Email, Thunderbird and Gmail in de/zh/ko/ja/ru/uk/hu/pl/sv/no, talon's
    # "Antwort Nachricht"
    r"|originalnachricht|antwort nachricht|原始信息|원본 메시지|元のメッセージ|転送されたメッセージ"
    r"|转发的邮件|перенаправленное сообщение|пересланное сообщение|оригінальне повідомлення"
    r"|пересланий лист|eredeti üzenet|továbbított üzenet|przekazana wiadomość"
    r"|vidarebefordrat meddelande|videresendt melding|videresendt meddelelse|mesaj original)"
    r"\s*-{2,}\s*$"
    r"|^\s*(?:begin forwarded message|anfang der weitergeleiteten nachricht"
    r"|début du message réexpédié|inicio del mensaje reenviado)\s*:\s*$",
    re.I,
)
_UNDERSCORES = re.compile(r"^\s*_{10,}\s*$")
# Outlook-style header block keys (en, de, fr, es, pt, nl, it, sv/da, pl, tr, ru, and the
# zh/ja/ko blocks of Outlook, QQ, 163, Naver), optionally *bold*; CJK clients may use "：".
# Also Outlook's el, ar, he, vi, id/ms, hr/sr/bs, sk, sl, bg, lt, et, ca and th (Latvian
# "No:" is left out: a line a person writes too).
_FROM_KEYS = (
    r"from|von|de|de la|van|da|fra|från|od|kimden|от|от кого|від|feladó|lähettäjä"
    r"|发件人|寄件者|差出人|보낸\s?사람"
    r"|από|من|מאת|từ|dari|daripada|šalje|nuo|saatja|จาก"
)
_HDR_FROM = re.compile(rf"^\s*\*?(?:{_FROM_KEYS})\s*[:：]", re.I)
_HDR_ANY = re.compile(
    rf"^\s*\*?(?:{_FROM_KEYS}|sent|date|to|cc|subject|gesendet|datum|an"
    r"|betreff|envoyé|à|objet|enviado|enviada|fecha|para|asunto|assunto|data|verzonden"
    r"|aan|onderwerp|inviato|a|oggetto|sendt|skickat|til|till|emne|ämne"
    r"|wysłano|do|temat|gönderildi|kime|konu|tarih|отправлено|дата|кому|копия|тема"
    r"|发送时间|日期|收件人|抄送|主题|傳送時間|收件者|副本|主旨|送信日時|宛先|件名"
    r"|받는\s?사람|날짜|제목|보낸\s?날짜|寄件日期"
    # pt "Enviada em", es "Enviado el", cs, uk, hu, fi, ro
    r"|enviad[ao] em|enviado el|odesláno|komu|předmět|kopie|надіслано|копія"
    r"|elküldve|címzett|tárgy|lähetetty|vastaanottaja|aihe|trimis|către|subiect"
    r"|στάλθηκε|προς|κοιν|θέμα|ημερομηνία|تم الإرسال|إلى|نسخة|الموضوع|التاريخ"
    r"|נשלח|אל|עותק|נושא|תאריך|đã gửi|đến|chủ đề|ngày|dikirim|kepada|tembusan|perihal"
    r"|subjek|tanggal|dihantar|perkara|poslano|poslato|prima|predmet|za|odoslané|kópia"
    r"|zadeva|изпратено|до|относно|išsiųsta|kam|nosūtīts|tēma|saadetud|adressaat|teema"
    r"|enviat el|per a|ส่ง|ถึง|เรื่อง)\s*[:：]",
    re.I,
)
_HDR_WINDOW = 7  # a block's header lines, allowing a wrapped To: or From: line
_HDR_MIN = 3  # From plus at least two of Sent/Date/To/Subject
# Attribution lines: "... wrote:" (verb last) or "Am ... schrieb Jane <j@x>:" (intro word
# first, verb inside), and always some date, time or address so prose ending in "wrote:"
# is not taken for one.
_ATTR_VERB_LAST = re.compile(
    r"(?:\bwrote|\ba écrit|\bescribió|\bha scritto|\bscrisse|\bescreveu|\bschreef"
    r"|\bgeschreven|\bgeschrieben|\bschrieb|\bskrev|\bnapisał(?:\(a\)|a)?|\bkirjoitti|\byazdı"
    r"|\bnapsal(?:\(a\)|a)?|\bírta|\ba scris|\bпишет|\bпише|\bнаписал(?:\(а\)|а|и)?"
    r"|\bнаписав(?:\(-?ла\))?|\bнаписала|写道|寫道|작성(?:했습니다|하였습니다)?|のメール|書きました"
    # el, vi, id/ms, ar, th (Gmail and Outlook for Mac)
    r"|\bέγραψε|\bđã viết|\bmenulis|\bكتب|เขียนว่า"
    r")\s*[:：]\s*$",
    re.I,
)
# Verbless attributions (Yandex "02.03.2027, 10:00, "Shop" <a@b>:", Mail.ru "… от Shop
# <a@b>:", Gmail ja/ko "2027年3月2日(火) 10:00 Shop <a@b>:"): a time and an address in
# angle brackets right before the final colon.
_ATTR_ADDR_END = re.compile(r"<[^\s<>@]+@[^\s<>@]+\.\w+>\s*[:：]\s*$")
_ATTR_TIME = re.compile(r"\d{1,2}:\d{2}")
# Leading dashes: old Yahoo "--- On ... wrote:", Zoho "---- On ... wrote ----".
_ATTR_INTRO = re.compile(
    r"^[\s-]{0,20}(?:on|am|le|el|il|em|op|den|dne|dnia|på|w dniu|wiadomość napisana przez|在)\b",
    re.I,
)
_ATTR_VERB = re.compile(
    r"\b(?:schrieb|schreef|skrev|wrote|sent|escribió|escreveu|napsal|napisał|napisana)\b", re.I
)
# Verbs that only attributions put before the address or date (fi, hu, Polish iOS, Russian
# Android, Czech Gmail); with an address and a final colon they make one anywhere.
_ATTR_VERB_INSIDE = re.compile(
    r"\b(?:kirjoitti|ezt írta|napisana przez|пользователь|odesílatel|a scris)\b", re.I
)
# Lotus/HCL Notes: "Shop <a@b> wrote on 02/03/2027 10:00:", "... schrieb am ...:": the
# address right before the verb (a person's "I wrote on 2 March to <a@b>:" has it after).
_ATTR_NOTES = re.compile(
    r"[<(][^\s<>()@]+@[^\s<>()@]+\.\w+[>)]\s*,?\s*"
    r"(?:wrote on|schrieb am|a écrit le|escribió el|ha scritto il|schreef op)\b",
    re.I,
)
_ATTR_ADDR = re.compile(r"[<(][^\s<>()@]+@[^\s<>()@]+\.\w+[>)]")
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
    if len(s) > _ATTR_MAX_CHARS:
        return False
    if s.startswith("--") and s.endswith("--"):
        # "---- On <date> <name> wrote ----": the dashes stand for the colon.
        s = s.strip("-").strip()
        s = s if s.endswith((":", "：")) else s + ":"
    if not s.endswith((":", "：")) or not _ATTR_EVIDENCE.search(s):
        return False
    if _ATTR_ADDR_END.search(s) and _ATTR_TIME.search(s):
        return True
    if (_ATTR_VERB_INSIDE.search(s) and _ATTR_ADDR.search(s)) or _ATTR_NOTES.search(s):
        return True
    return bool(_ATTR_VERB_LAST.search(s) or (_ATTR_INTRO.match(s) and _ATTR_VERB.search(s)))


def _split_attribution(line: str) -> list[str]:
    """Split new text off an attribution that shares its line, so the text is kept."""
    if _ATTR_INTRO.match(line) or not _is_attribution(line):
        return [line]
    for m in _INLINE_INTRO.finditer(line):
        head = line[: m.start()]
        if not head.strip(" -"):
            break  # only dashes before it: the whole line is the attribution
        if _is_attribution(line[m.end() :]):
            # "reply--- On ... wrote:": the dashes belong to the attribution
            return [head.rstrip("-") if head.endswith("---") else head, line[m.end() :]]
    return [line]


def _join(parts: list[str]) -> str:
    """Lines of a wrapped attribution as one; no space after "<" or "(" ("Bob <" +
    "bob@x>" is "Bob <bob@x>")."""
    out = ""
    for part in (p.strip() for p in parts):
        out += part if not out or out.endswith(("<", "(")) else " " + part
    return out


def _attribution_length(lines: list[str], i: int) -> int:
    """How many lines from ``i`` form one attribution (0 if none). So that the tail of a
    sentence above is never swallowed, a wrapped one starts with an intro word ("On",
    "Am", ...), or else starts a paragraph with a date, time or address on its first line
    and is followed by a blank line, a quote or the end."""
    if _is_attribution(lines[i]):
        return 1
    intro = bool(_ATTR_INTRO.match(lines[i]))
    if not intro and (
        (i > 0 and lines[i - 1].strip()) or not _ATTR_EVIDENCE.search(lines[i][:_ATTR_MAX_CHARS])
    ):
        return 0
    for n in range(2, _ATTR_MAX_LINES + 1):
        part = lines[i : i + n]
        if len(part) < n or not part[-1].strip() or _QUOTED.match(part[-1]):
            return 0
        if _is_attribution(_join(part)):
            after = lines[i + n] if i + n < len(lines) else ""
            return n if intro or not after.strip() or _QUOTED.match(after) else 0
    return 0


# A mail client's block always names an address or a time ("Sent: ... 10:00", "10.00");
# a person's "From: Leeds / To: London / Date: 12.03.2027" (a delivery asked for) has none.
_HDR_EVIDENCE = re.compile(r"@|\d{1,2}:\d{2}|(?<![\d.])\d{1,2}\.\d{2}(?![.\d])")


def _is_header_block(lines: list[str], i: int) -> bool:
    """A header line that opens a run holding a From-like key, two more keys, and an
    address or a time."""
    if not _HDR_ANY.match(lines[i]):
        return False
    window = lines[i : i + _HDR_WINDOW]
    keys = [line for line in window if _HDR_ANY.match(line)]
    return (
        len(keys) >= _HDR_MIN
        and any(_HDR_FROM.match(line) for line in keys)
        and any(_HDR_EVIDENCE.search(line) for line in keys)
    )


def _next_nonblank(lines: list[str], i: int) -> int:
    while i < len(lines) and not lines[i].strip():
        i += 1
    return i


def _is_ruler(line: str) -> bool:
    """A dashed line, bare or with a title ("-------- Originalnachricht --------"), that
    opens a history block in any language when a header block follows it."""
    s = line.strip()
    return len(s) <= 100 and s.startswith("---") and s.endswith("---")


# Mailman 2/3 and similar list managers put this under a line of underscores.
_LIST_FOOTER = re.compile(r"mailing list|listinfo|unsubscribe|list-unsubscribe", re.I)


def _ruler_kind(lines: list[str], i: int) -> str:
    """A ruler (underscores, dashes) above a header block starts the history ("h"); a line
    of underscores above a list's information starts a footer ("s"); else ""."""
    underscores = bool(_UNDERSCORES.match(lines[i]))
    if not underscores and not _is_ruler(lines[i]):
        return ""
    j = _next_nonblank(lines, i + 1)
    if j < len(lines) and _is_header_block(lines, j):
        return "h"
    if underscores and any(_LIST_FOOTER.search(line[:200]) for line in lines[j : j + 2]):
        return "s"
    return ""


def _is_name_signature(lines: list[str], kinds: list[str], i: int) -> bool:
    """A one-line "-Name" / "--Jane Doe" signature: a dash right before a capitalised name
    of one to three words, last in its stretch of text and not one of a dashed list."""
    s = lines[i].strip()
    body = s[2:] if s.startswith("--") else s[1:]
    if not s.startswith("-") or len(s) > 40 or not body[:1].isalpha():
        return False
    words = body.split()
    if not 1 <= len(words) <= 3 or not all(w[0].isupper() for w in words):
        return False
    j = _next_nonblank(lines, i + 1)
    if j < len(lines) and kinds[j] not in "qahs":
        return False
    k = i - 1
    while k >= 0 and not lines[k].strip():
        k -= 1
    return k < 0 or not lines[k].lstrip().startswith("-")


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
        elif kind := _ruler_kind(lines, i):
            kinds[i] = kind
        elif _SIG_DELIM.match(line) or _FOOTER.match(line):
            kinds[i] = "s"
        elif n := _attribution_length(lines, i):
            kinds[i : i + n] = ["a"] * n
    for i in range(len(lines)):
        if kinds[i] == "t" and _is_name_signature(lines, kinds, i):
            kinds[i] = "s"
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
    result = without_disclaimer(_tidy([lines[i] for i in keep]))
    if result:
        return result
    # Nothing but a signature or footer of its own (e.g. an empty reply "Sent from my
    # iPhone"): still the sender's text, so return it rather than "".
    stop = next((i for i, k in enumerate(kinds) if k == "h"), n)
    return _tidy([lines[i] for i in range(stop) if kinds[i] in "tbs"])


def _ends_in_attribution(lines: list[str]) -> bool:
    """Do these lines end in an attribution (wrapped over at most a few lines)?"""
    last = lines[-_ATTR_MAX_LINES:]
    return any(_is_attribution(" ".join(last[i:])) for i in range(len(last)))


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
        return _new_plain(html_as_plain(html, _ends_in_attribution))
    return ""


def new_text_of(msg: Message) -> str:
    """:func:`new_text` of a parsed message (worked out once per message)."""
    return msg.new_text
