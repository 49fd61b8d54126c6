"""Parse → classify in one process, on the repository's sample mail (issue 12, target 5).

Printed beside the raw rates of mail-parser and of the standard library's parser on the
same messages in the same run, so the ratio holds on any machine. The daemon's rate is
``parse_message`` + ``classify`` with the shipped rules; ``classify --json`` is the
command (in-process, output to a buffer), which also prints every body's new text.
"""

from __future__ import annotations

import contextlib
import email
import io
import logging
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import mailparser
import targets

from inboxwatch.cli import main as cli_main
from inboxwatch.core.classify import classify
from inboxwatch.core.message import parse_message
from inboxwatch.core.verdict import Context
from inboxwatch.errors import MessageError
from inboxwatch.userfiles.rulebook import load_rulebook

REPO = Path(__file__).resolve().parent.parent


def samples() -> list[Path]:
    return sorted(
        [*REPO.glob("tests/mail/**/*.eml"), *REPO.glob("inboxwatch/testing/samples/*.eml")]
    )


def rate(raws: list[bytes], work: Callable[[bytes], object], runs: int) -> list[float]:
    """Messages per second, one figure per run over all messages, after one pass to warm
    up (first-use imports and compiled patterns; the daemon runs for days)."""
    for raw in raws:
        work(raw)
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        for raw in raws:
            work(raw)
        out.append(len(raws) / (time.perf_counter() - t0))
    return out


def cli_rate(paths: list[Path], config: Path, runs: int, times: int = 5) -> list[float]:
    """The command over the samples ``times`` over: its start-up (config, rules) counts
    once per run, as for a user's folder of saved mail."""
    out = []
    files = [str(p) for p in paths] * times
    args = ["classify", "--json", "--config", str(config), *files]
    for _ in range(runs):
        t0 = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            cli_main(args)
        out.append(len(files) / (time.perf_counter() - t0))
    return out


def bench_parse(quick: bool, config: Path) -> None:
    logging.getLogger("mailparser").setLevel(logging.ERROR)
    paths = samples()
    raws = [p.read_bytes() for p in paths]
    runs = 3 if quick else 7
    print(
        f"\n=== parse → classify: {len(raws)} sample messages (tests/mail, testing/samples), "
        f"medians of {runs} runs " + "=" * 10
    )
    book = load_rulebook(REPO / "rules", REPO / "templates")
    ctx = Context(own=frozenset({"shop@example.test"}), team=frozenset())
    now = datetime.now(UTC)

    def daemon_work(raw: bytes) -> None:
        with contextlib.suppress(MessageError):
            classify(parse_message(raw), book, ctx, now)

    figures = {
        "mail-parser alone (parse_from_bytes)": rate(raws, mailparser.parse_from_bytes, runs),
        "standard library alone (compat32)": rate(raws, email.message_from_bytes, runs),
        "inboxwatch parse_message": rate(raws, parse_message, runs),
        "inboxwatch parse → classify": rate(raws, daemon_work, runs),
        "inboxwatch classify --json (the command)": cli_rate(paths, config, runs),
    }
    for name, values in figures.items():
        print(f"  {name:<44} {statistics.median(values):8,.0f} msgs/s")
    mp = statistics.median(figures["mail-parser alone (parse_from_bytes)"])
    targets.check(
        "parse → classify in one process",
        figures["inboxwatch parse → classify"],
        2000,
        "msgs/s",
        sense="ge",
        note=f"mail-parser alone: {mp:,.0f}/s here",
    )
    targets.check(
        "classify --json",
        figures["inboxwatch classify --json (the command)"],
        1000,
        "msgs/s",
        sense="ge",
    )
