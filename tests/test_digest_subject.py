"""The digest's subject counts today's tasks as its body lists them (review defect 9: a
subject of "0 task(s) open" over a body listing a call handed over this morning)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from test_digest import BERLIN, REPO, berlin, settings
from test_metrics import acked_lead

from inboxwatch.core import digest
from inboxwatch.core.lead import Lead
from inboxwatch.userfiles.rulebook import load_rulebook


def _lead(steps_done: dict[str, str], address: str = "call@x.test") -> Lead:
    arrived = datetime(2026, 10, 30, 10, 0, tzinfo=UTC)  # Friday; day 3 is Monday
    return dataclasses.replace(
        acked_lead(address, arrived, 10),
        name="Maria Lopez",
        phone="+49 30 1234567",
        steps_done={"ack": "2026-10-30T10:00:10+00:00", **steps_done},
    )


def test_a_task_handed_over_today_counts_in_the_subject_as_in_the_body() -> None:
    book = load_rulebook(REPO / "rules", REPO / "templates")
    st, now = settings(), berlin(2026, 11, 2, 12)
    handed = _lead(
        {"call-day0": "2026-10-30T10:00:10+00:00", "call-day3": "2026-11-02T08:00:00+00:00"}
    )
    tasks = digest.tasks_today([handed], book, st, now)
    assert [(t.step, t.done) for t in tasks] == [("call-day3", True)]
    subject, text, page = digest.build([handed], [], None, now, st, BERLIN, tasks)
    assert "TODAY'S TASKS (1):" in text and "handed to you" in text
    assert "Today&#x27;s tasks (1)" in page or "Today's tasks (1)" in page
    assert subject.endswith(", 1 task for today"), subject


def test_the_subject_counts_due_and_handed_tasks_with_a_plural() -> None:
    book = load_rulebook(REPO / "rules", REPO / "templates")
    st, now = settings(), berlin(2026, 11, 2, 12)
    due = _lead({"call-day0": "2026-10-30T10:00:10+00:00"})
    handed = _lead(
        {"call-day0": "2026-10-30T10:00:10+00:00", "call-day3": "2026-11-02T08:00:00+00:00"},
        "other@x.test",
    )
    tasks = digest.tasks_today([due, handed], book, st, now)
    assert sorted(t.done for t in tasks) == [False, True]
    subject, text, _ = digest.build([due, handed], [], None, now, st, BERLIN, tasks)
    assert "TODAY'S TASKS (2):" in text
    assert subject.endswith(", 2 tasks for today"), subject
    none, _, _ = digest.build([], [], None, now, st, BERLIN, [])
    assert none.endswith(", 0 tasks for today"), none
