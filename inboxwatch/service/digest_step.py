"""The owner's daily digest as a step of the daemon's tick (what goes in it, and when,
is the core's: :mod:`inboxwatch.core.digest`).

One digest per sending day, even across restarts: it is queued in the same transaction
as the day's marker. The archive is read only here, once a day: its closed leads count
in the 30-day figures. A digest that cannot be built (a bug) is logged and tried again
the next day, never on every tick, and never stops the inbox.
"""

from __future__ import annotations

import logging
from datetime import date, datetime
from typing import TYPE_CHECKING

from inboxwatch.core import digest, route
from inboxwatch.core.actions import Note, Queue
from inboxwatch.core.letters import Send
from inboxwatch.errors import TransientError
from inboxwatch.service.apply import Session

if TYPE_CHECKING:
    from inboxwatch.service.daemon import Daemon

log = logging.getLogger("inboxwatch")


class DigestStep:
    def __init__(self) -> None:
        #: The local day whose digest failed to build (a bug): not tried again that day.
        self.failed: date | None = None

    def run(self, daemon: Daemon, now: datetime) -> None:
        """Queue the digest if it is due at ``now``."""
        st, store = daemon.settings, daemon.store
        today = now.astimezone(st.window.tz).date()
        if not st.digest or self.failed == today:
            return
        with store.transaction() as state:
            last = digest.read_day(state.marker(digest.DAY_MARKER))
            if last is None:  # a first start: from the next digest on time
                last = digest.first_day(now, st)
                state.set_marker(digest.DAY_MARKER, last.isoformat())
        if not digest.due(last, now, st):
            return
        try:
            archived = list(store.archived())
            with store.transaction() as state:
                if not digest.due(digest.read_day(state.marker(digest.DAY_MARKER)), now, st):
                    return
                since = digest.read_at(state.marker(digest.AT_MARKER))
                leads = state.leads()
                tasks = digest.tasks_today(leads, daemon.book, st, now)
                subject, text, html = digest.build(
                    leads, archived, since, now, st, st.window.tz, tasks
                )
                out = digest.mail(subject, text, html, st, daemon.ids(), now)
                item = route.queue_item(Send(out), now)
                note = Note(f"daily digest queued for {st.owner}: {subject}")
                session = Session(state, daemon.alert)
                daemon.emit("applied", actions=session.apply([Queue(item), note], now))
                state.set_marker(digest.DAY_MARKER, today.isoformat())
                state.set_marker(digest.AT_MARKER, digest.marker_of(now))
        except (OSError, TransientError):
            raise  # the store or the disk: the tick fails and is tried again, as any
        except Exception:
            # A bug must not stop the inbox: log it, and try again tomorrow, not every tick.
            log.exception("the daily digest could not be made; trying again tomorrow")
            self.failed = today
