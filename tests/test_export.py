"""`inboxwatch export`: every lead, active and archived, with its whole timeline."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from test_commands import write_config

from inboxwatch.adapters.tinydb_store import TinyDbStore
from inboxwatch.cli import main
from inboxwatch.core.lead import Ended, Lead

T0 = datetime(2026, 9, 1, 9, 0, tzinfo=UTC)
Capsys = pytest.CaptureFixture[str]


def lead(address: str, name: str, arrived: datetime) -> Lead:
    return (
        Lead(address, name, "website-form", "website-form", "default", arrived, phone="+1 555")
        .log(arrived, "enquiry", "website-form")
        .log(arrived + timedelta(seconds=1), "ack sent", "Re: Prices")
    )


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """Two leads in the state and one closed long ago, moved to the archive."""
    cfg = write_config(tmp_path)
    store = TinyDbStore.open(tmp_path / "state" / "iw.json")
    old = lead("old@customer.test", "Olga Old", T0).end(T0 + timedelta(days=1), Ended.REPLIED)
    with store.transaction() as state:
        state.put_lead(old, None)
        state.put_lead(lead("ann@customer.test", "Ann Kern", T0 + timedelta(days=40)), None)
        state.put_lead(
            lead("bob@customer.test", 'Bob, "the" Builder', T0 + timedelta(days=41)), None
        )
        assert state.archive_closed(T0 + timedelta(days=60)) == 1
    assert [x.address for x in store.archived()] == ["old@customer.test"]
    return cfg


def test_json_export_has_every_lead_and_every_event(config: Path, capsys: Capsys) -> None:
    assert main(["export", "--config", str(config)]) == 0
    doc = json.loads(capsys.readouterr().out)
    leads = {x["address"]: x for x in doc["leads"]}
    assert list(leads) == ["old@customer.test", "ann@customer.test", "bob@customer.test"]
    assert leads["old@customer.test"]["archived"] is True
    assert leads["ann@customer.test"]["archived"] is False
    assert [e["what"] for e in leads["ann@customer.test"]["events"]] == ["enquiry", "ack sent"]
    assert leads["old@customer.test"]["ended"] == "replied"
    assert leads["bob@customer.test"]["phone"] == "+1 555"
    assert Lead.from_dict(leads["ann@customer.test"]).name == "Ann Kern"  # lossless


def test_csv_export_is_one_row_per_event(config: Path, tmp_path: Path, capsys: Capsys) -> None:
    out = tmp_path / "leads.csv"
    assert main(["export", "--csv", "-o", str(out), "--config", str(config)]) == 0
    assert f"{out}: 3 leads" in capsys.readouterr().err
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    by_lead: dict[str, list[str]] = {}
    for r in rows:
        by_lead.setdefault(r["address"], []).append(r["event"])
    assert by_lead == {
        "old@customer.test": ["enquiry", "ack sent", "automation ended: replied"],
        "ann@customer.test": ["enquiry", "ack sent"],
        "bob@customer.test": ["enquiry", "ack sent"],
    }
    bob = next(r for r in rows if r["address"] == "bob@customer.test")
    assert bob["name"] == 'Bob, "the" Builder' and bob["event_at"].startswith("2026-10-12")
    assert {r["archived"] for r in rows if r["address"] == "old@customer.test"} == {"yes"}


def test_export_of_one_person(config: Path, capsys: Capsys) -> None:
    assert main(["export", "--lead", "Old@Customer.test", "--config", str(config)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [x["address"] for x in doc["leads"]] == ["old@customer.test"]


def test_export_without_a_state_file_is_empty(tmp_path: Path, capsys: Capsys) -> None:
    assert main(["export", "--config", str(write_config(tmp_path))]) == 0
    assert json.loads(capsys.readouterr().out)["leads"] == []
