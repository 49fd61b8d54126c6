"""The owner's daily digest: when it is due, and what it says. Pure: ``now`` comes in.

**When.** One digest per *sending day* (``[sending] days``, holidays excluded: the
business's working days), meant to arrive at ``[owner] digest_time`` local time:

- on time: the first tick at or after digest_time (the daemon wakes for it, see
  :func:`next_at`), up to :data:`GRACE` late, whatever the sending hours (the owner chose
  the time; sending hours are there to be polite to leads);
- late (inboxwatch was down or busy then): at the next moment inside sending hours *that
  day*. A day whose sending hours are over without a digest has none; the next one covers
  the whole gap, since every digest covers the time since the previous digest;
- not on a first start after the day's digest time: nothing was missed, so the first
  digest is the next one on time (:func:`first_day`);
- in a time-lapse (``simulated``) a missed day's digest goes at the next tick, whatever
  the hour: there a real hiccup of a fraction of a second is hours of simulated time, and
  would otherwise cost whole days' digests;
- never twice a day: the shell stores the local date of the last digest (marker
  :data:`DAY_MARKER`) in the same transaction that queues it, so a restart around the
  digest time cannot send a second one.

Local times are wall-clock times in the business's zone: on the day the clocks go
forward, a digest_time inside the gap is the first instant the clock reads at least that
time; on the day they go back, the first of the two instants.

**What.** :func:`build` gives the subject, the plain text and the HTML (inline styles
only; no images, no remote references, no scripts; every string from a lead escaped),
from the leads' stored history through :mod:`inboxwatch.core.metrics`:

- leads waiting for a person, oldest first, and how long they have waited (since their
  enquiry or their latest reply);
- today's tasks: call/text steps due today (or overdue), and those already handed to the
  owner today, with phone numbers where known;
- since the last digest: new leads by source, replies, sequences ended by reason,
  bounces, opt-outs, and the first-response times of those new leads;
- over the last 30 days: first-response times overall and per source, the reply rate per
  step, and a chart of leads per day drawn with table cells (it shows with images off).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo

from inboxwatch.core.cadence import pending_steps, step_due
from inboxwatch.core.digest_page import page, subject, text
from inboxwatch.core.lead import Conversation, Lead, iso
from inboxwatch.core.message import Address
from inboxwatch.core.metrics import Stats, compute
from inboxwatch.core.mime import Outgoing
from inboxwatch.core.settings import Settings
from inboxwatch.core.timing import _wall_to_utc
from inboxwatch.userfiles.rulebook import RuleBook

#: State markers: the local date of the last digest, and when it was made (ISO, UTC).
DAY_MARKER = "digest_day"
AT_MARKER = "digest_at"
#: How late a digest may still go outside sending hours (a slow tick, a quick restart).
GRACE = timedelta(minutes=30)
#: The window of the 30-day figures and the chart.
DAYS = 30
PURPOSE = "digest"


# -- when ----------------------------------------------------------------------------------


def _scheduled(d: date, at: time, st: Settings) -> datetime:
    return _wall_to_utc(d, at, st.window.tz, snap_gap=True)


def next_at(last_day: date | None, now: datetime, st: Settings) -> datetime | None:
    """When the next digest goes: ``<= now`` means due now; None: never (switched off)."""
    if not st.digest:
        return None
    window = st.window
    today = now.astimezone(window.tz).date()
    if st.simulated:  # a time-lapse: a missed sending day's digest goes now (see above)
        for i in range(8 + len(window.holidays)):
            d = today - timedelta(days=i)
            if last_day is not None and d <= last_day:
                break
            if window.is_sending_day(d) and _scheduled(d, st.digest_time, st) <= now:
                return now
    for i in range(8 + len(window.holidays)):
        d = today + timedelta(days=i)
        if (last_day is not None and d <= last_day) or not window.is_sending_day(d):
            continue
        at = _scheduled(d, st.digest_time, st)
        if at > now:
            return at
        if now < at + GRACE:
            return now  # on time (or nearly)
        opens = window.next_open(now)  # late: inside sending hours, the same day only
        if opens.astimezone(window.tz).date() == d:
            return opens
    return None


def first_day(now: datetime, st: Settings) -> date:
    """The day marker a first start begins with: nothing was missed before inboxwatch ran,
    so a start after today's digest time (and its grace) waits for tomorrow's, and a start
    before it (or just at it) has today's."""
    today = now.astimezone(st.window.tz).date()
    if now >= _scheduled(today, st.digest_time, st) + GRACE:
        return today
    return today - timedelta(days=1)


def due(last_day: date | None, now: datetime, st: Settings) -> bool:
    """Is the day's digest due at ``now``? (``last_day``: the local date of the last one.)"""
    at = next_at(last_day, now, st)
    return at is not None and at <= now


def cut(now: datetime) -> datetime:
    """Where a digest made at ``now`` ends: on the state's grid (times are stored to the
    millisecond, :func:`~inboxwatch.core.lead.iso`), so that an event is in exactly one
    digest whether its lead was read from memory or from the file. An event of the
    digest's own tick (at ``now``) is in the next one."""
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def marker_of(now: datetime) -> str:
    """The :data:`AT_MARKER` value of a digest made at ``now``: where the next one starts."""
    return iso(cut(now)) or ""


def window_start(since: datetime | None, now: datetime) -> datetime:
    """What a digest covers: since the previous digest, or the last day for the first."""
    if since is None or since >= now:
        return now - timedelta(days=1)
    return since


def read_day(value: str | None) -> date | None:
    """The day marker as a date; an unreadable one counts as none (a digest too many at
    worst, never none for ever)."""
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def read_at(value: str | None) -> datetime | None:
    try:
        at = datetime.fromisoformat(value) if value else None
    except ValueError:
        return None
    return at if at is not None and at.tzinfo is not None else None


# -- what: the lists -----------------------------------------------------------------------


@dataclass(frozen=True)
class Waiting:
    """A lead waiting for a person: since its enquiry, or its latest reply."""

    lead: Lead
    since: datetime


@dataclass(frozen=True)
class Task:
    """A call or text of a lead's sequence, due today (``done``: already handed over)."""

    lead: Lead
    step: str
    channel: str
    at: datetime
    done: bool


def waiting(leads: Iterable[Lead]) -> list[Waiting]:
    out = []
    for lead in leads:
        if lead.conversation is not Conversation.WAITING_US:
            continue
        replies = [ev.at for ev in lead.events if ev.what == "reply"]
        out.append(Waiting(lead, max([lead.arrived, *replies])))
    return sorted(out, key=lambda w: (w.since, w.lead.address))


def tasks_today(leads: Iterable[Lead], book: RuleBook, st: Settings, now: datetime) -> list[Task]:
    """Calls and texts for today: handed to the owner today, or due by the end of today."""
    tz = st.window.tz
    today = now.astimezone(tz).date()
    out = []
    for lead in leads:
        seq = book.sequences.get(lead.sequence)
        if seq is None:
            continue
        for step in seq.steps:
            if step.is_email:
                continue
            done = read_at(lead.steps_done.get(step.name))
            if done is not None and done.astimezone(tz).date() == today:
                out.append(Task(lead, step.name, step.channel, done, True))
        if not lead.is_active:
            continue
        for step in pending_steps(lead, seq):
            if step.is_email:
                continue
            at = step_due(lead, step, st, seq)
            if at.astimezone(tz).date() <= today:
                out.append(Task(lead, step.name, step.channel, at, False))
    return sorted(out, key=lambda t: (t.at, t.lead.address, t.step))


# -- what: the figures ---------------------------------------------------------------------


@dataclass(frozen=True)
class Digest:
    """Everything a digest says, before it is written out as text or HTML."""

    now: datetime
    since: datetime
    tz: tzinfo
    name: str
    period: Stats  # [since, now): new leads, activity, their first responses
    month: Stats  # the last DAYS local days: first responses, steps, the chart
    waiting: tuple[Waiting, ...]
    tasks: tuple[Task, ...]
    simulated: bool = False


def figures(
    leads: Sequence[Lead],
    archived: Iterable[Lead],
    since: datetime | None,
    now: datetime,
    settings: Settings,
    tz: tzinfo,
    tasks: Sequence[Task] = (),
) -> Digest:
    every = [*leads, *archived]
    if settings.simulated:
        # A time-lapse trial: every lead is a trial's, and its digest is about them.
        every = [dataclasses.replace(x, simulated=False) for x in every]
    until = cut(now)
    start = window_start(since, until)
    local = now.astimezone(tz).date() - timedelta(days=DAYS - 1)
    month_start = datetime(local.year, local.month, local.day, tzinfo=tz)
    return Digest(
        now=now,
        since=start,
        tz=tz,
        name=settings.me.name,
        period=compute(every, start, until, tz, DAYS),
        month=compute(every, min(month_start, start), until, tz, DAYS),
        waiting=tuple(waiting(leads)),
        tasks=tuple(tasks),
        simulated=settings.simulated,
    )


def build(
    leads: Sequence[Lead],
    archived: Iterable[Lead],
    since: datetime | None,
    now: datetime,
    settings: Settings,
    tz: tzinfo,
    tasks: Sequence[Task] = (),
) -> tuple[str, str, str]:
    """(subject, plain text, HTML) of the digest made at ``now``, covering since ``since``
    (the previous digest; None: the last day). ``leads`` are the state's, ``archived``
    the archive's (closed long ago: they count in the 30-day figures)."""
    d = figures(leads, archived, since, now, settings, tz, tasks)
    return subject(d), "\n".join(text(d)), page(d)


def mail(
    subject_: str, body: str, html_: str, st: Settings, message_id: str, now: datetime
) -> Outgoing:
    """The digest as a message to the owner: no Reply-To (it is about many leads)."""
    me = st.me
    return Outgoing(
        purpose=PURPOSE,
        from_=Address(me.addr, f"inboxwatch ({me.name})" if me.name else "inboxwatch"),
        to=Address(st.owner),
        subject=subject_,
        body=body,
        html=html_,
        message_id=message_id,
        date=now.astimezone(st.window.tz),
    )
