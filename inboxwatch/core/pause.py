"""The owner's pause (`inboxwatch pause`) as the core sees it: a value read from a state
marker, so decisions can say what it holds (the new-lead alert names a held
acknowledgement) and what it does not (tasks and alerts to the owner still go).

The commands and the outbox that write and enforce it are in
:mod:`inboxwatch.service.pause`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

from inboxwatch.core.lead import iso
from inboxwatch.core.queue import OutboxItem, Purpose

#: The state marker that holds the pause (empty: none).
MARKER = "paused"
#: Where held mail waits while a pause has no end (moved back when it ends).
FOREVER = timedelta(days=3650)


@dataclass(frozen=True)
class Pause:
    since: datetime
    until: datetime | None  # None: until `inboxwatch resume`
    acks: bool  # the acknowledgement is held too

    def active(self, now: datetime) -> bool:
        return self.until is None or now < self.until

    @property
    def hold_until(self) -> datetime:
        return self.until or self.since + FOREVER

    def holds(self, item: OutboxItem) -> bool:
        """Only mail to leads is held; the owner's alerts, tasks and digest still go."""
        if item.purpose is Purpose.ACK:
            return self.acks
        return item.purpose.to_lead

    def ends(self, tz: tzinfo) -> str:
        """Until when, in the owner's words."""
        if self.until is None:
            return "until `inboxwatch resume`"
        return f"until {self.until.astimezone(tz):%Y-%m-%d %H:%M}"

    def dump(self) -> str:
        return json.dumps({"since": iso(self.since), "until": iso(self.until), "acks": self.acks})

    @classmethod
    def load(cls, text: str | None) -> Pause | None:
        """The marker's pause; None if there is none, or it cannot be read (see
        :func:`unreadable`: the shell logs that)."""
        if not text:
            return None
        try:
            data = json.loads(text)
            until = data.get("until")
            return cls(
                since=datetime.fromisoformat(data["since"]),
                until=datetime.fromisoformat(until) if until else None,
                acks=bool(data.get("acks", True)),
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            return None


def unreadable(text: str | None) -> bool:
    """A marker is there but holds no pause we can read (a damaged state)."""
    return bool(text) and Pause.load(text) is None


def current(marker: str | None, now: datetime) -> Pause | None:
    """The pause in force at ``now`` (one whose ``--until`` passed is none)."""
    pause = Pause.load(marker)
    return pause if pause is not None and pause.active(now) else None


def ack_held(marker: str | None, now: datetime, tz: tzinfo) -> str:
    """What the new-lead alert says of an acknowledgement queued at ``now`` under the
    pause in ``marker``; "" if none holds it (it goes at once)."""
    pause = current(marker, now)
    if pause is None or not pause.acks:
        return ""
    return f"held by `inboxwatch pause` {pause.ends(tz)}; it goes when the pause ends"
