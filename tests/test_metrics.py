"""The figures of ``inboxwatch stats`` on constructed histories, worked out by hand here."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from inboxwatch.core.lead import Automation, Conversation, Ended, Event, Lead
from inboxwatch.core.metrics import (
    PERSON_WROTE,
    compute,
    first_person_response,
    nearest_rank,
    response_times,
    unique,
)

BERLIN = ZoneInfo("Europe/Berlin")
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)  # a Monday, CET
SENT = "a person wrote to the lead (Sent)"
TEAM = "a team member wrote in the thread"
FLAGGED = "the enquiry was flagged in the mailbox"
REPO = Path(__file__).resolve().parent.parent


def s(n: float) -> timedelta:
    return timedelta(seconds=n)


def make(
    address: str,
    arrived: datetime,
    *events: tuple[float, str, str],
    source: str = "website-form",
    acked: float | None = None,
    first_response: float | None = None,
    **kw: object,
) -> Lead:
    """A lead whose events, acknowledgement and first response are seconds after arrival."""
    return Lead(
        address=address,
        name="",
        source=source,
        rule=source,
        sequence="default",
        arrived=arrived,
        acked=arrived + s(acked) if acked is not None else None,
        first_response=arrived + s(first_response) if first_response is not None else None,
        events=(
            Event(arrived, "enquiry", source),
            *(Event(arrived + s(at), what, detail) for at, what, detail in events),
        ),
        **kw,  # type: ignore[arg-type]
    )


def acked_lead(
    address: str, arrived: datetime, ack: float, *events: tuple[float, str, str], **kw: object
) -> Lead:
    """Acknowledged ``ack`` seconds after arrival: the acknowledgement was its first response."""
    return make(
        address,
        arrived,
        (ack, "ack: sent", "<id>"),
        *events,
        acked=ack,
        first_response=ack,
        **kw,  # type: ignore[arg-type]
    )


# -- percentiles ----------------------------------------------------------------------------


def test_nearest_rank_percentiles_by_hand() -> None:
    # n=4: median rank ⌈0.5·4⌉ = 2 (the lower middle), 90th rank ⌈3.6⌉ = 4.
    assert nearest_rank([40.0, 10.0, 30.0, 20.0], 50) == 20.0
    assert nearest_rank([40.0, 10.0, 30.0, 20.0], 90) == 40.0
    # n=10 (1..10): median rank 5, 90th rank 9.
    ten = [float(v) for v in range(10, 0, -1)]
    assert nearest_rank(ten, 50) == 5.0
    assert nearest_rank(ten, 90) == 9.0
    # n=1: every percentile is the value.
    assert nearest_rank([7.0], 90) == 7.0
    # Not answered ranks last: [5, 7, never]: median rank 2 → 7; 90th rank 3 → never.
    assert nearest_rank([5.0, None, 7.0], 50) == 7.0
    assert nearest_rank([5.0, None, 7.0], 90) is None
    assert nearest_rank([], 50) is None


def test_shares_count_unanswered_leads_and_are_inclusive() -> None:
    r = response_times([300.0, 301.0, 3600.0, None])
    assert (r.leads, r.answered, r.unanswered) == (4, 3, 1)
    assert (r.within_5min, r.within_1h) == (1, 3)  # 300 s is within 5 minutes, 301 s is not
    assert (r.share_5min, r.share_1h) == (0.25, 0.75)
    assert r.median_seconds == 301.0  # rank 2 of 4
    assert r.p90_seconds is None  # rank 4: the lead nobody answered
    empty = response_times([])
    assert (empty.leads, empty.share_5min, empty.median_seconds) == (0, None, None)


# -- first response -------------------------------------------------------------------------


def cohort() -> list[Lead]:
    hour = timedelta(hours=1)
    return [
        # A: acknowledged after 4 s, a person wrote from Sent, seen 180 s after arrival.
        acked_lead("a@x.test", T0, 4, (180, "automation ended: handled", SENT)),
        # B: acknowledged after 10 s, no person ever: not answered by a person.
        acked_lead("b@x.test", T0 + hour, 10),
        # C: no acknowledgement; answered only by a person. The Sent copy's INTERNALDATE
        # (600 s) is its first response, truer than when inboxwatch saw it (700 s).
        make(
            "c@x.test",
            T0 + 2 * hour,
            (700, "automation ended: handled", SENT),
            source="email",
            first_response=600,
        ),
        # D: acknowledged after 30 s; a team member wrote in the thread after 2 h.
        acked_lead(
            "d@x.test", T0 + 3 * hour, 30, (7200, "automation ended: handled", TEAM), source="email"
        ),
        # E: acknowledged after 20 s; flagged after 60 s (not a message), then a person wrote
        # from Sent after 3000 s (the lead had ended: "person wrote").
        acked_lead(
            "e@x.test",
            T0 + 4 * hour,
            20,
            (60, "automation ended: handled", FLAGGED),
            (3000, "person wrote", SENT),
            source="email",
        ),
    ]


def test_first_response_by_a_person_and_automatic_overall() -> None:
    st = compute(cohort(), T0, T0 + timedelta(days=1), BERLIN)
    assert st.new_leads == 5
    assert dict(st.new_by_source) == {"email": 3, "website-form": 2}
    # Person: A 180, B never, C 600, D 7200, E 3000 → 180, 600, 3000, 7200, never.
    p = st.person.overall
    assert (p.leads, p.answered, p.unanswered) == (5, 4, 1)
    assert p.median_seconds == 3000.0  # rank ⌈2.5⌉ = 3
    assert p.p90_seconds is None  # rank ⌈4.5⌉ = 5: B, never answered
    assert (p.within_5min, p.within_1h) == (1, 3)
    assert (p.share_5min, p.share_1h) == (0.2, 0.6)
    # Automatic: A 4, B 10, C never, D 30, E 20 → 4, 10, 20, 30, never.
    a = st.ack.overall
    assert (a.median_seconds, a.p90_seconds, a.within_5min, a.within_1h) == (20.0, None, 4, 4)
    assert a.unanswered == 1
    assert st.answered_only_by_person == 1  # C


def test_first_response_per_source() -> None:
    st = compute(cohort(), T0, T0 + timedelta(days=1), BERLIN)
    web, mail = st.person.by_source["website-form"], st.person.by_source["email"]
    # website-form: A 180, B never → median rank 1 = 180, 90th rank 2 = never.
    assert (web.leads, web.median_seconds, web.p90_seconds, web.within_5min) == (2, 180.0, None, 1)
    # email: C 600, E 3000, D 7200 → median rank 2 = 3000, 90th rank 3 = 7200.
    assert (mail.median_seconds, mail.p90_seconds, mail.within_5min, mail.within_1h) == (
        3000.0,
        7200.0,
        0,
        2,
    )
    # Automatic, email: C never, E 20, D 30 → median rank 2 = 30, 90th rank 3 = never.
    ack_mail = st.ack.by_source["email"]
    assert (ack_mail.median_seconds, ack_mail.p90_seconds, ack_mail.unanswered) == (30.0, None, 1)
    ack_web = st.ack.by_source["website-form"]
    assert (ack_web.median_seconds, ack_web.p90_seconds) == (4.0, 10.0)


def test_a_response_after_until_is_not_yet_a_response() -> None:
    # Window ends 10 minutes after C arrived: C's person answered at 600 s (exclusive end).
    c = cohort()[2]
    st = compute([c], c.arrived, c.arrived + s(600), BERLIN)
    assert st.person.overall.answered == 0
    assert st.person.overall.median_seconds is None
    st = compute([c], c.arrived, c.arrived + s(700.001), BERLIN)
    assert st.person.overall.median_seconds == 600.0


def test_the_first_response_of_an_acknowledgement_is_not_a_persons() -> None:
    # first_response is the acknowledgement (an "ack: sent" at the same moment): the person's
    # time is when inboxwatch saw the Sent copy.
    a = cohort()[0]
    assert first_person_response(a, T0 + timedelta(days=1)) == T0 + s(180)


# -- each lead once, the archive, what is not a lead ----------------------------------------


def test_leads_in_state_and_archive_count_once_with_the_later_history() -> None:
    active = acked_lead("a@x.test", T0, 5)
    archived = active.log(T0 + s(900), "reply", "yes").end(T0 + s(900), Ended.REPLIED)
    assert unique([archived, active]) == [archived]
    assert unique([active, archived]) == [archived]
    st = compute([archived, active], T0, T0 + timedelta(days=1), BERLIN)
    assert (st.new_leads, st.replies, st.leads_replied, dict(st.ended)) == (1, 1, 1, {"replied": 1})
    # The same address arriving again later is another lead.
    again = acked_lead("a@x.test", T0 + timedelta(hours=5), 5)
    assert compute([archived, again], T0, T0 + timedelta(days=1), BERLIN).new_leads == 2


def test_archived_lead_before_the_window_counts_its_activity_in_it() -> None:
    old = acked_lead("old@x.test", T0 - timedelta(days=10), 3).log(T0 + s(60), "reply", "hi")
    old = old.end(T0 + s(60), Ended.REPLIED)
    st = compute([old], T0, T0 + timedelta(days=1), BERLIN)
    assert st.new_leads == 0  # it arrived before the window
    assert st.person.overall.leads == 0
    assert (st.replies, dict(st.ended)) == (1, {"replied": 1})


def test_trials_and_replies_to_closed_conversations_are_not_new_leads() -> None:
    trial = acked_lead("t@x.test", T0, 1, simulated=True).log(T0 + s(5), "reply", "")
    orphan = Lead(
        address="o@x.test",
        name="",
        source="reply",
        rule="",
        sequence="",
        arrived=T0,
        automation=Automation.ENDED,
        ended=Ended.REPLIED,
    ).log(T0 + s(2), "reply", "about last year's quote")
    st = compute([trial, orphan], T0, T0 + timedelta(days=1), BERLIN)
    assert st.new_leads == 0
    assert (st.replies, st.leads_replied) == (1, 1)  # the orphan's reply, not the trial's
    assert dict(st.ended) == {}  # no sequence ended: the orphan never had one


# -- reply rate per step --------------------------------------------------------------------


def test_reply_rate_per_step_credits_the_last_message_before_the_first_reply() -> None:
    day = 86400.0
    leads = [
        # P: ack, day-1 follow-up, then a reply on day 2 → followup-day1.
        acked_lead("p@x.test", T0, 5, (day, "followup-day1: sent", ""), (2 * day, "reply", "")),
        # Q: ack, reply after an hour (and again later: only the first counts) → ack.
        acked_lead("q@x.test", T0, 5, (3600, "reply", ""), (day, "reply", "")),
        # R: ack, day 1, day 3, never a reply.
        acked_lead(
            "r@x.test",
            T0,
            5,
            (day, "followup-day1: sent", ""),
            (3 * day, "followup-day3: sent", ""),
        ),
        # S: ack, a person wrote (Sent) after 30 min, reply after 2 h → the person's.
        acked_lead(
            "s@x.test", T0, 5, (1800, "automation ended: handled", SENT), (7200, "reply", "")
        ),
        # U: no acknowledgement (acknowledged recently), replies after 10 min.
        make("u@x.test", T0, (0, "acknowledgement skipped", ""), (600, "reply", "")),
        # V: ack, its reply comes after the window: not counted yet.
        acked_lead("v@x.test", T0, 5, (8 * day, "reply", "")),
    ]
    st = compute(leads, T0, T0 + timedelta(days=7), BERLIN)
    got = [(x.step, x.reached, x.replied, x.rate) for x in st.steps]
    assert got == [
        ("ack", 5, 1, 0.2),  # P Q R S V reached it, Q's reply is its
        ("followup-day1", 2, 1, 0.5),  # P R
        ("followup-day3", 1, 0, 0.0),  # R
    ]
    assert (st.first_reply_after_person, st.first_reply_before_any_message) == (1, 1)


# -- activity: endings, bounces, opt-outs -----------------------------------------------------


def test_endings_bounces_and_opt_outs_are_counted_once_when_they_happened() -> None:
    in_window = T0 + s(60)
    bounced = acked_lead("b1@x.test", T0, 2, undeliverable=True).end(in_window, Ended.BOUNCED)
    # Bounced after its sequence had ended: no event of its own, dated by "not delivered".
    late_bounce = dataclasses.replace(
        acked_lead("b2@x.test", T0, 2)
        .end(T0 + s(30), Ended.STOPPED, "inboxwatch stop")
        .log(T0 + s(90), "follow-up not delivered", "550 no such user"),
        undeliverable=True,
        conversation=Conversation.CLOSED,
    )
    opted = (
        acked_lead("o1@x.test", T0, 2)
        .log(in_window, "reply", "stop")
        .end(in_window, Ended.OPTED_OUT)
    )
    # Complained after the sequence ended (no response): dated by the complaint.
    complained = (
        acked_lead("o2@x.test", T0, 2)
        .end(T0 + s(40), Ended.NO_RESPONSE)
        .log(T0 + s(80), "complaint", "abuse report")
    )
    # Opted out by a reply after the sequence ended: the conversation is closed.
    late_opt_out = dataclasses.replace(
        acked_lead("o3@x.test", T0, 2)
        .end(T0 + s(40), Ended.NO_RESPONSE)
        .log(T0 + s(99), "reply", "no"),
        conversation=Conversation.CLOSED,
    )
    # Replied, resumed, then closed for no response: closed, but not an opt-out.
    resumed = (
        acked_lead("r@x.test", T0, 2)
        .log(T0 + s(10), "reply", "later")
        .end(T0 + s(10), Ended.REPLIED)
    )
    resumed = dataclasses.replace(resumed, automation=Automation.ACTIVE, ended=None)
    resumed = dataclasses.replace(
        resumed.log(T0 + s(20), "resumed").end(T0 + s(200), Ended.NO_RESPONSE),
        conversation=Conversation.CLOSED,
    )
    # Bounced two weeks later: outside the window.
    later = acked_lead("b3@x.test", T0, 2, undeliverable=True).end(
        T0 + timedelta(days=14), Ended.BOUNCED
    )
    leads = [bounced, late_bounce, opted, complained, late_opt_out, resumed, later]
    st = compute(leads, T0, T0 + timedelta(days=7), BERLIN)
    assert dict(st.ended) == {
        "bounced": 1,
        "no_response": 3,
        "opted_out": 1,
        "replied": 1,
        "stopped": 1,
    }
    assert st.bounces == 2  # b1, b2 (b3 is later)
    assert st.opt_outs == 3  # o1, o2, o3
    assert (st.replies, st.leads_replied) == (3, 3)  # o1, o3, r


# -- days in a time zone with DST -----------------------------------------------------------


def test_leads_per_local_day_across_the_spring_dst_change() -> None:
    # Berlin went from CET (+1) to CEST (+2) on 2026-03-29: that day had 23 hours.
    def at(y: int, m: int, d: int, hh: int, mm: int) -> datetime:
        return datetime(y, m, d, hh, mm, tzinfo=UTC)

    leads = [
        make("a@x.test", at(2026, 3, 28, 23, 30)),  # 00:30 CET, 29 March
        make("b@x.test", at(2026, 3, 29, 21, 30)),  # 23:30 CEST, 29 March
        make("c@x.test", at(2026, 3, 29, 22, 30)),  # 00:30 CEST, 30 March (a fixed +1 says 29th)
        make("d@x.test", at(2026, 2, 28, 22, 59)),  # 23:59, 28 February: before the 30 days
        make("e@x.test", at(2026, 2, 28, 23, 0)),  # 00:00, 1 March
        make("f@x.test", at(2026, 3, 30, 11, 0)),  # 13:00, 30 March: after until
    ]
    until = datetime(2026, 3, 30, 12, 0, tzinfo=BERLIN)
    st = compute(leads, until - timedelta(days=60), until, BERLIN)
    days = dict(st.per_day)
    assert len(st.per_day) == 30
    assert (st.per_day[0][0], st.per_day[-1][0]) == (date(2026, 3, 1), date(2026, 3, 30))
    assert (days[date(2026, 3, 29)], days[date(2026, 3, 30)], days[date(2026, 3, 1)]) == (2, 1, 1)
    assert sum(days.values()) == 4
    # A window ending at local midnight ends with the day before.
    st = compute(leads, until - timedelta(days=60), datetime(2026, 3, 30, tzinfo=BERLIN), BERLIN)
    assert st.per_day[-1] == (date(2026, 3, 29), 2)


def test_leads_per_local_day_across_the_autumn_dst_change() -> None:
    # CEST (+2) to CET (+1) on 2026-10-25: that day had 25 hours.
    leads = [
        make("a@x.test", datetime(2026, 10, 24, 22, 30, tzinfo=UTC)),  # 00:30 CEST, 25th
        make("b@x.test", datetime(2026, 10, 25, 22, 30, tzinfo=UTC)),  # 23:30 CET, 25th
        make("c@x.test", datetime(2026, 10, 25, 23, 0, tzinfo=UTC)),  # 00:00 CET, 26th
    ]
    until = datetime(2026, 10, 26, 12, 0, tzinfo=BERLIN)
    days = dict(compute(leads, until - timedelta(days=30), until, BERLIN).per_day)
    assert (days[date(2026, 10, 24)], days[date(2026, 10, 25)], days[date(2026, 10, 26)]) == (
        0,
        2,
        1,
    )


# -- arguments and the contract with the code that writes the events -------------------------


def test_the_window_must_be_aware_and_not_empty() -> None:
    with pytest.raises(ValueError, match="aware"):
        compute([], datetime(2026, 1, 1), datetime(2026, 1, 2), BERLIN)
    with pytest.raises(ValueError, match="empty window"):
        compute([], T0, T0, BERLIN)


def test_the_person_markers_are_the_ones_the_core_writes() -> None:
    """The details a hand-over is logged with live in route.py and decide.py; if they change
    there, a person's responses would silently vanish from the figures."""
    core = (REPO / "inboxwatch" / "core").glob("*.py")
    text = "".join(p.read_text(encoding="utf-8") for p in core if p.name != "metrics.py")
    for detail in PERSON_WROTE:
        assert f'"{detail}"' in text
    assert f'"{FLAGGED}"' in text
