"""The daily digest end to end: the real servers, the TinyDB file, a clock the test moves."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import pytest
from harness import RunningDaemon
from test_cadence_e2e import ALWAYS_OPEN

from inboxwatch.service.clock import FixedClock
from inboxwatch.testing.devservers import MailServers
from inboxwatch.testing.mailfactory import mail

pytestmark = pytest.mark.servers


def test_one_digest_a_day_across_two_days_and_restarts(
    mail_servers: MailServers, tmp_path: Path, fresh_user: str, shop: str
) -> None:
    # 07:00 UTC (the digest is at 08:00, the default), two days before the real time:
    # mail delivered now (Dovecot dates it now, never later) counts as arrived at the
    # clock's "now", inside the first digest's day whatever the time of day the test runs
    # (a start after the real time let mail delivered after midnight fall before it).
    real = datetime.now(UTC)
    start = datetime.combine(real.date() - timedelta(days=2), time(7), tzinfo=UTC)
    clock = FixedClock(start)
    daemon = RunningDaemon(
        mail_servers, shop, tmp_path / "iw", extra=ALWAYS_OPEN, clock=clock, poll_seconds=3600
    )
    owner = mail_servers.address("owner")
    lead = mail_servers.address(fresh_user)

    def at(t: datetime, restart: bool = False) -> int:
        clock.set(t)
        if restart:
            daemon.restart()  # a start ticks once, at the clock's time
        else:
            daemon.tick()
        return len(daemon.sent_to(owner, "digest"))

    with daemon:
        assert daemon.sent_to(owner, "digest") == []
        enquiry = mail(lead, daemon.address, "A quote, please", "Hello!", name="Dora <b>Digest</b>")
        mail_servers.deliver(daemon.shop, enquiry, sender=lead)
        daemon.wait_until(lambda: daemon.sent_to(lead, "ack"), what="ack")
        assert daemon.daemon is not None
        # The daemon's next wake includes the digest time.
        assert daemon.daemon.seconds_to_next(start) <= 3600
        assert at(start + timedelta(minutes=59)) == 0
        assert at(start + timedelta(hours=1)) == 1  # 08:00
        assert at(start + timedelta(hours=1, minutes=2), restart=True) == 1
        assert at(start + timedelta(hours=1, minutes=10)) == 1
        assert at(start + timedelta(hours=10)) == 1
        # The next day: down at the digest time, back a little later; then restarts.
        assert at(start + timedelta(hours=24, minutes=59)) == 1
        assert at(start + timedelta(hours=25, minutes=20), restart=True) == 2
        assert at(start + timedelta(hours=25, minutes=30), restart=True) == 2
        assert at(start + timedelta(hours=30)) == 2

    first, second = (
        email.message_from_bytes(m.data, policy=email.policy.default)
        for m in daemon.sent_to(owner, "digest")
    )
    assert first.get_content_type() == "multipart/alternative"
    assert first["Reply-To"] is None and first["To"] == owner
    text = first.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    page = first.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert f"Dora <b>Digest</b> <{lead}>" in text and "new leads: 1" in text
    assert f"Dora &lt;b&gt;Digest&lt;/b&gt; &lt;{lead}&gt;" in page and "<b>" not in page
    body = second.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    covers = f"Covers {start + timedelta(hours=1):%a %d %b %H:%M}"
    assert covers in body and "new leads: 0" in body  # since the first digest
    # The digest is ours: it never became a lead, and it was not answered.
    assert daemon.lead(owner) is None and daemon.sent_to(owner, "ack") == []
