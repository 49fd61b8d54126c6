"""The daemon's clocks: the only places that read the time. The core takes ``now`` instead.

A tick reads its clock once and passes that instant down; tests use :class:`FixedClock`
and the time-lapse demo :class:`ScaledClock`, so neither needs threads or patching.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from time import monotonic as _system_monotonic
from typing import Protocol, runtime_checkable


def _aware(t: datetime) -> datetime:
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError(f"datetime must be timezone-aware, got naive {t!r}")
    return t


@runtime_checkable
class Clock(Protocol):
    """The daemon's only source of 'now'; the timing core never reads time itself."""

    def now(self) -> datetime: ...  # aware, UTC


class SystemClock:
    """Real wall-clock time."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class FixedClock:
    """A clock that only moves when told to, for tests."""

    def __init__(self, at: datetime) -> None:
        self._at = _aware(at).astimezone(UTC)

    def now(self) -> datetime:
        return self._at

    def set(self, at: datetime) -> None:
        self._at = _aware(at).astimezone(UTC)

    def advance(self, delta: timedelta) -> None:
        self._at += delta


class ScaledClock:
    """Time-lapse for demos: simulated time runs ``scale`` times faster than real time.

    Driven by a monotonic clock so a wall-clock jump (NTP, suspend) cannot make the
    simulated time go backwards.
    """

    def __init__(
        self,
        scale: float,
        start: datetime | None = None,
        monotonic: Callable[[], float] = _system_monotonic,
    ) -> None:
        if not scale >= 1:
            raise ValueError(f"scale must be >= 1, got {scale}")
        self.scale = float(scale)
        self._start = datetime.now(UTC) if start is None else _aware(start).astimezone(UTC)
        self._monotonic = monotonic
        self._start_mono = monotonic()

    def now(self) -> datetime:
        elapsed = self._monotonic() - self._start_mono
        return self._start + timedelta(seconds=elapsed * self.scale)
