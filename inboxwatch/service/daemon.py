"""The daemon: ``run()`` → repeated ``tick(now)``. It carries out; the core decides.

One tick, with the clock read once before it:

1. inbox: new mail in chunks; each chunk's decisions, and the reading position after it,
   land in one transaction; the acknowledgements it queued go out before the next chunk;
2. Sent and flags: a person who wrote to a lead, or flagged an enquiry, takes it over;
3. time: leads whose wake time has come (follow-ups, tasks, holds ending, closing);
4. the owner's daily digest, when it is due (:mod:`inboxwatch.core.digest`);
5. a last look at the inbox if a follow-up is about to go (a reply that arrived first wins);
6. the outbox sends what is due; copies of mail to leads go to Sent last.

``run()`` catches, logs, backs off and goes on; signal handlers only set a flag.
Subscribers to :attr:`Daemon.hooks` see each step (the benchmarks and tests use them).
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any

from inboxwatch.adapters.ports import (
    Batch,
    CopiesNotSaved,
    Fetched,
    LoginFailed,
    MailSource,
    Sender,
    StateStore,
    Stream,
)
from inboxwatch.adapters.statefile import StateUnwritable
from inboxwatch.core import delivery, digest, language, route
from inboxwatch.core.actions import Action, InboxMail, MoveCursor, Notice, Queue, SentMail
from inboxwatch.core.classify import Known
from inboxwatch.core.lead import Lead, iso
from inboxwatch.core.mime import new_message_id
from inboxwatch.core.queue import Caps, OutboxItem, Purpose, next_send_time
from inboxwatch.core.route import World
from inboxwatch.core.settings import Settings
from inboxwatch.errors import StateError, TransientError
from inboxwatch.service import retention
from inboxwatch.service.alerts import run_alert_command
from inboxwatch.service.apply import Session
from inboxwatch.service.backoff import Backoff
from inboxwatch.service.clock import Clock
from inboxwatch.service.digest_step import DigestStep
from inboxwatch.service.outbox import Outbox, SendJournal, paused_until
from inboxwatch.service.reload import reload_if_changed, rules_fingerprint
from inboxwatch.userfiles.config import Config
from inboxwatch.userfiles.rulebook import RuleBook

log = logging.getLogger("inboxwatch")
#: Copies for Sent that could not be saved wait for the next tick; at most this many.
MAX_PENDING_COPIES = 1000
MAX_PRESEND_ROUNDS = 3
CHUNK = 100
#: Shortest wait between ticks when something is due at once (never spin).
MIN_WAIT = 0.05
#: Longest wait at start for the language model (beyond it, the first enquiry waits).
WARM_UP_WAIT = 120.0
#: A lead whose planning fails is looked at again after this.
POISON_RETRY = timedelta(hours=1)

Hook = Callable[[str, Mapping[str, Any]], None]


class Daemon:
    def __init__(
        self,
        cfg: Config,
        book: RuleBook,
        store: StateStore,
        clock: Clock,
        source: MailSource,
        sender: Sender,
        *,
        journal: Path | None,
        time_scale: float = 1.0,
        ids: Callable[[], str] | None = None,
    ) -> None:
        self.cfg, self.book, self.store, self.clock = cfg, book, store, clock
        self.source, self.sender = source, sender
        self.time_scale = time_scale
        self.settings = Settings.from_config(cfg, simulated=time_scale != 1.0)
        self.ids = ids or (lambda: new_message_id(cfg.identity.address))
        self.stop_event = threading.Event()
        #: Set by SIGHUP and SIGUSR1: end the current wait and tick now (see :meth:`woken`).
        self.wake_event = threading.Event()
        s = cfg.sending
        self.outbox = Outbox(
            store,
            sender,
            SendJournal(journal),
            Caps(s.max_per_hour, s.max_per_day),
            self.settings.window,
            clock.now if time_scale == 1.0 else None,
            stop=self.stop_event.is_set,
            alert=self.alert,
        )
        self.hooks: list[Hook] = []
        #: Since when the mailbox has been out of reach (None: it answers).
        self._mailbox_down: datetime | None = None
        self.connected = False
        self.ticks = 0
        self.rules_stamp = rules_fingerprint(cfg)
        self.rewake_all = True  # every lead's wake time is computed again on start
        self._copies: list[OutboxItem] = []
        #: Leads may wait for a backlog summary (at start: a stop may have left some).
        self._summary_waits = True
        self.digest_step = DigestStep()

    def alert(self, notice: Notice) -> None:
        """A notice raised: the owner's alert command too, if there is one."""
        if self.cfg.alert_command:
            run_alert_command(self.cfg.alert_command, notice, self.cfg.identity.address)

    @property
    def world(self) -> World:
        return World(self.book, self.settings, self.ids)

    def emit(self, what: str, **data: Any) -> None:
        for hook in self.hooks:
            hook(what, data)

    # -- the loop -------------------------------------------------------------------------
    #: SIGHUP asked for the whole config to be read again (at the next tick).
    reload_asked = False
    #: A SIGHUP reload was refused: the files' stamp then (tried again when it changes).
    reload_refused: tuple[tuple[str, int, int], ...] | None = None

    def install_signal_handlers(self) -> None:
        """SIGTERM/SIGINT stop (the message in flight is finished, no other starts);
        SIGHUP reloads config.toml, rules, sequences and templates, as daemons do;
        SIGUSR1 only wakes: "look at the state again now" (``pause``, ``resume`` and the
        per-lead commands send it after they change the state). Handlers only set flags;
        the wait in progress (IDLE or a poll's sleep) checks them a few times a second,
        so either takes effect within about a second, not at the next IDLE renewal."""

        def stop(signum: int, frame: FrameType | None) -> None:
            log.info("signal %s: stopping", signal.Signals(signum).name)
            self.stop_event.set()

        def reload(signum: int, frame: FrameType | None) -> None:
            log.info("signal SIGHUP: reloading the config, rules, sequences and templates")
            self.reload_asked = True
            self.wake_event.set()

        def wake(signum: int, frame: FrameType | None) -> None:
            log.debug("signal SIGUSR1: looking at the state again now")
            self.wake_event.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGHUP, reload)
        signal.signal(signal.SIGUSR1, wake)

    def woken(self) -> bool:
        """The wait's ``interrupted()``, asked a few times a second while it waits: a
        stop or a wake-up ends it; meanwhile the server's signs of life are noted for
        `inboxwatch status` (see :meth:`_heard`)."""
        if self.stop_event.is_set() or self.wake_event.is_set():
            return True
        self._heard_from_source()
        return False

    def run(self, once: bool = False) -> int:
        backoff = Backoff()
        try:
            while not self.stop_event.is_set():
                try:
                    if not self.connected:
                        self.connect(self.clock.now())
                    self.wake_event.clear()  # this tick looks at everything: awake
                    self.tick(self.clock.now())
                    backoff.reset()
                    self._mailbox_back()
                    if once:
                        return 0
                    self.store.maintain()  # housekeeping while nothing waits, not mid-work
                    self.source.wait(self.seconds_to_next(self.clock.now()), self.woken)
                    self._heard_from_source()
                except LoginFailed as exc:
                    # Refused at start too: retried with back-off, the owner told after
                    # unreachable_alert_minutes. Exiting would only make systemd's
                    # Restart= a loop.
                    if once:
                        log.error("%s", exc)
                        return 1
                    self._mailbox_trouble(str(exc))
                    self._drop(f"{exc}; retrying", backoff)
                except TransientError as exc:
                    if once:
                        log.error("%s", exc)
                        return 1
                    self._mailbox_trouble(str(exc))
                    self._drop(str(exc), backoff)
                except (StateUnwritable, StateError) as exc:  # a full disk, a damaged file
                    if once:
                        raise
                    delay = backoff.next()
                    log.error("%s; trying again in %.0f s", str(exc).rstrip("."), delay)
                    self.stop_event.wait(delay)
                except Exception:
                    if once:
                        raise
                    log.exception("tick failed; continuing after back-off")
                    self._drop("", backoff)
        finally:
            self.source.close()
        log.info("stopped")
        return 0

    def _mailbox_trouble(self, error: str) -> None:
        """The mailbox is out of reach: after ``unreachable_alert_minutes`` the owner is
        told once (log, status, alert command, and by mail: SMTP may well work, and no
        tick gets as far as sending while the mailbox fails). Telling must never stop
        the retrying."""
        now = self.clock.now()
        since = self._mailbox_down or now
        self._mailbox_down = since
        after = self.settings.unreachable_after
        try:
            self._transact(
                lambda s: delivery.unreachable(
                    delivery.MAILBOX_UNREACHABLE,
                    "The mailbox",
                    since,
                    error,
                    now,
                    after,
                    mail=(s, self.world),
                ),
                now,
            )
            self._copies += self.outbox.send_due(self.world, now, only=Purpose.OWNER_NOTICE)
        except Exception:
            log.exception("could not record that the mailbox is unreachable")

    def _mailbox_back(self) -> None:
        if self._mailbox_down is None:
            return
        self._mailbox_down = None
        now = self.clock.now()
        key = delivery.MAILBOX_UNREACHABLE
        self._transact(lambda s: delivery.reachable_again(s, self.world, key, now), now)

    def _drop(self, why: str, backoff: Backoff) -> None:
        delay = backoff.next()
        if why:
            log.warning("%s; reconnecting in %.0f s", why, delay)
        self.source.close()
        self.connected = False
        self.stop_event.wait(delay)

    def connect(self, now: datetime) -> None:
        """Open the mailbox; once per start, settle what a crash may have left behind."""
        warming: threading.Thread | None = None
        if not self.connected and not self.outbox.recovered:
            self.log_warnings()
            if self.book.languages:
                # The language model loads while the mailbox is opened (about 0.5 s from
                # its cache; a few seconds the very first time, when the cache is made)
                # and is ready before the first read: no enquiry waits for it.
                warming = threading.Thread(target=language.warm_up, name="langid", daemon=True)
                warming.start()
        self.source.open()
        self.connected = True
        self.outbox.recover(self.world, self.source, now)
        if warming is not None:
            warming.join(WARM_UP_WAIT)

    def seconds_to_next(self, now: datetime) -> float:
        """Real seconds until the earliest wake or send (the clock may run scaled)."""
        with self.store.transaction() as state:
            last_digest = digest.read_day(state.marker(digest.DAY_MARKER))
            last_digest = last_digest or digest.first_day(now, self.settings)
            wakes = (state.next_wake(), digest.next_at(last_digest, now, self.settings))
            times = [t for t in wakes if t is not None]
            s = self.cfg.sending
            caps = Caps(s.max_per_hour, s.max_per_day)
            sent = state.sent_times(now - timedelta(days=1))
            at = next_send_time(state.queued(), sent, now, caps, self.settings.window)
            if at is not None:
                # A quota pause: nothing goes before it ends (waking sooner would spin).
                pause = paused_until(state.notices(), now)
                times.append(max(at, pause) if pause is not None else at)
        if not times:
            return float("inf")
        sim = max(0.0, (min(times) - now).total_seconds())
        return max(MIN_WAIT, sim / self.time_scale)

    # -- one tick -------------------------------------------------------------------------
    def tick(self, now: datetime) -> None:
        """Everything due at ``now``: read, decide, apply, send."""
        self.ticks += 1
        self.emit("tick", now=now)
        reload_if_changed(self)
        try:
            if self.rewake_all:
                self._transact(lambda s: route.rewake(s, self.world, now), now)
                self.rewake_all = False
            processed = self._read_inbox(now)
            self._people_and_time(now)
            self.source.mark_processed(processed)
            self.digest_step.run(self, now)
            retention.purge_due(self.store, self.cfg.state_retention_days, now)
            self._presend_check(now)
            if not self.stop_event.is_set():
                self._copies += self.outbox.send_due(self.world, now)
        finally:
            self._copy_to_sent(now)
        self.emit("tick-done", now=now)

    def _transact(self, decide: Callable[[Session], list[Action]], now: datetime) -> None:
        with self.store.transaction() as state:
            session = Session(state, self.alert)
            self.emit("applied", actions=session.apply(decide(session), now))

    def log_warnings(self) -> None:
        """Patterns prone to backtracking: a help (each message's rules have a time limit)."""
        for warning in self.book.warnings:
            log.warning("%s", warning)

    def _read_inbox(self, now: datetime) -> list[str]:
        """New inbox mail in chunks, each committed with its position; acknowledgements
        after each, so the first lead in a pile of 1,000 does not wait for the last (and
        mail that arrives meanwhile is read before the rest: see ``adapters/backlog``).

        Messages are parsed and classified outside the state's lock (user rules have a
        time budget per message); only the decisions and their writes hold it. In a
        backlog, the next chunk is read and parsed in a helper thread while this one's
        acknowledgements go out (the sends wait on the network, parsing on the CPU); it
        is prepared against the lookups as they are after this chunk's commit.
        """
        processed: list[str] = []
        alerts: list[str] = []  # leads given a new-lead alert by this read
        #: Past ``backlog_summary_over`` alerts the summary is certain: no more composed.
        summarized = False
        ahead: tuple[str | None, Batch, Future[list[route.Prepared]]] | None = None
        with ThreadPoolExecutor(1, thread_name_prefix="inboxwatch-prepare") as helper:
            for _ in range(1_000_000):  # bounded: a source that never says "no more" ends
                if self.stop_event.is_set():
                    break  # the position of every chunk done so far is stored
                if ahead is None:
                    cursor, batch, known = self._next_chunk(now)
                    prepared = self._prepare_all(batch.messages, known, now)
                else:
                    (cursor, batch, future), ahead = ahead, None
                    prepared = future.result()
                with self.store.transaction() as state:
                    session = Session(state, self.alert)
                    for p in prepared:
                        with self._guard(session, p.mail.ref, now):
                            acts = route.on_prepared(
                                session, self.world, p, now, summarized=summarized
                            )
                            self._apply(session, acts, now)
                            alerts += [
                                a.item.lead
                                for a in acts
                                if isinstance(a, Queue) and a.item.purpose is Purpose.OWNER_ALERT
                            ]
                            if not summarized and len(alerts) > self.settings.backlog_summary_over:
                                summarized = self._summary_waits = True
                                # Only leads still there (`forget` may have run between chunks).
                                still = [a for a in alerts if session.lead(a) is not None]
                                self._apply(session, [route.to_summary(session, still)], now)
                        processed.append(p.mail.ref)
                    if batch.cursor != cursor:
                        session.apply([MoveCursor(Stream.INBOX, batch.cursor)], now)
                if batch.more and not self.stop_event.is_set():
                    after, following, known = self._next_chunk(now)
                    job = helper.submit(self._prepare_all, following.messages, known, now)
                    ahead = (after, following, job)
                if batch.messages:
                    self._copies += self.outbox.send_due(self.world, now, only=Purpose.ACK)
                if not batch.more:
                    break
        if self._summary_waits:  # a backlog's, or one a stop left unsent
            self._transact(
                lambda s: route.summarize_backlog(s, self.world, s.state.queued, now), now
            )
            self._summary_waits = False
        return processed

    def _prepare_all(
        self, messages: Sequence[Fetched], known: Known, now: datetime
    ) -> list[route.Prepared]:
        return [self._prepare(f, known, now) for f in messages]

    def _next_chunk(self, now: datetime) -> tuple[str | None, Batch, Known]:
        """The stored inbox position, the next chunk after it, and the lookups to
        classify it with (as the state is now)."""
        lookback = timedelta(days=self.cfg.imap.lookback_days)
        with self.store.transaction() as state:
            cursor = state.cursor(Stream.INBOX)
            known = state.known() if cursor is not None else None
        batch = self.source.read(Stream.INBOX, cursor, now=now, lookback=lookback, limit=CHUNK)
        self.emit("read", stream=Stream.INBOX, count=len(batch.messages))
        if known is None and batch.messages:  # a first start with a look-back
            with self.store.transaction() as state:
                known = state.known()
        return cursor, batch, known or Known()

    def _people_and_time(self, now: datetime) -> None:
        """Sent (a person wrote to a lead), flags (a person flagged an enquiry), then time
        (due leads), then housekeeping: read first, then decided in one transaction."""
        batch, cursor = None, None
        if self.source.has_sent:
            with self.store.transaction() as state:
                cursor = state.cursor(Stream.SENT)
            # Headers only: enough to see who a person wrote to.
            batch = self.source.read(
                Stream.SENT, cursor, now=now, lookback=timedelta(0), limit=10_000, headers_only=True
            )
        flagged = self.source.flagged()
        with self.store.transaction() as state:
            session = Session(state, self.alert)
            for f in batch.messages if batch else ():
                with self._guard(session, f"Sent {f.ref}", now, reject=False):
                    mail = SentMail(f.ref, f.received, f.raw)
                    session.apply(route.on_sent(session, self.world, mail, now), now)
            if batch is not None and batch.cursor != cursor:
                session.apply([MoveCursor(Stream.SENT, batch.cursor)], now)
            for lead in route.flagged_leads(session, flagged):
                with self._lead_guard(session, lead, now):
                    self._apply(session, route.on_flag(session, self.world, lead, now), now)
            due = session.due(now)
            waiting = {i.lead for i in state.queued() if i.purpose.to_lead} if due else set()
            tasks: list[OutboxItem] = []  # task alerts of this pass: many become one
            for lead in due:
                with self._lead_guard(session, lead, now):
                    busy = lead.address in waiting
                    acts = route.on_due(session, self.world, lead, now, mail_waiting=busy)
                    self._apply(session, acts, now)
                    tasks += [
                        a.item
                        for a in acts
                        if isinstance(a, Queue) and a.item.purpose is Purpose.OWNER_TASK
                    ]
            if folded := route.summarize_tasks(session, self.world, tasks, now):
                self._apply(session, folded, now)
            state.archive_closed(now)
            state.prune(now)

    @contextlib.contextmanager
    def _guard(
        self, session: Session, what: str, now: datetime, reject: bool = True
    ) -> Iterator[None]:
        """A message that trips a bug must not block every message behind it: it is
        logged with the traceback, recorded, and left untouched in the mailbox."""
        try:
            yield
        except Exception as exc:
            log.exception("%s: could not be processed; skipped", what)
            if reject:
                session.state.reject(what, f"{type(exc).__name__}: {exc}", now)

    def _prepare(self, f: Fetched, known: Known, now: datetime) -> route.Prepared:
        mail = InboxMail(f.ref, f.received, f.flagged, f.raw)
        try:
            return route.prepare(self.world, known, mail, now)
        except Exception as exc:  # a bug: this message is recorded and skipped, not all
            log.exception("%s: could not be classified; skipped", f.ref)
            return route.Prepared(mail, known, error=f"{type(exc).__name__}: {exc}")

    def _apply(self, session: Session, actions: list[Action], now: datetime) -> None:
        self.emit("applied", actions=session.apply(actions, now))

    @contextlib.contextmanager
    def _lead_guard(self, session: Session, lead: Lead, now: datetime) -> Iterator[None]:
        """One lead that trips a bug must not stop the work for all the others; it is
        looked at again an hour later (not on every tick: that would spin)."""
        try:
            yield
        except Exception:
            log.exception("%s: could not be planned; trying again in an hour", lead.address)
            session.state.put_lead(lead, now + POISON_RETRY)

    #: When the "heard" marker was last written (status: last heard from the server).
    _heard_at: datetime | None = None

    def _heard(self, now: datetime) -> None:
        """The mail server answered at ``now``: `inboxwatch status` shows when that last
        happened (written at most once a minute, not on every IDLE wake)."""
        from inboxwatch.service.status_command import HEARD_EVERY, HEARD_MARKER

        # Either way round: a note older than the last one written (nothing new since)
        # is no news, and a clock set back still gets a fresh marker after a minute.
        if self._heard_at is not None and abs(now - self._heard_at) < HEARD_EVERY:
            return
        with self.store.transaction() as state:
            state.set_marker(HEARD_MARKER, iso(now) or "")
        self._heard_at = now

    def _heard_from_source(self) -> None:
        """Any answer of the server counts (IDLE's start and renewal, its notices, the
        keep-alive NOOP, any read), not only a tick's: a healthy daemon waiting in IDLE
        must not look silent to a monitor. Never raises (it runs inside the wait)."""
        ago = self.source.heard_ago()
        if ago is None:
            return
        try:
            self._heard(self.clock.now() - timedelta(seconds=ago * self.time_scale))
        except Exception:  # the state is busy or the disk full: the next tick says so
            log.debug("could not note when the server was last heard", exc_info=True)

    def _presend_check(self, now: datetime) -> None:
        """A reply that reached the mailbox before a follow-up's send time always wins."""
        self._heard(now)
        with self.store.transaction() as state:
            waiting = any(i.purpose is Purpose.FOLLOWUP for i in state.queued())
        for _ in range(MAX_PRESEND_ROUNDS if waiting else 0):
            self.source.refresh()
            if not self._read_inbox(now):
                return

    def _copy_to_sent(self, now: datetime) -> None:
        """Copies for Sent go last: they matter to people, not to the first reply. One
        that cannot be saved (a dropped connection) is tried again on the next tick."""
        copies, self._copies = self._copies, []
        if not self.source.has_sent or not self.cfg.imap.save_sent:
            return
        copies = [item for item in copies if item.save_sent]
        if not copies:
            return
        try:
            self.source.save_sent([item.raw for item in copies], now)
        except TransientError as exc:  # the first ``saved`` are in Sent: retry the rest
            rest = copies[exc.saved if isinstance(exc, CopiesNotSaved) else 0 :]
            log.warning(
                "could not save %d copies in Sent, the first of %s (will retry): %s",
                len(rest),
                rest[0].id if rest else "none",
                exc,
            )
            self._copies = rest[-MAX_PENDING_COPIES:]
