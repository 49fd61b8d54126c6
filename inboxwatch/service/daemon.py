"""The daemon: ``run()`` → repeated ``cycle()``; each cycle catches, logs, backs off, goes on.

One cycle: read new mail (inbox, Sent, flags) → classify → decide → write leads, outbox
and mailbox positions in one atomic transaction → look at the inbox once more → send
what is due (intent already stored) → record the result. Signal handlers only set a flag.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta
from types import FrameType

from inboxwatch.adapters.imap import Fetched, LoginFailed, Mailbox
from inboxwatch.adapters.smtp import Envelope, SmtpSender
from inboxwatch.adapters.tinydb_store import Store
from inboxwatch.core import autodetect
from inboxwatch.core.classify import Context, Kind, Known, classify
from inboxwatch.core.decide import (
    Decision,
    Incoming,
    Settings,
    handed_over,
    next_wake,
    on_enquiry,
    on_message,
    on_orphan_reply,
    plan,
)
from inboxwatch.core.lead import Conversation, Ended, Lead, message_ids
from inboxwatch.core.message import Message, parse_message
from inboxwatch.core.mime import MARK_HEADER, new_message_id, restamp
from inboxwatch.errors import ConfigError, MessageError, TransientError
from inboxwatch.service import outbox
from inboxwatch.service.clock import Clock, SystemClock
from inboxwatch.userfiles.config import Config
from inboxwatch.userfiles.rulebook import RuleBook, load_rulebook

log = logging.getLogger("inboxwatch")
MAX_BACKOFF = 300.0
MAX_PRESEND_ROUNDS = 3
CHUNK = 100
RECOVERY_SEARCH_LIMIT = 200


def rules_fingerprint(cfg: Config) -> tuple[tuple[str, int, int], ...]:
    """Names, sizes and mtimes of the editable files: cheap enough for every cycle."""
    out = []
    for folder in (cfg.rules_dir, cfg.templates_dir):
        for path in sorted(folder.glob("*.toml")):
            try:
                st = path.stat()
            except OSError:
                continue
            out.append((str(path), st.st_size, st.st_mtime_ns))
    return tuple(out)


def _obsolete(item: outbox.Item, lead: Lead | None) -> bool:
    """A queued message to a lead that must no longer go out (the lead's state moved on)."""
    if item.purpose == "followup":
        return lead is None or not lead.is_active
    if item.purpose == "ack" and lead is not None:
        return lead.ended in (Ended.OPTED_OUT, Ended.BOUNCED, Ended.HANDLED, Ended.STOPPED)
    return False


class Backoff:
    """Exponential back-off with a ceiling: 1, 2, 4 ... MAX_BACKOFF seconds."""

    def __init__(self, first: float = 1.0, ceiling: float = MAX_BACKOFF) -> None:
        self.first, self.ceiling, self.current = first, ceiling, 0.0

    def next(self) -> float:
        self.current = min(self.ceiling, self.current * 2 if self.current else self.first)
        return self.current

    def reset(self) -> None:
        self.current = 0.0


class Daemon:
    def __init__(
        self,
        cfg: Config,
        book: RuleBook,
        store: Store,
        clock: Clock,
        mailbox: Mailbox,
        sender: SmtpSender,
        *,
        time_scale: float = 1.0,
        ids: Callable[[], str] | None = None,
    ) -> None:
        self.cfg, self.book, self.store, self.clock = cfg, book, store, clock
        self.mailbox, self.sender = mailbox, sender
        self.settings = Settings.from_config(cfg)
        self.time_scale = time_scale
        self.ids = ids or (lambda: new_message_id(cfg.identity.address))
        self.stop_event = threading.Event()
        self.wake_event = threading.Event()
        self.connected = False
        self.sent_folder: str | None = None
        self.has_idle = False
        self.cycles = 0
        self.rules_stamp = rules_fingerprint(cfg)
        self.cycles_done = 0
        self._known = Known()
        self._copies: list[outbox.Item] = []
        self.journal = outbox.SendJournal(store.path.with_name(store.path.name + ".sent"))
        self.recovered = False

    # -- the loop -------------------------------------------------------------------------
    def install_signal_handlers(self) -> None:
        def handler(signum: int, frame: FrameType | None) -> None:
            log.info("signal %s: stopping", signal.Signals(signum).name)
            self.stop_event.set()

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    def run(self, once: bool = False) -> int:
        backoff = Backoff()
        ever_connected = False
        try:
            while not self.stop_event.is_set():
                try:
                    if not self.connected:
                        self._connect()
                        ever_connected = True
                    self.cycle()
                    backoff.reset()
                    if once:
                        return 0
                    self._wait()
                except LoginFailed as exc:
                    if not ever_connected:
                        log.error("%s", exc)
                        return 1
                    self._drop(f"{exc}; retrying", backoff)
                except TransientError as exc:
                    if once:
                        log.error("%s", exc)
                        return 1
                    self._drop(str(exc), backoff)
                except Exception:
                    if once:
                        raise
                    log.exception("cycle failed; continuing after back-off")
                    self._drop("", backoff)
        finally:
            self.mailbox.close()
        log.info("stopped")
        return 0

    def _drop(self, why: str, backoff: Backoff) -> None:
        delay = backoff.next()
        if why:
            log.warning("%s; reconnecting in %.0f s", why, delay)
        self.mailbox.close()
        self.connected = False
        self.stop_event.wait(delay)

    def _connect(self) -> None:
        self.mailbox.connect()
        self.has_idle = self.cfg.imap.idle and self.mailbox.has_idle()
        self.sent_folder = self.mailbox.sent_folder()
        if self.sent_folder is None:
            log.warning("no Sent folder found (no \\Sent flag): set [imap] sent to watch it")
        self.connected = True
        self._recover_interrupted_sends()

    def _recover_interrupted_sends(self) -> None:
        """After a crash: what the SMTP server accepted but the state did not record yet.

        Each acceptance is journalled (fsync) the moment it happens; rows named there are
        marked sent, not sent again. A copy in Sent (ours, or the provider's own copy of
        SMTP mail: Gmail, Microsoft 365) is a second witness. Runs once per start.
        """
        if self.recovered:
            return
        self.recovered = True
        accepted = self.journal.read()
        with self.store.transaction():
            rows = [r for r in self.store.outbox_rows() if r["status"] in ("pending", "sending")]
        if not rows:
            self.journal.clear()
            return
        found = {r["id"] for r in rows if r["id"] in accepted}
        if self.sent_folder:
            self.mailbox.select(self.sent_folder)
            for row in rows[:RECOVERY_SEARCH_LIMIT]:
                if row["id"] not in found and self.mailbox.has_message_id(row["id"]):
                    found.add(row["id"])
        now = self.clock.now()
        with self.store.transaction():
            for row in rows:
                item = outbox.Item.from_row(row)
                if row["id"] in found:
                    outbox.mark(self.store, item.id, "sent", now)
                    self._after_sent(item, now)
                    log.info(
                        "%s to %s was accepted before a crash: not sent again",
                        item.purpose,
                        item.rcpt,
                    )
                elif row["status"] == "sending":  # written by an earlier version
                    outbox.mark(self.store, item.id, "pending", now)
        self.journal.clear()

    def _reload_rules_if_changed(self) -> None:
        """Edits to rules, sequences and templates apply without a restart, if they are valid."""
        stamp = rules_fingerprint(self.cfg)
        if stamp == self.rules_stamp:
            return
        self.rules_stamp = stamp
        try:
            book = load_rulebook(self.cfg.rules_dir, self.cfg.templates_dir)
        except ConfigError as exc:
            for problem in exc.problems:
                log.error("rules not reloaded: %s", problem)
            log.error("keeping the previous rules until the files are fixed")
            return
        if book != self.book:
            self.book = book
            log.info("rules, sequences and templates reloaded")

    def _wait(self) -> None:
        """Until new mail, the next due step, or the IDLE renewal, whichever is first."""
        imap = self.cfg.imap
        limit = imap.idle_renew_seconds if self.has_idle else imap.poll_seconds
        deadline = time.monotonic() + min(limit, self._seconds_to_next_due())
        if self.has_idle:
            # Mail that arrived since the cycle's search shows in SELECT, not in IDLE.
            state = self.mailbox.select(imap.inbox)
            with self.store.transaction():
                cursor = self.store.cursor(imap.inbox)
            if cursor and state.uidnext and state.uidnext - 1 > cursor["last_uid"]:
                return
        while not self.stop_event.is_set() and not self.wake_event.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            if self.has_idle:
                if self.mailbox.idle_wait(min(0.25, left)):
                    break
            else:
                self.stop_event.wait(min(0.25, left))
        self.wake_event.clear()

    def wake(self) -> None:
        """Run the next cycle now (tests moving a fixed clock; a future control channel)."""
        self.wake_event.set()

    def _seconds_to_next_due(self) -> float:
        """Real seconds until the earliest step or retry (the clock may run scaled)."""
        now = self.clock.now()
        with self.store.transaction():
            times = [
                t
                for lead in self.store.leads()
                if (t := next_wake(lead, self.book, self.settings, now))
            ]
            caps = outbox.Caps(self.cfg.sending.max_per_hour, self.cfg.sending.max_per_day)
            window = self.settings.window
            if (send_at := outbox.next_send_time(self.store, now, caps, window)) is not None:
                times.append(send_at)
        if not times:
            return float("inf")
        sim = max(0.0, (min(times) - now).total_seconds())
        return max(0.05, sim / self.time_scale)

    # -- one cycle ------------------------------------------------------------------------
    def cycle(self) -> None:
        self.cycles += 1
        self._reload_rules_if_changed()
        try:
            processed = self._read_and_process_inbox()
            sent = self._read_sent()
            self.mailbox.select(self.cfg.imap.inbox)
            flagged = self.mailbox.flagged()
            now = self.clock.now()
            with self.store.transaction():
                self._known = self.store.known()
                self._process_sent(sent, self._known, now)
                self._process_flagged(flagged, now)
                self._plan(now)
                self.store.archive_closed(now)
                self.store.prune(now)
            self._mark_processed(processed)
            self._presend_check()
            self._send(self.clock.now())
        finally:
            self._copy_to_sent()
        self.cycles_done += 1

    def _read_and_process_inbox(self) -> list[int]:
        """New inbox mail, fetched and committed in chunks; acknowledgements after each.

        A backlog never sits in memory whole, and the first lead in a pile of 1,000 does
        not wait for the last.
        """
        folder = self.cfg.imap.inbox
        uids, top = self._new_uids(folder, first_start_lookback=True)
        processed: list[int] = []
        for start in range(0, len(uids), CHUNK):
            fetched = list(self.mailbox.fetch(uids[start : start + CHUNK]))
            with self.store.transaction():
                processed += self._process_inbox(fetched, self.store.known(), self.clock.now())
            self._send(self.clock.now(), only=("ack",))
            self.mailbox.select(folder)
        with self.store.transaction():
            # Mail expunged before we saw it leaves a gap: move past it, or _wait would
            # find "new" mail that is not there and spin.
            self._set_position(folder, top)
        return processed

    def _read_sent(self) -> list[Fetched]:
        """Headers of new messages in Sent: enough to see who a person wrote to."""
        if not self.sent_folder:
            return []
        uids, top = self._new_uids(self.sent_folder)
        fetched = list(self.mailbox.fetch(uids, header_only=True))
        with self.store.transaction():
            self._set_position(self.sent_folder, top)
        return fetched

    def _mark_processed(self, uids: list[int]) -> None:
        keyword = self.cfg.imap.processed_keyword
        if not uids or not keyword:
            return
        try:
            self.mailbox.add_keyword(uids, keyword)
        except TransientError as exc:  # e.g. a server without custom keywords
            log.warning("could not set the keyword %s on processed mail: %s", keyword, exc)

    def _new_uids(self, folder: str, first_start_lookback: bool = False) -> tuple[list[int], int]:
        """UIDs of mail since the stored position, and the highest UID that can exist now.

        Nothing old on the very first start (unless ``lookback_days``).
        """
        state = self.mailbox.select(folder)
        top = state.uidnext - 1 if state.uidnext else 0
        with self.store.transaction():
            cursor = self.store.cursor(folder)
        if cursor is None:
            if not top:
                top = max(self.mailbox.uids_after(0), default=0)
            days = self.cfg.imap.lookback_days if first_start_lookback else 0
            uids: list[int] = []
            if days:
                since = (self.clock.now() - timedelta(days=days)).date()
                uids = [u for u in self.mailbox.uids_since(since) if u <= top]
            # Start just before the look-back, so a crash half-way through resumes it.
            start = min(uids) - 1 if uids else top
            with self.store.transaction():
                self.store.set_cursor(folder, state.uidvalidity, start)
            log.info("%s: first start at position %s; look-back %s days", folder, start, days)
            return uids, top
        if cursor["uidvalidity"] != state.uidvalidity:
            # The server renumbered the folder: look at recent mail again; what was already
            # handled is recognised by Message-ID (see _process_one), so nothing is re-answered.
            log.warning(
                "%s: UIDVALIDITY changed (%s -> %s): re-syncing by Message-ID",
                folder,
                cursor["uidvalidity"],
                state.uidvalidity,
            )
            since = (self.clock.now() - timedelta(days=max(2, self.cfg.imap.lookback_days))).date()
            uids = self.mailbox.uids_since(since)
            with self.store.transaction():
                self.store.set_cursor(folder, state.uidvalidity, min(uids, default=top + 1) - 1)
            return uids, top
        return self.mailbox.uids_after(int(cursor["last_uid"])), top

    def _set_position(self, folder: str, uid: int) -> None:
        cursor = self.store.cursor(folder)
        if cursor is not None and uid > cursor["last_uid"]:
            self.store.set_cursor(folder, cursor["uidvalidity"], uid)

    def _process_inbox(self, fetched: Iterable[Fetched], known: Known, now: datetime) -> list[int]:
        folder = self.cfg.imap.inbox
        self._known = known
        done: list[int] = []
        uidvalidity = (self.store.cursor(folder) or {}).get("uidvalidity", 0)
        for f in fetched:
            try:
                self._process_one(f, now, uidvalidity)
            except MessageError as exc:
                log.warning("%s uid=%s: malformed message skipped: %s", folder, f.uid, exc)
                self.store.reject(folder, uidvalidity, f.uid, str(exc), now)
            except Exception as exc:
                # A message that trips a bug must not block every message behind it: it is
                # logged with the traceback, recorded, and left untouched in the mailbox.
                log.exception("%s uid=%s: could not be processed; skipped", folder, f.uid)
                self.store.reject(folder, uidvalidity, f.uid, f"{type(exc).__name__}: {exc}", now)
            self._set_position(folder, f.uid)
            done.append(f.uid)
        return done

    def _context(self) -> Context:
        return Context(
            own=self.cfg.own_addresses,
            team=(self.cfg.team | {self.cfg.owner}) - self.cfg.own_addresses,
            known=self._known,
        )

    def _process_one(self, f: Fetched, now: datetime, uidvalidity: int) -> None:
        msg = parse_message(f.raw)
        ctx = self._context()
        known = ctx.known
        if msg.message_id and msg.message_id in known.by_message_id:
            log.info("uid=%s %s: already processed", f.uid, msg.message_id)
            lead = self.store.lead(known.by_message_id[msg.message_id])
            if lead is not None and lead.enquiry_id == msg.message_id:
                # Re-read after a renumbering: keep the enquiry's new UID for \Flagged.
                self._apply(
                    Decision(
                        dataclasses.replace(
                            lead, enquiry_uid=f.uid, enquiry_uidvalidity=uidvalidity
                        )
                    ),
                    now,
                )
            return
        # First response is measured from arrival in the mailbox (INTERNALDATE); a
        # simulated clock (time-lapse, tests) lives in its own time line.
        arrived = now
        if isinstance(self.clock, SystemClock):
            # INTERNALDATE has whole seconds: the middle of that second is the best guess.
            exact = f.internaldate.microsecond != 0
            arrived = min(f.internaldate + timedelta(seconds=0 if exact else 0.5), now)
        c = classify(msg, self.book, ctx, arrived)
        inc = Incoming(msg, f.uid, arrived, c)
        lead = self.store.lead(c.lead_key) if c.lead_key else None
        if c.kind is Kind.ENQUIRY and c.lead is not None:
            existing = self.store.lead(c.lead.addr)
            if existing is not None:  # same address, new thread: it is a reply
                lead = existing
                c = dataclasses.replace(c, kind=Kind.REPLY, lead_key=existing.address)
                inc = dataclasses.replace(inc, c=c)
        too_old = now - arrived > timedelta(days=self.cfg.imap.max_age_days)
        if c.kind is Kind.ENQUIRY and c.lead is not None and too_old:
            # Old mail moved back into the inbox, or a very long outage: an "instant"
            # acknowledgement weeks late would read as a bug. A person decides.
            decision = Decision(
                note=f"enquiry from {c.lead.addr} is older than "
                f"{self.cfg.imap.max_age_days} days: not acknowledged"
            )
        elif c.kind is Kind.ENQUIRY and c.lead is not None:
            decision = on_enquiry(
                inc,
                self.book,
                self.settings,
                now,
                self.ids,
                last_ack=self.store.last_ack(c.lead.addr),
                simulated=self.time_scale != 1.0,
            )
            if decision.lead is not None:
                decision = dataclasses.replace(
                    decision,
                    lead=dataclasses.replace(
                        decision.lead,
                        enquiry_flagged="\\Flagged" in f.flags,
                        enquiry_uidvalidity=uidvalidity,
                        inbound=(msg.message_id,) if msg.message_id else (),
                    ),
                )
        elif lead is None and c.kind is Kind.REPLY and c.lead is not None:
            existing = self.store.lead(c.lead.addr)
            if existing is None:
                decision = on_orphan_reply(inc, self.book, self.settings, now, self.ids)
            else:
                decision = on_message(inc, existing, self.book, self.settings, now, self.ids)
        elif lead is not None:
            decision = on_message(inc, lead, self.book, self.settings, now, self.ids)
            if decision.lead is not None and msg.message_id:
                decision = dataclasses.replace(
                    decision,
                    lead=dataclasses.replace(
                        decision.lead, inbound=(*decision.lead.inbound, msg.message_id)[-50:]
                    ),
                )
        else:
            if c.kind is Kind.BOUNCE and c.bounce_hard:
                for addr in c.bounced:
                    self.store.suppress(addr, "hard bounce", now)
            decision = Decision(note=f"{c.kind.value}: {'; '.join(c.reasons)}")
        self._apply(decision, now)
        sender = msg.from_.addr if msg.from_ else "?"
        log.info("uid=%s from=%s %s: %s", f.uid, sender, c.kind.value, decision.note)

    def _apply(self, decision: Decision, now: datetime) -> None:
        # Build every message first: one that cannot be built must not leave half a change.
        rows = [outbox.row_for(send, now) for send in decision.sends]
        if decision.lead is not None:
            self.store.put_lead(decision.lead)
            self._remember(decision.lead)
        if decision.suppress:
            self.store.suppress(decision.suppress, decision.note, now)
            self._known = dataclasses.replace(
                self._known, suppressed=self._known.suppressed | {decision.suppress}
            )
        for row in rows:
            outbox.enqueue_row(self.store, row, now)
            if row["purpose"] == "ack":
                self.store.record_ack(row["rcpt"], now)

    def _remember(self, lead: Lead) -> None:
        """Keep the lookup tables current within a batch without re-reading every lead."""
        by_address = dict(self._known.by_address)
        by_mid = dict(self._known.by_message_id)
        by_address[lead.address] = lead.address
        ids = {"thread": lead.thread, "inbound": lead.inbound, "enquiry_id": lead.enquiry_id}
        for mid in message_ids(ids):
            by_mid[mid] = lead.address
        self._known = dataclasses.replace(self._known, by_address=by_address, by_message_id=by_mid)

    def _process_sent(self, fetched: Iterable[Fetched], known: Known, now: datetime) -> None:
        """A person writing to a lead from this mailbox takes the lead over."""
        for f in fetched:
            head = f.raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0].lower()
            if b"\n" + MARK_HEADER.lower().encode() + b":" in head:
                continue  # our own copy: no need to parse it
            try:
                msg = parse_message(f.raw)
            except MessageError:
                continue
            if self._is_ours(msg, known):
                continue
            if (found := autodetect.detect(msg)) is not None and found.kind == "auto_reply":
                continue  # a vacation responder's copy in Sent is not a person taking over
            for addr in self._leads_addressed(msg, known):
                self._hand_over_from_sent(addr, f, now)

    def _hand_over_from_sent(self, addr: str, f: Fetched, now: datetime) -> None:
        with self._guard(f"Sent uid={f.uid}"):
            lead = self.store.lead(addr)
            if lead is None:
                return
            decision = handed_over(lead, now, "a person wrote to the lead (Sent)")
            if decision.lead and decision.lead.first_response is None:
                decision = dataclasses.replace(
                    decision,
                    lead=dataclasses.replace(decision.lead, first_response=f.internaldate),
                )
            self._apply(decision, now)
            log.info("Sent uid=%s: %s", f.uid, decision.note)

    @staticmethod
    def _is_ours(msg: Message, known: Known) -> bool:
        return bool(msg.message_id) and (
            msg.message_id in known.ours
            or (msg.message_id in known.by_message_id and msg.message_id.startswith("<iw."))
        )

    @staticmethod
    def _leads_addressed(msg: Message, known: Known) -> set[str]:
        found = {known.by_address[a.addr] for a in (*msg.to, *msg.cc) if a.addr in known.by_address}
        found |= {known.by_message_id[m] for m in msg.thread_ids if m in known.by_message_id}
        return found

    def _process_flagged(self, flagged: set[int], now: datetime) -> None:
        if not flagged:
            return
        uidvalidity = (self.store.cursor(self.cfg.imap.inbox) or {}).get("uidvalidity", 0)
        for lead in self.store.leads():
            if (
                lead.is_active
                and not lead.enquiry_flagged  # flagged on arrival (a server rule): not a person
                and lead.enquiry_uid in flagged
                and lead.enquiry_uidvalidity == uidvalidity
            ):
                with self._guard(f"flag of {lead.address}"):
                    decision = handed_over(lead, now, "the enquiry was flagged in the mailbox")
                    self._apply(decision, now)
                    log.info("%s: enquiry flagged: handed to a person", lead.address)

    def _plan(self, now: datetime) -> None:
        for lead in self.store.leads():
            with self._guard(f"planning for {lead.address}"):
                decision = plan(lead, self.book, self.settings, now, self.ids)
                if decision.lead is not None or decision.sends:
                    self._apply(decision, now)
                    if decision.note:
                        log.info("%s", decision.note)

    @contextlib.contextmanager
    def _guard(self, what: str) -> Iterator[None]:
        """One lead or message that trips a bug must not stop the work for all the others."""
        try:
            yield
        except Exception:
            log.exception("%s failed; skipped this time", what)

    def _presend_check(self) -> None:
        """A reply that reached the mailbox before a follow-up's send time always wins."""
        with self.store.transaction():
            waiting = any(
                r["purpose"] == "followup"
                for r in self.store.outbox_rows()
                if r["status"] in ("pending", "sending")
            )
        for _ in range(MAX_PRESEND_ROUNDS if waiting else 0):
            self.mailbox.noop()
            if not self._read_and_process_inbox():
                return

    # -- sending --------------------------------------------------------------------------
    def _send(self, now: datetime, only: tuple[str, ...] = ()) -> None:
        caps = outbox.Caps(self.cfg.sending.max_per_hour, self.cfg.sending.max_per_day)
        with self.store.transaction():
            items = outbox.due(self.store, now, caps, self.settings.window)
            if only:
                items = [i for i in items if i.purpose in only]
            ready = []
            for item in items:
                lead = self.store.lead(item.lead) if item.lead else None
                if _obsolete(item, lead):
                    outbox.mark(self.store, item.id, "cancelled", now)
                    log.info(
                        "%s %s to %s cancelled: automation ended",
                        item.purpose,
                        item.step,
                        item.lead,
                    )
                    continue
                # No "sending" mark (it would cost a whole state write before every send):
                # a row still pending after a crash is looked up in Sent before resending.
                ready.append(item)
        if not ready:
            return
        stamp = now.astimezone(self.settings.window.tz)
        ready = [dataclasses.replace(i, raw=restamp(i.raw, stamp)) for i in ready]
        envelopes = [Envelope(i.id, i.mail_from, i.rcpt, i.raw) for i in ready]
        results = self.sender.send(envelopes, on_sent=self.journal.record)
        done = self.clock.now()
        with self.store.transaction():
            for item in ready:
                res = results.get(item.id)
                if res is not None and res.ok:
                    outbox.mark(self.store, item.id, "sent", done)
                    self._after_sent(item, done)
                    log.info("sent %s to %s (%s)", item.purpose, item.rcpt, item.id)
                elif res is not None and res.permanent:
                    outbox.mark(self.store, item.id, "failed", done, error=res.error)
                    log.warning(
                        "%s to %s failed permanently: %s", item.purpose, item.rcpt, res.error
                    )
                    self._lead_event(item.lead, done, f"{item.purpose} not delivered", res.error)
                    if item.purpose in ("ack", "followup"):
                        self._refused(item.lead, done, res.error)
                else:
                    err = res.error if res else "not attempted"
                    counts = not (res is not None and res.connection)
                    if outbox.retry_later(self.store, item, done, err, count=counts):
                        log.warning("%s to %s will be retried: %s", item.purpose, item.rcpt, err)
                    else:
                        log.error(
                            "%s to %s given up after %d attempts: %s",
                            item.purpose,
                            item.rcpt,
                            outbox.MAX_ATTEMPTS,
                            err,
                        )
                        self._lead_event(item.lead, done, f"{item.purpose} not delivered", err)
        self.journal.clear()  # the results are in the state now
        for item in ready:
            res = results.get(item.id)
            if res is not None and res.ok and item.save_sent and self.cfg.imap.save_sent:
                self._copies.append(item)

    def _after_sent(self, item: outbox.Item, at: datetime) -> None:
        lead = self.store.lead(item.lead) if item.lead else None
        if lead is None or item.purpose not in ("ack", "followup"):
            return
        if item.purpose == "ack" and lead.acked is None:
            lead = dataclasses.replace(lead, acked=at)
        if lead.first_response is None:
            lead = dataclasses.replace(lead, first_response=at)
        self.store.put_lead(lead.log(at, f"{item.step or item.purpose}: sent", item.id))

    def _refused(self, address: str, at: datetime, error: str) -> None:
        """The server refused the lead's address for good: as good as a hard bounce."""
        lead = self.store.lead(address) if address else None
        if lead is None:
            return
        lead = dataclasses.replace(lead, undeliverable=True, conversation=Conversation.CLOSED)
        if lead.is_active:
            lead = lead.end(at, Ended.BOUNCED, error)
        self.store.put_lead(lead)
        self.store.suppress(address, "refused by the SMTP server", at)

    def _lead_event(self, address: str, at: datetime, what: str, detail: str) -> None:
        lead = self.store.lead(address) if address else None
        if lead is not None:
            self.store.put_lead(lead.log(at, what, detail))

    def _copy_to_sent(self) -> None:
        """Copies for Sent go last in a cycle: they matter to people, not to the first reply."""
        copies, self._copies = self._copies, []
        if not self.sent_folder:
            return
        for item in copies:
            try:
                self.mailbox.append(self.sent_folder, item.raw, self.clock.now())
            except TransientError as exc:
                log.warning("could not save a copy of %s in %s: %s", item.id, self.sent_folder, exc)
