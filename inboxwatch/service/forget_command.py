"""`inboxwatch forget ADDRESS`: a person's request to be erased.

Everything the state holds about the address goes: the lead and its timeline, its
archived record, its wake time and acknowledgement, suppression entries, mail for them
not yet sent, and every other row that names them (see
:mod:`inboxwatch.adapters.erasure` for the rules); then the state is written anew, so
that no file of it, the journal included, holds the address. `--keep-suppression`
leaves a hash of the address on the suppression list, so the daemon still never writes
to them; for an address never seen it is the whole request ("never contact me"), so it
is stored and the command succeeds. An address nothing names, without that flag, is an
error (exit 1, one line on stderr): most likely a typo. A backup taken earlier (the
copy an upgrade keeps) is named, and deleted only with `--delete-backups`.

Safe beside the running daemon: it takes the state's lock as `stop` does; the daemon
reads the removals at its next transaction (a compaction makes it reload the files),
and a message it is sending at that moment is not written back when it is accepted.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path

from inboxwatch.adapters.erasure import Erased, normalize
from inboxwatch.adapters.erasure_files import backups_holding, is_state_backup
from inboxwatch.errors import InboxwatchError
from inboxwatch.service.commands import open_state
from inboxwatch.userfiles.config import load_config

#: How each kind of record reads in the report: (one, many).
REMOVED = {
    "lead": ("the lead and its timeline", "leads"),
    "archived": ("its archived record", "archived records"),
    "wake": ("its next scheduled step", "scheduled steps"),
    "ack": ("its acknowledgement record", "acknowledgement records"),
    "suppression": ("its suppression entry", "suppression entries"),
    "outbox": ("a message not yet sent", "messages not yet sent"),
    "notice": ("a notice naming it", "notices naming it"),
    "reject": ("a rejected-message record naming it", "rejected-message records naming it"),
    "own id": ("an own Message-ID naming it", "own Message-IDs naming it"),
}
REDACTED = {
    "sent": (
        "a sent message",
        "sent messages",
        " (kept without recipient or text: the caps count it)",
    ),
    "other lead": ("another lead's record", "other leads' records", ""),
    "other archived": ("another archived record", "other archived records", ""),
    "marker": ("a marker", "markers", ""),
    "suppression reason": ("a suppression reason", "suppression reasons", ""),
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("address", help="the person's email address")
    p.add_argument(
        "--keep-suppression",
        action="store_true",
        help="leave only a hash of the address on the suppression list (never write to them)",
    )
    p.add_argument(
        "--delete-backups",
        action="store_true",
        help="also delete the state's backups that still hold the address",
    )


def _count(n: int, one: str, many: str) -> str:
    return one if n == 1 else f"{n} {many}"


def report(erased: Erased) -> list[str]:
    """What was erased, one line each (the command's output, and the tests' reading)."""
    lines = []
    for key, (one, many) in REMOVED.items():
        if n := erased.removed.get(key, 0):
            lines.append(f"  erased {_count(n, one, many)}")
    for key, (one, many, why) in REDACTED.items():
        if n := erased.redacted.get(key, 0):
            lines.append(f"  took the address out of {_count(n, one, many)}{why}")
    return lines


def cmd_forget(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    address = normalize(args.address)
    if "@" not in address:
        raise InboxwatchError(f"{args.address!r} is not an email address")
    if not cfg.state_path.exists():
        raise InboxwatchError(f"no state file at {cfg.state_path}: nothing is stored")
    erased = open_state(cfg, readonly=False).erase(
        address, datetime.now(UTC), keep_suppression=args.keep_suppression
    )
    backups = backups_holding(cfg.state_path, address)
    if not erased.found and not backups and not erased.suppression:
        # One line, on stderr: most likely a typo in the address. Nothing was stored.
        raise InboxwatchError(
            f"{address} is unknown: no lead or record in {cfg.state_path.parent} names it "
            "(--keep-suppression still puts it on the suppression list)"
        )
    if erased.found:
        print(f"{address}: erased from {cfg.state_path.parent}")
        for line in report(erased):
            print(line)
        print("  the state files were written anew: none of them holds the address any more")
    else:  # only backups name it, or "never contact me" from someone never seen: honoured
        print(f"{address}: nothing stored about this address in {cfg.state_path.parent}")
    if erased.suppression:
        print(
            f"  kept on the suppression list as {erased.suppression} (a hash: the daemon "
            "will never write to this address; `inboxwatch unsuppress` undoes it)"
        )
    _backups(cfg.state_path, backups, args.delete_backups)
    return 0


def _backups(state_path: Path, found: list[Path], delete: bool) -> None:
    """Name what still holds the address; delete the state's own backups if asked."""
    ours = [p for p in found if is_state_backup(state_path, p)]
    others = [p for p in found if p not in ours]
    if ours and delete:
        for path in ours:
            path.unlink()
            print(f"  deleted backup {path} (it held the address)")
    elif ours:
        print("backups taken before this still hold the address (--delete-backups deletes them):")
        for path in ours:
            print(f"  {path}")
    if others:
        print("other files beside the state hold the address (not inboxwatch's; left alone):")
        for path in others:
            print(f"  {path}")
