"""The suppression list's two forms of an entry: the address, or a hash of it.

Why: ``inboxwatch forget --keep-suppression`` must erase a person's address yet go on
refusing to write to them. So it leaves ``sha256:<hex of the lower-cased address>``, from
which the address cannot be read back but against which every later address can be
checked. Every place that asks "is this address suppressed?" asks :func:`is_suppressed`,
so a hashed entry is honoured exactly as a plain one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection

HASH_PREFIX = "sha256:"


def hashed(address: str) -> str:
    """The hashed entry for ``address`` (case and surrounding space do not count)."""
    digest = hashlib.sha256(address.strip().lower().encode("utf-8")).hexdigest()
    return HASH_PREFIX + digest


def is_hashed(entry: str) -> bool:
    return entry.startswith(HASH_PREFIX)


def is_suppressed(address: str, suppressed: Collection[str]) -> bool:
    """Is ``address`` on the list, by name or by hash? (an empty list costs nothing)"""
    if not suppressed:
        return False
    plain = address.strip().lower()
    return plain in suppressed or hashed(plain) in suppressed
