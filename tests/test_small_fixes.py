"""Small behaviours a reviewer found wrong: one error line per problem, errors on stderr,
the stats chart within its window, `--help` naming the default config."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from inboxwatch.cli import main
from inboxwatch.core.lead import Lead
from inboxwatch.service.stats_command import CHART_MAX_DAYS, stats
from tests.test_commands import write_config

BERLIN = ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize(
    ("days", "message"),
    [
        ('["Funday"]', "sending.days: unknown day 'Funday'; use mon, tue, ... sun"),
        ('["mon", "Funday"]', "sending.days: unknown day 'Funday'; use mon, tue, ... sun"),
        ("[]", "sending.days: at least one sending day is needed"),
        ('"mon"', "sending.days: expected a list, got a string"),
    ],
)
def test_bad_sending_days_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], days: str, message: str
) -> None:
    cfg = write_config(tmp_path)
    cfg.write_text(cfg.read_text() + f"[sending]\ndays = {days}\n")
    assert main(["check", "-c", str(cfg)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].endswith(message), err


def test_classify_a_missing_file_errs_on_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = write_config(tmp_path)
    missing = tmp_path / "nonexistent.eml"
    assert main(["classify", "-c", str(cfg), str(missing)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err == f"inboxwatch: {missing}: No such file or directory\n"


def _lead(arrived: datetime) -> Lead:
    return Lead("a@customer.test", "", "email", "email", "default", arrived)


def test_the_chart_covers_the_window_of_since() -> None:
    now = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
    two = stats([_lead(now - timedelta(hours=1))], date(2026, 12, 1), now, BERLIN)
    assert [d for d, _ in two.per_day] == [date(2026, 12, 1), date(2026, 12, 2)]
    assert sum(n for _, n in two.per_day) == 1
    # Without --since: the last 30 days; years back: the last year's days, not thousands.
    assert len(stats([], None, now, BERLIN).per_day) == 30
    years = stats([], date(2020, 1, 1), now, BERLIN)
    assert len(years.per_day) == CHART_MAX_DAYS and years.per_day[-1][0] == date(2026, 12, 2)


def test_help_names_the_default_config(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--help"]) == 0
    assert "./config.toml" in " ".join(capsys.readouterr().out.split())


def test_pause_until_a_date_ends_at_local_midnight_of_that_day() -> None:
    from inboxwatch.service.lead_commands import until_time

    at = until_time("2027-01-05", BERLIN)
    assert at == datetime(2027, 1, 5, 0, 0, tzinfo=BERLIN)
    assert at.astimezone(UTC) == datetime(2027, 1, 4, 23, 0, tzinfo=UTC)
    assert until_time("2027-01-05T14:00", BERLIN) == datetime(2027, 1, 5, 14, 0, tzinfo=BERLIN)
