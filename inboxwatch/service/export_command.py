"""`inboxwatch export [--json|--csv]`: every lead, active and archived, with its timeline.

For the owner's own records, a move to another tool, or a person's request to see what
is kept about them (with ``--lead ADDRESS``). Read-only and safe beside a running daemon
(the state is read through the store, the archive as the store keeps it).

JSON is one document: ``{"exported": ..., "leads": [lead, ...]}``, each lead as the
state keeps it (``Lead.to_dict``: arrival, source, rule, fields, automation and
conversation, first response, steps done, ``events`` oldest first). CSV is one row per
timeline event, the lead's main columns repeated, for a spreadsheet. A file written with
``-o`` is mode 0600, as the state is.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import IO, Any

from inboxwatch.core.lead import Lead, iso
from inboxwatch.service.commands import open_state
from inboxwatch.service.private_files import open_private
from inboxwatch.userfiles.config import load_config

CSV_COLUMNS = (
    "address",
    "name",
    "phone",
    "source",
    "rule",
    "arrived",
    "automation",
    "ended",
    "conversation",
    "first_response",
    "archived",
    "event_at",
    "event",
    "detail",
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="one JSON document (the default)")
    fmt.add_argument("--csv", action="store_true", help="one row per timeline event")
    p.add_argument("--lead", metavar="ADDRESS", help="only this person's lead")
    p.add_argument("--output", "-o", metavar="FILE", help="write here instead of stdout")


def all_leads(args: argparse.Namespace) -> list[tuple[Lead, bool]]:
    """(lead, archived) for every lead, oldest arrival first; [] without a state file."""
    cfg = load_config(args.config)
    if not cfg.state_path.exists():
        return []
    store = open_state(cfg)
    with store.transaction() as state:
        active = state.leads()
    rows = [(x, True) for x in store.archived()] + [(x, False) for x in active]
    if args.lead:
        rows = [(x, a) for x, a in rows if x.address == args.lead.strip().lower()]
    return sorted(rows, key=lambda r: r[0].arrived)


def write_json(rows: Iterable[tuple[Lead, bool]], out: IO[str]) -> None:
    leads = [{**lead.to_dict(), "archived": archived} for lead, archived in rows]
    doc = {"exported": iso(datetime.now(UTC)), "leads": leads}
    json.dump(doc, out, ensure_ascii=False, indent=1)
    out.write("\n")


def write_csv(rows: Iterable[tuple[Lead, bool]], out: IO[str]) -> None:
    writer = csv.DictWriter(out, CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for lead, archived in rows:
        base: dict[str, Any] = {
            "address": lead.address,
            "name": lead.name,
            "phone": lead.phone,
            "source": lead.source,
            "rule": lead.rule,
            "arrived": iso(lead.arrived),
            "automation": lead.automation.value,
            "ended": lead.ended.value if lead.ended else "",
            "conversation": lead.conversation.value,
            "first_response": iso(lead.first_response) or "",
            "archived": "yes" if archived else "no",
        }
        for event in lead.events or ():
            writer.writerow(
                {**base, "event_at": iso(event.at), "event": event.what, "detail": event.detail}
            )
        if not lead.events:
            writer.writerow(base)


def cmd_export(args: argparse.Namespace) -> int:
    rows = all_leads(args)
    write = write_csv if args.csv else write_json
    if args.output:
        with open_private(args.output) as fh:  # every lead's personal data: 0600
            write(rows, fh)
        print(f"{args.output}: {len(rows)} leads", file=sys.stderr)
    else:
        write(rows, sys.stdout)
    return 0
