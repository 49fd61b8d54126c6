"""Read from an out-of-office text the first day the person is back.

``find_return_date`` returns the *first day back*. Words that name the last day away
("until Monday", "bis 3.4.", "jusqu'au 5 mai", "hasta el 5 de mayo", "fino al 5 maggio",
"tot en met 5 maart", "até 5 de março", the end of a range "1–5 May") mean away through
that day, so the result is the next day. Words of return ("back on 12 March",
"zurück am 12.3.", "de retour le 5 mai", "ab 4.4. wieder im Büro") name the day itself,
and so does "not back until Monday" (a negated "until" is the first day back).

Only dates in the same clause as such a word count, so "sent on 3 May" or a date in the
quoted original is ignored. When several dates qualify, the latest wins: waiting a day
too long is harmless, writing to someone still away is what users complain about.

Numeric d/m vs m/d: "12.3." is always day.month. "03/04/2027" is read day-first unless
only month-first is a valid date, a weekday written next to it fits only month-first, or
the text is clearly US English (a US time zone such as EST/PDT, or a "March 12" style
date elsewhere in it). A date without a year is its next occurrence on or after the day
received; "back Monday" is the next Monday after today, "until Monday" may be today.
The end of a range is read from its start ("from Friday to Tuesday"); a weekday range
next to office hours ("Montag bis Freitag 9-17 Uhr") is a signature, not an absence.
Results before the day received or more than a year ahead are dropped.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

_MONTH_NAMES = {
    1: "january jan januar janner jaenner janvier janv enero gennaio januari janeiro",
    2: "february feb februar fevrier fevr fev febrero febbraio februari fevereiro",
    3: "march mar marz maerz mars marzo maart marco",
    4: "april apr avril avr abril aprile",
    5: "may mai mayo maggio mei maio",
    6: "june jun juni juin junio giugno junho",
    7: "july jul juli juillet juil julio luglio julho",
    8: "august aug aout agosto augustus",
    9: "september sep sept septembre septiembre setiembre settembre setembro",
    10: "october oct oktober okt octobre octubre ottobre outubro",
    11: "november nov novembre noviembre novembro",
    12: "december dec dezember dez decembre diciembre dicembre dezembro",
}
_WEEKDAY_NAMES = {
    0: "monday montag lundi lunes lunedi maandag segunda-feira segunda",
    1: "tuesday tues dienstag mardi martes martedi dinsdag terca-feira terca",
    2: "wednesday mittwoch mercredi miercoles mercoledi woensdag quarta-feira quarta",
    3: "thursday thurs donnerstag jeudi jueves giovedi donderdag quinta-feira quinta",
    4: "friday freitag vendredi viernes venerdi vrijdag sexta-feira sexta",
    5: "saturday samstag sonnabend samedi sabado sabato zaterdag",
    6: "sunday sonntag dimanche domingo domenica zondag",
}
# Russian, Polish (nominative and genitive) and Swedish, folded as the text is ("май" -> "маи").
_MORE_MONTHS = {
    1: "январь января styczen stycznia",
    2: "февраль февраля luty lutego",
    3: "март марта marzec marca",
    4: "апрель апреля kwiecien kwietnia",
    5: "маи мая maj maja",
    6: "июнь июня czerwiec czerwca",
    7: "июль июля lipiec lipca",
    8: "август августа sierpien sierpnia augusti",
    9: "сентябрь сентября wrzesien wrzesnia",
    10: "октябрь октября pazdziernik pazdziernika",
    11: "ноябрь ноября listopad listopada",
    12: "декабрь декабря grudzien grudnia",
}
_MONTH_NAMES = {n: f"{ws} {_MORE_MONTHS[n]}" for n, ws in _MONTH_NAMES.items()}
_MONTHS = {w: n for n, ws in _MONTH_NAMES.items() for w in ws.split()}
_WEEKDAYS = {w: n for n, ws in _WEEKDAY_NAMES.items() for w in ws.split()}
_TOMORROW = "tomorrow|morgen|demain|manana|domani|amanha"
_EN_MONTHS = "january february march april may june july august september october november"
_ENGLISH_MONTHS = frozenset(
    (_EN_MONTHS + " december jan feb mar apr jun jul aug sep sept oct nov dec").split()
)


def _alt(words: Iterable[str]) -> str:
    return "|".join(sorted((re.escape(w) for w in words), key=len, reverse=True))


_M = _alt(_MONTHS)
_SUFFIX = r"(?:st|nd|rd|th|er|o|a)?\.?"
_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("iso", re.compile(r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b")),
    ("num", re.compile(r"(?<![\d.])(\d{1,2})([./-])(\d{1,2})(?:\2(\d{4}|\d{2}))?(?![\d/-]|\.\d)")),
    (
        "dmy",
        re.compile(
            rf"\b(\d{{1,2}}){_SUFFIX}\s*(?:of\s+|de\s+)?({_M})\b\.?(?:,?\s*(?:de\s+)?(\d{{4}}))?"
        ),
    ),
    ("mdy", re.compile(rf"\b({_M})\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?\b(?:,?\s*(\d{{4}})\b)?")),
    ("wd", re.compile(rf"\b({_alt(_WEEKDAYS)})\b")),
    ("rel", re.compile(rf"\b(?:{_TOMORROW})\b")),
    ("day", re.compile(r"\bthe (\d{1,2})(?:st|nd|rd|th)\b")),
)

# Keyword classes, matched in the folded text just before a date.
_BACK_WORDS = (
    r"back|return(?:s|ing)?|zuruck|wieder|retour|de regreso|regres\w*|de vuelta|vuelvo|volver\w*"
    r"|rientr\w*|ritorno|torner\w*|terug|weer|volto|voltarei|de volta|regresso|retorno|retornar\w*"
    r"|tillbaka|wracam|powrot\w*|wroce|вернусь|вернуся|возвращаюсь"
)
_KEYWORDS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("back", re.compile(rf"\b(?:{_BACK_WORDS})\b|\b(?:in|im) (?:the )?(?:office|buro)\b")),
    ("back", re.compile(r"\bavailable (?:again )?(?:on|from)\b|\bdisponible (?:a partir|des)\b")),
    (
        "until",
        re.compile(
            r"\b(?:until|till|til|through|thru|up to and including|bis|jusqu|hasta|fino|"
            r"tot(?: en met)?|t/m|ate|till och med|t\.o\.m|do(?=\s+$)|до)\b"
        ),
    ),
    (
        "from",
        re.compile(
            r"\b(?:from|starting|as of|ab|vom|von|a partir d\w*|des le|du|desde"
            r"|dal|dall|dai|da|van|vanaf)\b"
        ),
    ),
    ("before", re.compile(r"\b(?:before|avant|vor|antes|prima|voor)\b")),
    (
        "ignore",
        re.compile(
            r"\b(?:sent|wrote|received|dated|since|seit|depuis|gesendet|schrieb"
            r"|envoye|enviado|inviato|verzonden|schreef|escreveu|escribio)\b"
        ),
    ),
)
_NEGATION = re.compile(r"\b(?:not|no|never|nicht|kein\w*|erst|pas|non|niet|nao)\b|n't\b")
_AFTER_BACK = re.compile(
    rf"\b(?:{_BACK_WORDS}|erreichbar|available|disponible|aanwezig|raggiungibile|reachable)\b"
    r"|\b(?:in|im) (?:the )?(?:office|buro)\b"
)
_RANGE_GAP = re.compile(
    r"^\W*(?:-|–|to|au|al|a|ao|bis|t/m|tot(?: en met)?|until|till|through"
    r"|thru|ate|hasta(?: el)?|jusqu'au|fino al)\s*$"
)
_DAY_RANGE = re.compile(
    r"\d{1,2}(?:st|nd|rd|th|er|\.)?\s*(?:-|–|to|au|al|a|ao|bis|t/m|tot"
    r"(?: en met)?|until|till|through|ate)\s*$"
)
_CLAUSE_END = re.compile(r"[.!?;](?=\s+\D)|\|")
_HOURS = re.compile(
    r"\b\d{1,2}(?:[:.]\d{2})?\s*(?:uhr|h|am|pm|hrs)\b|\b\d{1,2}[:.]\d{2}\b|\b(?:office|opening"
    r"|business) hours|offnungszeiten|geschaftszeiten|sprechzeiten|heures d'ouverture|horario"
    r"|orari|openingstijden"
)
_WD_JOIN = re.compile(r"^[\s,]*(?:(?:the|den|dem|der|le|el|il|de|o|a|dia)\s+)?$")
_QUOTE_START = re.compile(
    r"^(?:-{2,}\s*(?:original message|ursprungliche nachricht|message d'origine|mensaje original"
    r"|messaggio originale|oorspronkelijk bericht|mensagem original)|_{8,}|on .{0,80} wrote:"
    r"|am .{0,80} schrieb|le .{0,80} a ecrit|(?:from|von|de|da|van|sent|gesendet):\s)"
)
_SCAN = 4000  # an out-of-office note states its dates up front; the rest is signature/quote
_US = re.compile(r"\b[ECMP][SD]T\b")


@dataclass
class _Mention:
    start: int
    end: int
    kind: str
    groups: tuple[str | None, ...]
    weekday: int | None = None


def _fold(s: str) -> str:
    s = unicodedata.normalize("NFKD", s)
    s = "".join(c for c in s if not unicodedata.combining(c)).lower()
    return s.replace("’", "'").replace("\u00a0", " ")


def _own_text(text: str) -> str:
    """The OOO text itself: no quoted lines, nothing after the quoted original's header."""
    kept: list[str] = []
    for line in _fold(text).splitlines():
        if _QUOTE_START.match(line.strip()):
            break
        if not line.lstrip().startswith(">"):
            kept.append(line)
    # Blank lines end a clause; single line breaks are just wrapping.
    return re.sub(r"\s+", " ", re.sub(r"\n\s*\n", " | ", "\n".join(kept)))


def _mentions(s: str) -> list[_Mention]:
    taken: list[_Mention] = []
    for kind, rx in _PATTERNS:
        for m in rx.finditer(s):
            if any(m.start() < t.end and t.start < m.end() for t in taken):
                continue
            if kind == "num" and not _plausible_num(s, m):
                continue
            end = m.end() + (kind == "num" and s[m.end() : m.end() + 1] == ".")  # "12.3."
            taken.append(_Mention(m.start(), end, kind, m.groups()))
    taken.sort(key=lambda t: t.start)
    merged: list[_Mention] = []
    for t in taken:  # "Monday, 12 March" is one mention; the weekday disambiguates d/m
        prev = merged[-1] if merged else None
        if (
            prev
            and prev.kind == "wd"
            and t.kind not in ("wd", "rel")
            and _WD_JOIN.match(s[prev.end : t.start])
        ):
            t.weekday, t.start = _WEEKDAYS[str(prev.groups[0])], prev.start
            merged[-1] = t
        else:
            merged.append(t)
    return merged


def _plausible_num(s: str, m: re.Match[str]) -> bool:
    """12.3. and 3.4.2027 yes, 10.30 (a time) or 555-1234 no; 12/3 yes."""
    sep, year = m.group(2), m.group(4)
    if sep == "-":
        return year is not None
    if sep == ".":
        return year is not None or s[m.end() : m.end() + 1] == "."
    return True


def _classify(s: str, i: int, mentions: list[_Mention]) -> str | None:
    cur = mentions[i]
    lo = mentions[i - 1].end if i else 0
    if i and _RANGE_GAP.match(s[lo : cur.start]):
        # "Montag bis Freitag 9-17 Uhr" in a signature is office hours, not an absence.
        hours = _HOURS.search(s[max(0, lo - 80) : cur.end + 40])
        return None if hours and mentions[i - 1].kind == cur.kind == "wd" else "range"
    window = s[max(lo, cur.start - 60) : cur.start]
    ends = [m.end() for m in _CLAUSE_END.finditer(window)]
    window = window[ends[-1] :] if ends else window
    if _DAY_RANGE.search(window):
        return "until"
    hi = mentions[i + 1].start if i + 1 < len(mentions) else len(s)
    after = s[cur.end : min(hi, cur.end + 40)]
    stop = _CLAUSE_END.search(after)
    after = after[: stop.start()] if stop else after
    after_back = hi > cur.end + 40 or i + 1 == len(mentions)  # back word not the next date's
    after_back = after_back and bool(_AFTER_BACK.search(after))
    best: tuple[int, str, int] | None = None
    for kind, rx in _KEYWORDS:
        for m in rx.finditer(window):
            if best is None or m.end() > best[0]:
                best = (m.end(), kind, m.start())
    if best is None:
        return "back" if after_back else None
    _, kind, kw_start = best
    before_kw = window[:kw_start]
    if kind == "until":
        negated = _NEGATION.search(before_kw) or _KEYWORDS[0][1].search(before_kw)
        return "back" if negated else "until"
    if kind == "from":
        return "back" if after_back or _AFTER_BACK.search(before_kw) else None
    if kind == "before":
        return "back" if _NEGATION.search(before_kw) else None
    return "back" if kind == "back" else None


def _ymd(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _next_on_or_after(today: date, month: int, day: int, year: str | None) -> date | None:
    if year:
        y = int(year)
        return _ymd(y + 2000 if y < 100 else y, month, day)
    for y in (today.year, today.year + 1):
        d = _ymd(y, month, day)
        if d and d >= today:
            return d
    return None


def _resolve(t: _Mention, kind: str, today: date, us: bool) -> date | None:
    """The calendar date of a mention; ``today`` is the day it must not precede."""
    g = t.groups
    if t.kind == "iso":
        return _ymd(int(str(g[0])), int(str(g[1])), int(str(g[2])))
    if t.kind == "wd":
        ahead = (_WEEKDAYS[str(g[0])] - today.weekday()) % 7
        return today + timedelta(days=ahead or (7 if kind == "back" else 0))
    if t.kind == "rel":
        return today + timedelta(days=1)
    if t.kind == "day":
        first = today.replace(day=1)
        for month_start in (first, (first + timedelta(days=32)).replace(day=1)):
            d = _ymd(month_start.year, month_start.month, int(str(g[0])))
            if d and d >= today:
                return d
        return None
    if t.kind == "dmy":
        return _next_on_or_after(today, _MONTHS[str(g[1])], int(str(g[0])), g[2])
    if t.kind == "mdy":
        return _next_on_or_after(today, _MONTHS[str(g[0])], int(str(g[1])), g[2])
    a, sep, b, year = int(str(g[0])), g[1], int(str(g[2])), g[3]
    dm = _next_on_or_after(today, b, a, year)
    if sep == "." or a == b:
        return dm
    md = _next_on_or_after(today, a, b, year)
    if dm is None or md is None:
        return dm or md
    if t.weekday is not None:
        fits = [d for d in (dm, md) if d.weekday() == t.weekday]
        if len(fits) == 1:
            return fits[0]
    return md if us else dm


def find_return_date(text: str, received: datetime) -> date | None:
    """First day the person is back, from an out-of-office text; None if not stated."""
    today = received.date()
    s = _own_text(text[:_SCAN])
    mentions = _mentions(s)
    us = bool(_US.search(text[:_SCAN])) or any(
        t.kind == "mdy" and str(t.groups[0]) in _ENGLISH_MONTHS for t in mentions
    )
    found: list[date] = []
    prev: date | None = None
    for i, t in enumerate(mentions):
        kind = _classify(s, i, mentions)
        # The end of a range is resolved from its start: "from Monday to Friday".
        base = prev if kind == "range" and prev and prev > today else today
        d = _resolve(t, "back" if kind == "back" else "until", base, us)
        prev = d
        if kind is None or d is None:
            continue
        if kind in ("until", "range"):
            d += timedelta(days=1)
        if today <= d <= today + timedelta(days=365):
            found.append(d)
    return max(found) if found else None
