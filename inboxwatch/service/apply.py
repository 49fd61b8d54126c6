"""The one place where the core's actions are carried out, inside a store transaction.

:class:`Session` is the core's view of one transaction: the store's reads, plus the
classification lookups (``known``) built once and kept current as actions are applied,
so a batch of a thousand messages does not rebuild them a thousand times.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable
from datetime import datetime

from inboxwatch.adapters.ports import State
from inboxwatch.core.actions import (
    Action,
    ClearNotice,
    MoveCursor,
    Note,
    Notice,
    PutLead,
    Queue,
    RaiseNotice,
    RecordAck,
    Reject,
    SetMarker,
    Suppress,
    UpdateOutbox,
)
from inboxwatch.core.classify import Known
from inboxwatch.core.lead import Lead
from inboxwatch.core.queue import OutboxItem
from inboxwatch.core.route import remember

log = logging.getLogger("inboxwatch")


class Session:
    """A transaction's state as the core reads it (:class:`~inboxwatch.core.actions.StateView`).

    ``alert`` is called with each notice raised (the owner's alert command); it runs
    once per problem, as the notice is stored once per key.
    """

    def __init__(self, state: State, alert: Callable[[Notice], None] | None = None) -> None:
        self.state = state
        self.alert = alert
        self._known: Known | None = None

    def lead(self, address: str) -> Lead | None:
        return self.state.lead(address)

    def leads(self) -> list[Lead]:
        return self.state.leads()

    def due(self, before: datetime) -> list[Lead]:
        return self.state.due(before)

    def last_ack(self, address: str) -> datetime | None:
        return self.state.last_ack(address)

    def outbox_item(self, item_id: str) -> OutboxItem | None:
        return self.state.outbox_item(item_id)

    def notices(self) -> list[Notice]:
        return self.state.notices()

    def marker(self, name: str) -> str | None:
        return self.state.marker(name)

    def known(self) -> Known:
        if self._known is None:
            self._known = self.state.known()
        return self._known

    def apply(self, actions: Iterable[Action], now: datetime) -> list[Action]:
        """Carry out ``actions`` in order; returns them (for hooks and tests)."""
        done = list(actions)
        state = self.state
        for a in done:
            if isinstance(a, PutLead):
                state.put_lead(a.lead, a.wake)
            elif isinstance(a, Queue):
                state.put_outbox(a.item)
                if not a.item.purpose.to_lead:
                    state.add_ours(a.item.id, now)
            elif isinstance(a, UpdateOutbox):
                state.put_outbox(a.item)
            elif isinstance(a, Suppress):
                state.suppress(a.address, a.why, now)
            elif isinstance(a, RecordAck):
                state.record_ack(a.address, now)
            elif isinstance(a, Reject):
                state.reject(a.ref, a.error, now)
            elif isinstance(a, MoveCursor):
                state.set_cursor(a.stream, a.cursor)
            elif isinstance(a, RaiseNotice):
                old = next((n for n in state.notices() if n.key == a.notice.key), None)
                if old is None:
                    state.put_notice(a.notice)
                    log.error("%s", a.notice.text)
                    if self.alert is not None:
                        self.alert(a.notice)
                elif old.until != a.notice.until:  # told already: keep the end up to date
                    state.put_notice(dataclasses.replace(old, until=a.notice.until))
            elif isinstance(a, ClearNotice):
                if state.clear_notice(a.key):
                    log.info("resolved: %s", a.key)
            elif isinstance(a, SetMarker):
                state.set_marker(a.name, a.value)
            elif isinstance(a, Note):
                log.log(a.level, "%s", a.text)
        if self._known is not None:
            self._known = remember(self._known, done)
        return done
