"""Tell cheaply when a detector's pattern cannot match: the words every match contains.

Why (issue 12, parse → classify): Python's ``re`` tries every alternative at every
position, so a detector's pattern of twenty phrases under IGNORECASE costs about 0.1 µs
per character of text, and bounce and automatic-reply recognition run a dozen of them
over most messages' text. Every phrase has literal words any match must contain ("mail
delivery", "wrote", ...); a text that holds none of them cannot match, and
``str.__contains__`` finds that out in a fraction of the time. The words are read from
the pattern itself (its parse tree), so a pattern edited or added later is filtered
correctly without a list kept by hand.

Exact, not a heuristic: :meth:`Gated.search` returns what ``pattern.search`` returns.
Under IGNORECASE an ASCII letter of the pattern matches its two ASCII cases and, of all
of Unicode, only four more characters (``İ ı ſ K``: :data:`_ASCII_LOOKALIKES`); text
that holds one of them runs the pattern as it is. In ASCII text a non-ASCII letter of
the pattern matches nothing unless the regex engine says it does, so a phrase in another
script cannot match there; in other text such letters are simply not used as words.

A second use: the words also hold in any text whose lines are pieces of the lines of
another one (a message's new text is lines of its plain text; quotes cut), so
:meth:`Gated.possible` on the whole text says whether the pattern can match its new text
without working that out. Words never span a line break for that reason.
"""

from __future__ import annotations

import importlib
import re
from functools import cache
from typing import Any

from inboxwatch.core import detection

#: Off: every pattern runs on every text, as without this module. For the tests that
#: compare both ways (``tests/test_verdict_snapshot.py``); never turned off otherwise.
ENABLED = True

#: Words of which a match must contain at least one; empty: no text can match; None:
#: nothing is known (every text may match).
Need = frozenset[str] | None

# The regex engine's own parser and its opcodes (Python ≥ 3.11; not in the type stubs).
sre: Any = importlib.import_module("re._constants")
sre_parse: Any = importlib.import_module("re._parser")

_ASCII = "".join(map(chr, range(128)))
_REPEATS = (sre.MAX_REPEAT, sre.MIN_REPEAT, getattr(sre, "POSSESSIVE_REPEAT", sre.MAX_REPEAT))
#: The only non-ASCII characters that IGNORECASE matches to an ASCII letter, or whose
#: ``lower()`` holds one (İ ı ſ and the Kelvin sign; ``tests/test_prefilter.py`` checks
#: all of Unicode).
_ASCII_LOOKALIKES = re.compile("[\u0130\u0131\u017f\u212a]")


@cache
def _matches_ascii(ch: str, flags: int) -> bool:
    """Does the non-ASCII literal ``ch`` match some ASCII character under ``flags``?"""
    return bool(re.compile(re.escape(ch), flags & (re.I | re.A)).search(_ASCII))


def _score(need: frozenset[str]) -> tuple[int, int]:
    """Longer words filter better, fewer are cheaper to look for."""
    return min(map(len, need)), -len(need)


def _sequence(items: Any, flags: int, ascii_text: bool) -> Need:
    """The words one of which every match of this sequence contains (in ASCII text, if
    ``ascii_text``: then a literal that matches no ASCII character makes it impossible)."""
    needs = _needs(items, flags, ascii_text)
    return needs[0] if needs else None


def _needs(items: Any, flags: int, ascii_text: bool) -> list[frozenset[str]]:
    """Every set of words of which a match of this sequence contains one (each part of a
    sequence is needed: "new ... submission" needs one of each group), best first."""
    fold = bool(flags & re.I)
    candidates: list[frozenset[str]] = []
    run: list[str] = []

    def close() -> None:
        if run:
            candidates.append(frozenset({"".join(run)}))
            run.clear()

    def inner(sub: Any) -> None:
        if (need := _sequence(sub, flags, ascii_text)) is not None:
            candidates.append(need)

    for op, av in items:
        if op is sre.LITERAL:
            ch = chr(av)
            if ch.isascii() and ch not in "\r\n":
                run.append(ch.lower() if fold else ch)
                continue
            close()
            if ascii_text and not ch.isascii() and not _matches_ascii(ch, flags):
                candidates.append(frozenset())  # cannot match ASCII text at all
        elif op is sre.SUBPATTERN:
            close()
            _group, add, remove, sub = av
            if not add and not remove:  # a group that changes the flags is not looked into
                inner(sub)
        elif op is sre.BRANCH:
            close()
            needs = [_sequence(branch, flags, ascii_text) for branch in av[1]]
            if all(n is not None for n in needs):
                candidates.append(frozenset().union(*needs))  # type: ignore[arg-type]
        elif op in _REPEATS:
            close()
            low, _high, sub = av
            if low >= 1:
                inner(sub)
        elif op is getattr(sre, "ATOMIC_GROUP", None):
            close()
            inner(av)
        else:  # a class, any, an anchor, a lookaround, a back reference: no word
            close()
    close()
    if any(not c for c in candidates):
        return [frozenset()]
    return sorted(candidates, key=_score, reverse=True)


def _shortest(need: frozenset[str]) -> frozenset[str]:
    """The same test with fewer words: a word that holds another is found only where that
    other is ("delivery failed" and "delivery "), so it adds nothing to "one of them"."""
    return frozenset(w for w in need if not any(o != w and o in w for o in need))


def _parse(pattern: re.Pattern[str]) -> Any:
    """The regex engine's parse tree of ``pattern``, or None."""
    try:
        return sre_parse.parse(pattern.pattern, pattern.flags)
    except Exception:  # a parser that changed under us: no shortcut, same results
        return None


def words(pattern: re.Pattern[str], ascii_text: bool = True) -> Need:
    """The literal ASCII words (lower-cased under IGNORECASE) one of which every match of
    ``pattern`` contains, in ASCII text or (``ascii_text=False``) in any text; None if
    the pattern has no such words."""
    tree = _parse(pattern)
    return None if tree is None else _sequence(tree.data, tree.state.flags, ascii_text)


#: The text last lowered, and its lower case: the detectors ask several patterns about
#: one text in a row (one tuple, so a thread never sees a text with another's case).
_lowered: tuple[str, str] = ("", "")


def _lower(text: str) -> str:
    global _lowered
    last = _lowered
    if last[0] is text:
        return last[1]
    low = text.lower()
    _lowered = (text, low)
    return low


class Gated:
    """A compiled pattern whose ``search`` and ``match`` skip text that cannot match.

    Anything else (``pattern``, ``flags``, ``sub``, ...) is the pattern's own.
    """

    __slots__ = ("_also_any", "_also_ascii", "_any", "_ascii", "_fold", "_pattern", "_read")

    def __init__(self, pattern: re.Pattern[str]) -> None:
        self._pattern = pattern
        self._fold = bool(pattern.flags & re.I)
        self._read = False  # the words are read on first use: importing stays cheap
        self._ascii: Need = None
        self._any: Need = None
        # A second set of words a match needs as well, when the pattern is a sequence.
        self._also_ascii: Need = None
        self._also_any: Need = None

    def _read_words(self) -> None:
        tree = _parse(self._pattern)
        if tree is not None:
            ascii_needs = _needs(tree.data, tree.state.flags, True)
            any_needs = _needs(tree.data, tree.state.flags, False)
            self._ascii, self._also_ascii = (*map(_shortest, ascii_needs), None, None)[:2]
            self._any, self._also_any = (*map(_shortest, any_needs), None, None)[:2]
        self._read = True

    @property
    def need(self) -> Need:
        """The words for ASCII text."""
        if not self._read:
            self._read_words()
        return self._ascii

    @property
    def need_in_any_text(self) -> Need:
        """The words for any text (no letter of another script among them)."""
        if not self._read:
            self._read_words()
        return self._any

    def possible(self, text: str) -> bool:
        """False only if no match can be in ``text`` (nor in pieces of its lines)."""
        if not self._read:
            self._read_words()
        if text.isascii():
            need, also = self._ascii, self._also_ascii
        elif self._fold and _ASCII_LOOKALIKES.search(text):
            return True
        else:
            need, also = self._any, self._also_any
        if need is None or not ENABLED:
            return True
        # Folded text is lower case already: no copy.
        hay = _lower(text) if self._fold and not text.islower() else text
        for word in need:  # (loops: a generator costs a third more here)
            if word in hay:
                break
        else:
            return False
        if also is None:
            return True
        for word in also:  # noqa: SIM110
            if word in hay:
                return True
        return False

    def search(self, text: str) -> re.Match[str] | None:
        return self._pattern.search(text) if self.possible(text) else None

    def match(self, text: str) -> re.Match[str] | None:
        return self._pattern.match(text) if self.possible(text) else None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pattern, name)

    def __repr__(self) -> str:
        return f"Gated({self._pattern!r}, need={sorted(self._ascii or ())})"


def user_gate(source: str, flags: int) -> Gated | None:
    """The gate of a rule's pattern, which the ``regex`` module runs (core/safe_regex.py):
    its syntax is ``re``'s but for POSIX classes (``[[:alpha:]]``), which ``re`` reads
    as characters, so a pattern with ``[:`` has none. Its case-insensitive matching
    pairs the same four look-alikes with ASCII letters (``tests/test_prefilter.py``)."""
    return None if "[:" in source else Gated(re.compile(source, flags))


def gated(pattern: re.Pattern[str]) -> Gated:
    return Gated(pattern)


def rx(*alternatives: str) -> Gated:
    """:func:`inboxwatch.core.detection.rx` (alternatives, IGNORECASE), gated."""
    return Gated(detection.rx(*alternatives))
