"""The owner's daily digest written out: plain text and HTML (see :mod:`inboxwatch.core.digest`
for when it goes and what it says).

The HTML is for mail clients: tables and inline styles only; no images, no remote
references, no scripts; every string from a lead escaped; the leads-per-day chart drawn
with table cells, so it shows with images blocked.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, tzinfo
from typing import TYPE_CHECKING

from inboxwatch.core.lead import Lead
from inboxwatch.core.metrics import FirstResponse, ResponseTimes
from inboxwatch.core.mime import clean_header
from inboxwatch.core.wording import counted

if TYPE_CHECKING:
    from inboxwatch.core.digest import Digest, Task

#: Rows shown per list; the rest is counted.
MAX_ROWS = 50


# -- writing -------------------------------------------------------------------------------


#: Unit words: the digest's ("5 min") and the terminal tables' short ones ("5m").
_UNITS = {False: (" s", " min", " h", " days"), True: ("s", "m", "h", "d")}


def duration(seconds: float | None, leads: int = 1, short: bool = False) -> str:
    """``never``: the percentile falls on a lead nobody answered (yet)."""
    if seconds is None:
        return "-" if not leads else "never"
    sec, mins, hours, days = _UNITS[short]
    if seconds < 120:
        return f"{seconds:.0f}{sec}"
    if seconds < 7200:
        return f"{seconds / 60:.0f}{mins}"
    if seconds < 172800:
        return f"{seconds / 3600:.1f}{hours}"
    return f"{seconds / 86400:.1f}{days}"


def waited(seconds: float) -> str:
    minutes = int(max(0.0, seconds) // 60)
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    return f"{hours} h {mins} min" if hours else f"{mins} min"


def share(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f}%" if whole else "-"


def counts(d: Mapping[str, int]) -> str:
    return ", ".join(f"{k.replace('_', ' ')} {n}" for k, n in d.items()) or "none"


def who(lead: Lead) -> str:
    name = clean_header(lead.name, 80)
    return f"{name} <{lead.address}>" if name else lead.address


def _when(t: datetime, tz: tzinfo) -> str:
    return f"{t.astimezone(tz):%a %d %b %H:%M}"


def subject(d: Digest) -> str:
    """The day's counts, as the body lists them: every task of TODAY'S TASKS counts,
    those already handed over today too (the call is still the owner's to make)."""
    day = d.now.astimezone(d.tz)
    trial = " (time-lapse)" if d.simulated else ""
    tasks = len(d.tasks)
    return (
        f"Digest {day:%a %d %b}{trial}: {len(d.waiting)} waiting for you, "
        f"{d.period.new_leads} new lead{'' if d.period.new_leads == 1 else 's'}, "
        f"{tasks} task{'' if tasks == 1 else 's'} for today"
    )


def _times_row(label: str, r: ResponseTimes, missing: str) -> tuple[str, ...]:
    return (
        label,
        str(r.leads),
        duration(r.median_seconds, r.leads),
        duration(r.p90_seconds, r.leads),
        share(r.within_5min, r.leads),
        share(r.within_1h, r.leads),
        f"{r.unanswered} {missing}",
    )


def _response_rows(f: FirstResponse, missing: str) -> list[tuple[str, ...]]:
    rows = [_times_row("all", f.overall, missing)]
    rows += [_times_row(f"source: {src}", r, missing) for src, r in f.by_source.items()]
    return rows


def _response_tables(d: Digest) -> list[tuple[str, list[tuple[str, ...]]]]:
    return [
        (
            "Acknowledgement, new leads since the last digest",
            _response_rows(d.period.ack, "not sent"),
        ),
        (
            "By a person, new leads since the last digest",
            _response_rows(d.period.person, "not answered"),
        ),
        ("Acknowledgement, last 30 days", _response_rows(d.month.ack, "not sent")),
        ("By a person, last 30 days", _response_rows(d.month.person, "not answered")),
    ]


RESPONSE_HEAD = ("", "leads", "median", "90th", "≤5 min", "≤1 h", "not answered")


def _task_line(t: Task, tz: tzinfo) -> str:
    phone = clean_header(t.lead.phone, 40) or "no phone number"
    state = f"handed to you {_when(t.at, tz)}" if t.done else f"due {_when(t.at, tz)}"
    return f"{t.channel} {who(t.lead)}, {phone} ({t.step}, {state})"


def text(d: Digest) -> list[str]:
    tz, p, m = d.tz, d.period, d.month
    lines = [
        f"Daily digest{' for ' + d.name if d.name else ''}, {d.now.astimezone(tz):%A %d %B %Y}",
        f"Covers {_when(d.since, tz)} to {_when(d.now, tz)} ({p.timezone})"
        + (" - a time-lapse trial" if d.simulated else ""),
        "",
        f"WAITING FOR YOU ({len(d.waiting)}), oldest first:",
    ]
    for w in d.waiting[:MAX_ROWS]:
        subj = clean_header(w.lead.subject, 80)
        lines.append(
            f"  {waited((d.now - w.since).total_seconds()):>12}  {who(w.lead)}"
            f" ({w.lead.source})" + (f' "{subj}"' if subj else "")
        )
    if len(d.waiting) > MAX_ROWS:
        lines.append(f"  ... and {len(d.waiting) - MAX_ROWS} more")
    if not d.waiting:
        lines.append("  nobody")
    lines += ["", f"TODAY'S TASKS ({len(d.tasks)}):"]
    lines += [f"  {_task_line(t, tz)}" for t in d.tasks[:MAX_ROWS]]
    if len(d.tasks) > MAX_ROWS:
        lines.append(f"  ... and {len(d.tasks) - MAX_ROWS} more")
    if not d.tasks:
        lines.append("  none")
    lines += [
        "",
        "SINCE THE LAST DIGEST:",
        f"  new leads: {p.new_leads}" + (f" ({counts(p.new_by_source)})" if p.new_leads else ""),
        f"  replies: {p.replies} (from {counted(p.leads_replied, 'lead')})",
        f"  sequences ended: {counts(p.ended)}",
        f"  bounces: {p.bounces}",
        f"  opt-outs: {p.opt_outs}",
        "",
        "FIRST RESPONSE (median, 90th percentile, share within 5 min and 1 h):",
    ]
    for title, rows in _response_tables(d):
        lines.append(f"  {title}:")
        for r in rows:
            lines.append(
                f"    {r[0][:24]:24} {r[1]:>4} leads  median {r[2]:>8}  90th {r[3]:>8}"
                f"  ≤5 min {r[4]:>4}  ≤1 h {r[5]:>4}  {r[6]}"
            )
    lines.append(f"  answered only by a person (30 days): {m.answered_only_by_person}")
    lines += ["", "REPLY RATE PER STEP (leads of the last 30 days; first reply, last message):"]
    for x in m.steps:
        rate = f"{100 * x.rate:.0f}%" if x.rate is not None else "-"
        lines.append(
            f"  {x.sequence}/{x.step:24} {x.reached:4} reached {x.replied:4} replied {rate:>5}"
        )
    if not m.steps:
        lines.append("  no step sent yet")
    lines.append(
        f"  after a person's message {m.first_reply_after_person},"
        f" before any message {m.first_reply_before_any_message}"
    )
    lines += ["", f"LEADS PER DAY (last {len(p.per_day)} days):"]
    lines += [f"  {day:%a %d %b} {n:4} {'#' * min(n, 60)}".rstrip() for day, n in p.per_day]
    return lines


# -- HTML: tables and inline styles, as mail clients want them ------------------------------

_E = html.escape
FONT = "font-family:Arial,Helvetica,sans-serif"
H2 = f"{FONT};font-size:16px;margin:20px 0 6px 0;color:#111827"
CELL = "padding:3px 8px;border-bottom:1px solid #e5e7eb;text-align:left;vertical-align:top"
NUM = "padding:3px 8px;border-bottom:1px solid #e5e7eb;text-align:right;white-space:nowrap"
BAR = "#2563eb"


def _table(head: Sequence[str], rows: Iterable[Sequence[str]], numeric_from: int = 1) -> str:
    """A table of plain strings (escaped here)."""
    parts = [
        '<table role="presentation" cellpadding="0" cellspacing="0" border="0"'
        f' style="border-collapse:collapse;{FONT};font-size:13px">'
    ]
    if head:
        cells = "".join(
            f'<th style="{NUM if i >= numeric_from else CELL};color:#6b7280;'
            f'font-weight:normal">{_E(h)}</th>'
            for i, h in enumerate(head)
        )
        parts.append(f"<tr>{cells}</tr>")
    for row in rows:
        cells = "".join(
            f'<td style="{NUM if i >= numeric_from else CELL}">{_E(c)}</td>'
            for i, c in enumerate(row)
        )
        parts.append(f"<tr>{cells}</tr>")
    parts.append("</table>")
    return "".join(parts)


def _para(s: str) -> str:
    return f'<p style="{FONT};font-size:13px;margin:4px 0;color:#374151">{_E(s)}</p>'


def _h2(s: str) -> str:
    return f'<h2 style="{H2}">{_E(s)}</h2>'


def _chart(per_day: Sequence[tuple[date, int]]) -> str:
    """Leads per day as horizontal bars of table cells: no image, so it shows when images
    are blocked, and a bgcolor beside the style for clients that drop CSS backgrounds."""
    top = max((n for _, n in per_day), default=0)
    rows = []
    for day, n in per_day:
        width = max(1, round(100 * n / top)) if n and top else 0
        bar = (
            f'<td width="{width}%" bgcolor="{BAR}" style="width:{width}%;background:{BAR};'
            'height:12px;font-size:1px;line-height:1px">&nbsp;</td>'
            if width
            else ""
        )
        rest = (
            f'<td width="{100 - width}%" style="font-size:1px;line-height:1px">&nbsp;</td>'
            if width < 100
            else ""
        )
        rows.append(
            f'<tr><td style="{FONT};font-size:12px;white-space:nowrap;padding:1px 8px 1px 0;'
            f'color:#374151">{_E(f"{day:%a %d %b}")}</td>'
            '<td width="100%" style="width:100%;padding:1px 0">'
            '<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0"'
            f' style="width:100%;border-collapse:collapse"><tr>{bar}{rest}</tr></table></td>'
            f'<td style="{FONT};font-size:12px;text-align:right;padding:1px 0 1px 8px">{n}</td>'
            "</tr>"
        )
    return (
        '<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0"'
        ' style="width:100%;max-width:560px;border-collapse:collapse">' + "".join(rows) + "</table>"
    )


def page(d: Digest) -> str:
    tz, p, m = d.tz, d.period, d.month
    title = f"Daily digest{' for ' + d.name if d.name else ''}"
    body: list[str] = [
        f'<h1 style="{FONT};font-size:20px;margin:0 0 4px 0;color:#111827">{_E(title)}</h1>',
        _para(
            f"{d.now.astimezone(tz):%A %d %B %Y}: covers {_when(d.since, tz)} to"
            f" {_when(d.now, tz)} ({p.timezone})" + (" - a time-lapse trial" if d.simulated else "")
        ),
        _h2(f"Waiting for you ({len(d.waiting)}), oldest first"),
    ]
    if d.waiting:
        body.append(
            _table(
                ("waiting", "lead", "source", "subject"),
                (
                    (
                        waited((d.now - w.since).total_seconds()),
                        who(w.lead),
                        w.lead.source,
                        clean_header(w.lead.subject, 120),
                    )
                    for w in d.waiting[:MAX_ROWS]
                ),
                numeric_from=99,
            )
        )
        if len(d.waiting) > MAX_ROWS:
            body.append(_para(f"... and {len(d.waiting) - MAX_ROWS} more"))
    else:
        body.append(_para("Nobody: every lead has an answer."))
    body.append(_h2(f"Today's tasks ({len(d.tasks)})"))
    if d.tasks:
        body.append(
            _table(
                ("task", "lead", "phone", "step", "when"),
                (
                    (
                        t.channel,
                        who(t.lead),
                        clean_header(t.lead.phone, 40) or "-",
                        t.step,
                        ("handed to you " if t.done else "due ") + _when(t.at, tz),
                    )
                    for t in d.tasks[:MAX_ROWS]
                ),
                numeric_from=99,
            )
        )
        if len(d.tasks) > MAX_ROWS:
            body.append(_para(f"... and {len(d.tasks) - MAX_ROWS} more"))
    else:
        body.append(_para("No calls or texts due today."))
    new = f"{p.new_leads}" + (f" ({counts(p.new_by_source)})" if p.new_leads else "")
    body += [
        _h2("Since the last digest"),
        _table(
            (),
            (
                ("new leads", new),
                ("replies", f"{p.replies} (from {counted(p.leads_replied, 'lead')})"),
                ("sequences ended", counts(p.ended)),
                ("bounces", str(p.bounces)),
                ("opt-outs", str(p.opt_outs)),
            ),
            numeric_from=99,
        ),
        _h2("First response"),
    ]
    for title_, rows in _response_tables(d):
        body.append(_para(title_))
        body.append(_table(RESPONSE_HEAD, rows))
    body.append(_para(f"Answered only by a person (30 days): {m.answered_only_by_person}"))
    body.append(_h2("Reply rate per step (leads of the last 30 days)"))
    if m.steps:
        body.append(
            _table(
                ("step", "reached", "replied", "rate"),
                (
                    (
                        f"{x.sequence}/{x.step}",
                        str(x.reached),
                        str(x.replied),
                        f"{100 * x.rate:.0f}%" if x.rate is not None else "-",
                    )
                    for x in m.steps
                ),
            )
        )
    else:
        body.append(_para("No step sent yet."))
    body.append(
        _para(
            f"First reply after a person's message: {m.first_reply_after_person};"
            f" before any message: {m.first_reply_before_any_message}."
        )
    )
    body += [_h2(f"Leads per day, last {len(p.per_day)} days"), _chart(p.per_day)]
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_E(title)}</title></head>"
        '<body style="margin:0;padding:16px;background:#ffffff;color:#111827">'
        '<div style="max-width:720px">' + "\n".join(body) + "</div></body></html>\n"
    )
