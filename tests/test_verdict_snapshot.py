"""Every verdict the classifier gives on the mail the tests and the bench use, pinned.

Issue 12 makes parse → classify faster (header-first decisions, cheaper body scans);
that work must not change a single verdict. This classifies, with the shipped rules,
every ``.eml`` under ``tests/`` and ``inboxwatch/testing/samples/``, hostile mutants of
each (``test_hostile_mail``'s mutations) and the bench's backlog mix (``bench/corpus.py``),
each once from an unknown sender and once from a known lead, and compares every field of the
:class:`Classification` (``classify --json``'s fields and the rest: template, by_team,
the new text by its hash) with ``tests/golden/verdicts.json``.

A change of recognition that is meant (a new sample, a detector that now knows more)
updates the snapshot, and the diff of that file shows every verdict it changed:

    INBOXWATCH_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_verdict_snapshot.py
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import random
import re
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from test_hostile_mail import MUTATIONS

from inboxwatch.core import prefilter
from inboxwatch.core.classify import Classification, Context, Known, classify
from inboxwatch.core.message import parse_message
from inboxwatch.errors import MessageError
from inboxwatch.userfiles.rulebook import load_rulebook

ROOT = Path(__file__).resolve().parent.parent
SNAPSHOT = ROOT / "tests" / "golden" / "verdicts.json"
UPDATE = bool(os.environ.get("INBOXWATCH_UPDATE_GOLDEN"))
SHOP = "shop@example.test"
#: When a message has no usable Date: a fixed time, so return dates are stable.
RECEIVED = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


def _corpus() -> Iterator[tuple[str, bytes]]:
    """The bench's backlog mix, its Date and Message-ID fixed (they are made per run)."""
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import corpus
    finally:
        sys.path.remove(str(ROOT / "bench"))
    for i, item in enumerate(corpus.backlog(150, SHOP, seed=7)):
        raw = re.sub(
            rb"(?im)^Date:.*$", b"Date: Mon, 02 Mar 2026 09:00:00 +0100", item.raw, count=1
        )
        raw = re.sub(rb"(?im)^Message-ID:.*$", b"Message-ID: <c%d@bench.test>" % i, raw, count=1)
        yield f"corpus {i:03d} {item.kind}", raw


def _mutants(name: str, raw: bytes) -> Iterator[tuple[str, bytes]]:
    """Two of ``test_hostile_mail``'s mutations of each sample, drawn by the sample's
    name: a new sample adds its own mutants and leaves the others as they were."""
    rng = random.Random(name)
    for what in rng.sample(sorted(MUTATIONS), 2):
        yield f"{name} ({what})", MUTATIONS[what](raw, rng)


def inputs() -> Iterator[tuple[str, bytes]]:
    files = sorted({*ROOT.glob("tests/**/*.eml"), *ROOT.glob("inboxwatch/testing/samples/*.eml")})
    for path in files:
        name, raw = str(path.relative_to(ROOT)), path.read_bytes()
        yield name, raw
        yield from _mutants(name, raw)
    yield from _corpus()


def _verdict(c: Classification) -> dict[str, Any]:
    """Every field that is set, as JSON; the new text by length and hash (some are 100 kB)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(c):
        value = getattr(c, f.name)
        if f.name == "new_text":
            digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:16]
            value = f"{len(value)} chars sha256:{digest}"
        elif f.name == "lead":
            value = [value.addr, value.name] if value else None
        elif f.name == "fields":
            value = dict(value)
        elif f.name == "kind":
            value = value.value
        elif f.name == "return_date":
            value = value.isoformat() if value else None
        elif isinstance(value, tuple):
            value = list(value)
        if f.name == "reasons":  # a reason may name the rules file: not where the clone is
            value = [r.replace(str(ROOT), "<repo>") for r in value]
        if value or f.name in ("kind", "reasons"):  # the rest only when set: a smaller file
            out[f.name] = value
    return out


def verdicts() -> dict[str, Any]:
    book = load_rulebook(ROOT / "rules", ROOT / "templates")
    unknown = Context(own=frozenset({SHOP}), team=frozenset({"team@example.test"}))
    out: dict[str, Any] = {}
    for name, raw in inputs():
        try:
            msg = parse_message(raw)
        except MessageError as exc:
            out[name] = {"error": str(exc)}
            continue
        received = msg.date if msg.date and msg.date.tzinfo else RECEIVED
        sender = msg.from_.addr if msg.from_ else ""
        lead = dataclasses.replace(unknown, known=Known(by_address={sender: sender}))
        row: dict[str, Any] = {}
        for who, ctx in (("unknown sender", unknown), ("known lead", lead)):
            try:
                row[who] = _verdict(classify(msg, book, ctx, received))
            except MessageError as exc:
                row[who] = {"error": f"{type(exc).__name__}: {exc}"}
        out[name] = row
    return out


def _dump(data: dict[str, Any]) -> str:
    """One line per message, so a diff shows the messages whose verdicts changed."""
    rows = (f"{json.dumps(k)}: {json.dumps(data[k], sort_keys=True)}" for k in sorted(data))
    return "{\n" + ",\n".join(rows) + "\n}\n"


def test_every_verdict_is_the_snapshots() -> None:
    got = verdicts()
    assert len(got) > 500  # samples, mutants and the bench mix all took part
    if UPDATE:
        SNAPSHOT.write_text(_dump(got), encoding="ascii")
    want = json.loads(SNAPSHOT.read_text(encoding="ascii"))
    changed = [name for name in sorted(got) if name in want and got[name] != want[name]]
    assert not changed, "changed verdicts (first 3):\n" + "\n".join(
        f"{name}:\n  was {want[name]}\n  now {got[name]}" for name in changed[:3]
    )
    missing = sorted(set(got) - set(want))
    gone = sorted(set(want) - set(got))
    assert not missing and not gone, (
        f"not in the snapshot: {missing[:5]}; no longer made: {gone[:5]} "
        "(INBOXWATCH_UPDATE_GOLDEN=1 to record a change that is meant)"
    )


def test_the_shortcuts_change_no_verdict(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same verdicts with every detector pattern run on every text (no prefilter):
    holds whatever the rules and detectors say today, so recognition work beside the
    speed work keeps it meaningful."""
    fast = verdicts()
    monkeypatch.setattr(prefilter, "ENABLED", False)
    slow = verdicts()
    assert fast.keys() == slow.keys()
    changed = [name for name in fast if fast[name] != slow[name]]
    assert not changed, "changed by a shortcut (first 3):\n" + "\n".join(
        f"{name}:\n  without {slow[name]}\n  with    {fast[name]}" for name in changed[:3]
    )
