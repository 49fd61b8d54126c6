"""The lead commands (leads, show, stop, resume, unsuppress) and time-lapse refusals."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from inboxwatch.adapters.tinydb_store import TinyDbStore
from inboxwatch.cli import main
from inboxwatch.core.lead import Automation, Ended, Lead

REPO = Path(__file__).resolve().parent.parent


def write_config(tmp_path: Path, host: str = "127.0.0.1") -> Path:
    cfg = tmp_path / "config.toml"
    cfg.write_text(
        f"""timezone = "Europe/Berlin"
[imap]
host = "{host}"
port = 1
tls = "{"none" if host == "127.0.0.1" else "ssl"}"
username = "shop@shop.test"
password_env = "IW_TEST_PASSWORD"
timeout = 2
[smtp]
host = "{host}"
port = 1
tls = "{"none" if host == "127.0.0.1" else "starttls"}"
[identity]
address = "hello@shop.test"
name = "Shop"
[owner]
address = "owner@shop.test"
[state]
path = "state/iw.json"
[paths]
rules = "{REPO / "rules"}"
templates = "{REPO / "templates"}"
"""
    )
    return cfg


def add_lead(tmp_path: Path, address: str, **kw: object) -> Lead:
    arrived = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    lead = Lead(
        address=address,
        name="Jane Doe",
        source="website-form",
        rule="website-form",
        sequence="default",
        arrived=arrived,
        first_response=arrived + timedelta(seconds=0.6),
        steps_done={"ack": arrived.isoformat()},
        last_email_at=arrived,
        **kw,  # type: ignore[arg-type]
    ).log(arrived, "enquiry", "website-form")
    store = TinyDbStore.open(tmp_path / "state" / "iw.json")
    with store.transaction() as state:
        state.put_lead(lead, None)
    return lead


def test_leads_lists_first_response_and_next_step(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = write_config(tmp_path)
    add_lead(tmp_path, "jane@customer.test")
    assert main(["leads", "--config", str(cfg), "--json"]) == 0
    row = json.loads(capsys.readouterr().out.splitlines()[0])
    assert row["address"] == "jane@customer.test"
    assert row["first_response_seconds"] == pytest.approx(0.6, abs=0.01)
    assert row["next_step"] == "call-day0"  # the day-0 call task is still open
    assert row["automation"] == "active" and row["source"] == "website-form"
    assert main(["leads", "--config", str(cfg)]) == 0
    line = capsys.readouterr().out
    assert "jane@customer.test" in line and "0.6s" in line


def test_stop_resume_and_show(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write_config(tmp_path)
    add_lead(tmp_path, "jane@customer.test")
    assert main(["stop", "--config", str(cfg), "Jane@Customer.test"]) == 0
    assert main(["stop", "--config", str(cfg), "jane@customer.test"]) == 1  # already ended
    with TinyDbStore.open(tmp_path / "state" / "iw.json", readonly=True).transaction() as s:
        lead = s.lead("jane@customer.test")
    assert lead is not None and lead.ended is Ended.STOPPED
    assert main(["resume", "--config", str(cfg), "jane@customer.test"]) == 0
    with TinyDbStore.open(tmp_path / "state" / "iw.json", readonly=True).transaction() as s:
        lead = s.lead("jane@customer.test")
    assert lead is not None and lead.automation is Automation.ACTIVE and lead.ended is None
    capsys.readouterr()
    assert main(["show", "--config", str(cfg), "jane@customer.test"]) == 0
    out = capsys.readouterr().out
    assert "automation ended: stopped" in out and "resumed" in out
    assert main(["show", "--config", str(cfg), "nobody@customer.test"]) == 1


def test_resume_refuses_a_suppressed_lead_until_unsuppressed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = write_config(tmp_path)
    add_lead(tmp_path, "out@customer.test", automation=Automation.ENDED, ended=Ended.OPTED_OUT)
    add_lead(tmp_path, "gone@customer.test", automation=Automation.ENDED, ended=Ended.BOUNCED)
    store = TinyDbStore.open(tmp_path / "state" / "iw.json")
    with store.transaction() as state:  # as the daemon does on an opt-out or a hard bounce
        state.suppress("out@customer.test", "opted out", datetime.now(UTC))
        state.suppress("gone@customer.test", "hard bounce", datetime.now(UTC))
    assert main(["resume", "--config", str(cfg), "out@customer.test"]) == 1
    assert "unsuppress" in capsys.readouterr().err
    assert main(["resume", "--config", str(cfg), "gone@customer.test"]) == 1
    # The mistake undone, the lead can be resumed.
    assert main(["unsuppress", "--config", str(cfg), "out@customer.test"]) == 0
    assert main(["resume", "--config", str(cfg), "out@customer.test"]) == 0


def test_a_second_daemon_on_the_same_state_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from inboxwatch.service.commands import single_instance

    cfg = write_config(tmp_path)
    monkeypatch.setenv("IW_TEST_PASSWORD", "x")
    with single_instance(tmp_path / "state" / "iw.json"):
        assert main(["run", "--config", str(cfg), "--once"]) == 2
    assert "already running" in capsys.readouterr().err


def test_unsuppress(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write_config(tmp_path)
    store = TinyDbStore.open(tmp_path / "state" / "iw.json")
    with store.transaction() as state:
        state.suppress("out@customer.test", "opted out", datetime.now(UTC))
    assert main(["unsuppress", "--config", str(cfg), "OUT@customer.test"]) == 0
    with store.transaction() as state:
        assert state.suppressed() == frozenset()
    assert main(["unsuppress", "--config", str(cfg), "out@customer.test"]) == 1
    assert "not on the suppression list" in capsys.readouterr().err


def test_time_lapse_refuses_remote_servers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = write_config(tmp_path, host="imap.example.com")
    assert main(["run", "--config", str(cfg), "--time-scale", "86400"]) == 2
    assert "non-loopback" in capsys.readouterr().err


def test_time_lapse_refuses_a_real_state_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = write_config(tmp_path)
    add_lead(tmp_path, "jane@customer.test")  # a state written without --time-scale
    monkeypatch.setenv("IW_TEST_PASSWORD", "x")
    assert main(["run", "--config", str(cfg), "--time-scale", "86400", "--once"]) == 2
    assert "real state file" in capsys.readouterr().err


def test_time_lapse_marks_its_state_as_simulated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = write_config(tmp_path)
    monkeypatch.setenv("IW_TEST_PASSWORD", "x")
    # Nothing listens on port 1: the one cycle fails, but the state was created first.
    assert main(["run", "--config", str(cfg), "--time-scale", "86400", "--once"]) == 1
    assert TinyDbStore.open(tmp_path / "state" / "iw.json", readonly=True).simulated


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to change file owners")
def test_a_write_as_root_keeps_the_state_files_owner(tmp_path: Path) -> None:
    """`sudo inboxwatch stop` must not hand the service's state file to root."""
    cfg = write_config(tmp_path)
    add_lead(tmp_path, "jane@customer.test")
    state = tmp_path / "state" / "iw.json"
    os.chown(state, 65534, 65534)
    assert main(["stop", "--config", str(cfg), "jane@customer.test"]) == 0
    assert (state.stat().st_uid, state.stat().st_gid) == (65534, 65534)
    assert state.stat().st_mode & 0o777 == 0o600


def test_classify_reads_the_state_the_daemon_wrote(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The normal case once the daemon has run: a known lead writing again is a reply."""
    cfg = write_config(tmp_path)
    add_lead(tmp_path, "jane@customer.test")
    eml = tmp_path / "again.eml"
    eml.write_bytes(
        b"From: Jane <jane@customer.test>\r\nTo: hello@shop.test\r\nSubject: One more thing"
        b"\r\nMessage-ID: <again@customer.test>\r\n\r\nAnd the price?\r\n"
    )
    assert main(["classify", "--config", str(cfg), str(eml)]) == 0
    assert "reply" in capsys.readouterr().out


def test_a_lead_with_missing_fields_is_refused_and_the_file_left_untouched(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = write_config(tmp_path)
    add_lead(tmp_path, "jane@customer.test")
    state = tmp_path / "state" / "iw.json"
    TinyDbStore.open(state).compact()  # the whole state in the snapshot, the journal empty
    data = json.loads(state.read_text())
    for row in data["leads"].values():
        del row["arrived"]
    state.write_text(json.dumps(data))
    before = state.read_bytes()
    assert main(["leads", "--config", str(cfg)]) == 1
    err = capsys.readouterr().err
    assert "damaged lead" in err and str(state) in err and len(err.strip().splitlines()) == 1
    assert main(["stop", "--config", str(cfg), "jane@customer.test"]) == 1
    assert state.read_bytes() == before


def test_the_run_lock_file_is_private(tmp_path: Path) -> None:
    from inboxwatch.service.commands import single_instance

    with single_instance(tmp_path / "state" / "iw.json"):
        lock = tmp_path / "state" / "iw.json.run.lock"
        assert lock.stat().st_mode & 0o777 == 0o600
        assert lock.read_text() == str(os.getpid())


def test_status_says_whether_it_runs_what_waits_and_what_is_wrong(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from inboxwatch.core.actions import Notice
    from inboxwatch.service.commands import single_instance

    cfg = write_config(tmp_path)
    add_lead(tmp_path, "jane@customer.test")
    assert main(["status", "--config", str(cfg)]) == 1  # not running
    out = capsys.readouterr().out
    assert "not running" in out and "1 in a sequence" in out and "problems: none" in out
    with single_instance(tmp_path / "state" / "iw.json"):
        assert main(["status", "--config", str(cfg), "--json"]) == 0
        report = json.loads(capsys.readouterr().out)
        assert report["running"] and report["pid"] == os.getpid() and report["problems"] == []
        store = TinyDbStore.open(tmp_path / "state" / "iw.json")
        with store.transaction() as state:
            state.put_notice(
                Notice("sending", "the SMTP server refuses our sender", datetime.now(UTC))
            )
        assert main(["status", "--config", str(cfg)]) == 1
        assert "refuses our sender" in capsys.readouterr().out
