"""Test mail, one factory for the tests and the benchmarks: plain messages and replies as a
mail client writes them (copied from ``tests/harness.py``, which is to import them from here).
"""

from __future__ import annotations

import email
import email.message
import email.policy
import email.utils
import itertools
import time
from collections.abc import Mapping
from email.message import EmailMessage

_counter = itertools.count(1)


def mail(
    sender: str,
    to: str,
    subject: str,
    body: str = "Hello, I would like a quote.",
    *,
    name: str = "",
    headers: Mapping[str, str] | None = None,
    msgid: str | None = None,
    html: str | None = None,
) -> bytes:
    """A plain message as a mail client would write it; with ``html``, multipart/alternative
    (the text part first, as mail clients write it)."""
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = email.utils.formataddr((name, sender)) if name else sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = email.utils.formatdate(localtime=True)
    msg["Message-ID"] = msgid or f"<t{next(_counter)}.{time.time_ns()}@client.test>"
    for key, value in (headers or {}).items():
        msg[key] = value
    msg.set_content(body)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    return msg.as_bytes()


def parse(raw: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)


def reply_to(original: bytes, sender: str, body: str, *, name: str = "") -> bytes:
    """A reply as Gmail writes it: Re: subject, In-Reply-To/References, quoted text."""
    msg = parse(original)
    plain = msg.get_body(("plain",))
    text = plain.get_content() if plain is not None else ""
    quoted = "\n".join("> " + line for line in text.splitlines())
    refs = " ".join(filter(None, [str(msg.get("References", "")), str(msg["Message-ID"])]))
    attribution = f"On {msg['Date']}, {msg['From']} wrote:"
    subject = str(msg["Subject"])
    if not subject.lower().startswith("re:"):
        subject = f"Re: {subject}"
    return mail(
        sender,
        str(msg["From"]),
        subject,
        f"{body}\n\n{attribution}\n{quoted}\n",
        name=name,
        headers={"In-Reply-To": str(msg["Message-ID"]), "References": refs},
    )
