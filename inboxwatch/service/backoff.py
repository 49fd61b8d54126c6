"""Reconnecting after a fault: exponential back-off with a ceiling and jitter."""

from __future__ import annotations

import random

#: Reconnect back-off stops growing here: after a long outage an acknowledgement is at
#: most about a minute late.
MAX_BACKOFF = 60.0


class Backoff:
    """Exponential back-off with a ceiling: 1, 2, 4 ... MAX_BACKOFF seconds, each with
    ±20 % jitter, so many daemons behind one outage do not all come back in step."""

    def __init__(self, first: float = 1.0, ceiling: float = MAX_BACKOFF) -> None:
        self.first, self.ceiling, self.current = first, ceiling, 0.0

    def next(self) -> float:
        self.current = min(self.ceiling, self.current * 2 if self.current else self.first)
        return self.current * random.uniform(0.8, 1.2)

    def reset(self) -> None:
        self.current = 0.0
