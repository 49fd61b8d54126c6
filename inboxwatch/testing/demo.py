"""The README demo: the rules on sample mail, a lead acknowledged live, the cadence in a time-lapse.

Everything runs on a private Dovecot and SMTP server on 127.0.0.1, in a temporary folder
that is removed afterwards; nothing leaves the machine.
"""

from __future__ import annotations

import argparse
import contextlib
import email
import email.policy
import email.utils
import os
import re
import shutil
import signal
import smtplib
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path

from inboxwatch import cli
from inboxwatch.testing.devservers import CapturedMail, MailServers
from inboxwatch.testing.mailfactory import mail, parse, reply_to

DOMAIN = "shop.example"  # the sample mail of part 1 is addressed to this shop
LEADS = {
    "maria": "maria.lopez@customer.test",
    "ana": "ana.silva@customer.test",
    "ben": "ben.okafor@customer.test",
}
HERE = Path(__file__).resolve().parent


def _project_dir(name: str) -> Path:
    """rules/ and templates/ from the checkout (the demo runs from it)."""
    for base in (Path.cwd(), HERE.parent.parent):
        if (base / name).is_dir():
            return base / name
    raise SystemExit(f"demo: cannot find the {name}/ folder; run it from the inboxwatch checkout")


def say(text: str = "") -> None:
    print(text, flush=True)


def heading(text: str) -> None:
    say()
    say(f"== {text} " + "=" * max(0, 74 - len(text)))


def show_message(raw: bytes, indent: str = "    ") -> None:
    msg = parse(raw)
    for key in ("From", "To", "Reply-To", "Subject", "Date", "In-Reply-To", "Auto-Submitted"):
        if msg[key]:
            say(f"{indent}{key}: {msg[key]}")
    part = msg.get_body(("plain",))
    body = part.get_content() if part is not None else ""
    say(indent)
    for line in body.strip().splitlines():
        say(f"{indent}{line}")


def enquiry(sender: str, name: str, to: str, subject: str, body: str) -> bytes:
    return mail(sender, to, subject, body, name=name)


def smtp_send(servers: MailServers, sender: str, to: str, raw: bytes) -> None:
    with smtplib.SMTP("127.0.0.1", servers.smtp_port, timeout=10) as smtp:
        smtp.sendmail(sender, [to], raw)


#: A log line's mail reference ("1796170854:1 from=x@y"): the IMAP folder's UIDVALIDITY and
#: the message's UID, which mean nothing to an owner reading the demo.
_MAIL_REF = re.compile(r"^\d+:(\d+) from=(\S+) ")
#: Log lines about the daemon's own bookkeeping, left out of the demo's plain account.
_BOOKKEEPING = ("first start at position", "watching ", "signal SIGTERM")


def plain_log(line: str) -> str | None:
    """A daemon log line as the demo shows it: without the time stamp and level, the mail
    reference in words, bookkeeping lines left out (None). The real log keeps them all."""
    text = line.rstrip().split(" ", 3)[-1]
    if any(b in text for b in _BOOKKEEPING):
        return None
    return _MAIL_REF.sub(lambda m: f"message {m.group(1)} from {m.group(2)}: ", text)


@contextlib.contextmanager
def daemon(
    config: Path, *extra: str, log: list[str] | None = None
) -> Iterator[subprocess.Popen[str]]:
    """`inboxwatch run` as its own process, its log lines (in plain words) collected in
    ``log``; it is ready for mail once `wait_ready` returns."""
    cmd = [sys.executable, "-m", "inboxwatch", "run", "--config", str(config), *extra]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, bufsize=1)

    def pump() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            shown = plain_log(line)
            if shown and log is not None:
                log.append(shown)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        yield proc
    finally:
        if proc.poll() is None:
            t0 = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            say(f"    (daemon stopped by SIGTERM in {time.monotonic() - t0:.1f} s)")
        reader.join(timeout=2)
        if proc.stderr is not None:
            proc.stderr.close()


def wait_ready(config: Path, proc: subprocess.Popen[str], timeout: float = 60) -> None:
    """Wait until the daemon has stored its inbox position: mail that arrives after that is
    new to it and will be read, however long IMAP IDLE takes to start. Mail sent before it
    would be old mail present at the first start, which the daemon leaves alone by design.

    A fixed sleep is not enough (a loaded machine takes longer to start Python and log in):
    this reads the daemon's state file, as `inboxwatch status` does. Exits the demo
    (non-zero) if the daemon stops or is not ready in ``timeout`` seconds.
    """
    from inboxwatch.adapters.ports import Stream
    from inboxwatch.service.commands import open_state
    from inboxwatch.userfiles.config import load_config

    cfg = load_config(config)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"demo: the daemon stopped at start (exit {proc.returncode})")
        if cfg.state_path.exists():
            with open_state(cfg).transaction() as state:
                if state.cursor(Stream.INBOX) is not None:
                    return
        time.sleep(0.05)
    raise SystemExit(f"demo: the daemon was not reading the inbox after {timeout:g} s")


def wait(cond: object, timeout: float, what: str) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond() if callable(cond) else cond
        if value:
            return value
        time.sleep(0.05)
    raise SystemExit(f"demo: timed out waiting for {what}")


def run_cli(*args: str) -> int:
    sys.stdout.flush()
    return cli.main(list(args))


def part_rules(config: Path) -> None:
    heading("1. The rules, tried on sample mail (inboxwatch classify)")
    samples = sorted((HERE / "samples").glob("*.eml"))
    say(f"$ cd samples; inboxwatch classify --config config.toml *.eml  ({len(samples)} files)")
    with contextlib.chdir(HERE / "samples"):
        run_cli("classify", "--config", str(config), *(s.name for s in samples))


@contextlib.contextmanager
def _log_shown_on_failure(log: list[str]) -> Iterator[None]:
    """A part that fails shows what the daemon logged: the reason is usually there."""
    try:
        yield
    except BaseException:
        for line in log:
            say(f"    log | {line}")
        raise


def part_live(servers: MailServers, config: Path) -> None:
    heading("2. A new lead, acknowledged live (inboxwatch run)")
    shop, maria = servers.address("hello"), LEADS["maria"]
    log: list[str] = []
    with _log_shown_on_failure(log), daemon(config, log=log) as proc:
        wait_ready(config, proc)
        say(f"  The daemon is watching {shop}. Maria writes to it ...")
        raw = enquiry(
            maria,
            "Maria Lopez",
            shop,
            "Quote for a kitchen renovation?",
            "Hello,\n\nwe plan to renovate our kitchen (12 m²) in February. Could you give "
            "us a rough quote and tell us when you could start?\n\nThanks,\nMaria",
        )
        t0 = time.monotonic()
        smtp_send(servers, maria, shop, raw)
        got = wait(lambda: servers.fetch_all(maria), 60, "the acknowledgement")
        took = time.monotonic() - t0
        assert isinstance(got, list)
        owner = servers.address("owner")
        # The alert by its mark: the day-0 call task may reach the owner first.
        alerts = wait(
            lambda: [m for m in servers.fetch_all(owner) if b"X-Inboxwatch: owner-alert" in m],
            60,
            "the owner's alert",
        )
        assert isinstance(alerts, list)
    say(f"  ... and has the acknowledgement in her inbox {took:.2f} s later:")
    show_message(got[0])
    say("  The owner's alert (Reply-To is Maria, so answering it answers her):")
    show_message(alerts[0])
    say("  What the daemon logged meanwhile:")
    for line in log:
        say(f"    log | {line}")
    say("$ inboxwatch leads")
    run_cli("leads", "--config", str(config))


def _sim_day(raw: bytes, start: datetime | None) -> float:
    if start is None:
        return 0.0
    date = email.utils.parsedate_to_datetime(str(parse(raw)["Date"]))
    return (date - start).total_seconds() / 86400


def part_timelapse(servers: MailServers, config: Path, scale: float) -> None:
    heading(f"3. The whole cadence in a time-lapse (--time-scale {scale:g})")
    shop = servers.address("hello")
    ana, ben = LEADS["ana"], LEADS["ben"]
    say(f"  One simulated day passes every {86400 / scale:.2f} s. Ana never answers; Ben answers")
    say("  the day-1 follow-up. Follow-ups go out in sending hours (09:00-17:00 Mon-Fri).")
    say()
    seen: set[int] = set(range(len(servers.smtp_sent)))  # part 2's mail is not news
    start: datetime | None = None
    ben_replied = False
    # The owner's daily digests: one per working day, shown once at the end, not each.
    digests: list[CapturedMail] = []
    reached: set[str] = set()  # the leads that got mail from the shop

    def report() -> None:
        nonlocal ben_replied, start
        for i, m in enumerate(list(servers.smtp_sent)):
            if i in seen or m.mail_from != shop:
                continue
            seen.add(i)
            msg = parse(m.data)
            if start is None:
                start = email.utils.parsedate_to_datetime(str(msg["Date"]))
            reached.update(m.rcpt_tos)
            to = m.rcpt_tos[0].split("@")[0]
            what = msg["X-Inboxwatch"]
            if what == "digest":
                digests.append(m)
                continue
            when = email.utils.parsedate_to_datetime(str(msg["Date"]))
            say(
                f"  day {_sim_day(m.data, start):5.1f} {when:%a %H:%M}  {what:12} -> {to:11} "
                f"{msg['Subject']}"
            )
            if to.startswith("ben") and what == "followup" and not ben_replied:
                ben_replied = True
                smtp_send(
                    servers,
                    ben,
                    shop,
                    _reply(m, ben, "Ben Okafor", "Thanks! Yes, please call me on Friday."),
                )
                say(
                    f"  day {_sim_day(m.data, start):5.1f}            Ben replies: "
                    '"Thanks! Yes, please call me on Friday."'
                )

    with daemon(config, "--time-scale", f"{scale:g}") as proc:
        wait_ready(config, proc)
        for who, name, subject in (
            (ana, "Ana Silva", "Garden office: price?"),
            (ben, "Ben Okafor", "Bathroom tiling next month"),
        ):
            smtp_send(
                servers,
                who,
                shop,
                enquiry(who, name, shop, subject, "Hi, could you send me a quote?"),
            )
        deadline = time.monotonic() + 100 * 86400 / scale + 20
        closed = False
        while time.monotonic() < deadline and not closed:
            report()
            closed = _closed(config, ana)
            time.sleep(0.2)
        report()
    # The demo promises these; a time-lapse where they did not happen must not end in "Done".
    wrong = [f"no mail reached {who}" for who in sorted({ana, ben} - reached)]
    if not ben_replied:
        wrong.append("Ben never got a follow-up to answer")
    if not closed:
        wrong.append(f"{ana}'s follow-ups never ended")
    if wrong:
        raise SystemExit(f"demo: the time-lapse went wrong: {'; '.join(wrong)}")
    say()
    say(
        "(In a time-lapse the network is slow too: 50 ms of sending or of the mail server's"
        " 0.5 s wait before it tells of new mail are hours of simulated time, so a reply is"
        " seen, and a step sent, hours later than it would be. First replies count from"
        " the moment the daemon sent them.)"
    )
    say("$ inboxwatch leads --all")
    run_cli("leads", "--all", "--config", str(config))
    say(f"$ inboxwatch show {ana}")
    run_cli("show", "--config", str(config), ana)
    show_digest(digests, _handled(config, ben, "reply"))


def _handled(config: Path, address: str, what: str) -> datetime | None:
    """When the daemon handled the lead's first event ``what``, in the time-lapse's own
    (simulated) time, from the state it left."""
    from inboxwatch.service.commands import open_state
    from inboxwatch.userfiles.config import load_config

    store = open_state(load_config(config))
    with store.transaction() as state:
        lead = state.lead(address)
    # A lead ended long ago (in simulated time) may be in the archive by now.
    lead = lead or next((x for x in store.archived() if x.address == address), None)
    return next((ev.at for ev in lead.events if ev.what == what), None) if lead else None


def _dated(m: CapturedMail) -> datetime:
    return email.utils.parsedate_to_datetime(str(parse(m.data)["Date"]))


def show_digest(digests: list[CapturedMail], reply_at: datetime | None) -> None:
    """The owner's daily digest of the time-lapse, as its plain-text part reads: the first
    one made after the daemon handled Ben's reply (chosen by simulated time: the order in
    which mail reached the SMTP server says nothing about what a digest had seen).

    It is the mail the daemon sent, not ``inboxwatch digest --print``: that command reports
    up to the real now, and a time-lapse's leads live in simulated time (and are trials,
    which a digest outside the trial never counts)."""
    heading("The owner's daily digest")
    if not digests:
        say("  (no digest was sent during the time-lapse)")
        return
    after = [m for m in digests if reply_at is not None and _dated(m) > reply_at]
    chosen = after[0] if after else digests[-1]
    say(f"  The owner got {len(digests)} digests, one each working morning (Monday's covers")
    say("  the weekend; inboxwatch digest --print | --html FILE makes one on demand).")
    which = "the first after Ben's reply" if after else "the last one"
    say(f"  This is {which}:")
    show_message(chosen.data)


def _closed(config: Path, address: str) -> bool:
    """Whether the lead's automation has ended, read from the daemon's state in this
    process: a `leads --json` subprocess per look took CPU from the daemon, and in a
    time-lapse a daemon that wakes 0.2 s late misses a whole day's sending hours."""
    from inboxwatch.service.commands import open_state
    from inboxwatch.userfiles.config import load_config

    cfg = load_config(config)
    if not cfg.state_path.exists():
        return False
    store = open_state(cfg)
    with store.transaction() as state:
        lead = state.lead(address)
    if lead is None:  # ended long ago in simulated time: maybe archived by now
        return any(x.address == address for x in store.archived())
    return not lead.is_active


def _reply(m: CapturedMail, sender: str, name: str, text: str) -> bytes:
    return reply_to(m.data, sender, text, name=name)


def parseargs(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="inboxwatch-demo", description=__doc__)
    p.add_argument(
        "--time-scale",
        type=float,
        default=150000.0,
        help="simulated seconds per real second in part 3 (default: ~1.7 days/s)",
    )
    p.add_argument("--keep", action="store_true", help="keep the temporary folder")
    p.add_argument(
        "--part",
        type=int,
        choices=(1, 2, 3),
        action="append",
        help="run only these parts (default: all)",
    )
    return p.parse_args(argv)


def write_config(servers: MailServers, folder: Path, user: str = "hello") -> Path:
    return servers.inboxwatch_config(
        user,
        folder,
        rules=_project_dir("rules"),
        templates=_project_dir("templates"),
        timezone="Europe/Berlin",
        imap_extra="poll_seconds = 30",
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parseargs(argv)
    parts = set(args.part or (1, 2, 3))
    work = Path(tempfile.mkdtemp(prefix="inboxwatch-demo-"))
    os.chmod(work, 0o755)
    try:
        users = ["hello", "owner", "team", *LEADS.values()]
        say(f"Starting a private Dovecot (IMAP) and SMTP server on 127.0.0.1 in {work} ...")
        with MailServers(work / "servers", users, domain=DOMAIN) as servers:
            say(
                f"  IMAP 127.0.0.1:{servers.imap_port}, SMTP 127.0.0.1:{servers.smtp_port}; "
                f"the shop's inbox is {servers.address('hello')}, the owner is "
                f"{servers.address('owner')}"
            )
            if 1 in parts:
                part_rules(write_config(servers, work / "rules-only"))
            if 2 in parts:
                part_live(servers, write_config(servers, work / "live"))
            if 3 in parts:
                part_timelapse(servers, write_config(servers, work / "timelapse"), args.time_scale)
        heading("Done: servers stopped, nothing left running")
    finally:
        if args.keep:
            say(f"(kept {work})")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
