"""Shortcuts of the parse (issue 12) give what the standard library gives."""

from __future__ import annotations

import email
from email.message import Message as StdMessage
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from inboxwatch.core.message import (
    _REPORT_TYPES,
    Address,
    _plain_fields,
    parse_addresses,
    parse_addresses_by_library,
)

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = sorted({*ROOT.glob("tests/**/*.eml"), *ROOT.glob("inboxwatch/testing/samples/*.eml")})


def _blocks() -> list[StdMessage]:
    """Every field block of every report part in the sample mail."""
    out = []
    for path in SAMPLES:
        msg = email.message_from_bytes(path.read_bytes())
        for part in msg.walk():
            payload = part.get_payload()
            if part.get_content_type() in _REPORT_TYPES and isinstance(payload, list):
                out += [p for p in payload if isinstance(p, StdMessage)]
    return out


def test_report_fields_as_the_library_writes_them() -> None:
    blocks = _blocks()
    fast = [b for b in blocks if _plain_fields(b) is not None]
    assert len(fast) > len(blocks) * 0.7  # most blocks take the shortcut
    for block in fast:
        assert _plain_fields(block) == str(block)


_VALUES = st.text(st.sampled_from("ab ;,\t=:-\r\n\x0b\x85é\udcff"), max_size=30)


@given(
    st.lists(st.tuples(st.sampled_from(["Status", "Action", "X-A"]), _VALUES), max_size=5),
    st.one_of(st.none(), _VALUES),
    st.sampled_from(["text/plain", "message/rfc822"]),
)
def test_any_block_as_the_library_writes_it(
    fields: list[tuple[str, str]], payload: str | None, default: str
) -> None:
    block = StdMessage()
    block.set_default_type(default)
    for name, value in fields:
        block.set_raw(name, value)
    block._payload = payload
    fast = _plain_fields(block)
    if fast is not None:
        assert fast == str(block)


_NAMES = st.text(st.sampled_from('ab Z.,;:<>@()\t"\\=?éq'), max_size=12)
_QUOTABLE = st.text(st.sampled_from("ab Z.,;<@\t=?"), max_size=10)  # no quote, no backslash
_ADDRS = st.sampled_from(["a@b.cc", "First.Last+tag@mail.example.com", "x@y", "a..b@c.d", "@x"])


@given(
    st.one_of(
        st.builds(lambda n, a: f'"{n}" <{a}>', _NAMES, _ADDRS),
        st.builds(lambda n, a: f'"{n}" <{a}>', _QUOTABLE, _ADDRS),
        st.builds(lambda n, a: f"{n} <{a}>", _NAMES, _ADDRS),
        st.builds(lambda a: f"<{a}>", _ADDRS),
        _ADDRS,
        _NAMES,
    ),
    st.sampled_from(["", " ", "\t", "  "]),
)
def test_an_address_as_the_library_reads_it(value: str, pad: str) -> None:
    values = (pad + value + pad,)
    assert parse_addresses(values) == parse_addresses_by_library(values)


def test_every_sample_address_as_the_library_reads_it() -> None:
    for path in SAMPLES:
        msg = email.message_from_bytes(path.read_bytes())
        for name in ("from", "to", "cc", "reply-to"):
            values = [str(v) for k, v in msg.raw_items() if k.lower() == name]
            assert parse_addresses(values) == parse_addresses_by_library(values), (path, values)


@given(st.text(max_size=12))
def test_a_display_name_is_quoted_as_before(name: str) -> None:
    specials = ',;:<>@"()[]'
    quoted = f'"{name}"' if any(c in name for c in specials) else name
    assert str(Address("a@b.cc", name)) == (f"{quoted} <a@b.cc>" if name else "a@b.cc")
