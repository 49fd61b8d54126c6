"""The benchmarks still run against the current code (figures are not checked here)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from inboxwatch.testing.devservers import dovecot_missing

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("which", ["state-cost", "backlog"])
def test_benchmark_runs(which: str) -> None:
    if which == "backlog" and dovecot_missing():
        pytest.skip("needs Dovecot")
    out = subprocess.run(
        [sys.executable, str(REPO / "bench" / "run.py"), which, "--quick"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "benchmarks took" in out.stdout
