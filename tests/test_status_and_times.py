"""`status` while paused says which next steps the pause holds (mail to leads), and
`leads` and `stats` show a first-response time the same way."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from inboxwatch.core.lead import Lead, iso
from inboxwatch.core.pause import Pause
from inboxwatch.service.lead_commands import _fmt_seconds
from inboxwatch.service.stats_command import response_time
from inboxwatch.service.status_command import Snapshot, report
from inboxwatch.userfiles.config import load_config
from tests.test_cli import REPO, config_text

NOW = datetime(2026, 3, 3, 10, 0, tzinfo=UTC)  # a Tuesday, inside sending hours


def _lead(*done: str) -> Lead:
    arrived = NOW - timedelta(hours=20)
    return Lead(
        address="lea@customer.test",
        name="Lea",
        source="direct-email",
        rule="direct-email",
        sequence="default",
        arrived=arrived,
        enquiry_id="<e1@customer.test>",
        subject="Kitchen quote",
        thread_subject="Kitchen quote",
        thread=("<e1@customer.test>",),
        steps_done={name: iso(arrived) or "" for name in done},
    )


def _next(tmp_path: Path, pause: Pause | None, *done: str) -> list[dict[str, object]]:
    path = tmp_path / "config.toml"
    path.write_text(config_text(REPO / "rules", REPO / "templates"), encoding="utf-8")
    snap = Snapshot([_lead(*done)], [], [], [], None, pause)
    steps: list[dict[str, object]] = report(load_config(path), snap, NOW, None)["next_steps"]
    return steps


def test_a_pause_marks_the_next_email_step_held(tmp_path: Path) -> None:
    paused = Pause(NOW - timedelta(hours=1), None, True)
    done = ("ack", "call-day0")
    (free,) = _next(tmp_path, None, *done)
    assert free["step"] == "followup-day1" and free["held"] is False
    (held,) = _next(tmp_path, paused, *done)
    assert held["step"] == "followup-day1" and held["held"] is True
    # The owner's call task is not held; nor is a step due after the pause ends.
    (task,) = _next(tmp_path, paused, "ack")
    assert task["step"] == "call-day0" and task["held"] is False
    ends = Pause(NOW - timedelta(hours=1), NOW + timedelta(minutes=1), True)
    (after,) = _next(tmp_path, ends, *done)
    assert after["held"] is False


def test_leads_and_stats_show_a_response_time_alike() -> None:
    assert _fmt_seconds(0.3) == response_time(0.3) == "0.3s"  # not "0s" in stats
    assert _fmt_seconds(300) == response_time(300) == "5m"
    assert _fmt_seconds(None) == "-" and response_time(None, leads=3) == "never"
