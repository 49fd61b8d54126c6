"""Composing is faster with a short cut for plain headers (issue 12): the bytes must be
exactly what the email library's own folding writes, for any header value."""

from __future__ import annotations

import random
import string
from email.header import Header
from email.message import Message

import pytest

from inboxwatch.core.mime import MAX_LINE, flatten

NAMES = ("Subject", "From", "To", "References", "X-Inboxwatch", "In-Reply-To")
PIECES = [
    *string.ascii_letters,
    *string.digits,
    *"!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~",
    " ",
    "  ",
    "\t",
    "=?",
    "?=",
    "ü",
    "日本",
    "\u00a0",
]


def value(rng: random.Random) -> str:
    size = rng.choice([5, 20, 50, 60, 66, 70, 74, 76, 80, 120, 300])
    return "".join(rng.choice(PIECES) for _ in range(size))[:size]


def both(headers: list[tuple[str, str | Header]]) -> tuple[bytes, bytes]:
    msg = Message()
    for name, v in headers:
        msg[name] = v  # type: ignore[assignment]
    msg.set_payload("body\n")
    return flatten(msg, fast=True), flatten(msg, fast=False)


@pytest.mark.parametrize("seed", range(20))
def test_any_header_value_is_written_as_the_library_writes_it(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(100):
        headers = [(rng.choice(NAMES), value(rng)) for _ in range(rng.randint(1, 6))]
        fast, slow = both(list(headers))
        assert fast == slow, headers


def test_a_value_at_the_fold_limit_and_one_past_it() -> None:
    for extra in (-1, 0, 1, 2):
        words = ("word " * 40)[: MAX_LINE - len("Subject: ") + extra].strip()
        fast, slow = both([("Subject", words)])
        assert fast == slow


def test_header_objects_and_non_ascii_take_the_library_path() -> None:
    fast, slow = both([("Subject", Header("Grüße aus Köln", "utf-8")), ("To", "a@b.test")])
    assert fast == slow
    assert b"=?utf-8?" in fast


def test_a_header_with_a_bare_line_break_is_refused_not_written() -> None:
    msg = Message()
    msg["Subject"] = "Hello\r\nworld, a line of its own"  # the library writes it as it is
    msg.set_payload("body\n")
    assert b"\r\nworld, a line" in flatten(msg, fast=False)
    with pytest.raises(ValueError, match="bare line break"):
        flatten(msg)
