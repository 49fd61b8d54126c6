"""A controllable SMTP server for tests (aiosmtpd on 127.0.0.1): it fails on cue.

Tell it what to answer at a stage of the mail transaction (``"mail"``, ``"rcpt"``,
``"data"``), for one address or any (MAIL: the sender; RCPT and DATA: a recipient),
always or a number of times, after a delay; a 421 closes the connection after the
reply, as RFC 5321 §3.8 says a server does. ``down = True`` answers every new session
"421 4.3.2 service not available" and closes it. ``busy_limit = N`` refuses a DATA
while N others are in progress with "432 4.3.2 Concurrent connections limit exceeded",
as Microsoft 365 does beyond three (:attr:`FaultySmtp.refused_busy` counts them).
Everything else is accepted and
recorded (:attr:`FaultySmtp.received`), and every command it saw is listed in
:attr:`FaultySmtp.seen`, so a test can tell "not attempted" from "refused"::

    with FaultySmtp() as server:
        server.on("rcpt", "550 5.1.1 no such user", address="gone@customer.test")
        server.on("data", delay=2.0)  # a slow server: 250 after two seconds
        ...
        server.reset()  # no rules, no records, up again

Start it with ``start()`` / ``stop()`` or as a context manager (a fixture does); the
server runs in aiosmtpd's own thread and loop, stopped with it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from typing import Any

from inboxwatch.testing.loopback import HOST, free_port

STAGES = ("mail", "rcpt", "data")
_START_TRIES = 5


@dataclasses.dataclass
class Rule:
    """An answer at ``stage`` for ``address`` (None: any), ``times`` times (None: always)."""

    stage: str
    reply: str | None = None  # None: accept as usual (after ``delay``)
    address: str | None = None
    times: int | None = None
    delay: float = 0.0
    close: bool = False  # close the connection after the reply (a 421 always does)
    down_after: bool = False  # then the server is down (every new session gets 421)

    def matches(self, stage: str, addresses: tuple[str, ...]) -> bool:
        if self.stage != stage or self.times == 0:
            return False
        return self.address is None or self.address in addresses


@dataclasses.dataclass(frozen=True)
class Received:
    """A message the server accepted."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    message_id: str
    connection: int  # which session carried it (1, 2, ... in the order they began)


def _message_id(data: bytes) -> str:
    head = data.split(b"\r\n\r\n", 1)[0]
    for line in head.splitlines():
        if line.lower().startswith(b"message-id:"):
            return line.split(b":", 1)[1].strip().decode("ascii", "replace")
    return ""


class _Handler:
    """aiosmtpd hooks: look up a rule, else do what aiosmtpd would and record it."""

    def __init__(self, owner: FaultySmtp) -> None:
        self.owner = owner

    async def _apply(self, server: Any, stage: str, addresses: tuple[str, ...]) -> str | None:
        owner = self.owner
        with owner._lock:
            owner.seen.append((stage, addresses[0] if addresses else ""))
            if stage == "data":
                owner.data_begun.set()
            rule = next((r for r in owner.rules if r.matches(stage, addresses)), None)
            if rule is not None and rule.times is not None:
                rule.times -= 1
        if rule is None:
            return None
        if rule.delay:
            await asyncio.sleep(rule.delay)
        if rule.down_after:
            with owner._lock:
                owner.down = True
        if rule.close or (rule.reply or "").startswith("421"):
            # Runs after the reply is written: aiosmtpd pushes what the hook returns
            # without yielding to the loop first (and close() flushes what is written).
            asyncio.get_running_loop().call_soon(_close, server)
        return rule.reply

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        owner = self.owner
        with owner._lock:
            owner.connections += 1
            session.faulty_number = owner.connections
            down = owner.down
        if down:
            asyncio.get_running_loop().call_soon(_close, server)
            return ["421 4.3.2 service not available, closing transmission channel"]
        session.host_name = hostname
        return responses

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, mail_options: list[str]
    ) -> str:
        reply = await self._apply(server, "mail", (address.lower(),))
        if reply is not None:
            return reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        reply = await self._apply(server, "rcpt", (address.lower(),))
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        owner = self.owner
        with owner._lock:
            owner.in_data += 1
            owner.most_in_data = max(owner.most_in_data, owner.in_data)
            busy = owner.busy_limit is not None and owner.in_data > owner.busy_limit
            owner.refused_busy += busy
        try:
            if busy:
                return "432 4.3.2 Concurrent connections limit exceeded"
            return await self._data(server, session, envelope)
        finally:
            with owner._lock:
                owner.in_data -= 1

    async def _data(self, server: Any, session: Any, envelope: Any) -> str:
        rcpts = tuple(str(r).lower() for r in envelope.rcpt_tos)
        reply = await self._apply(server, "data", rcpts)
        if reply is not None:
            return reply
        data = envelope.original_content or envelope.content or b""
        if isinstance(data, str):
            data = data.encode("utf-8", "surrogateescape")
        got = Received(
            str(envelope.mail_from or ""),
            tuple(str(r) for r in envelope.rcpt_tos),
            bytes(data),
            _message_id(bytes(data)),
            getattr(session, "faulty_number", 0),
        )
        with self.owner._lock:
            self.owner.received.append(got)
        return "250 2.0.0 OK: queued"


def _close(server: Any) -> None:
    transport = getattr(server, "transport", None)
    if transport is not None and not transport.is_closing():
        transport.close()


class FaultySmtp:
    """The server; see the module's docstring. Thread-safe for a test's thread."""

    def __init__(self, host: str = HOST) -> None:
        self.host = host
        self.port = 0
        self._lock = threading.Lock()
        self._controller: Any = None
        self.rules: list[Rule] = []
        self.down = False
        self.connections = 0  # sessions that said EHLO
        #: DATA commands in progress at once: now, the most seen, and the limit (None: any).
        self.in_data = 0
        self.most_in_data = 0
        self.busy_limit: int | None = None
        self.refused_busy = 0  # DATA refused for the limit
        self.received: list[Received] = []
        self.seen: list[tuple[str, str]] = []  # (stage, address) of every MAIL/RCPT/DATA
        #: Set when any DATA reaches the server (a test's ``stop`` can watch it).
        self.data_begun = threading.Event()

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> FaultySmtp:
        from aiosmtpd.controller import Controller

        if self._controller is not None:
            return self
        for attempt in range(_START_TRIES):
            port = free_port()
            controller = Controller(
                _Handler(self), hostname=self.host, port=port, ready_timeout=5.0
            )
            try:
                controller.start()
            except OSError:  # the port was taken meanwhile
                if attempt == _START_TRIES - 1:
                    raise
                continue
            self._controller, self.port = controller, port
            return self
        raise RuntimeError("unreachable")  # pragma: no cover

    def stop(self) -> None:
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()

    def __enter__(self) -> FaultySmtp:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- scripting ---------------------------------------------------------------------------
    def on(
        self,
        stage: str,
        reply: str | None = None,
        *,
        address: str | None = None,
        times: int | None = None,
        delay: float = 0.0,
        close: bool = False,
        down_after: bool = False,
    ) -> Rule:
        """Answer ``reply`` at ``stage`` (``"mail"``, ``"rcpt"``, ``"data"``) for
        ``address`` (None: any), ``times`` times (None: always), after ``delay``
        seconds; ``reply=None`` accepts (a slow server). ``close``: close the connection
        after the reply (a 421 always does); ``down_after``: and be down from then on.
        Earlier rules win."""
        stage = str(stage).lower()
        if stage not in STAGES:
            raise ValueError(f"stage must be one of {STAGES}, not {stage!r}")
        if reply is not None and not reply[:3].isdigit():
            raise ValueError(f"a reply starts with its code: {reply!r}")
        addr = address.lower() if address else None
        rule = Rule(stage, reply, addr, times, delay, close, down_after)
        with self._lock:
            self.rules.append(rule)
        return rule

    def reset(self) -> None:
        """No rules, nothing recorded, up: as new (the port stays)."""
        with self._lock:
            self.rules.clear()
            self.received.clear()
            self.seen.clear()
            self.down = False
            self.connections = 0
            self.most_in_data = self.refused_busy = 0
            self.busy_limit = None
            self.data_begun.clear()

    # -- what happened -----------------------------------------------------------------------
    def accepted_ids(self) -> list[str]:
        """Message-IDs of the accepted messages, in order."""
        with self._lock:
            return [r.message_id for r in self.received]

    def tried(self, stage: str = "mail") -> list[str]:
        """Addresses seen at ``stage``, in order (MAIL: senders; RCPT, DATA: recipients)."""
        with self._lock:
            return [a for s, a in self.seen if s == stage]
