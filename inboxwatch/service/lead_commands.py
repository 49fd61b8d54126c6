"""The commands about leads: leads, show, stop, resume, unsuppress, and the owner's
pause of all mail to leads (pause, resume without an address). They read the state
while the daemon runs (its lock is per transaction); the others write one transaction
each, then wake the running daemon (:func:`wake_daemon`) so it reads it at once.
`status` is in status_command.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import signal
from collections.abc import Callable
from datetime import UTC, date, datetime, time, tzinfo
from pathlib import Path

from inboxwatch.adapters.ports import State
from inboxwatch.adapters.tinydb_store import TinyDbStore
from inboxwatch.core.actions import Note
from inboxwatch.core.cadence import next_step, next_wake
from inboxwatch.core.lead import Automation, Ended, Lead, iso
from inboxwatch.core.mime import new_message_id
from inboxwatch.core.settings import Settings
from inboxwatch.core.suppression import hashed, is_suppressed
from inboxwatch.core.wording import counted
from inboxwatch.core.world import World
from inboxwatch.errors import ConfigError, InboxwatchError, Problem
from inboxwatch.service.apply import Session
from inboxwatch.service.commands import load_all, open_state, running_pid
from inboxwatch.service.pause import MARKER as PAUSE_MARKER
from inboxwatch.service.pause import Pause, release
from inboxwatch.service.stats_command import response_time
from inboxwatch.userfiles.config import load_config
from inboxwatch.userfiles.rulebook import load_rulebook

log = logging.getLogger("inboxwatch")


def wake_daemon(state_path: Path) -> bool:
    """Ask the daemon running on this state to look at it again now (``SIGUSR1`` only
    wakes it: see ``Daemon.install_signal_handlers``), so a change a command made takes
    effect within a second instead of at its next IDLE renewal. False when none runs,
    or it is another user's process (it then follows when it next wakes, within
    minutes)."""
    pid = running_pid(state_path)
    if pid is None or pid <= 0:
        return False
    try:
        os.kill(pid, signal.SIGUSR1)
    except (ProcessLookupError, PermissionError) as exc:
        log.debug("could not wake the daemon (pid %s): %s", pid, exc)
        return False
    return True


def _fmt_seconds(s: float | None) -> str:
    """As ``stats`` shows a first-response time, so the two agree ("-": none yet)."""
    return response_time(s, leads=0)


def _state(lead: Lead) -> str:
    if lead.automation is Automation.ENDED and lead.ended:
        return f"ended:{lead.ended.value}"
    if lead.automation is Automation.HELD and lead.hold_until:
        return f"held until {lead.hold_until:%Y-%m-%d}"
    return "dormant" if lead.dormant else lead.automation.value


def cmd_leads(args: argparse.Namespace) -> int:
    cfg, book = load_all(args.config)
    st = Settings.from_config(cfg)
    if not cfg.state_path.exists():
        print("no leads yet" if not args.json else "", end="\n" if not args.json else "")
        return 0
    store = open_state(cfg)
    with store.transaction() as state:
        leads = state.leads()
    if args.all:
        leads = [*store.archived(), *leads]
    tz = cfg.timezone
    rows = []
    for lead in sorted(leads, key=lambda x: x.arrived):
        nxt = next_step(lead, book, st)
        row = {
            "address": lead.address,
            "name": lead.name,
            "source": lead.source,
            "automation": _state(lead),
            "conversation": lead.conversation.value,
            "arrived": iso(lead.arrived),
            "first_response_seconds": lead.first_response_seconds,
            "next_step": nxt[0].name if nxt else None,
            "next_at": iso(nxt[1]) if nxt else None,
            "undeliverable": lead.undeliverable,
        }
        rows.append(row)
        if args.json:
            print(json.dumps(row, ensure_ascii=False))
    if not args.json:
        if not rows:
            print("no leads yet")
        for lead, row in zip(sorted(leads, key=lambda x: x.arrived), rows, strict=True):
            when = f"{lead.arrived.astimezone(tz):%Y-%m-%d %H:%M}"
            nxt = next_step(lead, book, st)
            nxt_s = f"{nxt[0].name} {nxt[1].astimezone(tz):%m-%d %H:%M}" if nxt else "-"
            print(
                f"{lead.address:32} {lead.name[:20]:20} {lead.source[:14]:14} "
                f"{row['automation']:18} {lead.conversation.value:12} {when}  "
                f"first reply {_fmt_seconds(lead.first_response_seconds):>6}  next {nxt_s}"
            )
    return 0


def _find(state: State, address: str, archive: TinyDbStore | None = None) -> Lead:
    lead = state.lead(address.strip().lower())
    if lead is None and archive is not None:
        lead = next((x for x in archive.archived() if x.address == address.strip().lower()), None)
    if lead is None:
        raise InboxwatchError(f"no lead {address!r}")
    return lead


def cmd_show(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    store = open_state(cfg)
    with store.transaction() as state:
        lead = _find(state, args.address, archive=store)
    tz = cfg.timezone
    print(f"{lead.name} <{lead.address}>  source {lead.source} (rule {lead.rule})")
    if lead.phone:
        print(f"phone {lead.phone}")
    for key, value in lead.fields.items():
        print(f"{key}: {value[:200]}")
    print(
        f"automation {_state(lead)}; conversation {lead.conversation.value}; "
        f"first response {_fmt_seconds(lead.first_response_seconds)}"
    )
    for ev in lead.events:
        detail = f"  {ev.detail}" if ev.detail else ""
        print(f"  {ev.at.astimezone(tz):%Y-%m-%d %H:%M:%S}  {ev.what}{detail}")
    return 0


def _change(args: argparse.Namespace, change: Callable[[Lead, datetime], Lead]) -> int:
    cfg = load_config(args.config)
    if not cfg.state_path.exists():
        raise InboxwatchError(f"no state file at {cfg.state_path}")
    now = datetime.now(UTC)
    with open_state(cfg, readonly=False).transaction() as state:
        lead = change(_find(state, args.address), now)
        # A stopped lead never wakes; a resumed one needs the rules (and they must be valid).
        wake = None
        if lead.is_active:
            book = load_rulebook(cfg.rules_dir, cfg.templates_dir)
            wake = next_wake(lead, book, Settings.from_config(cfg), now)
        state.put_lead(lead, wake)
    wake_daemon(cfg.state_path)
    print(f"{lead.address}: automation {_state(lead)}")
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    def stop(lead: Lead, now: datetime) -> Lead:
        if not lead.is_active:
            raise InboxwatchError(f"{lead.address}: automation already ended ({_state(lead)})")
        return lead.end(now, Ended.STOPPED, "inboxwatch stop")

    return _change(args, stop)


def cmd_resume(args: argparse.Namespace) -> int:
    if not args.address:
        return resume_all(args)
    cfg = load_config(args.config)
    suppressed: frozenset[str] = frozenset()
    if cfg.state_path.exists():
        with open_state(cfg).transaction() as state:
            suppressed = state.suppressed()

    def resume(lead: Lead, now: datetime) -> Lead:
        if lead.is_active:
            raise InboxwatchError(f"{lead.address}: automation is not stopped ({_state(lead)})")
        if is_suppressed(lead.address, suppressed):
            raise InboxwatchError(
                f"{lead.address} is on the suppression list; run `inboxwatch unsuppress` "
                "first if that was a mistake"
            )
        return dataclasses.replace(lead, automation=Automation.ACTIVE, ended=None).log(
            now, "resumed", "inboxwatch resume"
        )

    return _change(args, resume)


def cmd_unsuppress(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    with open_state(cfg, readonly=False).transaction() as state:
        # A hashed entry (`forget --keep-suppression`) is undone by naming the address.
        removed = state.unsuppress(args.address) | state.unsuppress(hashed(args.address))
    if not removed:
        raise InboxwatchError(f"{args.address} is not on the suppression list")
    wake_daemon(cfg.state_path)
    print(f"{args.address.lower()} removed from the suppression list")
    return 0


# -- pause / resume the whole daemon -------------------------------------------------------
def until_time(value: str, tz: tzinfo) -> datetime:
    """``YYYY-MM-DD`` (the start of that local day) or an ISO date and time."""
    try:
        if len(value) == 10:
            return datetime.combine(date.fromisoformat(value), time(0), tz)
        at = datetime.fromisoformat(value)
    except ValueError:
        raise ConfigError(
            [Problem("command line", "--until", f'expected "YYYY-MM-DD", got {value!r}')]
        ) from None
    return at if at.tzinfo else at.replace(tzinfo=tz)


def cmd_pause(args: argparse.Namespace) -> int:
    """Hold all mail to leads (a state marker the running daemon reads on every tick)."""
    cfg = load_config(args.config)
    now = datetime.now(UTC)
    until = until_time(args.until, cfg.timezone) if args.until else None
    if until is not None and until <= now:
        raise ConfigError([Problem("command line", "--until", f"{args.until} has passed")])
    with open_state(cfg, readonly=False).transaction() as state:
        old = Pause.load(state.marker(PAUSE_MARKER))
        since = old.since if old is not None and old.active(now) else now
        pause = Pause(since, until, cfg.sending.pause_acknowledgements)
        state.set_marker(PAUSE_MARKER, pause.dump())
    wake_daemon(cfg.state_path)  # held before its next message, even one due now
    end = f"until {until.astimezone(cfg.timezone):%Y-%m-%d %H:%M}" if until else "until resumed"
    held = "acknowledgements and follow-ups" if pause.acks else "follow-ups"
    print(
        f"paused {end}: {held} are held; new leads are still recorded and the owner "
        "still gets alerts. `inboxwatch resume` ends it."
    )
    return 0


def resume_all(args: argparse.Namespace) -> int:
    """End a pause: held mail goes at the daemon's next tick; what grew too old meanwhile
    is not sent but listed (here and to the owner)."""
    cfg, book = load_all(args.config)
    now = datetime.now(UTC)
    world = World(book, Settings.from_config(cfg), lambda: new_message_id(cfg.identity.address))
    with open_state(cfg, readonly=False).transaction() as state:
        if Pause.load(state.marker(PAUSE_MARKER)) is None:
            raise InboxwatchError("not paused (to resume one lead: inboxwatch resume ADDRESS)")
        session = Session(state)
        actions = release(session, world, state.queued(), now)
        session.apply(actions, now)
        state.set_marker(PAUSE_MARKER, "")
    stale = [a.text for a in actions if isinstance(a, Note)]
    if wake_daemon(cfg.state_path):
        print("resumed: the running daemon sends the held mail now")
    else:
        print("resumed: held mail goes out the next time the daemon wakes")
    for line in stale:
        print(f"  {line}")
    if stale:
        what = counted(len(stale), "enquiry", "enquiries")
        print(f"the owner gets the list of {what} to answer in person")
    return 0
