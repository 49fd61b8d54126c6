"""Issue 12's targets, each checked against the median of several runs and printed with
PASS/FAIL at the end of a bench run (benchmarks are not part of the tests' pass/fail).

A benchmark calls :func:`check` with its figure; :func:`report` prints every figure
checked in this run beside its target, with the ratio to a floor where one was measured.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Figure:
    name: str
    value: float
    limit: float
    unit: str
    #: "le": at most ``limit`` passes; "ge": at least.
    sense: str = "le"
    runs: int = 1
    note: str = ""

    @property
    def passed(self) -> bool:
        return self.value <= self.limit if self.sense == "le" else self.value >= self.limit


_checked: list[Figure] = []
#: Figures the issue asks to be printed beside the targets, without a target of their own.
_also: list[str] = []


def header(title: str) -> None:
    print(f"\n=== {title} " + "=" * max(0, 86 - len(title)), flush=True)


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def fmt(value: float, unit: str) -> str:
    if unit == "s":
        return f"{value:.3f} s"
    if unit == "ms":
        return f"{value:.1f} ms"
    if unit == "%":
        return f"{value:.2f} %"
    if unit == "MB":
        return f"{value:.0f} MB"
    return f"{value:,.0f} {unit}"


def check(
    name: str,
    values: Sequence[float] | float,
    limit: float,
    unit: str,
    *,
    sense: str = "le",
    note: str = "",
) -> Figure:
    """Record a target's figure (the median of ``values``) and print its line at once."""
    runs = [values] if isinstance(values, (int, float)) else list(values)
    value = statistics.median(runs) if runs else float("nan")
    fig = Figure(name, value, limit, unit, sense, len(runs), note)
    _checked.append(fig)
    print("  " + line(fig), flush=True)
    return fig


def also(name: str, text: str) -> None:
    """Record a figure that has no target (printed at once and again in the report)."""
    _also.append(f"{name}: {text}")
    print(f"  [info] {name}: {text}", flush=True)


def line(fig: Figure) -> str:
    verdict = "PASS" if fig.passed else "FAIL"
    op = "≤" if fig.sense == "le" else "≥"
    runs = f", median of {fig.runs}" if fig.runs > 1 else ""
    note = f"  ({fig.note})" if fig.note else ""
    return (
        f"[{verdict}] {fig.name}: {fmt(fig.value, fig.unit)} (target {op} "
        f"{fmt(fig.limit, fig.unit)}{runs}){note}"
    )


def report() -> int:
    """Every target of this run; the number that failed."""
    if not _checked and not _also:
        return 0
    print("\n=== targets (issue 12) " + "=" * 64)
    for fig in _checked:
        print("  " + line(fig))
    for text in _also:
        print(f"  [info] {text}")
    failed = sum(not f.passed for f in _checked)
    print(f"  {len(_checked) - failed} of {len(_checked)} targets met")
    return failed
