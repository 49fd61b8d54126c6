"""One exception hierarchy, so callers catch what they can act on.

The command line turns :class:`ConfigError` into exit code 2 and one line per problem.
"""

from __future__ import annotations

from dataclasses import dataclass


class InboxwatchError(Exception):
    """Base of every error inboxwatch raises on purpose."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a user's file: where, and what."""

    file: str
    key: str
    message: str
    line: int | None = None
    #: The key as a person names it (``rule "website-form".sequence``), shown instead
    #: of ``key`` (``rule.0.sequence``), which stays the machine's path.
    label: str = ""

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        key = self.label or self.key
        return f"{where}: {key}: {self.message}" if key else f"{where}: {self.message}"


class ConfigError(InboxwatchError):
    """Config, rules, sequences or templates are invalid; carries every problem found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class MessageError(InboxwatchError):
    """A message cannot be parsed; it is flagged and skipped, never fatal."""


class StateError(InboxwatchError):
    """The state file is unreadable or locked; start-up stops rather than start empty."""


class TransientError(InboxwatchError):
    """A network or server fault worth retrying with back-off."""
