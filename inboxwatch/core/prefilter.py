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
The shortcut is taken only for ASCII text. Under IGNORECASE, Unicode has case
equivalences beyond ASCII (``ı`` matches ``i``, ``ſ`` matches ``s``); in ASCII text an
ASCII letter matches exactly its two cases, and a non-ASCII letter of the pattern matches
nothing unless the regex engine says it does (then it is no evidence). Other text runs
the pattern as it is.

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

#: Words of which a match must contain at least one; empty: no ASCII text can match;
#: None: nothing is known (every text may match).
Need = frozenset[str] | None

# The regex engine's own parser and its opcodes (Python ≥ 3.11; not in the type stubs).
sre: Any = importlib.import_module("re._constants")
sre_parse: Any = importlib.import_module("re._parser")

_ASCII = "".join(map(chr, range(128)))
_REPEATS = (sre.MAX_REPEAT, sre.MIN_REPEAT, getattr(sre, "POSSESSIVE_REPEAT", sre.MAX_REPEAT))


@cache
def _matches_ascii(ch: str, flags: int) -> bool:
    """Does the non-ASCII literal ``ch`` match some ASCII character under ``flags``?"""
    return bool(re.compile(re.escape(ch), flags & (re.I | re.A)).search(_ASCII))


def _score(need: frozenset[str]) -> tuple[int, int]:
    """Longer words filter better, fewer are cheaper to look for."""
    return min(map(len, need)), -len(need)


def _sequence(items: Any, flags: int) -> Need:
    """The words one of which every match of this sequence contains."""
    fold = bool(flags & re.I)
    candidates: list[frozenset[str]] = []
    run: list[str] = []

    def close() -> None:
        if run:
            candidates.append(frozenset({"".join(run)}))
            run.clear()

    for op, av in items:
        if op is sre.LITERAL:
            ch = chr(av)
            if ch.isascii() and ch not in "\r\n":
                run.append(ch.lower() if fold else ch)
                continue
            close()
            if not ch.isascii() and not _matches_ascii(ch, flags):
                candidates.append(frozenset())  # cannot match ASCII text at all
        elif op is sre.SUBPATTERN:
            close()
            _group, add, remove, sub = av
            # A group that changes the flags is not looked into.
            if not add and not remove and (need := _sequence(sub, flags)) is not None:
                candidates.append(need)
        elif op is sre.BRANCH:
            close()
            needs = [_sequence(branch, flags) for branch in av[1]]
            if all(n is not None for n in needs):
                candidates.append(frozenset().union(*needs))  # type: ignore[arg-type]
        elif op in _REPEATS:
            close()
            low, _high, sub = av
            if low >= 1 and (need := _sequence(sub, flags)) is not None:
                candidates.append(need)
        elif op is getattr(sre, "ATOMIC_GROUP", None):
            close()
            if (need := _sequence(av, flags)) is not None:
                candidates.append(need)
        else:  # a class, any, an anchor, a lookaround, a back reference: no word
            close()
    close()
    if not candidates:
        return None
    if any(not c for c in candidates):
        return frozenset()
    return max(candidates, key=_score)


def words(pattern: re.Pattern[str]) -> Need:
    """The literal words (lower-cased under IGNORECASE) one of which every match of
    ``pattern`` in ASCII text contains; None if the pattern has no such words."""
    try:
        tree = sre_parse.parse(pattern.pattern, pattern.flags)
    except Exception:  # a parser that changed under us: no shortcut, same results
        return None
    return _sequence(tree.data, tree.state.flags)


class Gated:
    """A compiled pattern whose ``search`` and ``match`` skip text that cannot match.

    Anything else (``pattern``, ``flags``, ``sub``, ...) is the pattern's own.
    """

    __slots__ = ("_fold", "_need", "_pattern")

    def __init__(self, pattern: re.Pattern[str]) -> None:
        self._pattern = pattern
        self._need = words(pattern)
        self._fold = bool(pattern.flags & re.I)

    @property
    def need(self) -> Need:
        return self._need

    def possible(self, text: str) -> bool:
        """False only if no match can be in ``text`` (nor in pieces of its lines)."""
        need = self._need
        if need is None or not text.isascii() or not ENABLED:
            return True
        hay = text.lower() if self._fold else text
        return any(w in hay for w in need)

    def search(self, text: str) -> re.Match[str] | None:
        return self._pattern.search(text) if self.possible(text) else None

    def match(self, text: str) -> re.Match[str] | None:
        return self._pattern.match(text) if self.possible(text) else None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pattern, name)

    def __repr__(self) -> str:
        return f"Gated({self._pattern!r}, need={sorted(self._need or ())})"


def gated(pattern: re.Pattern[str]) -> Gated:
    return Gated(pattern)


def rx(*alternatives: str) -> Gated:
    """:func:`inboxwatch.core.detection.rx` (alternatives, IGNORECASE), gated."""
    return Gated(detection.rx(*alternatives))
