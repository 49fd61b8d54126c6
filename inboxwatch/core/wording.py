"""Counts in words people read ("1 lead", "2 leads"): output that says "1 sequences" or
"task(s)" reads as unfinished, and a user's eye stops on it."""

from __future__ import annotations


def counted(n: int, noun: str, plural: str = "") -> str:
    """``n`` and ``noun``, the noun in the plural unless ``n`` is 1 (``plural`` for an
    irregular one; else an "s" is added)."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"
