"""User-written regular expressions: compiled once, run under a time budget per message.

Rules are files a user writes, often by copying patterns from elsewhere. With a
backtracking engine one unlucky pattern and one crafted message can hold the daemon for
hours (a 6 KB message did, with a shipped pattern). So every pattern from a rule file is
compiled with the ``regex`` module (the syntax of ``re`` for everything users write; its
matching functions take a ``timeout``), and every search made for one message draws on
that message's :class:`Budget`. A message that uses it up raises :class:`RuleTimeout`, a
:class:`~inboxwatch.errors.MessageError`: it is recorded as a reject, logged, and the
mailbox position moves on, as for a message that cannot be parsed.

The budget is the guarantee. :func:`~inboxwatch.core.regex_lint.hazards` is a help on
top (``check`` warns with it before a message finds a slow pattern).

This module reads a monotonic clock, the core's one exception to "no clock": it measures
work, not the time of day, and changes no decision except by stopping one.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import regex

from inboxwatch.core.prefilter import Gated, user_gate
from inboxwatch.errors import MessageError

#: Seconds that the user patterns of all rules together may take on one message. An
#: ordinary message takes about a millisecond with the shipped rules, so no honest mail
#: comes near this; a hostile one costs at most this much once, and is then skipped.
MESSAGE_BUDGET = 1.0

_FLAGS = {
    re.IGNORECASE: regex.IGNORECASE,
    re.MULTILINE: regex.MULTILINE,
    re.DOTALL: regex.DOTALL,
    re.VERBOSE: regex.VERBOSE,
    re.ASCII: regex.ASCII,
}


class RuleTimeout(MessageError):
    """A message kept user patterns busy past its budget: skipped as poison."""

    def __init__(self, where: str, seconds: float) -> None:
        self.where = where
        super().__init__(
            f"{where}: regular expression still running after the {seconds:g} s budget "
            "of one message (catastrophic backtracking?); message skipped"
        )


class Budget:
    """What is left of one message's time for user patterns (monotonic, not wall time)."""

    def __init__(
        self, seconds: float = MESSAGE_BUDGET, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.seconds = seconds
        self._clock = clock
        self._deadline = clock() + seconds

    def left(self, where: str) -> float:
        """Seconds left; raises :class:`RuleTimeout` (naming ``where``) when none are."""
        left = self._deadline - self._clock()
        if left <= 0:
            raise RuleTimeout(where, self.seconds)
        return left


class Match(Protocol):
    """The part of a match object the rules use."""

    def groupdict(self) -> dict[str, str | None]: ...


@dataclass(frozen=True)
class SafePattern:
    """A compiled user pattern that only searches under a :class:`Budget`."""

    source: str
    #: Names the rule and key (e.g. "rule 'website-form', rule.0.lead_pattern.2").
    where: str
    compiled: Any = field(repr=False, compare=False)
    #: Skips text that holds none of the words every match needs (issue 12: a dozen
    #: patterns read each message's body); None when the pattern has no such words.
    gate: Gated | None = field(default=None, repr=False, compare=False)

    @property
    def groupindex(self) -> Mapping[str, int]:
        groups: Mapping[str, int] = self.compiled.groupindex
        return groups

    def search(self, text: str, budget: Budget) -> Match | None:
        timeout = budget.left(self.where)
        if self.gate is not None and not self.gate.possible(text):
            return None
        try:
            found: Match | None = self.compiled.search(text, timeout=timeout)
        except TimeoutError:
            raise RuleTimeout(self.where, budget.seconds) from None
        return found


def compile_user(source: str, flags: int, where: str) -> SafePattern:
    """Compile a user's pattern; raises :class:`re.error` as ``re.compile`` would.

    ``re`` checks the syntax first, so a rule file stays valid for ``re`` and errors read
    the same; ``flags`` are ``re`` flags.
    """
    re.compile(source, flags)
    rflags = 0
    for flag, mapped in _FLAGS.items():
        if flags & flag:
            rflags |= mapped
    try:
        compiled = regex.compile(source, rflags)
    except regex.error as exc:
        raise re.error(str(exc)) from None
    return SafePattern(source, where, compiled, user_gate(source, flags))
