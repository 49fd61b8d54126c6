"""``inboxwatch digest``: the owner's daily digest on demand.

``--print`` shows it in the terminal (the plain-text part), ``--html FILE`` writes the
HTML part for a browser, ``--send`` mails it to the owner now, through the configured SMTP
server. All three cover the time since the last daily digest (or the last day) up to now
and read the state without writing it: ``--send`` is not the day's digest (the daemon's
still goes at ``digest_time``) and is safe beside a running daemon. The HTML file names
leads, so it is written mode 0600.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from inboxwatch.errors import InboxwatchError

if TYPE_CHECKING:
    from inboxwatch.core.lead import Lead
    from inboxwatch.core.mime import Outgoing
    from inboxwatch.userfiles.config import Config

# The command line imports this module on every run (for ``add_arguments``): the core,
# the store and SMTP are imported inside the command.


def add_arguments(c: argparse.ArgumentParser) -> None:
    what = c.add_mutually_exclusive_group(required=True)
    what.add_argument("--print", action="store_true", help="show it in the terminal")
    what.add_argument("--send", action="store_true", help="mail it to the owner now")
    what.add_argument("--html", type=Path, metavar="FILE", help="write the HTML part to FILE")


def cmd_digest(args: argparse.Namespace) -> int:
    from inboxwatch.core import digest
    from inboxwatch.core.mime import new_message_id
    from inboxwatch.core.settings import Settings
    from inboxwatch.service.commands import load_all, open_state

    cfg, book = load_all(args.config)
    st = Settings.from_config(cfg)
    if args.send and not st.owner:
        raise InboxwatchError("no [owner] address in the config: nobody to send the digest to")
    now = datetime.now(UTC)
    leads: list[Lead] = []
    archived: list[Lead] = []
    since = None
    if cfg.state_path.exists():
        store = open_state(cfg)
        with store.transaction() as state:
            leads = state.leads()
            since = digest.read_at(state.marker(digest.AT_MARKER))
        archived = list(store.archived())  # a command run by hand: reading it is fine
    tasks = digest.tasks_today(leads, book, st, now)
    subject, text, html = digest.build(leads, archived, since, now, st, cfg.timezone, tasks)
    if args.html is not None:
        from inboxwatch.service.private_files import write_private

        write_private(args.html, html)  # leads' names and addresses: 0600, as the state
        print(f"wrote {args.html}")
    elif args.send:
        send(digest.mail(subject, text, html, st, new_message_id(st.me.addr), now), cfg)
        print(f"sent to {st.owner}: {subject}")
    else:
        print(f"{subject}\n\n{text}")
    return 0


def send(out: Outgoing, cfg: Config) -> None:
    """Straight through the configured SMTP server: no outbox, no state written."""
    from inboxwatch.adapters.oauth import credential
    from inboxwatch.adapters.ports import Envelope
    from inboxwatch.adapters.smtp import SmtpSender
    from inboxwatch.core.mime import to_bytes

    env = Envelope(out.message_id, out.from_.addr, out.to.addr, to_bytes(out))
    sender = SmtpSender(cfg.smtp, credential(cfg.smtp))
    result = sender.send([env]).get(env.id)
    if result is None or not result.ok:
        why = result.error if result is not None else "no answer from the sender"
        raise InboxwatchError(f"the digest was not sent to {out.to.addr}: {why}")
