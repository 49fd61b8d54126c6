"""A mail source that passes every call on to another: the base of wrappers that change
one or two things (a dry run's source with its writes off, the bench's NOOP poller)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from inboxwatch.adapters.ports import Batch, MailSource, Stream


class ForwardingSource:
    """Every :class:`~inboxwatch.adapters.ports.MailSource` method, forwarded to ``inner``."""

    def __init__(self, inner: MailSource) -> None:
        self.inner = inner

    def open(self) -> None:
        self.inner.open()

    def close(self) -> None:
        self.inner.close()

    @property
    def has_sent(self) -> bool:
        return self.inner.has_sent

    def read(
        self,
        stream: Stream,
        cursor: str | None,
        *,
        now: datetime,
        lookback: timedelta,
        limit: int,
        headers_only: bool = False,
    ) -> Batch:
        return self.inner.read(
            stream, cursor, now=now, lookback=lookback, limit=limit, headers_only=headers_only
        )

    def flagged(self) -> frozenset[str]:
        return self.inner.flagged()

    def in_sent(self, message_id: str) -> bool:
        return self.inner.in_sent(message_id)

    def save_sent(self, raws: Sequence[bytes], when: datetime) -> None:
        self.inner.save_sent(raws, when)

    def mark_processed(self, refs: Sequence[str]) -> None:
        self.inner.mark_processed(refs)

    def refresh(self) -> None:
        self.inner.refresh()

    def wait(self, seconds: float, interrupted: Callable[[], bool]) -> bool:
        return self.inner.wait(seconds, interrupted)

    def heard_ago(self) -> float | None:
        return self.inner.heard_ago()
