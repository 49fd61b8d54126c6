"""The in-memory twin of the SMTP sender: records what it accepts, refuses on cue."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from inboxwatch.adapters.ports import Envelope, Outcome, Result


class MemorySender:
    """A :class:`~inboxwatch.adapters.ports.Sender` that records what it accepts.

    ``script`` maps a recipient address to the result to give it instead of acceptance
    (REFUSED, DEFERRED, UNREACHABLE); ``reachable = False`` is a server that cannot be
    reached at all: every message UNREACHABLE, as :class:`SmtpSender` reports it.
    """

    def __init__(self, script: Mapping[str, Result] | None = None) -> None:
        self.sent: list[Envelope] = []
        self.script: dict[str, Result] = dict(script or {})
        self.reachable = True

    def send(
        self,
        batch: Sequence[Envelope],
        on_accepted: Callable[[str], None] | None = None,
        stop: Callable[[], bool] | None = None,
    ) -> dict[str, Result]:
        if not self.reachable:
            down = Result(Outcome.UNREACHABLE, "cannot connect (memory sender is unreachable)")
            return {env.id: down for env in batch}
        results: dict[str, Result] = {}
        for env in batch:
            if stop is not None and stop():
                results[env.id] = Result(Outcome.DEFERRED, "not attempted: stopping")
                continue
            res = self.script.get(env.rcpt) or self.script.get(env.rcpt.lower())
            results[env.id] = res = res or Result(Outcome.ACCEPTED)
            if res.ok:
                self.sent.append(env)
                if on_accepted is not None:
                    on_accepted(env.id)
        return results
