"""Run the real daemon against the private servers, in a thread, for end-to-end tests."""

from __future__ import annotations

import email
import email.policy
import email.utils
import itertools
import threading
import time
from collections.abc import Callable, Mapping
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from inboxwatch.adapters.imap import Mailbox
from inboxwatch.adapters.smtp import SmtpSender
from inboxwatch.adapters.tinydb_store import Store
from inboxwatch.core.lead import Lead
from inboxwatch.service.clock import Clock, SystemClock
from inboxwatch.service.commands import load_all
from inboxwatch.service.daemon import Daemon
from inboxwatch.testing.devservers import CapturedMail, MailServers
from inboxwatch.userfiles.config import load_config

REPO = Path(__file__).resolve().parent.parent
_counter = itertools.count(1)


def mail(
    sender: str,
    to: str,
    subject: str,
    body: str = "Hello, I would like a quote.",
    *,
    name: str = "",
    headers: Mapping[str, str] | None = None,
    msgid: str | None = None,
) -> bytes:
    """A plain message as a mail client would write it."""
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = email.utils.formataddr((name, sender)) if name else sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = email.utils.formatdate(localtime=True)
    msg["Message-ID"] = msgid or f"<t{next(_counter)}.{time.time_ns()}@client.test>"
    for key, value in (headers or {}).items():
        msg[key] = value
    msg.set_content(body)
    return msg.as_bytes()


def parse(raw: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)  # type: ignore[return-value]


class RunningDaemon:
    """inboxwatch watching one business mailbox; start/stop/restart like a service."""

    def __init__(
        self,
        servers: MailServers,
        shop: str,
        folder: Path,
        *,
        extra: str = "",
        clock: Clock | None = None,
        time_scale: float = 1.0,
        rules: Path = REPO / "rules",
        templates: Path = REPO / "templates",
        timezone: str = "UTC",
        poll_seconds: int = 60,
    ) -> None:
        self.servers, self.shop = servers, shop
        self.address = servers.address(shop)
        self.config_path = servers.inboxwatch_config(
            shop,
            folder,
            rules=rules,
            templates=templates,
            timezone=timezone,
            extra=f"{extra}",
            imap_extra=f"poll_seconds = {poll_seconds}\nidle_renew_seconds = 600",
        )
        self.clock = clock or SystemClock()
        self.time_scale = time_scale
        self.daemon: Daemon | None = None
        self.thread: threading.Thread | None = None
        self.result: int | None = None

    def make(self) -> Daemon:
        cfg, book = load_all(self.config_path)
        pw = cfg.imap.password.resolve()
        store = Store.open(cfg.state_path, simulated=self.time_scale != 1)
        return Daemon(
            cfg,
            book,
            store,
            self.clock,
            Mailbox(cfg.imap, pw),
            SmtpSender(cfg.smtp, pw),
            time_scale=self.time_scale,
        )

    def start(self) -> RunningDaemon:
        self.daemon = self.make()
        daemon = self.daemon

        def run() -> None:
            self.result = daemon.run()

        self.thread = threading.Thread(target=run, name=f"daemon-{self.shop}", daemon=True)
        self.thread.start()
        self.wait_until(lambda: daemon.cycles_done > 0, what="first cycle")
        return self

    def stop(self) -> None:
        if self.daemon is not None and self.thread is not None:
            self.daemon.stop_event.set()
            self.thread.join(timeout=10)
            assert not self.thread.is_alive(), "daemon did not stop within 10 s"
        self.daemon = self.thread = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def __enter__(self) -> RunningDaemon:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @staticmethod
    def wait_until(cond: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if value := cond():
                return value
            time.sleep(0.02)
        raise TimeoutError(f"timed out after {timeout} s waiting for {what}")

    def leads(self) -> list[Lead]:
        cfg = load_config(self.config_path)
        store = Store.open(cfg.state_path, readonly=True)
        with store.transaction():
            return store.leads()

    def archived(self) -> list[Lead]:
        cfg = load_config(self.config_path)
        return list(Store(cfg.state_path, readonly=True).archived())

    def lead(self, address: str) -> Lead | None:
        return next((x for x in self.leads() if x.address == address), None)

    def sent_to(self, rcpt: str, purpose: str | None = None) -> list[CapturedMail]:
        """What the SMTP server got from this daemon for rcpt (optionally one purpose)."""
        out = []
        for m in list(self.servers.smtp_sent):
            if rcpt not in m.rcpt_tos or m.mail_from != self.address:
                continue
            if purpose and parse(m.data).get("X-Inboxwatch") != purpose:
                continue
            out.append(m)
        return out


def smtp_send(servers: MailServers, sender: str, rcpt: str, raw: bytes) -> None:
    """Send as a mail client would: through the SMTP server, which delivers locally."""
    import smtplib

    with smtplib.SMTP("127.0.0.1", servers.smtp_port, timeout=10) as smtp:
        smtp.sendmail(sender, [rcpt], raw)


def reply_to(original: bytes, sender: str, body: str, *, name: str = "") -> bytes:
    """A reply as Gmail writes it: Re: subject, In-Reply-To/References, quoted text."""
    msg = parse(original)
    quoted = "\n".join("> " + line for line in msg.get_body(("plain",)).get_content().splitlines())
    refs = " ".join(filter(None, [str(msg.get("References", "")), str(msg["Message-ID"])]))
    attribution = f"On {msg['Date']}, {msg['From']} wrote:"
    subject = str(msg["Subject"])
    if not subject.lower().startswith("re:"):
        subject = f"Re: {subject}"
    return mail(
        sender,
        str(msg["From"]),
        subject,
        f"{body}\n\n{attribution}\n{quoted}\n",
        name=name,
        headers={"In-Reply-To": str(msg["Message-ID"]), "References": refs},
    )
