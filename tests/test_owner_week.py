"""Issue 11 end to end: a simulated week on the real Dovecot and SMTP servers.

The daemon runs on a fixed clock that the test moves (``daemon.tick(now)``, no sleeps):
to each scripted moment, and in between to the daemon's own next wake
(``seconds_to_next``), as ``run()`` would. Mail reaches the watched inbox by IMAP APPEND
with its INTERNALDATE at the simulated moment, so arrival times are the week's, not the
machine's. The week: a backlog found at start, enquiries (one with an attachment),
replies nobody answers (nudges), a bounce, an out-of-office with a return date, an
opt-out, call tasks, a restart across a digest's time, and a mailbox outage.

What the owner receives through the SMTP server is then checked against the script:
the alerts, nudges within their limits, one backlog summary, one digest per sending day
whose figures match the events, one "unreachable" and one "recovered" notice.
"""

from __future__ import annotations

import email.utils
import itertools
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from harness import RunningDaemon

from inboxwatch.errors import TransientError
from inboxwatch.service.clock import FixedClock
from inboxwatch.testing.devservers import MailServers
from inboxwatch.testing.mailfactory import mail, parse, reply_to

pytestmark = pytest.mark.servers

SUNDAY = datetime(2026, 3, 8, 20, 0, tzinfo=UTC)  # the first start; the week is Mon 9 - Sun 15


def at(day: int, hh: int, mm: int = 0) -> datetime:
    """Day 1 is Monday 9 March 2026 (UTC, the config's zone)."""
    return datetime(2026, 3, 8 + day, hh, mm, tzinfo=UTC)


@dataclass
class Week:
    """The daemon, the clock, and what the script did, with the moment it was handled."""

    servers: MailServers
    rd: RunningDaemon
    clock: FixedClock
    owner: str
    handled: list[tuple[str, datetime]] = field(default_factory=list)
    outage: bool = False

    @property
    def shop(self) -> str:
        return self.rd.shop

    def append(self, raw: bytes, when: datetime) -> None:
        """New mail in the watched inbox, arrived at ``when`` (INTERNALDATE)."""
        self.servers.append(self.shop, "INBOX", raw, when=when)

    def step(self, now: datetime) -> None:
        """One pass of ``run()``'s loop at ``now``: a tick; a mailbox that fails is
        reported as run() reports it, and the connection dropped; success after
        failure is the mailbox back."""
        self.clock.set(now)
        daemon = self.rd.daemon
        assert daemon is not None
        try:
            if not daemon.connected:
                daemon.connect(now)
            daemon.tick(now)
        except TransientError as exc:
            daemon._mailbox_trouble(str(exc))  # as Daemon.run does
            daemon.source.close()
            daemon.connected = False
            return
        daemon._mailbox_back()

    def run_until(self, end: datetime) -> None:
        """Tick at the daemon's own wake times up to ``end`` (bounded)."""
        daemon = self.rd.daemon
        assert daemon is not None
        for _ in range(500):
            now = self.clock.now()
            wait = timedelta(seconds=min(daemon.seconds_to_next(now), 12 * 3600))
            nxt = now + max(wait, timedelta(minutes=1))
            if nxt > end:
                self.clock.set(end)
                return
            self.step(nxt)
        pytest.fail("the daemon kept waking every minute")

    def owner_mail(self, purpose: str) -> list[EmailMessage]:
        return [parse(m.data) for m in self.rd.sent_to(self.owner, purpose)]

    def to(self, lead: str, purpose: str) -> list[EmailMessage]:
        return [parse(m.data) for m in self.rd.sent_to(lead, purpose)]


def text(msg: EmailMessage) -> str:
    part = msg.get_body(("plain",))
    assert part is not None
    return str(part.get_content()).replace("\r\n", "\n")


def dated(msg: EmailMessage) -> datetime:
    return email.utils.parsedate_to_datetime(str(msg["Date"])).astimezone(UTC)


def dsn(lead: str, ours: EmailMessage, shop: str) -> bytes:
    """A delivery status notification (RFC 3464) for our message to ``lead``."""
    return (
        "From: Mail Delivery System <MAILER-DAEMON@mx.customer.test>\r\n"
        f"To: {shop}\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        f"Message-ID: <dsn.{time.time_ns()}@mx.customer.test>\r\n"
        "Auto-Submitted: auto-replied\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b1"\r\n'
        "\r\n--b1\r\nContent-Type: text/plain\r\n\r\n"
        "This is the mail system at host mx.customer.test.\r\n"
        "I'm sorry to have to inform you that your message could not be delivered.\r\n"
        f"<{lead}>: host mx.customer.test said: 550 5.1.1 <{lead}>: Recipient address"
        " rejected: User unknown in virtual mailbox table\r\n"
        "\r\n--b1\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.customer.test\r\n\r\n"
        f"Final-Recipient: rfc822; {lead}\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        "Diagnostic-Code: smtp; 550 5.1.1 User unknown\r\n"
        "\r\n--b1\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"From: {ours['From']}\r\nTo: {lead}\r\nSubject: {ours['Subject']}\r\n"
        f"Message-ID: {ours['Message-ID']}\r\n"
        "\r\n--b1--\r\n"
    ).encode()


def with_attachment(lead: str, shop: str) -> bytes:
    msg = parse(mail(lead, shop, "Floor plan for the new kitchen", "Plan attached. Cost?"))
    msg.add_attachment(b"%PDF-1.4 plan", maintype="application", subtype="pdf", filename="plan.pdf")
    return msg.as_bytes()


ENDED = re.compile(r"^  sequences ended: (.*)$", re.M)
DIGEST_FIGURES = {
    "new": re.compile(r"^  new leads: (\d+)", re.M),
    "reply": re.compile(r"^  replies: (\d+)", re.M),
    "bounce": re.compile(r"^  bounces: (\d+)", re.M),
    "opt-out": re.compile(r"^  opt-outs: (\d+)", re.M),
}


def test_a_simulated_week_of_the_owners_loop(
    mail_servers: MailServers, tmp_path: Path, shop: str
) -> None:
    started = time.monotonic()
    clock = FixedClock(SUNDAY)
    rd = RunningDaemon(mail_servers, shop, tmp_path / "iw", clock=clock, poll_seconds=3600)
    alerts_file = tmp_path / "alert-command.txt"
    config = rd.config_path.read_text()
    owner_table = f'[owner]\naddress = "{mail_servers.address("owner")}"\n'
    assert owner_table in config
    rd.config_path.write_text(
        config.replace(
            owner_table,
            owner_table + "backlog_summary_over = 3\n"
            f"alert_command = \"sh -c 'cat >> {alerts_file}'\"\n",
        )
    )
    w = Week(mail_servers, rd, clock, mail_servers.address("owner"))
    tag = time.time_ns()
    leads = [f"w{i}.{tag}@customer.test" for i in range(7)]
    backlog = leads[:5]

    def event(kind: str, when: datetime, raw: bytes) -> None:
        """Mail in the inbox at ``when``, read by the tick a minute later. A new lead
        counts from its arrival, anything else from when the daemon handled it."""
        w.run_until(when)
        w.append(raw, when)
        w.step(when + timedelta(minutes=1))
        w.handled.append((kind, when if kind == "new" else when + timedelta(minutes=1)))

    def reply(lead: str, words: str) -> bytes:
        (ack,) = [m for m in rd.sent_to(lead, "ack")]
        return reply_to(ack.data, lead, words)

    # Sunday: a first start (nothing there), then down for the night; enquiries come in.
    rd.start()
    rd.stop()
    for i, lead in enumerate(backlog):
        raw = mail(lead, w.shop, f"Quote {i}, please", f"Hello, quote {i}?", name=f"Buyer {i}")
        w.append(raw, SUNDAY + timedelta(hours=1, minutes=i))
        w.handled.append(("new", SUNDAY + timedelta(hours=1, minutes=i, seconds=1)))
    # Monday 07:00: back up; the backlog is one summary with its day-0 calls.
    clock.set(at(1, 7))
    rd.start()
    assert all(w.to(lead, "ack") for lead in backlog)
    event("new", at(1, 10), with_attachment(leads[5], w.shop))
    event("reply", at(1, 11), reply(leads[0], "Yes please, call me about it."))
    # Tuesday: a bounce of a live lead; an out-of-office until Friday.
    (ack2,) = w.to(leads[1], "ack")
    event("bounce", at(2, 10), dsn(leads[1], ack2, w.shop))
    away = mail(
        leads[2],
        w.shop,
        "Automatic reply: Quote 2, please",
        "I am out of the office until Friday, 13 March 2026.",
        headers={"Auto-Submitted": "auto-replied"},
    )
    event("away", at(2, 14), away)
    # Wednesday: down across the digest's time, back at 08:20; then an opt-out.
    w.run_until(at(3, 7, 50))
    rd.stop()
    clock.set(at(3, 8, 20))
    rd.start()
    event("opt-out", at(3, 11), reply(leads[3], "Please remove me from your list."))
    event("reply", at(3, 15), reply(leads[4], "Thanks, Thursday works."))
    # Thursday 10:00-10:40: the mailbox fails (longer than unreachable_after, 15 min).
    w.run_until(at(4, 9, 59))
    daemon = rd.daemon
    assert daemon is not None
    real_read = daemon.source.read

    def failing_read(*args: object, **kw: object) -> object:
        if w.outage:
            raise TransientError("IMAP: connection refused (the test's outage)")
        return real_read(*args, **kw)  # type: ignore[arg-type]

    daemon.source.read = failing_read  # type: ignore[method-assign,assignment]
    w.outage = True
    for minute in range(0, 40, 5):
        w.step(at(4, 10, minute))
    w.outage = False
    w.step(at(4, 10, 40))
    event("new", at(4, 11), mail(leads[6], w.shop, "Garden shed?", "A quote please."))
    w.run_until(at(7, 20))  # to Sunday evening
    rd.stop()

    # -- the owner's alerts ---------------------------------------------------------------
    (summary,) = [m for m in w.owner_mail("owner-notice") if "new leads at once" in m["Subject"]]
    body = text(summary)
    assert all(lead in body for lead in backlog)
    assert "Calls and texts due now (5)" in body
    alerts = w.owner_mail("owner-alert")
    assert [a["Reply-To"].addresses[0].addr_spec for a in alerts] == [leads[5], leads[6]]
    (files,) = [a for a in alerts if leads[5] in str(a["Reply-To"])]
    assert [p.get_filename() for p in files.iter_attachments()] == ["plan.pdf"]
    events = w.owner_mail("owner-event")
    labels = sorted(str(m["From"]).split("<")[0].strip(' "') for m in events)
    assert labels == ["Away, back 14 Mar: Buyer 2", "Bounced: Buyer 1"]
    for m in events:
        assert str(m["Reply-To"]) == w.owner and m["References"]  # never the lead
    # Away until Friday: nothing more to them this week (held to Monday 16, 09:00).
    assert [dated(m) for m in w.to(leads[2], "followup")] == [at(2, 9)]  # day 1, before
    assert [m for m in w.to(leads[0], "followup") if dated(m) > at(1, 11)] == []
    replies = w.owner_mail("owner-reply")
    froms = [str(m["From"]) for m in replies]
    assert sum("Opted out: Buyer 3" in f for f in froms) == 1
    assert sum("replied" in f for f in froms) == 2  # Buyer 0 and Buyer 4
    # Every alert about one lead is in one conversation: the subject of the thread.
    buyer1 = [m for m in (*events, *replies) if "Buyer 1" in str(m["From"])]
    assert [str(m["Subject"]) for m in buyer1] == ["Quote 1, please"]

    # -- nudges within their limits (one business hour, then at most one a day) ----------
    nudges = w.owner_mail("owner-nudge")
    assert nudges, "a reply nobody answered for days must remind the owner"
    by_lead: dict[str, list[datetime]] = {}
    for m in nudges:
        by_lead.setdefault(m["Reply-To"].addresses[0].addr_spec, []).append(dated(m))
    assert set(by_lead) == {leads[0], leads[4]}
    for times in by_lead.values():
        assert all(t.weekday() < 5 and 9 <= t.hour < 17 for t in times)
        assert all(b - a >= timedelta(hours=24) for a, b in itertools.pairwise(times))
    assert by_lead[leads[0]][0] == at(1, 12, 1)  # a business hour after the reply was read

    # -- one unreachable and one recovered notice ----------------------------------------
    notices = [str(m["Subject"]) for m in w.owner_mail("owner-notice")]
    assert notices.count("inboxwatch: The mailbox cannot be reached") == 1
    assert notices.count("inboxwatch: Reachable again") == 1
    told = alerts_file.read_text()
    assert told.count("The mailbox cannot be reached since") == 1

    # -- one digest per sending day, its figures as the script made them ------------------
    digests = w.owner_mail("digest")
    days = [dated(m).date() for m in digests]
    assert days == [at(d, 8).date() for d in range(1, 6)]  # Mon-Fri, none at the weekend
    assert dated(digests[2]) == at(3, 8, 20)  # Wednesday's, after the restart
    previous = at(1, 8) - timedelta(days=1)
    for m in digests:
        made = dated(m)
        got = {k: int(rx.findall(text(m))[0]) for k, rx in DIGEST_FIGURES.items()}
        want = {k: 0 for k in DIGEST_FIGURES}
        for kind, when in w.handled:
            if previous <= when < made and kind in want:
                want[kind] += 1
            if previous <= when < made and kind == "opt-out":
                want["reply"] += 1  # an opt-out is a reply too
        assert got == want, f"digest of {made:%a %H:%M}: {got} != {want}"
        ended = ENDED.findall(text(m))[0]
        expect = {"replied": want["reply"] - want["opt-out"], "opted out": want["opt-out"]}
        expect["bounced"] = want["bounce"]
        assert ended == (", ".join(f"{k} {n}" for k, n in sorted(expect.items()) if n) or "none")
        previous = made
    assert time.monotonic() - started < 30
