"""new_text against quotequail and mail-parser-reply, on our own samples.

    .venv/bin/python bench/quotes.py [--show-misses]

Samples: every case of tests/test_quotes.py (each test function run with the candidate in
place of ``new_text``; parametrized ones once per parameter) and ``CASES`` of
tests/test_quotes_more.py (body, expected new text, quoted history). Printed per candidate:

- right %: cases whose result is exactly what the test expects (all samples);
- history left %: of the CASES that have quoted history, those whose result still holds
  a line of it (the part of issue 9's figure that we can measure on samples);
- ms: total time over all samples.

The libraries are optional (``pip install quotequail mail-parser-reply``); a candidate
that is not installed is skipped. They get the plain text; for HTML-only samples they get
our own HTML-to-text conversion (quotequail: its ``quote_html`` first).
"""

from __future__ import annotations

import inspect
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from inboxwatch.core import quotes
from inboxwatch.core.message import html_to_text
from tests import test_quotes, test_quotes_more

Candidate = Callable[..., str]
LANGS = ["en", "de", "cs", "da", "es", "fr", "it", "ja", "ko", "nl", "pl", "sv", "zh"]


def _quotequail() -> Candidate | None:
    try:
        import quotequail
    except ImportError:
        return None

    from quotequail._patterns import COMPILED_PATTERNS

    def shown(parts: list[tuple[bool, str]]) -> str:
        # quotequail keeps the line that starts a quote ("On ... wrote:") in the part it
        # shows; drop it (one or two lines, as its own patterns match) to be fair to it.
        out = []
        for i, (show, part) in enumerate(parts):
            if not show:
                continue
            lines = part.rstrip().splitlines()
            if i + 1 < len(parts):
                for n in (1, 2):
                    tail = " ".join(ln.strip() for ln in lines[-n:])
                    if any(p.search(tail) for p in COMPILED_PATTERNS):
                        lines = lines[:-n]
                        break
            out.append("\n".join(lines))
        return "\n".join(out).strip()

    def run(text: str, html: str = "") -> str:
        if not text.strip() and html.strip():
            return html_to_text(shown(quotequail.quote_html(html))).strip()
        return shown(quotequail.quote(text))

    return run


def _mail_parser_reply() -> Candidate | None:
    try:
        from mailparser_reply import EmailReplyParser
    except ImportError:
        return None
    parser = EmailReplyParser(languages=LANGS)

    def run(text: str, html: str = "") -> str:
        if not text.strip() and html.strip():
            text = html_to_text(html)
        return (parser.parse_reply(text) or "").strip()

    return run


def _param_sets(fn: Callable[..., None]) -> list[dict[str, object]]:
    """The keyword sets pytest would call ``fn`` with (one stacked parametrize at most)."""
    marks = [m for m in getattr(fn, "pytestmark", []) if m.name == "parametrize"]
    if not marks:
        return [{}]
    names, values = marks[0].args[0], marks[0].args[1]
    keys = [n.strip() for n in names.split(",")] if isinstance(names, str) else list(names)
    if len(keys) == 1:
        return [{keys[0]: v} for v in values]
    return [dict(zip(keys, v, strict=True)) for v in values]


def _test_cases(module: ModuleType) -> list[tuple[str, Callable[..., None], dict[str, object]]]:
    out = []
    for name, fn in inspect.getmembers(module, inspect.isfunction):
        if name.startswith("test_") and fn.__module__ == module.__name__:
            out += [(name, fn, kw) for kw in _param_sets(fn)]
    return out


def measure(name: str, cand: Candidate, show: bool) -> None:
    saved = {m: m.new_text for m in (test_quotes, test_quotes_more)}
    right = total = 0
    misses: list[str] = []
    t0 = time.perf_counter()
    try:
        for module in (test_quotes, test_quotes_more):
            module.new_text = cand  # type: ignore[attr-defined]
            for tname, fn, kw in _test_cases(module):
                if tname in ("test_more_shapes", "test_hostile_html_does_not_hang"):
                    continue  # CASES are counted below; the hostile input is a timing check
                if tname == "test_hostile_lines_stay_fast":
                    continue
                total += 1
                try:
                    fn(**kw)
                    right += 1
                except Exception:
                    misses.append(f"{module.__name__.split('.')[-1]}::{tname} {kw!r:.70}")
    finally:
        for m, f in saved.items():
            m.new_text = f  # type: ignore[attr-defined]
    hist_total = hist_left = 0
    for cname, body, expected, history in test_quotes_more.CASES:
        total += 1
        try:
            got = cand(body)
        except Exception as exc:  # a library crash counts as wrong, history left
            got = f"<{type(exc).__name__}>\n{history}"
        if got == expected:
            right += 1
        else:
            misses.append(f"CASES::{cname} -> {got[:70]!r}")
        hist = {ln.strip(" >") for ln in history.splitlines() if len(ln.strip(" >")) > 3}
        if hist:
            hist_total += 1
            left = {ln.strip(" >") for ln in got.splitlines()}
            hist_left += bool(hist & left)
    ms = (time.perf_counter() - t0) * 1000
    print(
        f"{name:20} right {100 * right / total:5.1f} % ({right}/{total})   history left "
        f"{100 * hist_left / hist_total:5.1f} % ({hist_left}/{hist_total})   {ms:7.1f} ms"
    )
    if show:
        for m in misses:
            print("   miss", m)


def main() -> None:
    show = "--show-misses" in sys.argv
    cands: list[tuple[str, Candidate | None]] = [
        ("inboxwatch", quotes.new_text),
        ("quotequail", _quotequail()),
        ("mail-parser-reply", _mail_parser_reply()),
    ]
    for name, cand in cands:
        if cand is None:
            print(f"{name:20} not installed (pip install {name})")
        else:
            measure(name, cand, show)


if __name__ == "__main__":
    main()
