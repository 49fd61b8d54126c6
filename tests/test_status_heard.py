"""`status` and the "last heard" marker: a daemon is silent (exit 1, ``mail_server_silent``)
only when the marker is older than a healthy daemon ever leaves it (:func:`silent_after`:
the IDLE renewal or poll interval, the keep-alive, and the minute the marker may lag)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from test_scenario import _config

from inboxwatch.service.status_command import Snapshot, report, silent_after
from inboxwatch.userfiles.config import load_config

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def heard(tmp_path: Path, ago: timedelta | None, pid: int | None = 4242) -> dict[str, object]:
    cfg = load_config(_config(tmp_path))
    snap = Snapshot([], [], [], [], None if ago is None else NOW - ago, None)
    return report(cfg, snap, NOW, pid)


def test_the_default_limit_is_idle_renewal_plus_keepalive_plus_a_minute(tmp_path: Path) -> None:
    cfg = load_config(_config(tmp_path))
    assert cfg.imap.idle_renew_seconds == 240 and cfg.imap.poll_seconds == 60
    assert silent_after(cfg) == timedelta(minutes=6)


def test_heard_within_the_limit_is_healthy_beyond_it_silent(tmp_path: Path) -> None:
    # 240 s was what a healthy daemon in IDLE showed before: never silent now.
    for seconds in (0, 59, 240, 359):
        rep = heard(tmp_path, timedelta(seconds=seconds))
        assert rep["mail_server_silent"] is False, seconds
        assert rep["last_heard_seconds"] == seconds
    rep = heard(tmp_path, timedelta(seconds=361))
    assert rep["mail_server_silent"] is True
    assert rep["silent_after_seconds"] == 360


def test_silence_is_only_a_running_daemons_problem(tmp_path: Path) -> None:
    # Not running: that is the problem status reports (exit 1) already.
    assert heard(tmp_path, timedelta(hours=3), pid=None)["mail_server_silent"] is False
    # Running but never heard yet (starting, or refused at login: its own notice says so).
    assert heard(tmp_path, None)["mail_server_silent"] is False
