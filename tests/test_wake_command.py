"""`wake_daemon`: the commands that change the state wake the daemon named in the run
lock with SIGUSR1, and say so only when it worked (none running, or another user's
process they may not signal: the daemon follows at its next wake)."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import pytest

from inboxwatch.service.commands import single_instance
from inboxwatch.service.lead_commands import wake_daemon


@pytest.fixture
def usr1() -> Iterator[list[int]]:
    got: list[int] = []

    def handler(signum: int, frame: FrameType | None) -> None:
        got.append(signum)

    saved = signal.signal(signal.SIGUSR1, handler)
    try:
        yield got
    finally:
        signal.signal(signal.SIGUSR1, saved)


def test_the_running_daemon_gets_sigusr1(tmp_path: Path, usr1: list[int]) -> None:
    state = tmp_path / "state.json"
    with single_instance(state):  # the run lock names this process
        assert wake_daemon(state) is True
    assert usr1 == [signal.SIGUSR1]


def test_nothing_running_nothing_sent(tmp_path: Path, usr1: list[int]) -> None:
    state = tmp_path / "state.json"
    assert wake_daemon(state) is False  # no lock file at all
    with single_instance(state):
        pass
    assert wake_daemon(state) is False  # a lock file nobody holds
    assert usr1 == []


@pytest.mark.parametrize("error", [PermissionError, ProcessLookupError])
def test_a_daemon_that_cannot_be_signalled_is_no_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: type[OSError]
) -> None:
    def refuse(pid: int, sig: int) -> None:
        assert (pid, sig) == (os.getpid(), signal.SIGUSR1)
        raise error()

    monkeypatch.setattr(os, "kill", refuse)
    state = tmp_path / "state.json"
    with single_instance(state):
        assert wake_daemon(state) is False
