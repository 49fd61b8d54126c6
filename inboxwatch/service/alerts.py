"""The owner's alert command: for when mail itself is what broke.

``[owner] alert_command`` gets each notice (sending refused, a quota, the mailbox gone)
on stdin, once per problem: a webhook with curl, a chat notifier, a pager. It must not
be able to stop the daemon: it runs with a time limit, and a failure is only logged.
"""

from __future__ import annotations

import logging
import shlex
import subprocess

from inboxwatch.core.actions import Notice
from inboxwatch.core.lead import iso

log = logging.getLogger("inboxwatch")
#: An alert command taking longer than this is abandoned (the daemon has work to do).
TIMEOUT = 15.0


def alert_text(notice: Notice, mailbox: str) -> str:
    lines = [f"inboxwatch for {mailbox}: {notice.text}", f"since {iso(notice.since)}"]
    if notice.until is not None:
        lines.append(f"expected to be over by {iso(notice.until)}")
    lines.append(f"({notice.key}; `inboxwatch status` shows what is open)")
    return "\n".join(lines) + "\n"


def run_alert_command(command: str, notice: Notice, mailbox: str) -> bool:
    """Run ``command`` with the alert on stdin; True if it exited 0."""
    try:
        done = subprocess.run(
            shlex.split(command),
            input=alert_text(notice, mailbox),
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
    except (OSError, ValueError, subprocess.TimeoutExpired) as exc:
        log.warning("[owner] alert_command could not run: %s", exc)
        return False
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-1:] or [""]
        log.warning("[owner] alert_command exited %d: %s", done.returncode, tail[0])
        return False
    return True
