"""The detectors' prefilter (core/prefilter.py) skips only text a pattern cannot match."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import regex
from hypothesis import given
from hypothesis import strategies as st

from inboxwatch.core import autodetect, bounces
from inboxwatch.core.message import parse_message
from inboxwatch.core.prefilter import _ASCII_LOOKALIKES, Gated, gated, rx, user_gate, words
from inboxwatch.core.quotes import new_text
from inboxwatch.errors import MessageError
from inboxwatch.userfiles.rulebook import load_rulebook


@pytest.mark.parametrize(
    ("pattern", "need"),
    [
        (r"abc|de", {"abc", "de"}),
        (r"(?:out of )?office", {"office"}),  # an optional part is not needed
        (r"x?\bdelivery (?:failed|delayed)\b", {"delivery "}),  # the longest word
        (r"on (?:vacation|holiday)", {"vacation", "holiday"}),
        (r"Mail System", {"mail system"}),  # IGNORECASE: lower-cased
        (r"ab|c?", None),  # one alternative needs nothing: nothing is known
        (r"[ab]+", None),
        (r"a{0,3}", None),
        (r"(?:zz){2,}y", {"zz"}),
        (r"(?-i:Mail)box", {"box"}),  # a group that changes the flags is not looked into
        (r"退信|반송", set()),  # cannot match ASCII text at all
        (r"yan[iı]t", {"yan"}),
        (r"ık", {"k"}),  # dotless ı matches "i" under IGNORECASE: no evidence
        (r"line\nbreak", {"break"}),  # words never span a line break
    ],
)
def test_the_words_a_match_needs(pattern: str, need: set[str] | None) -> None:
    found = words(re.compile(pattern, re.I))
    assert (None if found is None else set(found)) == need


def test_case_counts_without_ignorecase() -> None:
    assert words(re.compile("Mail")) == {"Mail"}
    assert gated(re.compile("Mail")).search("mail") is None
    assert gated(re.compile("Mail")).search("a Mail") is not None


def test_text_in_other_scripts() -> None:
    pattern = rx(r"\bfailure notice\b|退信")
    assert words(pattern._pattern) == {"failure notice"}  # in ASCII text: only English
    assert words(pattern._pattern, ascii_text=False) is None  # else: "退信" has no ASCII
    assert not pattern.possible("hello there")
    assert pattern.possible("héllo 退 there")
    assert pattern.search("系统退信") is not None
    english = rx(r"\bfailure notice\b")
    assert not english.possible("héllo there")
    assert english.search("FAILURE NOTICE für dich") is not None
    # Under IGNORECASE "ſ" (long s) matches "s": such text always runs the pattern.
    assert english.possible("ſ")
    assert rx("mail system").search("mail ſystem") is not None
    assert rx("kind").search("Kind") is not None  # the Kelvin sign


def test_the_ascii_lookalikes_are_all_of_them() -> None:
    """Every non-ASCII character that IGNORECASE matches to an ASCII one, or whose lower
    case holds an ASCII one, is among those that turn the shortcut off."""
    chars = "".join(chr(c) for c in range(128, 0x110000) if not 0xD800 <= c < 0xE000)
    found = set(re.compile("[\x00-\x7f]", re.I).findall(chars))
    found |= set(regex.compile("[\x00-\x7f]", regex.I).findall(chars))  # the rules' engine
    found |= {c for c in chars if not c.lower().isascii() and any(x.isascii() for x in c.lower())}
    assert found == set(_ASCII_LOOKALIKES.pattern[1:-1])


def test_the_pattern_is_still_there() -> None:
    pattern = rx(r"^original message")
    assert pattern.pattern == "(?:^original message)"
    assert pattern.flags & re.I
    assert isinstance(pattern, Gated)


DETECTORS = [
    v
    for module in (autodetect, bounces)
    for v in vars(module).values()
    if isinstance(v, Gated) and v.need is not None
]
# Text made of the detectors' own words, cut and cased at random, with the punctuation and
# spacing their patterns look for: the kind of text where a wrong shortcut would show.
_PIECES = sorted({w for g in DETECTORS for w in g.need or ()})


@st.composite
def _texts(draw: st.DrawFn) -> str:
    out = []
    for _ in range(draw(st.integers(1, 8))):
        word = draw(st.sampled_from(_PIECES))
        start = draw(st.integers(0, len(word)))
        end = draw(st.integers(start, len(word)))
        if draw(st.booleans()):
            word = word[:start] + word[end:]  # a word with a piece missing
        if draw(st.booleans()):
            word = word.upper()
        out.append(word)
        out.append(draw(st.sampled_from([" ", "", "\n", ": ", "-", " 550 5.1.1 ", "x"])))
    return "".join(out)


def test_the_detectors_have_words() -> None:
    assert len(DETECTORS) >= 20


@given(_texts())
def test_a_skipped_text_never_matches(text: str) -> None:
    for g in DETECTORS:
        if not g.possible(text):
            assert g._pattern.search(text) is None, (g, text)


# The new text is asked about through the plain text (autodetect._may_say): that holds
# only while every line of the new text is a piece of one line of the plain text.
ROOT = Path(__file__).resolve().parent.parent
SAMPLES = sorted({*ROOT.glob("tests/**/*.eml"), *ROOT.glob("inboxwatch/testing/samples/*.eml")})


def _pieces_of_lines(new: str, text: str) -> list[str]:
    """Lines of ``new`` that are not part of one line of ``text`` (none, as it should be)."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return [n for n in new.split("\n") if not any(n in line for line in lines)]


def test_the_new_text_is_pieces_of_the_texts_lines() -> None:
    checked = 0
    for path in SAMPLES:
        try:
            msg = parse_message(path.read_bytes())
        except MessageError:
            continue
        if msg.text.strip():
            assert not _pieces_of_lines(msg.new_text, msg.text), path
            checked += 1
    assert checked > 100


_LINES = st.sampled_from(
    [
        "Thanks, see you then.",
        "> quoted text",
        "On Mon, 2 Mar 2026 at 10:00, Jane <jane@example.com> wrote:",
        "Yes. On Mon, 2 Mar 2026, Jane <jane@example.com> wrote:",
        "-----Original Message-----",
        "From: Jane <jane@example.com>",
        "Sent: Monday, 2 March 2026 10:00",
        "Subject: quote",
        "-- ",
        "Sam",
        "Sent from my iPhone",
        "",
        "  indented  ",
    ]
)


@given(st.lists(_LINES, max_size=14), st.sampled_from(["\n", "\r\n", "\r"]))
def test_the_new_text_of_any_text_is_pieces_of_its_lines(lines: list[str], end: str) -> None:
    text = end.join(lines)
    assert not _pieces_of_lines(new_text(text), text)


def test_rule_patterns_are_gated_as_the_regex_module_reads_them() -> None:
    assert user_gate(r"[[:alpha:]]+ form", re.I) is None  # POSIX class: re reads it otherwise
    assert user_gate(r"\w+", re.I).need is None  # type: ignore[union-attr]
    gate = user_gate(r"\bcontact[ -]?form\b", re.I)
    assert gate is not None
    assert gate.need == {"contact"}
    assert not gate.possible("a plain enquiry")
    assert gate.possible("CONTACT FORM")


_RULE_PATTERNS = [
    p
    for rule in load_rulebook(ROOT / "rules", ROOT / "templates").rules
    for p in (*rule.lead_patterns, *(p for c in rule.conditions for p in c.patterns))
    if p.gate is not None and p.gate.need is not None
]
_RULE_WORDS = sorted({w for p in _RULE_PATTERNS for w in p.gate.need or ()})  # type: ignore[union-attr]


def test_the_shipped_rules_have_gates() -> None:
    assert len(_RULE_PATTERNS) > 10


@given(st.lists(st.sampled_from(_RULE_WORDS), max_size=6), st.sampled_from([" ", "", "\n", ": "]))
def test_a_skipped_text_never_matches_a_rule(words_: list[str], sep: str) -> None:
    """The shipped rules' patterns, run by the regex module, on text of their own words."""
    text = sep.join(w.upper() if len(w) % 2 else w for w in words_)
    for p in _RULE_PATTERNS:
        assert p.gate is not None
        if not p.gate.possible(text):
            assert p.compiled.search(text) is None, (p.source, text)


def test_a_sequence_needs_a_word_of_each_part() -> None:
    gate = rx(r"\b(?:new|neue)\b.{0,40}\b(?:submission|entry)\b")
    assert not gate.possible("a new quote")  # the second part is missing
    assert not gate.possible("my entry")  # the first part is missing
    assert gate.possible("New website entry")
    assert gate.search("New website entry") is not None
