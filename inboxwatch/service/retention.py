"""``[state] retention_days``: archived leads older than that are deleted, once a day.

Why here and not at start-up: the archive is history that grows with the years, and the
daemon never loads it to start (only the digest reads it, once a day). The purge streams
it through once a day, at the first tick of a new (UTC) day, and rewrites it only when
a lead is old enough to go; a marker in the state remembers the day, so a restart does
not purge twice. A lead's age is counted from when it closed (its "automation ended"
event), not from when it arrived.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from inboxwatch.adapters.ports import StateStore

log = logging.getLogger("inboxwatch")
#: The state marker holding the (UTC) day of the last purge.
MARKER = "retention"


def purge_due(store: StateStore, days: int, now: datetime) -> int:
    """Purge the archive if ``days`` is set and it was not purged today; how many went."""
    if days <= 0:
        return 0
    today = now.astimezone(UTC).date().isoformat()
    with store.transaction() as state:
        if state.marker(MARKER) == today:
            return 0
        try:
            gone = store.purge_archive(now - timedelta(days=days))
        except OSError as exc:  # a full disk must not fail every tick: tomorrow again
            log.warning("retention: the archive was not purged (%s); trying again tomorrow", exc)
            gone = 0
        state.set_marker(MARKER, today)
    if gone:
        log.info("retention: %d archived lead(s) closed more than %d days ago deleted", gone, days)
    return gone
