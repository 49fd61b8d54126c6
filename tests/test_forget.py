"""`inboxwatch forget ADDRESS` and `[state] retention_days` beside a running daemon (real
Dovecot and SMTP; the daemon driven tick by tick on a fixed clock).

"No trace" is checked the hard way: every file of the state folder, its bytes searched
for the address in any case, and every message stored in them decoded
(:func:`tests.contract.test_erase.traces`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from contract.test_erase import traces
from harness import RunningDaemon

from inboxwatch.adapters.ports import Envelope, Result
from inboxwatch.adapters.tinydb_store import TinyDbStore, read_state
from inboxwatch.cli import main
from inboxwatch.core.lead import Ended, Lead
from inboxwatch.core.suppression import hashed
from inboxwatch.service.clock import FixedClock
from inboxwatch.testing.devservers import MailServers
from inboxwatch.testing.mailfactory import mail

pytestmark = pytest.mark.servers
Capsys = pytest.CaptureFixture[str]
DAY = timedelta(days=1)


@pytest.fixture
def daemon(mail_servers: MailServers, shop: str, tmp_path: Path) -> Iterator[RunningDaemon]:
    rd = RunningDaemon(
        mail_servers, shop, tmp_path / "iw", clock=FixedClock(datetime.now(UTC)), poll_seconds=60
    )
    rd.start()
    yield rd
    rd.stop()


def enquire(servers: MailServers, rd: RunningDaemon, lead: str, subject: str) -> None:
    text = f"Hello, could you send me a quote? Reach me at {lead} or call 030 1234."
    servers.deliver(rd.shop, mail(lead, rd.address, subject, text, name="Ann Lead"), sender=lead)


def acked(servers: MailServers, rd: RunningDaemon, lead: str) -> None:
    enquire(servers, rd, lead, "Kitchen quote")
    rd.wait_until(lambda: rd.sent_to(lead, "ack"), what=f"the acknowledgement to {lead}")


def state_folder(rd: RunningDaemon) -> Path:
    return rd.config_path.parent / "state"


def forget(rd: RunningDaemon, capsys: Capsys, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["forget", *args, "--config", str(rd.config_path)])
    got = capsys.readouterr()
    return code, got.out, got.err


def test_forget_beside_a_running_daemon_leaves_no_trace_in_the_state_folder(
    mail_servers: MailServers, daemon: RunningDaemon, capsys: Capsys
) -> None:
    ann, cat = "ann.forget@customer.test", "cat.stays@customer.test"
    owner = mail_servers.address("owner")
    folder = state_folder(daemon)
    # Ann asked last year too: that lead is in the archive. Now she writes again.
    archive(folder / "inboxwatch.json", archived_lead(ann, daemon.clock.now() - 300 * DAY))
    acked(mail_servers, daemon, ann)
    acked(mail_servers, daemon, cat)
    daemon.wait_until(lambda: len(daemon.sent_to(owner, "owner-alert")) >= 2, what="alerts")
    assert main(["stop", ann, "--config", str(daemon.config_path)]) == 0  # a person took over
    # A backup taken before the forget (as an upgrade keeps one): named, not deleted.
    backup = folder / "inboxwatch.json.v2.bak"
    backup.write_text(json.dumps(read_state(folder / "inboxwatch.json")))
    assert traces(folder, ann)

    code, out, _ = forget(daemon, capsys, ann.upper())
    assert code == 0
    assert f"{ann}: erased from {folder}" in out
    assert "erased the lead and its timeline" in out
    assert "erased its archived record" in out
    assert "took the address out of" in out  # the acknowledgement and alerts sent
    assert "still hold the address" in out and str(backup) in out
    assert backup.exists()
    assert traces(folder, ann, skip=(backup,)) == []
    # The daemon goes on, and writes none of it back.
    for _ in range(3):
        daemon.tick()
    assert isinstance(daemon.clock, FixedClock)
    daemon.clock.advance(2 * DAY)  # follow-ups for Cat, housekeeping, digests
    for _ in range(3):
        daemon.tick()
    assert traces(folder, ann, skip=(backup,)) == []
    assert daemon.lead(ann) is None and daemon.lead(cat) is not None
    assert not [x for x in daemon.archived() if x.address == ann]

    # Asked again: nothing stored, only the backup; --delete-backups deletes it.
    code, out, _ = forget(daemon, capsys, ann, "--delete-backups")
    assert code == 0 and "nothing stored about this address" in out
    assert f"deleted backup {backup}" in out and not backup.exists()
    assert traces(folder, ann) == []
    code, out, err = forget(daemon, capsys, ann)
    assert code == 1 and f"{ann} is unknown" in err
    assert traces(folder, cat)  # the others are all there


def test_a_message_being_sent_during_forget_is_not_written_back(
    mail_servers: MailServers, daemon: RunningDaemon, capsys: Capsys
) -> None:
    """The window the daemon cannot close: `forget` runs while the acknowledgement is on
    its way to the SMTP server (outside the state's lock). It still goes (it was already
    sent), but when the server accepts it nothing about Ann is written back."""
    ann = "ann.inflight@customer.test"
    assert daemon.daemon is not None
    outbox = daemon.daemon.outbox
    real = outbox.sender
    forgot: list[str] = []

    class ForgetDuringSend:
        def send(
            self, batch: Sequence[Envelope], on_accepted: object = None, stop: object = None
        ) -> dict[str, Result]:
            if any(e.rcpt == ann for e in batch) and not forgot:
                forgot.append(forget(daemon, capsys, ann)[1])
            return real.send(batch, on_accepted, stop)  # type: ignore[arg-type]

    outbox.sender = ForgetDuringSend()  # type: ignore[assignment]
    enquire(mail_servers, daemon, ann, "Garden quote")
    daemon.wait_until(lambda: daemon.sent_to(ann, "ack"), what="the acknowledgement")
    assert forgot and "erased the lead" in forgot[0]
    for _ in range(2):
        daemon.tick()
    assert daemon.lead(ann) is None
    assert traces(state_folder(daemon), ann) == []


def test_a_hashed_suppression_stops_a_later_enquiry_from_being_acknowledged(
    mail_servers: MailServers, daemon: RunningDaemon, capsys: Capsys
) -> None:
    ann, bo = "ann.hashed@customer.test", "bo.control@customer.test"
    acked(mail_servers, daemon, ann)
    code, out, _ = forget(daemon, capsys, ann, "--keep-suppression")
    assert code == 0 and f"kept on the suppression list as {hashed(ann)}" in out
    folder = state_folder(daemon)
    assert traces(folder, ann) == []
    with daemon.store().transaction() as st:
        assert hashed(ann) in st.suppressed()
    # Bo's enquiry, after Ann's, shows the daemon read hers; Ann gets nothing new.
    enquire(mail_servers, daemon, ann, "Another question")
    acked(mail_servers, daemon, bo)
    for _ in range(3):
        daemon.tick()
    assert len(daemon.sent_to(ann, "ack")) == 1  # the one before the forget
    assert len(daemon.sent_to(ann)) == 1
    assert daemon.lead(ann) is None  # ignored, as from any suppressed address: not recorded
    assert traces(folder, ann) == []
    # `unsuppress` by the address undoes the hashed entry.
    assert main(["unsuppress", ann, "--config", str(daemon.config_path)]) == 0
    with daemon.store().transaction() as st:
        assert hashed(ann) not in st.suppressed()


def archived_lead(address: str, closed: datetime) -> Lead:
    arrived = closed - timedelta(days=3)
    lead = Lead(address, "Old Lead", "direct-email", "direct-email", "direct", arrived)
    return lead.end(closed, Ended.NO_RESPONSE)


def archive(path: Path, *leads: Lead) -> None:
    """Leads closed long ago, put and archived as the daemon would (another process)."""
    store = TinyDbStore.open(path)
    latest = max(x.events[-1].at for x in leads)
    with store.transaction() as st:
        for x in leads:
            st.put_lead(x, None)
    with store.transaction() as st:
        st.archive_closed(latest + timedelta(days=30))


def test_retention_purges_archived_leads_closed_long_enough_ago_once_a_day(
    mail_servers: MailServers, shop: str, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    rd = RunningDaemon(mail_servers, shop, tmp_path / "iw", clock=FixedClock(now), manual=True)
    config = rd.config_path.read_text().replace("[state]\n", "[state]\nretention_days = 40\n", 1)
    rd.config_path.write_text(config)
    state = rd.config_path.parent / "state" / "inboxwatch.json"
    archive(
        state,
        archived_lead("old@customer.test", now - timedelta(days=41)),
        archived_lead("recent@customer.test", now - timedelta(days=39)),
    )
    with rd:
        assert [x.address for x in rd.archived()] == ["recent@customer.test"]
        # Archived later the same day: it waits for tomorrow's purge.
        archive(state, archived_lead("older@customer.test", now - timedelta(days=60)))
        rd.tick()
        assert {x.address for x in rd.archived()} == {"recent@customer.test", "older@customer.test"}
        assert isinstance(rd.clock, FixedClock)
        rd.clock.advance(timedelta(days=1))
        rd.tick()
        assert [x.address for x in rd.archived()] == ["recent@customer.test"]
        rd.clock.advance(timedelta(days=1))
        rd.tick()  # closed 41 days ago now
        assert rd.archived() == []
