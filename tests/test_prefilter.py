"""The detectors' prefilter (core/prefilter.py) skips only text a pattern cannot match."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from inboxwatch.core import autodetect, bounces
from inboxwatch.core.prefilter import Gated, gated, rx, words


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


def test_only_ascii_text_is_skipped() -> None:
    pattern = rx(r"\bfailure notice\b")
    assert not pattern.possible("hello there")
    assert pattern.possible("héllo there")  # not ASCII: the pattern runs
    assert pattern.search("FAILURE NOTICE") is not None
    # Under IGNORECASE "ſ" (long s) matches "s": non-ASCII text always runs the pattern.
    assert rx("mail system").search("mail ſystem") is not None


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
