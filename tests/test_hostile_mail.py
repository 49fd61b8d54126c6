"""Hostile and malformed mail must never crash or stall the daemon.

The parse path reads headers lazily (``core/message.py``, ``core/lazy.py``), so an error
that used to be raised while parsing may come later: from classifying, routing, or
composing the acknowledgement and the owner's alert. This feeds the real daemon, on the
in-memory twins with a fixed clock, the repository's sample mail mutated the way broken
and hostile senders write it (seeded, so a failure is reproducible), with one valid
enquiry behind it, and asserts what "malformed mail: logged, recorded, skipped, never
lost" means: the tick returns; no message trips a bug (a traceback in the log); every
message is a lead, ignored by kind, or recorded as rejected; the enquiry at the end is
acknowledged; and every message the daemon sends is clean (no bare CR or LF in a header,
and it parses back without defects in its addressing and threading headers).
"""

from __future__ import annotations

import email
import email.policy
import logging
import random
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from test_scenario import ALWAYS_OPEN, MemoryEdges

from inboxwatch.adapters.tinydb_store import TinyDbStore
from inboxwatch.core.message import Address, decode_header_value, parse_message
from inboxwatch.core.mime import Outgoing, attachments, to_bytes
from inboxwatch.service.commands import load_all
from inboxwatch.service.daemon import Daemon
from inboxwatch.testing.mailfactory import mail

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = sorted(
    [*ROOT.glob("tests/mail/**/*.eml"), *ROOT.glob("inboxwatch/testing/samples/*.eml")]
)
CHECKED = ("From", "To", "Subject", "Message-ID", "In-Reply-To", "References")


def _split(raw: bytes) -> tuple[bytes, bytes]:
    raw = raw.replace(b"\r\n", b"\n")
    head, sep, body = raw.partition(b"\n\n")
    return head, body if sep else b""


def _join(head: bytes, body: bytes) -> bytes:
    return head.rstrip(b"\n") + b"\n\n" + body


def _set(raw: bytes, name: bytes, value: bytes, *, keep: bool = False) -> bytes:
    """``raw`` with header ``name`` replaced by (or, with ``keep``, added as) ``value``."""
    head, body = _split(raw)
    if not keep:
        head = re.sub(rb"(?im)^" + re.escape(name) + rb":.*(\n[ \t].*)*\n?", b"", head + b"\n")
    return _join(name + b": " + value + b"\n" + head, body)


def _drop(raw: bytes, name: bytes) -> bytes:
    head, body = _split(raw)
    head = re.sub(rb"(?im)^" + re.escape(name) + rb":.*(\n[ \t].*)*\n?", b"", head + b"\n")
    return _join(head, body)


Mutation = Callable[[bytes, random.Random], bytes]


def _nested(depth: int, boundary_missing: bool = False) -> bytes:
    head = b"From: deep@nest.test\nTo: shop@shop.test\nSubject: nest\nMIME-Version: 1.0\n"
    parts = [head]
    for i in range(depth):
        parts.append(b'Content-Type: multipart/mixed; boundary="b%d"\n\n--b%d\n' % (i, i))
    parts.append(b"Content-Type: text/plain\n\nI would like a quote.\n")
    if not boundary_missing:
        parts += [b"--b%d--\n" % i for i in reversed(range(depth))]
    return b"".join(parts)


def _attachment(raw: bytes, rng: random.Random) -> bytes:
    """An enquiry with files whose names and types a hostile sender chose."""
    names = [
        b"=?x-unknown?B?!!!?=.pdf",
        b"a\r\nBcc: x@evil.test.pdf",
        b"../../etc/passwd",
        b"\xff\xfe.doc",
        b"x" * 5000 + b".txt",
        b"",
    ]
    head = b"From: Files <files@hostile.test>\nTo: shop@shop.test\nSubject: quote, files\n"
    head += b'MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="f"\n\n'
    parts = [head, b"--f\nContent-Type: text/plain\n\nI would like a quote, see files.\n"]
    for name in rng.sample(names, 3):
        ctype = rng.choice([b"application/pdf", b"x/\xff", b'image/png; name=""', b""])
        parts.append(
            b"--f\nContent-Type: "
            + ctype
            + b'\nContent-Disposition: attachment; filename="'
            + name
            + b'"\nContent-Transfer-Encoding: base64\n\n'
            + rng.choice([b"JVBERi0xLjQK", b"!!!not base64!!!", b"", b"QUJD" * 100])
            + b"\n"
        )
    if rng.random() < 0.5:  # a forwarded mail, its headers broken
        parts.append(
            b"--f\nContent-Type: message/rfc822\n\nFrom: Old <old@x.test>\x0bTo: y@x.test\n"
            b"Subject: =?x-unknown?B?!!!?=\xff\n\nold text\n"
        )
    return b"".join(parts) + b"--f--\n"


def _form(rng: random.Random) -> bytes:
    """A web-form notification whose fields carry CR/LF and encoded words."""
    evil = rng.choice(
        ["Eve\r\nBcc: x@evil.test", "=?x-unknown?B?!!!?=", "\x00\x1b[31m", "a" * 3000]
    )
    body = f"Name: {evil}\nEmail: eve@hostile.test\nPhone: {evil}\nMessage: {evil}\n"
    return (
        b"From: Formspree <noreply@formspree.io>\nTo: shop@shop.test\nSubject: New submission\n"
        b"Reply-To: " + evil.encode() + b" <eve@hostile.test>\n\n" + body.encode()
    )


MUTATIONS: dict[str, Mutation] = {
    "truncated": lambda raw, r: raw[: r.randrange(len(raw) + 1)],
    "byte flips": lambda raw, r: bytes(
        b ^ (1 << r.randrange(8)) if r.random() < 0.01 else b for b in raw
    ),
    "8-bit subject": lambda raw, r: _set(raw, b"Subject", b"Caf\xe9 \xff\xfe quote \xc3\x28"),
    "8-bit from name": lambda raw, r: _set(raw, b"From", b"J\xf6rg \xff <joerg@shop-kunde.test>"),
    "bad charset word": lambda raw, r: _set(raw, b"Subject", b"=?x-unknown?B?!!!?= hello"),
    "bad q word": lambda raw, r: _set(raw, b"Subject", b"=?utf-8?Q?%?= =?utf-8?B?w6?="),
    "bad word in from": lambda raw, r: _set(raw, b"From", b"=?x-unknown?B?!!!?= <w@bad-word.test>"),
    "bad word in to": lambda raw, r: _set(raw, b"To", b"=?utf-8?B?////?= <shop@shop.test>"),
    "huge header": lambda raw, r: _set(raw, b"Subject", b"quote " * 20_000),
    "huge unfolded line": lambda raw, r: _set(raw, b"X-Junk", b"x" * 200_000),
    "thousands of recipients": lambda raw, r: _set(
        raw, b"To", b", ".join(b"r%d@many.test" % i for i in range(3000))
    ),
    "two froms": lambda raw, r: _set(raw, b"From", b"second@two.test", keep=True),
    "no from": lambda raw, r: _drop(raw, b"From"),
    "no date": lambda raw, r: _drop(raw, b"Date"),
    "two dates": lambda raw, r: _set(raw, b"Date", b"Mon, 99 Foo 2026 99:99:99 +9999", keep=True),
    "bad date": lambda raw, r: _set(raw, b"Date", b"yesterday-ish \xff"),
    "no message-id": lambda raw, r: _drop(raw, b"Message-ID"),
    "two message-ids": lambda raw, r: _set(raw, b"Message-ID", b"<dup@x.test>", keep=True),
    "message-id with CR": lambda raw, r: _set(raw, b"Message-ID", b"<a\rb@x.test>"),
    "8-bit header bytes": lambda raw, r: _join(
        bytes(b | 0x80 if r.random() < 0.03 and b > 32 else b for b in _split(raw)[0]),
        _split(raw)[1],
    ),
    "line-break controls": lambda raw, r: bytes(
        x
        for b in raw
        for x in ((b, r.choice(b"\x0b\x0c\x1c\x1d\x1e\x85")) if r.random() < 0.004 else (b,))
    ),
    "8-bit message-id": lambda raw, r: _set(
        raw, b"Message-ID", b"<caf\xe9.%d@x.test>" % r.randrange(10**9)
    ),
    "8-bit references": lambda raw, r: _set(
        raw, b"References", b"<a\xff@x.test> <b\xc3\xa9@y.test>"
    ),
    "message-id garbage": lambda raw, r: _set(raw, b"Message-ID", b"<<>><<a b c>>><@>"),
    "references garbage": lambda raw, r: _set(
        raw, b"References", b"<a@b> junk <c\rd@e> <<f@g>> <\x00@h> <" + b"x" * 5000
    ),
    "in-reply-to garbage": lambda raw, r: _set(raw, b"In-Reply-To", b"<x@y\r\nBcc: a@b>"),
    "nul bytes": lambda raw, r: raw.replace(b"\n", b"\x00\n", 5).replace(b"a", b"\x00a", 20),
    "no-colon header lines": lambda raw, r: _set(raw, b"X-A", b"1\nThis line has no colon"),
    "quoted local part": lambda raw, r: _set(raw, b"From", b'"a@b"@c'),
    "empty address": lambda raw, r: _set(raw, b"From", b"<>"),
    "lone at": lambda raw, r: _set(raw, b"From", b"@"),
    "group syntax": lambda raw, r: _set(raw, b"To", b"undisclosed-recipients:;"),
    "group in from": lambda raw, r: _set(raw, b"From", b"Team: a@team.test, b@team.test;"),
    "idn domain": lambda raw, r: _set(raw, b"From", "Jörg <jörg@bücher.example>".encode()),
    "punycode domain": lambda raw, r: _set(raw, b"From", b"lea <lea@xn--bcher-kva.example>"),
    "utf-8 local part": lambda raw, r: _set(raw, b"From", "пётр@почта.рф".encode()),
    "subject injection": lambda raw, r: _set(
        raw, b"Subject", b"=?utf-8?Q?Hi=0D=0ABcc:_victim@evil.test=0D=0A?= quote"
    ),
    "subject injection b": lambda raw, r: _set(
        raw, b"Subject", b"=?utf-8?B?SGkNCkJjYzogdmljdGltQGV2aWwudGVzdA0KDQo=?="
    ),
    "from injection": lambda raw, r: _set(
        raw, b"From", b"=?utf-8?Q?Evil=0D=0ABcc:_x@evil.test?= <evil@evil.test>"
    ),
    "reply-to injection": lambda raw, r: _set(
        raw, b"Reply-To", b'=?utf-8?Q?x=0Ay?= <r@evil.test>, <>, @, "a@b"@c'
    ),
    "cte lie base64": lambda raw, r: _set(raw, b"Content-Transfer-Encoding", b"base64"),
    "cte lie qp": lambda raw, r: _set(raw, b"Content-Transfer-Encoding", b"quoted-printable"),
    "cte unknown": lambda raw, r: _set(raw, b"Content-Transfer-Encoding", b"x-uuencode-ish"),
    "boundary missing": lambda raw, r: _set(raw, b"Content-Type", b"multipart/mixed"),
    "boundary empty": lambda raw, r: _set(
        raw, b"Content-Type", b'multipart/alternative; boundary=""'
    ),
    "bad charset param": lambda raw, r: _set(
        raw, b"Content-Type", b"text/plain; charset=x-bogus-9"
    ),
    "attachment names": lambda raw, r: _attachment(raw, r),
    "rfc 2231 garbage": lambda raw, r: _set(
        raw,
        b"Content-Type",
        b"text/plain; charset*=x-unknown'en'%ff%fe; name*0*=utf-8''%E2%28; name*1=\"\r\n\"",
    ),
    "year 99999": lambda raw, r: _set(raw, b"Date", b"Mon, 02 Mar 99999 10:00:00 +0000"),
    "date overflow": lambda raw, r: _set(raw, b"Date", b"Mon, 02 Mar 2026 10:00:00 +9999999"),
    "odd auto headers": lambda raw, r: _set(
        _set(raw, b"Auto-Submitted", b"=?utf-8?B?////?=\xff"),
        b"List-Id",
        b"<\x00" + b"<" * 3000,
    ),
    "form field injection": lambda raw, r: _form(r),
    "nested 100 deep": lambda raw, r: _nested(100),
    "nested without ends": lambda raw, r: _nested(100, boundary_missing=True),
    "headers only": lambda raw, r: _split(raw)[0],
    "empty": lambda raw, r: b"",
    "garbage": lambda raw, r: bytes(r.randrange(256) for _ in range(r.randrange(1, 2000))),
}


def _mutants(seed: int, count: int) -> list[tuple[str, bytes]]:
    rng = random.Random(seed)
    names = sorted(MUTATIONS)
    out = []
    for i in range(count):
        sample = rng.choice(SAMPLES)
        name = names[i % len(names)] if i < len(names) else rng.choice(names)
        # Each its own message (not "seen before"), mostly from its own sender.
        raw = _set(sample.read_bytes(), b"Message-ID", b"<m%d.%d@hostile.test>" % (seed, i))
        if rng.random() < 0.6:
            raw = _set(raw, b"From", b"Sender %d <s%d.%d@hostile.test>" % (i, seed, i))
        raw = MUTATIONS[name](raw, rng)
        if rng.random() < 0.3:  # two at once: a hostile message is rarely wrong in one way
            second = rng.choice(names)
            raw, name = MUTATIONS[second](raw, rng), f"{name} + {second}"
        out.append((f"{sample.name}: {name}", raw))
    return out


def _bare_line_ends(raw: bytes) -> list[bytes]:
    """Header lines of ``raw`` with a CR or LF that does not end the line."""
    head = raw.split(b"\r\n\r\n", 1)[0]
    return [line for line in head.split(b"\r\n") if b"\r" in line or b"\n" in line]


def _check_outgoing(raw: bytes) -> None:
    assert not _bare_line_ends(raw), _bare_line_ends(raw)
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    for name in CHECKED:
        for value in msg.get_all(name, []):
            assert not value.defects, (name, str(value), value.defects)
            assert "\r" not in str(value) and "\n" not in str(value), (name, str(value))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_hostile_mail_is_recorded_and_skipped_and_the_enquiry_behind_it_is_answered(
    tmp_path: Path, seed: int, caplog: pytest.LogCaptureFixture
) -> None:
    # No hourly cap: the enquiry behind the pile is answered in this tick, not the next.
    edges = MemoryEdges(tmp_path, ALWAYS_OPEN + "max_per_hour = 5000\nmax_per_day = 5000\n")
    # The real state file (JSON on disk), as in production: what hostile mail leaves
    # in a lead (NULs, lone surrogates, 100 kB names) must be written and read back.
    cfg, book = load_all(tmp_path / "config.toml")
    edges.store = TinyDbStore.open(cfg.state_path)
    edges.daemon = Daemon(
        cfg, book, edges.store, edges.clock, edges.source, edges.sender, journal=None
    )
    edges.daemon.connect(edges.clock.now())
    edges.daemon.tick(edges.clock.now())  # first start: the position is set
    edges.source.processed_keyword = "$Processed"  # what the daemon says it is done with
    refs: dict[str, str] = {}
    now = edges.clock.now()
    mutants = _mutants(seed, 72)
    with caplog.at_level(logging.ERROR):
        # In small batches: a pile over ``backlog_summary_over`` gets one summary for
        # the owner instead of an alert each, and the alerts carry the most lead text.
        for start in range(0, len(mutants), 12):
            for i, (what, raw) in enumerate(mutants[start : start + 12]):
                # Some flagged by a person (the flag path); some also in Sent, as if a
                # person had written them (read headers only, for whom they went to).
                refs[edges.source.deliver(raw, received=now, flagged=i == 5)] = what
                if i % 4 == 0:
                    edges.source.deliver_sent(raw, received=now)
            now += timedelta(minutes=1)
            edges.daemon.tick(now)
        edges.deliver(mail("lea@customer.test", edges.shop, "A quote for 40 chairs?"))
        edges.daemon.tick(now + timedelta(minutes=1))
        edges.daemon.tick(now + timedelta(minutes=5))  # what the tick before queued goes out
    crashes = [
        f"{refs.get(r.getMessage().split(': ')[0], '?')}: {r.getMessage()}"
        for r in caplog.records
        if r.exc_info
    ]
    assert not crashes, "\n".join(crashes)
    with edges.store.transaction() as state:
        rejected = {r.ref: r.error for r in state.rejects()}
    assert set(rejected) <= set(refs), rejected
    bugs = {refs[r]: e for r, e in rejected.items() if re.match(r"\w+(Error|Exception): ", e)}
    assert not bugs, bugs
    # Every message was handled (a lead, a reply, ignored by kind) or recorded as
    # rejected, and the daemon is done with it: none is left behind to stall the next tick.
    left = [what for ref, what in refs.items() if "$Processed" not in edges.source.flags(ref)]
    assert not left, left
    acks = [e for e in edges.sender.sent if e.rcpt == "lea@customer.test"]
    assert any(b"X-Inboxwatch: ack" in e.raw for e in acks)
    assert edges.sender.sent
    for envelope in edges.sender.sent:
        _check_outgoing(envelope.raw)


@pytest.mark.parametrize(
    ("value", "read"),
    [
        ("=?x-unknown?B?!!!?= Jones", "Jones"),  # broken base64: the word is lost, not shown
        ("=?x-unknown?B?SsO2cmc=?= Jones", "J\u00f6rg Jones"),  # unknown charset: as UTF-8
        ("=?utf-8?B?w6k=?= =?x-unknown?B?!!!?= ok", "\u00e9 ok"),
        ("=?utf-8?Q?%?=", "%"),
        ("=?utf-8?Q?Hi=0D=0ABcc:_x@evil.test?=", "Hi Bcc: x@evil.test"),  # one line
    ],
)
def test_an_undecodable_encoded_word_does_not_reach_the_reader_raw(value: str, read: str) -> None:
    assert decode_header_value(value) == read


@pytest.mark.parametrize("name", ["=?x-unknown?B?!!!?=", "New lead: =?utf-8?Q?hi?= x", "a=?b"])
def test_text_that_looks_like_an_encoded_word_is_sent_as_text(name: str) -> None:
    """Literal ``=?...?=`` in a name or subject is encoded, so a reader shows it as it is
    instead of decoding it (or finding a defect in a quoted string)."""
    out = Outgoing(
        purpose="ack",
        from_=Address("shop@shop.test", name),
        to=Address("lea@customer.test", name),
        subject=f"Re: {name}",
        body="Thank you.",
        message_id="<iw.1@shop.test>",
        date=datetime(2026, 3, 2, tzinfo=UTC),
    )
    back = email.message_from_bytes(to_bytes(out), policy=email.policy.default)
    for header in ("From", "To"):
        value = back[header]
        assert not value.defects and value.addresses[0].display_name == name
    assert not back["Subject"].defects and str(back["Subject"]) == f"Re: {name}"


def test_8bit_bytes_in_a_message_id_are_read_as_text_the_state_can_store() -> None:
    """A flipped bit in a Message-ID used to come through as a lone surrogate, which the
    state file cannot encode: the chunk's commit failed, and every tick read the same
    chunk again (the inbox stalled behind one message)."""
    raw = b"From: a@b.test\r\nMessage-ID: <caf\xe9@x.test>\r\nReferences: <\xff@y.test>\r\n\r\nhi"
    msg = parse_message(raw)
    for mid in (msg.message_id, *msg.references):
        mid.encode("utf-8")  # raises on a lone surrogate
    assert msg.message_id == "<caf\u00e9@x.test>"


def test_a_rejection_that_quotes_8bit_bytes_is_stored(tmp_path: Path) -> None:
    """Why a message was rejected may quote it; a lone surrogate in that text must not
    make the state's commit fail (the batch, and every tick after it, would fail)."""
    store = TinyDbStore.open(tmp_path / "iw.json")
    at = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    with store.transaction() as state:
        state.reject("1:1", "ValueError: bad header 'caf\udce9'", at)
    with TinyDbStore.open(tmp_path / "iw.json").transaction() as state:
        assert [r.error for r in state.rejects()] == ["ValueError: bad header 'caf\\udce9'"]


def test_a_delivery_report_with_a_line_break_inside_a_field_is_still_read() -> None:
    """A vertical tab (a flipped bit) in a delivery-status field made the standard
    library refuse to write the block back ("embedded header"): the bounce was not
    classified at all, and the daemon logged it as a bug."""
    raw = (
        b"From: MAILER-DAEMON@mx.test\nTo: shop@shop.test\nSubject: Undelivered\n"
        b"MIME-Version: 1.0\nContent-Type: multipart/report; report-type=delivery-status;"
        b' boundary="b"\n\n--b\nContent-Type: text/plain\n\nNot delivered.\n'
        b"--b\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.test\n\n"
        b"Final-Recipient: rfc822; x@y.test\x0bTo: z@y.test\nAction: failed\n"
        b"Status: 5.1.1\n--b--\n"
    )
    report = parse_message(raw).report_text
    assert "Reporting-MTA: dns; mx.test" in report
    assert "Action: failed\nStatus: 5.1.1" in report


def test_a_forwarded_mail_the_library_cannot_write_back_is_left_out_of_the_alert() -> None:
    """An attached mail whose header held a vertical tab made the owner's alert fail
    (HeaderParseError from as_bytes): the enquiry was rejected, not acknowledged."""
    raw = (
        b"From: Lea <lea@customer.test>\nTo: shop@shop.test\nSubject: quote\n"
        b'MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="b"\n\n'
        b"--b\nContent-Type: text/plain\n\nSee the attached mail.\n--b\n"
        b"Content-Type: application/pdf\nContent-Disposition: attachment; "
        b'filename="plan.pdf"\nContent-Transfer-Encoding: base64\n\nJVBERi0xLjQK\n--b\n'
        b"Content-Type: message/rfc822\n\nFrom: Old <old@x.test>\x0bTo: y@x.test\n"
        b"Subject: old\n\nold text\n--b--\n"
    )
    kept, left = attachments(raw, 10**6)
    assert [a.filename for a in kept] == ["plan.pdf"] and left == ()
