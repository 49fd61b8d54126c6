"""`inboxwatch status`: is the daemon alive, and if mail waits, why.

Read beside the running daemon (its lock is per transaction). It answers what an owner
or a monitoring script asks: does it run (and its pid), when did it last hear from the
mail server, is it paused, what waits in the outbox and for what (the pause, a quota,
the caps, sending hours, a retry), which leads wait for a person, and what happens
next. Exit 1 when it is not running, when it has not heard from the mail server for
longer than :func:`silent_after` allows, or a problem is open (a pause is not a problem).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from inboxwatch.adapters.imap import LIVENESS
from inboxwatch.core.actions import Notice
from inboxwatch.core.cadence import next_step
from inboxwatch.core.lead import Conversation, Lead, iso
from inboxwatch.core.queue import Caps, OutboxItem, Purpose, room
from inboxwatch.core.route import UNLISTED
from inboxwatch.core.settings import Settings
from inboxwatch.core.timing import SendingWindow
from inboxwatch.errors import ConfigError
from inboxwatch.service.commands import open_state, running_pid
from inboxwatch.service.outbox import paused_until
from inboxwatch.service.pause import HELD, MARKER, Pause
from inboxwatch.userfiles.config import Config, load_config
from inboxwatch.userfiles.rulebook import load_rulebook

#: The daemon writes this marker (an ISO time) when the mail server answered anything
#: (a read, IDLE's start, renewal or a notice in it, the keep-alive NOOP) ...
HEARD_MARKER = "heard"
#: ... at most this often: a write per answer would be a write per IDLE wake.
HEARD_EVERY = timedelta(minutes=1)


def silent_after(cfg: Config) -> timedelta:
    """How long a healthy daemon can go without a new "heard" marker: a whole wait (the
    IDLE renewal or the poll interval), the keep-alive NOOP that a silent IDLE gets, and
    the minute the marker may lag. With the defaults (IDLE renewed every 240 s) 6 min;
    in practice it is renewed about every 2 min (the keep-alive, or the server's own
    notices). A monitor alerts on ``mail_server_silent`` (or the exit status)."""
    wait = max(cfg.imap.idle_renew_seconds, cfg.imap.poll_seconds)
    return timedelta(seconds=wait + LIVENESS) + HEARD_EVERY


#: Next scheduled steps shown.
NEXT_STEPS = 10


@dataclass(frozen=True)
class Snapshot:
    leads: list[Lead]
    queued: list[OutboxItem]
    notices: list[Notice]
    sent: list[datetime]
    heard: datetime | None
    pause: Pause | None


def read(cfg: Config, now: datetime) -> Snapshot:
    if not cfg.state_path.exists():
        return Snapshot([], [], [], [], None, None)
    with open_state(cfg).transaction() as state:
        heard = state.marker(HEARD_MARKER)
        return Snapshot(
            state.leads(),
            state.queued(),
            state.notices(),
            state.sent_times(now - timedelta(days=1)),
            datetime.fromisoformat(heard) if heard else None,
            Pause.load(state.marker(MARKER)),
        )


def why_waiting(
    item: OutboxItem, now: datetime, free: int, window: SendingWindow, quota: datetime | None
) -> str:
    """The reason one queued message has not gone yet, in the owner's words."""
    tz = window.tz
    if item.error == HELD:
        return "held by inboxwatch pause"
    if quota is not None:
        return f"provider's sending limit: paused until {quota.astimezone(tz):%Y-%m-%d %H:%M}"
    if item.next_try > now:
        at = f"{item.next_try.astimezone(tz):%m-%d %H:%M}"
        if item.attempts or item.error:
            return f"retry {item.attempts + 1} at {at}: {item.error or 'deferred'}"
        return f"scheduled for {at}"
    if item.purpose is Purpose.FOLLOWUP and not window.is_open(now):
        return f"outside sending hours (they open {window.next_open(now).astimezone(tz):%a %H:%M})"
    if free <= 0:
        return "send cap reached ([sending] max_per_hour / max_per_day)"
    return "due now"


def report(cfg: Config, snap: Snapshot, now: datetime, pid: int | None) -> dict[str, Any]:
    st = Settings.from_config(cfg)
    s = cfg.sending
    free = room(snap.sent, now, Caps(s.max_per_hour, s.max_per_day))
    quota = paused_until(snap.notices, now)
    outbox = [
        {
            "purpose": i.purpose.value,
            "to": i.rcpt,
            "lead": i.lead or None,
            "queued": iso(i.created),
            "why": why_waiting(i, now, free, st.window, quota),
        }
        for i in snap.queued
    ]
    by_purpose: dict[str, int] = {}
    for item in snap.queued:
        by_purpose[item.purpose.value] = by_purpose.get(item.purpose.value, 0) + 1
    oldest = min((i.created for i in snap.queued), default=None)
    active = [x for x in snap.leads if x.is_active]
    waiting = [x for x in snap.leads if x.conversation is Conversation.WAITING_US]
    steps: list[dict[str, Any]] = []
    pause = snap.pause if snap.pause is not None and snap.pause.active(now) else None
    try:
        book = load_rulebook(cfg.rules_dir, cfg.templates_dir)
    except ConfigError:
        book = None  # `check` names the problem; the status still answers
    if book is not None:
        for lead in active:
            if (nxt := next_step(lead, book, st)) is not None:
                step, at = nxt
                # A pause holds mail to leads (the acknowledgement, day 0, only if it
                # says so), not the owner's call and text tasks.
                held = (
                    pause is not None
                    and step.is_email
                    and (pause.acks or step.day > 0)
                    and (pause.until is None or at < pause.until)
                )
                steps.append({"lead": lead.address, "step": step.name, "at": at, "held": held})
    steps.sort(key=lambda x: x["at"])
    limit = silent_after(cfg)
    heard_ago = (now - snap.heard).total_seconds() if snap.heard else None
    return {
        "running": pid is not None,
        "pid": pid,
        "state": str(cfg.state_path),
        "last_heard": iso(snap.heard),
        "last_heard_seconds": heard_ago,
        # Running, and the server quiet for longer than a healthy daemon ever is.
        "mail_server_silent": pid is not None
        and heard_ago is not None
        and heard_ago > limit.total_seconds(),
        "silent_after_seconds": limit.total_seconds(),
        "paused": None
        if pause is None
        else {"since": iso(pause.since), "until": iso(pause.until), "acknowledgements": pause.acks},
        "leads_active": len(active),
        "leads_waiting_for_us": len(waiting),
        "waiting_for_a_person": [
            {"lead": x.address, "name": x.name, "since": iso(x.events[-1].at if x.events else None)}
            for x in waiting
        ],
        "queued": by_purpose,
        "oldest_queued_seconds": (now - oldest).total_seconds() if oldest else None,
        "outbox": outbox,
        "next_steps": [{**x, "at": iso(x["at"])} for x in steps[:NEXT_STEPS]],
        "problems": [_notice(n) for n in snap.notices if not n.key.startswith(UNLISTED)],
        # For the owner to read, not a fault of the daemon: a monitor must not page for a
        # forged form notification (it stays listed until its sender is answered or
        # forgotten; see core/route.py).
        "notes": [_notice(n) for n in snap.notices if n.key.startswith(UNLISTED)],
    }


def _notice(n: Notice) -> dict[str, Any]:
    return {"key": n.key, "text": n.text, "since": iso(n.since), "until": iso(n.until)}


def _ago(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    if seconds < 120:
        return f"{seconds:.0f} s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.1f} h ago"


def _local(value: str | None, cfg: Config) -> str:
    return (
        f"{datetime.fromisoformat(value).astimezone(cfg.timezone):%Y-%m-%d %H:%M}" if value else ""
    )


def cmd_status(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    now = datetime.now(UTC)
    pid = running_pid(cfg.state_path)
    rep = report(cfg, read(cfg, now), now, pid)
    healthy = pid is not None and not rep["problems"] and not rep["mail_server_silent"]
    if args.json:
        print(json.dumps(rep, ensure_ascii=False))
        return 0 if healthy else 1
    print("daemon: " + (f"running (pid {pid})" if pid is not None else "not running"))
    heard = rep["last_heard"]
    print(
        f"mail server: last heard {_ago(rep['last_heard_seconds'])}"
        + (f" ({_local(heard, cfg)})" if heard else "")
        + (
            f": too long (a running daemon hears from it at least every "
            f"{rep['silent_after_seconds'] / 60:.0f} min)"
            if rep["mail_server_silent"]
            else ""
        )
    )
    if (p := rep["paused"]) is not None:
        end = f"until {_local(p['until'], cfg)}" if p["until"] else "until `inboxwatch resume`"
        print(f"paused since {_local(p['since'], cfg)}, {end}: mail to leads is held")
    print(
        f"leads: {rep['leads_active']} in a sequence, "
        f"{rep['leads_waiting_for_us']} waiting for a person"
    )
    for w in rep["waiting_for_a_person"]:
        print(f"  waiting: {w['name'] or '-'} <{w['lead']}> since {_local(w['since'], cfg)}")
    waits = ", ".join(f"{n} {p}" for p, n in sorted(rep["queued"].items())) or "nothing"
    age = rep["oldest_queued_seconds"]
    print(f"outbox: {waits}" + (f" (oldest {_ago(age).replace(' ago', '')})" if age else ""))
    for o in rep["outbox"]:
        print(f"  {o['purpose']} to {o['to']}: {o['why']}")
    for x in rep["next_steps"]:
        held = " (held by the pause)" if x.get("held") else ""
        print(f"next: {_local(x['at'], cfg)} {x['step']} for {x['lead']}{held}")
    for n in rep["problems"]:
        until = f"; expected over by {_local(n['until'], cfg)}" if n["until"] else ""
        print(f"problem since {_local(n['since'], cfg)}: {n['text']}{until}")
    if not rep["problems"]:
        print("problems: none")
    for n in rep["notes"]:
        print(f"note since {_local(n['since'], cfg)}: {n['text']}")
    return 0 if healthy else 1
