"""``inboxwatch stats``: the figures of :mod:`inboxwatch.core.metrics`, from the state and
its archive, read-only (safe while the daemon runs: its lock is per transaction).

The window is [local midnight of ``--since``, now); by default the last 30 local days,
today included. The rules need not be valid: only the config and the state are read.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

from inboxwatch.core.digest_page import duration
from inboxwatch.core.lead import Lead, iso
from inboxwatch.core.metrics import FirstResponse, ResponseTimes, Stats, compute
from inboxwatch.core.wording import counted
from inboxwatch.errors import ConfigError, Problem

DAYS = 30
#: The longest "leads per day" chart: a --since years back shows the last year's days.
CHART_MAX_DAYS = 366


def since_date(text: str) -> date:
    """``--since``'s argparse type: a calendar date, read in the configured time zone."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a date as YYYY-MM-DD (e.g. 2026-11-01), got {text!r}"
        ) from None


def window_start(since: date | None, now: datetime, tz: tzinfo) -> datetime:
    """Local midnight of ``since``, or of the first of the last ``DAYS`` local days."""
    day = since or now.astimezone(tz).date() - timedelta(days=DAYS - 1)
    return datetime(day.year, day.month, day.day, tzinfo=tz)


def stats(leads: list[Lead], since: date | None, now: datetime, tz: tzinfo) -> Stats:
    start = window_start(since, now, tz)
    if start >= now:
        # A usage error like a malformed date (exit 2), not a failure to count.
        why = f"{since} is not in the past: nothing to count yet"
        raise ConfigError([Problem("command line", "--since", why)])
    # The chart covers the window's days (a --since of yesterday: two), at most a year's.
    days = (now.astimezone(tz).date() - start.date()).days + 1
    return compute(leads, start, now, tz, min(days, CHART_MAX_DAYS))


def cmd_stats(args: argparse.Namespace) -> int:
    # Imported here: the command line imports this module for ``since_date`` on every run.
    from inboxwatch.service.commands import open_state
    from inboxwatch.userfiles.config import load_config

    cfg = load_config(args.config)
    now = datetime.now(UTC)
    leads: list[Lead] = []
    if cfg.state_path.exists():
        store = open_state(cfg)
        with store.transaction() as state:
            leads = state.leads()
        leads += store.archived()
    figures = stats(leads, args.since, now, cfg.timezone)
    nothing = f"nothing yet: no state file at {cfg.state_path} (the daemon has not run)"
    if args.json:
        print(json.dumps(as_json(figures), ensure_ascii=False))
        if not cfg.state_path.exists():  # the zeros are not a count of real leads
            print(nothing, file=sys.stderr)
    elif not cfg.state_path.exists():
        print(nothing)
    else:
        print("\n".join(as_text(figures, cfg.timezone)))
    return 0


# -- JSON -----------------------------------------------------------------------------------


def _times_json(r: ResponseTimes) -> dict[str, Any]:
    return {
        "leads": r.leads,
        "answered": r.answered,
        "not_answered": r.unanswered,
        "median_seconds": r.median_seconds,
        "p90_seconds": r.p90_seconds,
        "within_5min": r.within_5min,
        "within_1h": r.within_1h,
        "share_within_5min": r.share_5min,
        "share_within_1h": r.share_1h,
    }


def _first_json(f: FirstResponse) -> dict[str, Any]:
    return {
        "overall": _times_json(f.overall),
        "by_source": {s: _times_json(r) for s, r in f.by_source.items()},
    }


def as_json(s: Stats) -> dict[str, Any]:
    return {
        "since": iso(s.since),
        "until": iso(s.until),
        "timezone": s.timezone,
        "percentile": "nearest-rank; not answered ranks last (null)",
        "new_leads": s.new_leads,
        "new_by_source": dict(s.new_by_source),
        "first_response": {"acknowledgement": _first_json(s.ack), "person": _first_json(s.person)},
        "answered_only_by_person": s.answered_only_by_person,
        "reply_rate_per_step": [
            {
                "sequence": x.sequence,
                "step": x.step,
                "reached": x.reached,
                "replied": x.replied,
                "rate": x.rate,
            }
            for x in s.steps
        ],
        "first_reply_after_person": s.first_reply_after_person,
        "first_reply_before_any_message": s.first_reply_before_any_message,
        "replies": s.replies,
        "leads_replied": s.leads_replied,
        "ended": dict(s.ended),
        "bounces": s.bounces,
        "opt_outs": s.opt_outs,
        "leads_per_day": [{"date": d.isoformat(), "leads": n} for d, n in s.per_day],
    }


# -- text -----------------------------------------------------------------------------------


def _share(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f}%" if whole else "-"


def response_time(seconds: float | None, leads: int = 1) -> str:
    """A first-response time as ``stats`` and ``leads`` both show it: under 10 s with
    tenths (an acknowledgement takes a fraction of a second, which "0s" hides)."""
    if seconds is not None and seconds < 10:
        return f"{max(seconds, 0.0):.1f}s"
    return duration(seconds, leads, short=True)


def _times_line(label: str, r: ResponseTimes, missing: str) -> str:
    median = response_time(r.median_seconds, r.leads)
    p90 = response_time(r.p90_seconds, r.leads)
    return (
        f"  {label[:16]:16} {r.leads:5} {'lead ' if r.leads == 1 else 'leads'}  median {median:>6}"
        f"  90th {p90:>6}"
        f"  ≤5 min {_share(r.within_5min, r.leads):>4}  ≤1 h {_share(r.within_1h, r.leads):>4}"
        f"  {missing} {r.unanswered}"
    )


def _first_lines(title: str, f: FirstResponse, missing: str) -> list[str]:
    lines = [title, _times_line("all", f.overall, missing)]
    if len(f.by_source) > 1:
        lines += [_times_line(src, r, missing) for src, r in f.by_source.items()]
    return lines


def _counts(d: Mapping[str, int]) -> str:
    return ", ".join(f"{k} {n}" for k, n in d.items()) or "none"


def as_text(s: Stats, tz: tzinfo) -> list[str]:
    lines = [
        f"from {s.since.astimezone(tz):%Y-%m-%d %H:%M} to {s.until.astimezone(tz):%Y-%m-%d %H:%M}"
        f" ({s.timezone})",
        f"new leads: {s.new_leads}" + (f" ({_counts(s.new_by_source)})" if s.new_leads else ""),
    ]
    lines += _first_lines(
        "first response, automatic (arrival → acknowledgement accepted by the SMTP server):",
        s.ack,
        "not sent",
    )
    lines += _first_lines(
        "first response by a person (mail in Sent, or team mail in the thread):",
        s.person,
        "not answered",
    )
    lines.append(f"  answered only by a person: {s.answered_only_by_person}")
    lines.append("reply rate per step (the lead's first reply, after the last message it got):")
    for x in s.steps:
        rate = f"{100 * x.rate:.0f}%" if x.rate is not None else "-"
        lines.append(
            f"  {x.sequence}/{x.step:24} {x.reached:4} reached {x.replied:4} replied {rate:>5}"
        )
    if not s.steps:
        lines.append("  no step sent yet")
    lines.append(
        f"  after a person's message {s.first_reply_after_person}, "
        f"before any message {s.first_reply_before_any_message}"
    )
    lines += [
        f"replies: {s.replies} (from {counted(s.leads_replied, 'lead')})",
        f"sequences ended: {_counts(s.ended)}",
        f"bounces: {s.bounces}",
        f"opt-outs: {s.opt_outs}",
        f"leads per day (last {counted(len(s.per_day), 'day')}):",
    ]
    lines += [f"  {d:%Y-%m-%d %a} {n:4} {'#' * min(n, 60)}".rstrip() for d, n in s.per_day]
    return lines
