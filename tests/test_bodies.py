"""The body text we take is the text mail-parser took, message for message (issue 12
replaced its ``parse_from_bytes`` with :mod:`inboxwatch.core.bodies` for speed)."""

from __future__ import annotations

import email
import logging
import random
import sys
from pathlib import Path

import mailparser
import pytest

from inboxwatch.core.bodies import body_parts

REPO = Path(__file__).resolve().parent.parent
SAMPLES = sorted(
    [*REPO.glob("tests/mail/**/*.eml"), *REPO.glob("inboxwatch/testing/samples/*.eml")]
)


def generated() -> list[bytes]:
    """The bench's mix: plain and HTML enquiries, web forms, lists, bounces."""
    sys.path.insert(0, str(REPO / "bench"))
    try:
        import corpus
    finally:
        sys.path.remove(str(REPO / "bench"))
    return [item.raw for item in corpus.backlog(200, "shop@example.test", seed=11)]


def mail_parser_bodies(raw: bytes) -> tuple[list[str], list[str]]:
    parsed = mailparser.parse_from_bytes(raw)
    return list(parsed.text_plain), list(parsed.text_html)


def test_there_are_samples_of_every_kind() -> None:
    assert len(SAMPLES) > 150
    assert any("multipart/report" in p.read_text(errors="replace") for p in SAMPLES)


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: str(p.relative_to(REPO)))
def test_the_same_body_text_as_mail_parser(path: Path) -> None:
    logging.getLogger("mailparser").setLevel(logging.ERROR)
    raw = path.read_bytes()
    assert body_parts(email.message_from_bytes(raw)) == mail_parser_bodies(raw)


def test_the_same_body_text_on_generated_mail() -> None:
    logging.getLogger("mailparser").setLevel(logging.ERROR)
    for raw in generated():
        assert body_parts(email.message_from_bytes(raw)) == mail_parser_bodies(raw)


def test_named_inline_text_and_attachments_by_mail_parsers_rules() -> None:
    """A named inline text part is body (and attachment); an attached text file is not
    body; the text of an attached message is (mail-parser takes it, and so do we)."""
    rng = random.Random(1)
    boundary = f"b{rng.getrandbits(32)}"
    raw = (
        "From: a@customer.test\r\nTo: shop@shop.test\r\nSubject: x\r\nMIME-Version: 1.0\r\n"
        f'Content-Type: multipart/mixed; boundary="{boundary}"\r\n\r\n'
        f"--{boundary}\r\nContent-Type: text/plain\r\n\r\nThe body.\r\n"
        f'--{boundary}\r\nContent-Type: text/plain\r\nContent-Disposition: inline; filename="n.txt"'
        "\r\n\r\nNamed inline.\r\n"
        f"--{boundary}\r\nContent-Type: text/plain\r\nContent-Disposition: attachment\r\n\r\n"
        "An attached file.\r\n"
        f"--{boundary}\r\nContent-Type: message/rfc822\r\nContent-Disposition: attachment\r\n\r\n"
        "Subject: inner\r\nContent-Type: text/plain\r\n\r\nInside the attachment.\r\n"
        f"--{boundary}--\r\n"
    ).encode()
    plain, html = body_parts(email.message_from_bytes(raw))
    assert (plain, html) == mail_parser_bodies(raw)
    assert any("The body." in p for p in plain) and any("Named inline." in p for p in plain)
    assert not any("An attached file." in p for p in plain)
    assert any("Inside the attachment." in p for p in plain)
