"""The mail source says how long ago its server last answered (`status`'s "last heard"),
over both sources; on IMAP, waiting in IDLE keeps it fresh (IDLE's start and the
keep-alive NOOP count), so a healthy daemon never looks silent."""

from __future__ import annotations

import time

import pytest

from inboxwatch.adapters.imap_source import ImapSource
from inboxwatch.testing.devservers import MailServers
from tests.contract.test_source import ImapKit, Kit, kit, read

__all__ = ["kit"]  # the fixture, over both sources


def test_heard_ago_is_the_last_answer_and_none_when_closed(kit: Kit) -> None:
    ago = kit.source.heard_ago()
    assert ago is not None and 0 <= ago < 5  # opening (the login) was an answer
    read(kit, None)
    after = kit.source.heard_ago()
    assert after is not None and after < 1
    kit.source.close()
    assert kit.source.heard_ago() is None
    kit.source.open()  # (the fixture closes it again)


@pytest.mark.servers
def test_imap_idle_and_its_keepalive_keep_heard_fresh(mail_servers: MailServers, shop: str) -> None:
    made = ImapKit(mail_servers, shop)
    source = made.source
    assert isinstance(source, ImapSource)
    source.liveness = 0.5  # the keep-alive NOOP after half a second of silence
    source.open()
    try:
        read(made, None)
        seen: list[float] = []

        def look() -> bool:
            ago = source.heard_ago()
            assert ago is not None
            seen.append(ago)
            return False

        started = time.monotonic()
        assert source.wait(2.0, look) is False
        assert time.monotonic() - started >= 1.5  # it did wait, in IDLE
        assert len(seen) >= 4
        # Never more than the keep-alive's half second plus a slice behind.
        assert max(seen) < 1.0, seen
    finally:
        source.close()
