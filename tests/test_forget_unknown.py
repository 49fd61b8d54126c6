"""`inboxwatch forget` of an address nothing names: one clear outcome either way."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from test_commands import write_config

from inboxwatch.adapters.tinydb_store import TinyDbStore
from inboxwatch.cli import main
from inboxwatch.core.lead import Lead
from inboxwatch.core.suppression import hashed

Capsys = pytest.CaptureFixture[str]
T0 = datetime(2026, 9, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    cfg = write_config(tmp_path)
    store = TinyDbStore.open(tmp_path / "state" / "iw.json")
    with store.transaction() as state:
        state.put_lead(Lead("ann@customer.test", "Ann", "web", "web", "default", T0), None)
    return cfg


def suppressed(config: Path) -> set[str]:
    store = TinyDbStore.open(config.parent / "state" / "iw.json")
    with store.transaction() as state:
        return set(state.suppressed())


def test_never_contact_me_from_an_unknown_address_is_stored_and_succeeds(
    config: Path, capsys: Capsys
) -> None:
    who = "Stranger@Elsewhere.test"
    assert main(["forget", who, "--keep-suppression", "--config", str(config)]) == 0
    got = capsys.readouterr()
    assert got.err == ""
    assert "stranger@elsewhere.test: nothing stored about this address" in got.out
    assert f"kept on the suppression list as {hashed('stranger@elsewhere.test')}" in got.out
    assert "unknown" not in got.out
    assert hashed("stranger@elsewhere.test") in suppressed(config)


def test_an_unknown_address_without_keep_suppression_is_one_error_line(
    config: Path, capsys: Capsys
) -> None:
    assert main(["forget", "typo@customer.test", "--config", str(config)]) == 1
    got = capsys.readouterr()
    assert got.out == ""
    assert got.err.splitlines() == [
        f"inboxwatch: typo@customer.test is unknown: no lead or record in "
        f"{config.parent / 'state'} names it (--keep-suppression still puts it on the "
        "suppression list)"
    ]
    assert suppressed(config) == set()
