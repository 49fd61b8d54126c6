"""The in-memory twin of the SMTP sender: records what it accepts, refuses on cue.

It follows the batch rules of :mod:`inboxwatch.adapters.smtp` (the contract suite holds
both to them): a reply is read by the same :func:`~inboxwatch.adapters.smtp.classify_reply`;
after a quota, a refusal at MAIL FROM or an unreachable server the rest of the batch is
not attempted; a 421 drops the "connection", which is opened again (at most
:data:`~inboxwatch.adapters.smtp.MAX_RECONNECTS` times a batch) unless ``reconnects`` is
False; ``stop()`` is asked before each message.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from inboxwatch.adapters.ports import Envelope, Outcome, Result
from inboxwatch.adapters.smtp import (
    MAX_RECONNECTS,
    STOPPING,
    Stage,
    classify_reply,
    halts_batch,
    parse_reply,
)


class MemorySender:
    """A :class:`~inboxwatch.adapters.ports.Sender` that records what it accepts.

    Two ways to script it, by address (any case):

    - ``script[rcpt] = Result(...)``: that result for the recipient instead of
      acceptance, as if given at RCPT TO (a PAUSED or UNREACHABLE one halts the batch);
    - :meth:`reply` ``(address, "550 5.1.1 no such user", stage)``: a server's reply at
      a stage (MAIL: ``address`` is the sender; RCPT, DATA: the recipient), read as
      the SMTP sender reads it. A 421 also drops the connection.

    ``reachable = False`` is a server that cannot be reached at all (every message
    UNREACHABLE); ``reconnects = False``: after a 421 it cannot be reached again.
    ``tried`` lists the ids of every message that got as far as the server.
    """

    def __init__(self, script: Mapping[str, Result] | None = None) -> None:
        self.sent: list[Envelope] = []
        self.tried: list[str] = []
        self.script: dict[str, Result] = dict(script or {})
        self.replies: dict[tuple[Stage, str], str] = {}
        self.reachable = True
        self.reconnects = True

    def reply(self, address: str, reply: str, stage: Stage | str = Stage.RCPT) -> None:
        """Answer ``reply`` (``"550 5.1.1 no such user"``) for ``address`` at ``stage``."""
        stage = Stage(stage)
        if stage is Stage.CONNECT:
            raise ValueError("a reply before any message is reachable=False")
        parse_reply(reply)  # fail here, not in the middle of a test's batch
        self.replies[stage, address.lower()] = reply

    def _answer(self, env: Envelope) -> tuple[Result, Stage, bool]:
        """This message's result, the stage it ended at, and whether it closed the
        connection (a 421)."""
        for stage, address in (
            (Stage.MAIL, env.mail_from),
            (Stage.RCPT, env.rcpt),
            (Stage.DATA, env.rcpt),
        ):
            reply = self.replies.get((stage, address.lower()))
            if reply is not None:
                code, text = parse_reply(reply)
                return classify_reply(stage, code, text), stage, code == 421
        scripted = self.script.get(env.rcpt) or self.script.get(env.rcpt.lower())
        return scripted or Result(Outcome.ACCEPTED), Stage.RCPT, False

    def send(
        self,
        batch: Sequence[Envelope],
        on_accepted: Callable[[str], None] | None = None,
        stop: Callable[[], bool] | None = None,
    ) -> dict[str, Result]:
        results: dict[str, Result] = {}
        halt: Result | None = None  # the result of every message not yet sent
        connected, opened = False, 0
        for env in batch:
            if halt is not None:
                results[env.id] = halt
                continue
            if stop is not None and stop():
                results[env.id] = STOPPING
                continue
            if not connected:
                if opened > MAX_RECONNECTS:
                    lost = f"not attempted: the connection was lost {opened} times in this batch"
                    results[env.id] = halt = Result(Outcome.UNREACHABLE, lost, attempted=False)
                    continue
                opened += 1
                if not self.reachable or (opened > 1 and not self.reconnects):
                    down = Result(Outcome.UNREACHABLE, "cannot connect (the memory server is down)")
                    results[env.id], halt = down, down.not_attempted()
                    continue
                connected = True
            self.tried.append(env.id)
            res, stage, dropped = self._answer(env)
            results[env.id] = res
            if res.ok:
                self.sent.append(env)
                if on_accepted is not None:
                    on_accepted(env.id)
            connected = not dropped
            if halts_batch(stage, res):
                halt = res.not_attempted()
        return results
