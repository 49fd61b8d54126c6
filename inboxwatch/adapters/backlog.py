"""New mail before old: how a mail source reads through a backlog without making the
customer who writes *now* wait behind it.

Why: with a thousand messages waiting, reading oldest first means an enquiry that
arrives meanwhile is answered last, seconds later. So a source that finds more waiting
than one read takes, and mail newer than what it saw at its previous read, returns that
new mail alone first; the backlog goes on after it. The position then says "everything
up to UID U is done, and these few above it": the cursor's optional fourth part,
``"V:U:MARK:u1,u2"``. Nothing is read twice across a restart (the few are skipped) and
nothing is missed (everything above U that is not among them is read).

The IMAP adapter and its in-memory twin share these functions, so the contract suite
holds both to the same behaviour.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

#: At most this many UIDs are kept above the position: if new mail keeps coming faster
#: than the backlog drains, it waits its turn (oldest first) rather than grow the cursor.
MAX_DONE = 200


def done_text(done: Sequence[int]) -> str:
    return ":" + ",".join(map(str, done)) if done else ""


def parse_done(text: str) -> tuple[int, ...]:
    """The fourth part of a cursor; ValueError if garbled."""
    return tuple(sorted(int(u) for u in text.split(",") if u)) if text else ()


def choose(
    pending: Sequence[int], seen_top: int | None, limit: int, done: Sequence[int]
) -> tuple[list[int], bool]:
    """The UIDs to read now, from ``pending`` (ascending, the done ones left out), and
    whether they are new mail served ahead of a backlog.

    New mail is what lies above ``seen_top``, the highest UID the previous read saw on
    this connection (None: no previous read, so there is no "new" to tell apart).
    """
    if len(pending) > limit and seen_top is not None and len(done) < MAX_DONE:
        fresh = [u for u in pending if u > seen_top][: min(limit, MAX_DONE - len(done))]
        if fresh and len(fresh) < len(pending):
            return fresh, True
    return list(pending[:limit]), False


def advance(
    pending: Sequence[int], chosen: Iterable[int], done: Iterable[int], after: int, top: int
) -> tuple[int, tuple[int, ...]]:
    """The position once ``chosen`` is done: the highest UID with everything up to it done
    (past gaps left by expunged mail), and the done UIDs above it."""
    taken = set(chosen)
    finished = taken | set(done)
    rest = [u for u in pending if u not in taken]
    last = max(after, rest[0] - 1) if rest else max(after, top, *finished, 0)
    return last, tuple(sorted(u for u in finished if u > last))
