"""A linter for rule patterns: names the shapes that make a backtracking engine slow.

It reads a pattern's structure with the standard library's own parser and reports
nested quantifiers and unbounded repeats of overlapping characters one after another
(such as ``\\s*\\n?\\s*``), so ``check`` can warn before a message finds them. It knows
shapes, not every case: a pattern it does not flag may still be slow, which is why each
message's rules also run under a time budget (:mod:`inboxwatch.core.safe_regex`).
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

# The standard library's own parser (private, but the same in 3.11 to 3.13): only read here.
_sre: Any = importlib.import_module("re._parser")
_SINGLE = (_sre.LITERAL, _sre.NOT_LITERAL, _sre.ANY, _sre.IN)
_REPEATS = (_sre.MAX_REPEAT, _sre.MIN_REPEAT, _sre.POSSESSIVE_REPEAT)
_CATEGORIES = {
    _sre.CATEGORY_DIGIT: r"\d",
    _sre.CATEGORY_NOT_DIGIT: r"\D",
    _sre.CATEGORY_SPACE: r"\s",
    _sre.CATEGORY_NOT_SPACE: r"\S",
    _sre.CATEGORY_WORD: r"\w",
    _sre.CATEGORY_NOT_WORD: r"\W",
}
#: Characters the classes are compared on: ASCII and a few of each Unicode kind; the
#: pattern's own literals are added, so a class that names a character is judged on it.
_SAMPLES = "".join(map(chr, range(128))) + "\x85\xa0\xad\xe9\xdf\u0130\u0663\u2028\u3000\u200b"


@dataclass(frozen=True)
class _Rep:
    """A repeat of one character class: the characters, and how to show it."""

    chars: int
    text: str


@dataclass(frozen=True)
class _Info:
    nullable: bool  # may match empty text (anchors and lookarounds do)
    transparent: bool  # may match empty text without passing an anchor or lookaround
    first: int  # characters a non-empty match may start with
    heads: tuple[_Rep, ...] = ()  # unbounded one-class repeats a match may start with
    tails: tuple[_Rep, ...] = ()  # ... and end with (and still give characters back)


class _Linter:
    def __init__(self, source: str, flags: int) -> None:
        self.tree = _sre.parse(source, flags)
        self.flags: int = self.tree.state.flags
        chars = set(_SAMPLES)
        for c in self._literals(self.tree):
            chars.update(x for x in (c, c.lower(), c.upper()) if len(x) == 1)
        self.alphabet = sorted(chars)
        self.all = (1 << len(self.alphabet)) - 1
        self.found: dict[str, None] = {}
        self._memo: dict[tuple[int, int], _Info] = {}  # by node and flags: each walked once

    def run(self) -> list[str]:
        self._seq(self.tree, self.flags)
        return list(self.found)

    # ---- characters

    def _literals(self, items: Iterable[Any]) -> Iterable[str]:
        for op, av in items:
            if op in (_sre.LITERAL, _sre.NOT_LITERAL):
                yield chr(av)
            elif op == _sre.IN:
                for iop, iav in av:
                    if iop == _sre.LITERAL:
                        yield chr(iav)
                    elif iop == _sre.RANGE:
                        yield from (chr(iav[0]), chr(iav[1]))
            elif op in _REPEATS:
                yield from self._literals(av[2])
            elif op == _sre.SUBPATTERN:
                yield from self._literals(av[3])
            elif op == _sre.BRANCH:
                for alt in av[1]:
                    yield from self._literals(alt)
            elif op in (_sre.ASSERT, _sre.ASSERT_NOT):
                yield from self._literals(av[1])
            elif op == _sre.ATOMIC_GROUP:
                yield from self._literals(av)

    def _mask(self, test: Callable[[str], bool]) -> int:
        return sum(1 << i for i, c in enumerate(self.alphabet) if test(c))

    def _chars(self, op: Any, av: Any, flags: int) -> int:
        """The characters (of :attr:`alphabet`) that one-character item matches."""
        fold = bool(flags & re.IGNORECASE)
        if op == _sre.LITERAL:
            return self._mask(lambda c: _same(c, av, fold))
        if op == _sre.NOT_LITERAL:
            return self.all & ~self._mask(lambda c: _same(c, av, fold))
        if op == _sre.ANY:
            return self.all if flags & re.DOTALL else self._mask(lambda c: c != "\n")
        return self._mask(lambda c: _in_class(c, av, flags))

    # ---- structure

    def _seq(self, items: Any, flags: int) -> _Info:
        key = (id(items), flags)
        if (known := self._memo.get(key)) is None:
            known = self._memo[key] = self._walk(items, flags)
        return known

    def _walk(self, items: Any, flags: int) -> _Info:
        nullable = transparent = True
        first = 0
        heads: tuple[_Rep, ...] = ()
        tails: tuple[_Rep, ...] = ()  # reachable from the end past transparent items
        for item in items:
            info = self._item(item, flags)
            for head in info.heads:
                for tail in tails:
                    if head.chars & tail.chars:
                        self._warn(
                            f"{tail.text} and then {head.text} can take the same characters "
                            "with nothing required between them; let one exclude the other's "
                            "characters (e.g. [ \\t]* for spaces within a line)"
                        )
            if nullable:
                first |= info.first
            if transparent:
                heads = (*heads, *info.heads)
            tails = (*tails, *info.tails) if info.transparent else info.tails
            nullable = nullable and info.nullable
            transparent = transparent and info.transparent
        return _Info(nullable, transparent, first, heads, tails)

    def _item(self, item: Any, flags: int) -> _Info:
        key = (id(item), flags)
        if (known := self._memo.get(key)) is None:
            known = self._memo[key] = self._node(item[0], item[1], flags)
        return known

    def _node(self, op: Any, av: Any, flags: int) -> _Info:
        if op in _SINGLE:
            return _Info(False, False, self._chars(op, av, flags))
        if op in _REPEATS:
            return self._repeat(op, av, flags)
        if op == _sre.SUBPATTERN:
            _group, add, remove, body = av
            return self._seq(body, (flags | add) & ~remove)
        if op == _sre.BRANCH:
            infos = [self._seq(alt, flags) for alt in av[1]]
            return _Info(
                any(i.nullable for i in infos),
                any(i.transparent for i in infos),
                _union(i.first for i in infos),
                tuple(h for i in infos for h in i.heads),
                tuple(t for i in infos for t in i.tails),
            )
        if op == _sre.GROUPREF_EXISTS:
            _group, yes, no = av
            infos = [self._seq(yes, flags), self._seq(no or [], flags)]
            return _Info(True, False, _union(i.first for i in infos))
        if op == _sre.ATOMIC_GROUP:
            info = self._seq(av, flags)  # gives nothing back once matched: no tails
            return _Info(info.nullable, info.transparent, info.first, info.heads)
        if op in (_sre.ASSERT, _sre.ASSERT_NOT):
            self._seq(av[1], flags)
            return _Info(True, False, 0)
        if op == _sre.GROUPREF:
            return _Info(True, False, self.all)
        return _Info(True, False, 0)  # AT (anchors), FAILURE and anything new: a barrier

    def _repeat(self, op: Any, av: Any, flags: int) -> _Info:
        lo, hi, body = av
        possessive = op == _sre.POSSESSIVE_REPEAT
        unbounded = hi == _sre.MAXREPEAT
        if len(body) == 1 and body[0][0] in _SINGLE:
            chars = self._chars(body[0][0], body[0][1], flags)
            rep = _Rep(chars, self._show(body[0], flags) + _quantifier(op, lo, hi))
            heads = (rep,) if unbounded else ()
            tails = (rep,) if unbounded and not possessive else ()
            return _Info(lo == 0, lo == 0, chars if hi else 0, heads, tails)
        info = self._seq(body, flags)
        if hi > 1 and not possessive:
            self._loop(body, info, flags, "(…)" + _quantifier(op, lo, hi))
        return _Info(
            lo == 0 or info.nullable,
            lo == 0 or info.transparent,
            info.first if hi else 0,
            info.heads if hi else (),
            info.tails if hi and not possessive else (),
        )

    def _loop(self, body: Any, info: _Info, flags: int, shown: str) -> None:
        """A repeated group: can one text be split over its rounds in many ways?"""
        inner = _unwrap(body)
        if len(inner) == 1 and inner[0][0] in _REPEATS and inner[0][1][1] > inner[0][1][0]:
            self._warn(f"a repeat directly inside the repeated group {shown}, as in (a+)+")
            return
        if info.nullable and self._has_repeat(body):
            self._warn(
                f"the repeated group {shown} can match empty text and holds a repeat; "
                "make each round take at least one character"
            )
            return
        self._follow(body, 0, info.first, flags, shown)

    def _follow(self, items: Any, near: int, far: int, flags: int, shown: str) -> None:
        """Inside a loop: warn where a one-class repeat may be followed by its own kind.

        ``near``: what may follow ``items`` within the same round; ``far``: also what the
        next round may start with. An optional single character (``a?``) only splits a
        text two ways within a round; a longer repeat can also hand characters to the next.
        """
        for item in reversed(items):
            op, av = item
            info = self._item(item, flags)
            if op in _REPEATS:
                lo, hi, body = av
                if len(body) == 1 and body[0][0] in _SINGLE:
                    chars = self._chars(body[0][0], body[0][1], flags)
                    follows = far if hi > 1 else near
                    if hi > lo and op != _sre.POSSESSIVE_REPEAT and chars & follows:
                        text = self._show(body[0], flags) + _quantifier(op, lo, hi)
                        self._warn(
                            f"{text} inside the repeated group {shown} can be followed by "
                            "what it matches itself, so the rounds can split a text in many "
                            f"ways; end each round with a character {text} cannot take"
                        )
                elif op != _sre.POSSESSIVE_REPEAT:
                    again = self._seq(body, flags).first if hi > 1 else 0
                    self._follow(body, near | again, far | again, flags, shown)
            elif op == _sre.SUBPATTERN:
                self._follow(av[3], near, far, (flags | av[1]) & ~av[2], shown)
            elif op == _sre.BRANCH:
                for alt in av[1]:
                    self._follow(alt, near, far, flags, shown)
            near = info.first | (near if info.nullable else 0)
            far = info.first | (far if info.nullable else 0)

    def _has_repeat(self, items: Any) -> bool:
        for op, av in items:
            if op in _REPEATS and av[1] > 1:
                return True
            if op == _sre.SUBPATTERN and self._has_repeat(av[3]):
                return True
            if op == _sre.BRANCH and any(self._has_repeat(alt) for alt in av[1]):
                return True
        return False

    def _warn(self, text: str) -> None:
        self.found.setdefault(text, None)

    def _show(self, item: Any, flags: int) -> str:
        op, av = item
        if op == _sre.ANY:
            return "."
        if op == _sre.LITERAL:
            return _char(av)
        if op == _sre.NOT_LITERAL:
            return f"[^{_char(av, True)}]"
        negate = bool(av) and av[0][0] == _sre.NEGATE
        parts = av[1:] if negate else av
        if not negate and len(parts) == 1 and parts[0][0] == _sre.CATEGORY:
            return _CATEGORIES.get(parts[0][1], "?")
        shown = []
        for iop, iav in parts:
            if iop == _sre.LITERAL:
                shown.append(_char(iav, True))
            elif iop == _sre.RANGE:
                shown.append(f"{_char(iav[0], True)}-{_char(iav[1], True)}")
            elif iop == _sre.CATEGORY:
                shown.append(_CATEGORIES.get(iav, "?"))
        return f"[{'^' if negate else ''}{''.join(shown)}]"


def _unwrap(items: Any) -> Any:
    while len(items) == 1 and items[0][0] == _sre.SUBPATTERN:
        items = items[0][1][3]
    return items


def _same(c: str, code: int, fold: bool) -> bool:
    x = chr(code)
    return c == x or (fold and (c.lower() == x.lower() or c.upper() == x.upper()))


def _in_class(c: str, items: Any, flags: int) -> bool:
    fold = bool(flags & re.IGNORECASE)
    negate = hit = False
    for op, av in items:
        if op == _sre.NEGATE:
            negate = True
        elif op == _sre.LITERAL:
            hit = hit or _same(c, av, fold)
        elif op == _sre.RANGE:
            hit = hit or _in_range(c, av[0], av[1], fold)
        elif op == _sre.CATEGORY and av in _CATEGORIES:
            hit = hit or bool(re.fullmatch(_CATEGORIES[av], c, flags & re.ASCII))
        else:
            hit = True  # something this linter does not model: assume it matches
    return hit != negate


def _in_range(c: str, lo: int, hi: int, fold: bool) -> bool:
    variants = (c, c.lower(), c.upper()) if fold else (c,)
    return any(len(x) == 1 and lo <= ord(x) <= hi for x in variants)


def _union(masks: Iterable[int]) -> int:
    out = 0
    for mask in masks:
        out |= mask
    return out


def _char(code: int, in_class: bool = False) -> str:
    c = chr(code)
    named = {"\n": r"\n", "\r": r"\r", "\t": r"\t", " ": " "}
    if c in named:
        return named[c]
    if in_class:
        return "\\" + c if c in "\\]^-[" else c
    return re.escape(c)


def _quantifier(op: Any, lo: int, hi: int) -> str:
    if hi == _sre.MAXREPEAT:
        q = {0: "*", 1: "+"}.get(lo, f"{{{lo},}}")
    elif (lo, hi) == (0, 1):
        q = "?"
    else:
        q = f"{{{lo}}}" if lo == hi else f"{{{lo},{hi}}}"
    return q + ("?" if op == _sre.MIN_REPEAT else "+" if op == _sre.POSSESSIVE_REPEAT else "")


def hazards(source: str, flags: int = 0) -> list[str]:
    """Why ``source`` may backtrack badly on some text; empty when no known shape is found.

    Two shapes, both found by reading the parsed pattern:

    * unbounded repeats one after another whose characters overlap, with nothing required
      between them (``\\s*\\n?\\s*``, ``\\s*\\s+``, ``.*.*``, ``[^@]*\\S*``): a run of
      shared characters can be divided between them in many ways, and each division is
      tried before the search moves on (time grows with a power of the run's length);
    * a repeated group whose rounds can divide one text in many ways (``(a+)+``,
      ``(\\w*)*``, ``(\\w+\\s?)+``): time grows exponentially.

    Anchors and lookarounds between two repeats count as a separator, and repeats that
    give nothing back (possessive, atomic) are left alone. A bounded repeat (``{0,60}``)
    bounds the harm and is not reported unless it is repeated inside a loop.
    """
    try:
        return _Linter(source, flags).run()
    except Exception:  # a syntax error is reported elsewhere; the linter is never fatal
        return []
