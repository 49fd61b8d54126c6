"""Recognise robot sender addresses: no-reply mailboxes and mail-system senders.

A question about an address alone, with no message: classification asks it of senders
and reply-to addresses, bounce recognition of the addresses named in an NDR's text.
Kept apart from message recognition because it reads no headers or body.
"""

from __future__ import annotations

import re

_SEP = re.compile(r"[-_.=]+")
_NOREPLY_RUN = ("noreply", "donotreply", "dontreply", "noresponse", "donotrespond", "noreplies")
_RUNS = frozenset((*_NOREPLY_RUN, "mailerdaemon"))  # a run of tokens that is a robot's
_ROBOT_TOKENS = frozenset({"bounce", "bounces", "postmaster", "mailerdaemon", "maildaemon"})
# Whole local parts of generators: spam-filter quarantine digests (Barracuda, Sophos,
# Mimecast "quarantine@"), receipt mailers (Stripe "receipts+acct_…@", Square "receipts@").
_ROBOT_WHOLE = frozenset(
    {"notification", "notifications", "autoreply", "autoresponder", "autorespond", "daemon"}
    | {"quarantine", "spamquarantine", "receipts"}
)


def _local(addr: str) -> str:
    """An address's local part, lowercased, any ``+tag`` removed."""
    addr = addr.strip().strip("<>")
    return (addr.rpartition("@")[0] if "@" in addr else addr).lower().split("+", 1)[0]


def local_tokens(addr: str) -> list[str]:
    """The words of an address's local part, split at the separators (``No_Reply+x@``
    → ``["no", "reply"]``)."""
    return [t for t in _SEP.split(_local(addr)) if t]


def is_noreply_address(addr: str) -> bool:
    """True for no-reply robots and mail-system senders we must never write to.

    Compares the local part with any ``+tag`` removed and separators ignored, so
    ``No_Reply+x@``, ``do-not-reply@``, ``noreply-billing@``, ``list-bounces@`` and
    ``MAILER-DAEMON@`` all match. "notifications" is a robot only as the whole local
    part: ``notifications.team`` may be a person's mailbox, ``info@`` always is.
    """
    if not _local(addr):
        return True  # the null sender <>
    tokens = local_tokens(addr)
    joined = "".join(tokens)
    if joined.startswith(_NOREPLY_RUN) or joined.endswith(_NOREPLY_RUN):
        return True
    for i in range(len(tokens)):  # a separated run "...-no-reply-..." in the middle
        for j in range(i + 1, min(len(tokens), i + 3) + 1):
            if "".join(tokens[i:j]) in _RUNS:
                return True
    return bool(_ROBOT_TOKENS.intersection(tokens)) or joined in _ROBOT_WHOLE
