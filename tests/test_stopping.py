"""Stopping promptly, mid-send: the message in flight is finished, no other starts.

Against a real but slow SMTP server (FaultySmtp answers the end of DATA after a delay, as
providers that scan mail do). Cutting a DATA short would make the server keep a message
we think unsent: the duplicate of RFC 1047.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import RunningDaemon

from inboxwatch.adapters.smtp import SmtpSender
from inboxwatch.testing.devservers import MailServers
from inboxwatch.testing.faultysmtp import FaultySmtp
from inboxwatch.testing.mailfactory import mail

pytestmark = pytest.mark.servers
DELAY = 1.5


@pytest.fixture
def slow() -> Iterator[FaultySmtp]:
    with FaultySmtp() as server:
        server.on("data", delay=DELAY)
        yield server


def test_stop_during_a_slow_send_finishes_that_message_and_starts_no_other(
    mail_servers: MailServers, shop: str, tmp_path: Path, slow: FaultySmtp
) -> None:
    rd = RunningDaemon(mail_servers, shop, tmp_path / "iw", poll_seconds=3600)
    make = rd.make

    def make_with_slow_smtp():  # type: ignore[no-untyped-def]
        d = make()
        cfg = dataclasses.replace(d.cfg.smtp, port=slow.port, username="", tls="none")
        d.sender = d.outbox.sender = SmtpSender(cfg, "")
        return d

    rd.make = make_with_slow_smtp  # type: ignore[method-assign]
    rd.start()
    try:
        for i in range(3):
            lead = f"slow{i}@customer.test"
            mail_servers.deliver(shop, mail(lead, rd.address, "Quote?"), sender=lead)
        assert slow.data_begun.wait(10), "no DATA began"
        started = time.monotonic()
        assert rd.daemon is not None and rd.thread is not None
        rd.daemon.stop_event.set()  # what SIGTERM's handler does
        rd.thread.join(timeout=15)
        took = time.monotonic() - started
        assert not rd.thread.is_alive()
    finally:
        rd.stop()
    assert took < DELAY + 2.0, f"stopping took {took:.1f} s"
    # The message in flight was finished (accepted), and no other was begun.
    assert len(slow.received) == 1
    assert len(slow.tried("data")) == 1
    # After a restart the rest go, each once (and the one in flight not again).
    first = [r.message_id for r in slow.received]
    slow.reset()
    rd.start()
    try:
        # 3 acknowledgements, 3 new-lead alerts and 3 call tasks: 8 more.
        rd.wait_until(lambda: len(slow.received) >= 8, timeout=20, what="the rest")
    finally:
        rd.stop()
    ids = first + [r.message_id for r in slow.received]
    assert len(ids) == len(set(ids)) == 9
