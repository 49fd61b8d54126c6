"""The figures of ``inboxwatch stats``, from the leads' stored history alone.

Pure: the leads (active and archived), the window and the time zone come in, frozen
figures go out; no IO, no clock. Every figure is read from what a lead records (its
arrival, ``acked``, ``first_response`` and its events), so it survives the archive of
closed leads and is the same however often it is computed.

Definitions (the README quotes them):

- **Leads** are counted once by address and arrival: a lead found both in the state and
  in the archive (a crash between the archive's append and the state's write) is the copy
  with the later history. Leads of a time-lapse trial (``simulated``) are left out, and so
  are the "leads" made for a reply to a closed conversation (their history starts with the
  reply, not an enquiry): they are replies, not new leads.
- **The cohort** of a window [since, until) is the leads that *arrived* in it (INTERNALDATE,
  the mailbox's arrival time). Response times and the reply rate per step are about the
  cohort, counting what happened to it before ``until``.
- **Activity** (replies, sequences ended, bounces, opt-outs) is counted when it *happened*
  in the window, whichever day the lead arrived.
- **First response, automatic**: arrival → ``acked`` (the SMTP server accepted the
  acknowledgement). **First response, by a person**: arrival → the first message a person
  sent to the lead: mail in Sent (its INTERNALDATE when it was the lead's first response,
  else when inboxwatch saw it), or a team member's mail in the thread reaching the watched
  inbox (when inboxwatch saw it, within a poll or IDLE cycle). Flagging the enquiry hands the
  lead over but is not a message, so it does not count.
- A lead with no such response before ``until`` is *not answered* and stays in the figures:
  it ranks after every answered lead, so a median or 90th percentile that falls on it is
  ``None`` ("not answered"), and it counts against the shares within 5 minutes / 1 hour.
- **Percentiles** are nearest-rank: the p-th percentile of n values is the value at rank
  ⌈p·n/100⌉ (1-based) in ascending order; so the median of an even count is the lower of the
  two middle values. "Within 5 minutes" means at most 300 s after arrival, inclusive.
- **Reply rate per step**: a step is *reached* by a lead of the cohort when its email was
  accepted by the SMTP server ("<step>: sent") before ``until``. The lead's *first* reply is
  credited to the last message the lead got before it: a step's email, or a person's
  message (then no step gets it), or nothing yet ("before any message").
- **Leads per day**: the cohort's arrivals by *local* calendar day in the given zone, for the
  ``days`` local days ending with the day of ``until`` (a DST day has 23 or 25 hours, and is
  still one day).
- **Bounces and opt-outs** are counted per lead, once. A bounce is dated by the sequence's
  end as "bounced", else by the last "... not delivered" event, else by the lead's last event
  (a bounce after the sequence ended logs nothing of its own). An opt-out is dated by the
  sequence's end as "opted_out", else by a complaint, else (an opt-out reply after the
  sequence ended closes the conversation) by the last reply.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo

from inboxwatch.core.lead import Conversation, Ended, Event, Lead

#: Event details that mean a person *wrote* to the lead (core.route.on_sent and
#: core.decide.on_message pass them to ``handed_over``); flagging the enquiry is not writing.
PERSON_WROTE = frozenset({"a person wrote to the lead (Sent)", "a team member wrote in the thread"})
HANDED_OVER = f"automation ended: {Ended.HANDLED.value}"
PERSON_WROTE_EVENT = "person wrote"  # a person wrote to a lead whose automation had ended
ENDED_PREFIX = "automation ended: "
SENT_SUFFIX = ": sent"
REPLY = "reply"
COMPLAINT = "complaint"
NOT_DELIVERED_SUFFIX = " not delivered"

FIVE_MINUTES = 300.0
ONE_HOUR = 3600.0


@dataclass(frozen=True)
class ResponseTimes:
    """First-response figures over ``leads`` leads; unanswered ones included (see module)."""

    leads: int
    answered: int
    median_seconds: float | None  # None: no leads, or the median lead was not answered
    p90_seconds: float | None
    within_5min: int
    within_1h: int

    @property
    def unanswered(self) -> int:
        return self.leads - self.answered

    @property
    def share_5min(self) -> float | None:
        return self.within_5min / self.leads if self.leads else None

    @property
    def share_1h(self) -> float | None:
        return self.within_1h / self.leads if self.leads else None


@dataclass(frozen=True)
class FirstResponse:
    overall: ResponseTimes
    by_source: Mapping[str, ResponseTimes]


@dataclass(frozen=True)
class StepReplies:
    sequence: str
    step: str
    reached: int  # leads of the cohort whose email of this step was sent
    replied: int  # of those, leads whose first reply came after this step's email

    @property
    def rate(self) -> float | None:
        return self.replied / self.reached if self.reached else None


@dataclass(frozen=True)
class Stats:
    since: datetime
    until: datetime
    timezone: str
    # the cohort
    new_leads: int
    new_by_source: Mapping[str, int]
    ack: FirstResponse
    person: FirstResponse
    answered_only_by_person: int  # a person answered, no acknowledgement went
    steps: tuple[StepReplies, ...]
    first_reply_after_person: int
    first_reply_before_any_message: int
    per_day: tuple[tuple[date, int], ...]
    # activity in the window
    replies: int  # reply messages
    leads_replied: int
    ended: Mapping[str, int]  # reason → sequences ended
    bounces: int
    opt_outs: int


# -- reading one lead's history -------------------------------------------------------------


def is_enquiry(lead: Lead) -> bool:
    """A lead made by an enquiry (not a trial, not a reply to a closed conversation)."""
    return not lead.simulated and not (lead.events and lead.events[0].what == REPLY)


def unique(leads: Iterable[Lead]) -> list[Lead]:
    """Each lead once by address and arrival; of two copies the one with the later history."""
    best: dict[tuple[str, datetime], Lead] = {}
    for lead in leads:
        key = (lead.address.lower(), lead.arrived)
        old = best.get(key)
        if old is None or _history_key(lead) >= _history_key(old):
            best[key] = lead
    return list(best.values())


def _history_key(lead: Lead) -> tuple[datetime, int]:
    return (lead.events[-1].at if lead.events else lead.arrived, len(lead.events))


def _is_person_writing(ev: Event) -> bool:
    return ev.what in (HANDED_OVER, PERSON_WROTE_EVENT) and ev.detail in PERSON_WROTE


def _sent_steps(lead: Lead, until: datetime) -> list[tuple[datetime, str]]:
    return sorted(
        (ev.at, ev.what[: -len(SENT_SUFFIX)])
        for ev in lead.events
        if ev.what.endswith(SENT_SUFFIX) and ev.at < until
    )


def person_times(lead: Lead, until: datetime) -> list[datetime]:
    """When a person wrote to the lead, before ``until``, ascending.

    ``first_response`` is the Sent copy's INTERNALDATE when a person's mail was the lead's
    first response (it is earlier and truer than the event, logged when inboxwatch saw it);
    it is a person's only when no email of ours was sent at that moment.
    """
    times = [ev.at for ev in lead.events if _is_person_writing(ev) and ev.at < until]
    fr = lead.first_response
    ours = {at for at, _ in _sent_steps(lead, until)}
    if times and fr is not None and fr not in ours and fr < until and fr <= times[0]:
        times[0] = fr
    return sorted(times)


def first_person_response(lead: Lead, until: datetime) -> datetime | None:
    times = person_times(lead, until)
    return times[0] if times else None


def acknowledged(lead: Lead, until: datetime) -> datetime | None:
    return lead.acked if lead.acked is not None and lead.acked < until else None


def _in(at: datetime, since: datetime, until: datetime) -> bool:
    return since <= at < until


def bounce_time(lead: Lead) -> datetime | None:
    if not lead.undeliverable:
        return None
    for ev in lead.events:
        if ev.what == ENDED_PREFIX + Ended.BOUNCED.value:
            return ev.at
    failed = [ev.at for ev in lead.events if ev.what.endswith(NOT_DELIVERED_SUFFIX)]
    if failed:
        return failed[-1]
    return lead.events[-1].at if lead.events else lead.arrived


def opt_out_time(lead: Lead) -> datetime | None:
    for what in (ENDED_PREFIX + Ended.OPTED_OUT.value, COMPLAINT):
        for ev in lead.events:
            if ev.what == what:
                return ev.at
    # An opt-out reply once the sequence had ended closes the conversation and logs a reply
    # (a lead closed for no response is closed too, but before its last reply, if any).
    closed = lead.conversation is Conversation.CLOSED and not lead.undeliverable
    if closed or lead.ended is Ended.OPTED_OUT:
        ends = [ev.at for ev in lead.events if ev.what.startswith(ENDED_PREFIX)]
        replies = [ev.at for ev in lead.events if ev.what == REPLY]
        if replies and (not ends or replies[-1] >= ends[-1]):
            return replies[-1]
    return None


# -- figures --------------------------------------------------------------------------------


def nearest_rank(values: Sequence[float | None], p: int) -> float | None:
    """The p-th percentile by nearest rank; ``None`` values (not answered) rank last."""
    if not values:
        return None
    answered = sorted(v for v in values if v is not None)
    rank = max(1, -(-p * len(values) // 100))  # ⌈p·n/100⌉ in integers
    return answered[rank - 1] if rank <= len(answered) else None


def response_times(delays: Sequence[float | None]) -> ResponseTimes:
    answered = [d for d in delays if d is not None]
    return ResponseTimes(
        leads=len(delays),
        answered=len(answered),
        median_seconds=nearest_rank(delays, 50),
        p90_seconds=nearest_rank(delays, 90),
        within_5min=sum(d <= FIVE_MINUTES for d in answered),
        within_1h=sum(d <= ONE_HOUR for d in answered),
    )


def _delay(lead: Lead, at: datetime | None) -> float | None:
    return None if at is None else max(0.0, (at - lead.arrived).total_seconds())


def first_response(pairs: Sequence[tuple[Lead, datetime | None]]) -> FirstResponse:
    by_source: dict[str, list[float | None]] = {}
    for lead, at in pairs:
        by_source.setdefault(lead.source, []).append(_delay(lead, at))
    return FirstResponse(
        overall=response_times([_delay(lead, at) for lead, at in pairs]),
        by_source={s: response_times(d) for s, d in sorted(by_source.items())},
    )


def _step_replies(
    cohort: Sequence[Lead], until: datetime
) -> tuple[tuple[StepReplies, ...], int, int]:
    reached: dict[tuple[str, str], int] = {}
    replied: dict[tuple[str, str], int] = {}
    position: dict[tuple[str, str], int] = {}
    after_person = before_any = 0
    for lead in cohort:
        sends = _sent_steps(lead, until)
        seen: set[str] = set()
        for i, (_, step) in enumerate(sends):
            key = (lead.sequence, step)
            if step not in seen:
                seen.add(step)
                reached[key] = reached.get(key, 0) + 1
                position[key] = min(position.get(key, i), i)
        reply = next((ev.at for ev in lead.events if ev.what == REPLY and ev.at < until), None)
        if reply is None:
            continue
        last_step = max(((at, s) for at, s in sends if at <= reply), default=None)
        last_person = max((at for at in person_times(lead, until) if at <= reply), default=None)
        if last_person is not None and (last_step is None or last_person >= last_step[0]):
            after_person += 1
        elif last_step is not None:
            key = (lead.sequence, last_step[1])
            replied[key] = replied.get(key, 0) + 1
        else:
            before_any += 1
    order = sorted(reached, key=lambda k: (k[0], position[k], k[1]))
    steps = tuple(
        StepReplies(seq, step, reached[(seq, step)], replied.get((seq, step), 0))
        for seq, step in order
    )
    return steps, after_person, before_any


def per_day(
    leads: Sequence[Lead], until: datetime, tz: tzinfo, days: int
) -> tuple[tuple[date, int], ...]:
    last = (until - timedelta(microseconds=1)).astimezone(tz).date()
    first = last - timedelta(days=days - 1)
    counts = {first + timedelta(days=i): 0 for i in range(days)}
    for lead in leads:
        day = lead.arrived.astimezone(tz).date()
        if day in counts:
            counts[day] += 1
    return tuple(counts.items())


def compute(
    leads: Iterable[Lead], since: datetime, until: datetime, tz: tzinfo, days: int = 30
) -> Stats:
    """The figures for the window [since, until) (aware datetimes); days by ``tz``."""
    if since.tzinfo is None or until.tzinfo is None:
        raise ValueError("since and until must be aware datetimes")
    if not since < until:
        raise ValueError(f"an empty window: since {since} is not before until {until}")
    every = [lead for lead in unique(leads) if not lead.simulated]
    enquiries = [lead for lead in every if is_enquiry(lead)]
    cohort = sorted(
        (lead for lead in enquiries if _in(lead.arrived, since, until)),
        key=lambda x: (x.arrived, x.address),
    )
    by_source: dict[str, int] = {}
    for lead in cohort:
        by_source[lead.source] = by_source.get(lead.source, 0) + 1
    person_at = [(lead, first_person_response(lead, until)) for lead in cohort]
    ack_at = [(lead, acknowledged(lead, until)) for lead in cohort]
    steps, after_person, before_any = _step_replies(cohort, until)
    day_leads = [lead for lead in enquiries if lead.arrived < until]

    replies = leads_replied = 0
    ended: dict[str, int] = {}
    for lead in every:
        n = sum(ev.what == REPLY and _in(ev.at, since, until) for ev in lead.events)
        replies += n
        leads_replied += n > 0
        for ev in lead.events:
            if ev.what.startswith(ENDED_PREFIX) and _in(ev.at, since, until):
                reason = ev.what[len(ENDED_PREFIX) :]
                ended[reason] = ended.get(reason, 0) + 1
    bounced = [t for t in map(bounce_time, every) if t is not None and _in(t, since, until)]
    opted = [t for t in map(opt_out_time, every) if t is not None and _in(t, since, until)]

    return Stats(
        since=since,
        until=until,
        timezone=str(tz),
        new_leads=len(cohort),
        new_by_source=dict(sorted(by_source.items())),
        ack=first_response(ack_at),
        person=first_response(person_at),
        answered_only_by_person=sum(
            at is not None and acknowledged(lead, until) is None for lead, at in person_at
        ),
        steps=steps,
        first_reply_after_person=after_person,
        first_reply_before_any_message=before_any,
        per_day=per_day(day_leads, until, tz, days),
        replies=replies,
        leads_replied=leads_replied,
        ended=dict(sorted(ended.items())),
        bounces=len(bounced),
        opt_outs=len(opted),
    )
