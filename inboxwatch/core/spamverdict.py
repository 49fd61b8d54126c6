"""Read the spam verdict our receiving server already wrote into a message's headers.

SpamAssassin (``X-Spam-Flag: YES``, ``X-Spam-Status: Yes, score=...``), rspamd
(``X-Spam: yes``, ``X-Spamd-Result: default: True [score / threshold]``) and Microsoft
365/Exchange (``X-MS-Exchange-Organization-SCL`` and the ``SCL:`` of
``X-Forefront-Antispam-Report``, where 5 and above is spam; -1 means the filter was
bypassed) are honoured. Any one header saying "spam" suffices.

A sender can write these headers as well, and not every server strips them. That is
why a verdict only ever keeps a *new* sender's enquiry from being acknowledged: a forged
"spam" verdict costs the forger an answer, a forged "not spam" is simply not read.
"""

from __future__ import annotations

import re

from inboxwatch.core.message import Message

_YES = re.compile(r"\s*yes\b", re.I)
_RSPAMD = re.compile(r"default:\s*(true|false)\s*\[\s*(-?[\d.]+)\s*/\s*(-?[\d.]+)", re.I)
_SCL = re.compile(r"(?:^|;)\s*SCL:\s*(-?\d+)", re.I)
SCL_SPAM = 5


def _rspamd(value: str) -> bool:
    m = _RSPAMD.search(value)
    if not m:
        return False
    try:
        return m.group(1).lower() == "true" or float(m.group(2)) >= float(m.group(3))
    except ValueError:
        return False


def _scl(value: str) -> int | None:
    m = re.fullmatch(r"\s*(-?\d+)\s*", value) or _SCL.search(value)
    return int(m.group(1)) if m else None


def server_verdict(msg: Message) -> str:
    """The header that calls ``msg`` spam ("" if none does)."""
    for name in ("X-Spam-Flag", "X-Spam-Status", "X-Spam"):
        if any(_YES.match(v) for v in msg.header_all(name)):
            return f"{name}: yes"
    if any(_rspamd(v) for v in msg.header_all("X-Spamd-Result")):
        return "X-Spamd-Result over the threshold"
    for name in ("X-MS-Exchange-Organization-SCL", "X-Forefront-Antispam-Report"):
        for value in msg.header_all(name):
            scl = _scl(value)
            if scl is not None and scl >= SCL_SPAM:
                return f"{name}: SCL {scl}"
    return ""
