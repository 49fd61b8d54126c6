"""What ``pip install inboxwatch`` carries: the code, and the shipped rules and templates."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from inboxwatch.defaults import folder
from inboxwatch.userfiles.rulebook import load_rulebook

REPO = Path(__file__).resolve().parent.parent


def test_the_default_folders_hold_the_shipped_files_and_load() -> None:
    rules, templates = folder("rules"), folder("templates")
    assert {p.name for p in rules.iterdir()} == {p.name for p in (REPO / "rules").iterdir()}
    book = load_rulebook(Path(str(rules)), Path(str(templates)))
    assert book.rules and "default" in book.sequences and "ack" in book.templates
    with pytest.raises(ValueError, match="no default folder"):
        folder("../etc")


def test_the_wheel_carries_the_default_rules_and_templates(tmp_path: Path) -> None:
    """One copy in the repository (rules/, templates/); the build puts it in the package."""
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(REPO)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    (wheel,) = tmp_path.glob("inboxwatch-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for sub in ("rules", "templates"):
        for path in (REPO / sub).rglob("*.toml"):  # language sets too (templates/de/)
            assert f"inboxwatch/defaults/{sub}/{path.relative_to(REPO / sub)}" in names
    assert "inboxwatch/core/route.py" in names and "inboxwatch/py.typed" in names
    assert not any(n.startswith(("tests/", "rules/", "templates/")) for n in names)
