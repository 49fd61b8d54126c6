"""``inboxwatch stats`` on a real state file and its archive, read-only."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from inboxwatch.adapters.tinydb_store import TinyDbStore
from inboxwatch.cli import main
from inboxwatch.core.lead import Ended, Event, Lead
from inboxwatch.errors import InboxwatchError
from inboxwatch.service.stats_command import stats, window_start
from tests.test_commands import write_config

BERLIN = ZoneInfo("Europe/Berlin")


def lead(address: str, arrived: datetime, source: str, ack: float | None, *events: Event) -> Lead:
    acked = arrived + timedelta(seconds=ack) if ack is not None else None
    sent = (Event(acked, "ack: sent", "<id>"),) if acked else ()
    return Lead(
        address=address,
        name="",
        source=source,
        rule=source,
        sequence="default",
        arrived=arrived,
        acked=acked,
        first_response=acked,
        events=(Event(arrived, "enquiry", source), *sent, *events),
    )


def write_state(tmp_path: Path, now: datetime) -> None:
    """One active lead answered by a person, one closed lead archived, one long ago."""
    a_at = now - timedelta(hours=3)
    active = lead(
        "a@customer.test",
        a_at,
        "website-form",
        3,
        Event(
            a_at + timedelta(minutes=4),
            "automation ended: handled",
            "a person wrote to the lead (Sent)",
        ),
    )
    b_at = now - timedelta(days=3)
    closed = lead(
        "b@customer.test", b_at, "email", 40, Event(b_at + timedelta(hours=2), "reply", "yes")
    )
    closed = closed.end(b_at + timedelta(hours=2), Ended.REPLIED)
    old = lead("c@customer.test", now - timedelta(days=90), "email", 5)
    store = TinyDbStore.open(tmp_path / "state" / "iw.json")
    with store.transaction() as state:
        for x in (active, closed, old):
            state.put_lead(x, None)
    with store.transaction() as state:
        assert state.archive_closed(now + timedelta(days=30)) == 1  # b, ended, to the archive
        assert [x.address for x in state.leads()] == ["a@customer.test", "c@customer.test"]
    assert [x.address for x in store.archived()] == ["b@customer.test"]


def test_stats_json_reads_state_and_archive(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = write_config(tmp_path)
    write_state(tmp_path, datetime.now(UTC))
    before = (tmp_path / "state" / "iw.json").read_bytes()
    assert main(["stats", "-c", str(cfg), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (tmp_path / "state" / "iw.json").read_bytes() == before  # read-only
    assert out["timezone"] == "Europe/Berlin"
    assert out["new_leads"] == 2  # a and b; c arrived 90 days ago
    assert out["new_by_source"] == {"email": 1, "website-form": 1}
    ack = out["first_response"]["acknowledgement"]["overall"]
    assert (ack["median_seconds"], ack["p90_seconds"], ack["within_5min"]) == (3.0, 40.0, 2)
    person = out["first_response"]["person"]["overall"]
    assert (person["answered"], person["not_answered"]) == (1, 1)
    assert person["median_seconds"] == 240.0  # rank 1 of 2: a's 4 minutes
    assert person["p90_seconds"] is None  # rank 2: b, whom no person answered
    assert person["share_within_5min"] == 0.5
    assert out["reply_rate_per_step"] == [
        {"sequence": "default", "step": "ack", "reached": 2, "replied": 1, "rate": 0.5}
    ]
    assert (out["replies"], out["ended"]) == (1, {"handled": 1, "replied": 1})
    assert len(out["leads_per_day"]) == 30
    assert sum(d["leads"] for d in out["leads_per_day"]) == 2


def test_stats_text_and_since(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write_config(tmp_path)
    now = datetime.now(UTC)
    write_state(tmp_path, now)
    since = (now - timedelta(days=1)).astimezone(BERLIN).date()
    assert main(["stats", "-c", str(cfg), "--since", since.isoformat()]) == 0
    text = capsys.readouterr().out
    assert "new leads: 1 (website-form 1)" in text  # b arrived 3 days ago
    assert "replies: 0" in text
    assert "sequences ended: handled 1" in text
    assert "default/ack" in text


def test_stats_without_a_state_file_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = write_config(tmp_path)
    assert main(["stats", "-c", str(cfg)]) == 0
    assert "nothing yet" in capsys.readouterr().out
    assert main(["stats", "-c", str(cfg), "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["new_leads"] == 0
    assert err.startswith("nothing yet: no state file at ")  # the zeros are no real count
    assert not (tmp_path / "state" / "iw.json").exists()  # nothing created


def test_stats_refuses_a_bad_or_future_since(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = write_config(tmp_path)
    assert main(["stats", "-c", str(cfg), "--since", "1.11.2026"]) == 2
    assert "YYYY-MM-DD" in capsys.readouterr().err
    assert main(["stats", "-c", str(cfg), "--since", "2999-01-01"]) == 2  # usage, as above
    assert "--since: 2999-01-01 is not in the past" in capsys.readouterr().err


def test_the_window_starts_at_local_midnight() -> None:
    now = datetime(2026, 3, 30, 10, 0, tzinfo=UTC)  # 12:00 CEST
    # The last 30 local days: from 1 March 00:00 CET (23:00 UTC the day before).
    assert window_start(None, now, BERLIN) == datetime(2026, 2, 28, 23, 0, tzinfo=UTC)
    # --since the DST day: its midnight was still CET.
    assert window_start(date(2026, 3, 29), now, BERLIN) == datetime(2026, 3, 28, 23, 0, tzinfo=UTC)
    assert window_start(date(2026, 3, 30), now, BERLIN) == datetime(2026, 3, 29, 22, 0, tzinfo=UTC)
    with pytest.raises(InboxwatchError):
        stats([], date(2026, 3, 31), now, BERLIN)
