"""State at scale: what the daemon's work costs with 1k, 5k and 20k active leads.

    python bench/run.py state-cost [--quick]
    python bench/scale.py rss CONFIG plain|lean|full  (used by the above, in a fresh process)

No servers: the real ``Daemon.tick`` on a seeded :class:`TinyDbStore` with in-memory mail
and SMTP twins (``MemorySource``, ``MemorySender``). Printed per size: start-up (open the
state + the first tick, which computes every wake time again), an idle cadence tick, one
daemon-like transaction for an enquiry (due, known, a lead put, an outbox item queued,
the journal append with fsync) and the bytes it adds to the journal, and a whole tick
taking in one new enquiry (parse, classify, decide, compose, the acknowledgement and the
owner's alert sent to the twin). Resident memory is measured in a fresh process: VmRSS,
everything resident (the lean language model is read into memory, not mapped, so all of
it counts), after the model has detected a few enquiries.
"""

from __future__ import annotations

import dataclasses
import email
import email.policy
import gc
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from zoneinfo import ZoneInfo

import corpus
import targets
from targets import header, human_bytes

from inboxwatch.adapters.memory_mail import MemorySource
from inboxwatch.adapters.memory_sender import MemorySender
from inboxwatch.adapters.tinydb_store import TinyDbStore
from inboxwatch.core.lead import Automation, Conversation, Ended, Lead
from inboxwatch.core.letters import Send
from inboxwatch.core.message import Address
from inboxwatch.core.mime import Outgoing
from inboxwatch.core.queue import OutboxItem, Purpose, Status
from inboxwatch.core.route import World, queue_item, wake_of
from inboxwatch.core.settings import Settings
from inboxwatch.core.timing import SendingWindow
from inboxwatch.service.clock import FixedClock
from inboxwatch.service.commands import load_all
from inboxwatch.service.daemon import Daemon
from inboxwatch.userfiles.rulebook import RuleBook, load_rulebook

REPO = Path(__file__).resolve().parent.parent
RULES, TEMPLATES = REPO / "rules", REPO / "templates"


SETTINGS = Settings(
    me=Address("shop@example.test", "Example Shop"),
    owner="owner@example.test",
    owner_alerts=True,
    window=SendingWindow(ZoneInfo("UTC"), dtime(9), dtime(17), frozenset(range(5))),
    min_gap=timedelta(hours=20),
    ack_period=timedelta(days=7),
    hold_max=timedelta(days=30),
)
#: Steps a seeded lead has done: all up to day 7, so time alone makes nothing due now.
SEEDED_STEPS = ("ack", "call-day0", "followup-day1", "call-day3", "nudge-day3", "value-day7")


def sample_lead(address: str, i: int, now: datetime, rng: random.Random) -> Lead:
    """An active lead as the daemon leaves it a few days into the default sequence."""
    arrived = now - timedelta(days=rng.uniform(0, 6))
    mid = f"<c{i}.{rng.getrandbits(48)}@client.test>"
    ack = f"<iw.{rng.getrandbits(96):024x}@example.test>"
    lead = Lead(
        address=address,
        name=rng.choice(corpus.NAMES),
        source="direct-email",
        rule="direct-email",
        sequence="default",
        arrived=arrived,
        enquiry_id=mid,
        subject="Need a quote for painting three rooms",
        thread_subject="Need a quote for painting three rooms",
        thread=(mid, ack),
        inbound=(mid,),
        enquiry_ref=f"1:{i}",
        steps_done={step: arrived.isoformat() for step in SEEDED_STEPS},
        last_email_at=arrived,
        acked=arrived,
        first_response=arrived,
        conversation=Conversation.WAITING_THEM,
    )
    lead = lead.log(arrived, "enquiry", "direct-email via rule 'direct-email': Need a quote")
    lead = lead.log(arrived, "ack: email queued", ack)
    lead = lead.log(arrived, "ack: sent", ack)
    for step in SEEDED_STEPS[1:]:
        lead = lead.log(arrived, f"{step}: done")
    return lead


def seed_state(
    path: Path,
    active: int,
    archived: int,
    rng: random.Random,
    book: RuleBook,
    inbox_folder: str = "INBOX",
) -> None:
    """A state as the daemon would have left it, written through TinyDbStore: active leads
    ``active<i>@customer.test`` (with wake times, acknowledgements, own Message-IDs), two
    days of sent outbox items, and ``archived`` closed leads in the append-only archive.

    No reading position: the daemon's first start takes the mailbox position itself.
    """
    now = datetime.now(UTC)
    world = World(book, SETTINGS, lambda: "<x@example.test>")
    path.parent.mkdir(parents=True, exist_ok=True)
    store = TinyDbStore.open(path, inbox_folder=inbox_folder)
    leads = [
        sample_lead(f"active{i}@{corpus.LEAD_DOMAIN}", i, now, rng) for i in range(1, active + 1)
    ]
    with store.transaction() as state:
        for i, lead in enumerate(leads):
            state.put_lead(lead, wake_of(lead, world, now))
            state.record_ack(lead.address, lead.arrived)
            state.add_ours(f"<iw.o{i}@example.test>", lead.arrived)
        # Sent items are kept two days (raw emptied): about a tenth of the leads × 3.
        for j in range(active * 3 // 10):
            lead = leads[j % active]
            state.put_outbox(
                OutboxItem(
                    id=f"<iw.s{j}@example.test>",
                    purpose=(Purpose.ACK, Purpose.OWNER_ALERT, Purpose.OWNER_TASK)[j % 3],
                    lead=lead.address,
                    step="ack",
                    mail_from="shop@example.test",
                    rcpt=lead.address,
                    raw=b"",
                    created=now,
                    next_try=now,
                    status=Status.SENT,
                    sent_at=now,
                )
            )
    if archived:
        # The archive is append-only JSON lines of closed leads (TinyDbStore.archived reads
        # it); written here in one go, as archiving 50,000 leads one fsync at a time would.
        old = now - timedelta(days=400)
        line_for = [sample_lead(f"old{i}@x.test", i, old, rng) for i in range(50)]
        with store.archive_path.open("w", encoding="utf-8") as fh:
            for k in range(archived):
                d = line_for[k % 50].to_dict()
                d["address"] = f"old{k}@{corpus.LEAD_DOMAIN}"
                d["automation"], d["ended"] = Automation.ENDED.value, Ended.NO_RESPONSE.value
                fh.write(json.dumps(d, ensure_ascii=False) + "\n")
            fh.flush()
            os.fsync(fh.fileno())  # on disk before the timing starts, as the daemon leaves it


def one_transaction(store: TinyDbStore, world: World, address: str) -> dict[str, float]:
    """What a tick does with one reply from a lead: due leads, the lookups, the lead
    updated and a message to the owner queued, one atomic write."""
    now = datetime.now(UTC)
    out = Outgoing(
        purpose="owner-reply",
        from_=SETTINGS.me,
        to=Address(SETTINGS.owner),
        subject=f"Reply from {address}",
        body="The lead answered:\n\n" + "Thanks, that sounds good. " * 40,
        message_id=f"<iw.{time.time_ns()}@example.test>",
        date=now,
        lead=address,
    )
    item = queue_item(Send(out), now)  # composing is not the state's cost
    t0 = time.perf_counter()
    with store.transaction() as state:
        t1 = time.perf_counter()
        state.due(now)
        t2 = time.perf_counter()
        state.known()
        t3 = time.perf_counter()
        lead = state.lead(address)
        assert lead is not None
        lead = lead.log(now, "reply", "Thanks, sounds good.")
        state.put_lead(lead, wake_of(lead, world, now))
        t4 = time.perf_counter()
        state.put_outbox(item)
        state.add_ours(item.id, now)
        t5 = time.perf_counter()
    t6 = time.perf_counter()
    return {
        "open": t1 - t0,
        "due": t2 - t1,
        "known": t3 - t2,
        "put_lead": t4 - t3,
        "queue": t5 - t4,
        "flush": t6 - t5,
        "total": t6 - t0,
    }


def state_config(folder: Path) -> Path:
    """A config for a daemon on in-memory mail (nothing connects: no password is read)."""
    path = folder / "config.toml"
    path.write_text(
        f"""timezone = "UTC"
[imap]
host = "127.0.0.1"
port = 1
tls = "none"
username = "shop@example.test"
password_env = "IW_BENCH_UNUSED"
[smtp]
host = "127.0.0.1"
port = 1
tls = "none"
[identity]
address = "shop@example.test"
name = "Example Shop"
[owner]
address = "owner@example.test"
[state]
path = "{folder / "inboxwatch.json"}"
[paths]
rules = "{RULES}"
templates = "{TEMPLATES}"
"""
    )
    return path


def memory_daemon(config: Path, store: TinyDbStore, now: datetime) -> Daemon:
    cfg, book = load_all(config)
    return Daemon(
        cfg,
        book,
        store,
        FixedClock(now),
        MemorySource(clock=lambda: now),
        MemorySender(),
        journal=None,
    )


def journal_size(store: TinyDbStore) -> int:
    return store.journal_path.stat().st_size if store.journal_path.exists() else 0


def measure(config: Path, book: RuleBook, active: int, repeats: int) -> dict[str, float]:
    """One size: start-up, idle ticks, enquiry transactions and whole enquiry ticks."""
    path = load_all(config)[0].state_path
    world = World(book, SETTINGS, lambda: "<x@example.test>")
    rng = random.Random(active)
    now = datetime.now(UTC)
    t0 = time.perf_counter()
    store = TinyDbStore.open(path)  # the first load, as the daemon's start does
    daemon = memory_daemon(config, store, now)
    daemon.connect(now)
    daemon.tick(now)  # every lead's wake time computed again
    start = time.perf_counter() - t0
    idle = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        daemon.tick(now)
        idle.append(time.perf_counter() - t0)
    before = journal_size(store)
    txn = [
        one_transaction(store, world, f"active{rng.randrange(1, active + 1)}@customer.test")
        for _ in range(repeats)
    ]
    per_txn = (journal_size(store) - before) / repeats
    source = daemon.source
    assert isinstance(source, MemorySource)
    shop = daemon.cfg.identity.address
    enquiry = []
    for i in range(repeats):
        lead = f"new{i}.{active}@{corpus.LEAD_DOMAIN}"
        source.deliver(corpus.enquiry(lead, shop, rng), received=now)
        t0 = time.perf_counter()
        daemon.tick(now)
        enquiry.append(time.perf_counter() - t0)
    return {
        "snapshot": path.stat().st_size,
        "start": start,
        "idle": statistics.median(idle),
        "txn": statistics.median(r["total"] for r in txn),
        "journal_per_txn": per_txn,
        "enquiry_tick": statistics.median(enquiry),
    }


#: What the fresh process holds besides the state: no language model (the daemon without
#: templates/<lang>/), the lean model the daemon loads, or py3langid's own (for scale).
RSS_MODES = ("plain", "lean", "full")


def rss(config: Path, mode: str) -> float:
    """Resident memory (MB) of a fresh process that opened this state and ran one tick,
    then loaded the language model (``mode``) and detected the language of a few
    enquiries in several languages (so the figure counts the model as it is used)."""
    cmd = [sys.executable, str(Path(__file__)), "rss", str(config), mode]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=REPO, check=True)
    return float(out.stdout.strip().splitlines()[-1])


#: Enquiries whose language the measured process detects.
RSS_TEXTS = (
    "Hello, what would a new oak kitchen cost, roughly 4 metres with an island?",
    "Guten Tag, was würde eine neue Eichenküche kosten, etwa 4 Meter mit Kochinsel?",
    "Bonjour, pourriez-vous m'envoyer un devis pour une cuisine en chêne ?",
    "Hola, ¿me pueden enviar un presupuesto para una cocina nueva?",
    "こんにちは、新しいキッチンの見積もりをお願いできますか。",
)


def _rss_main(config: Path, mode: str) -> None:
    now = datetime.now(UTC)
    store = TinyDbStore.open(load_all(config)[0].state_path)
    daemon = memory_daemon(config, store, now)
    # Without template languages the daemon never loads a model (nor warms one up).
    daemon.book = dataclasses.replace(daemon.book, languages={})
    daemon.connect(now)
    daemon.tick(now)
    if mode == "lean":
        from inboxwatch.core import language

        language.warm_up()
        for text in RSS_TEXTS:
            language.detect(text)
    elif mode == "full":
        from inboxwatch.adapters.langmodel import FullModel

        full = FullModel()
        for text in RSS_TEXTS:
            full.best(text)
    gc.collect()
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            print(int(line.split()[1]) / 1024)
            return
    raise SystemExit("no VmRSS in /proc/self/status")


def sample_texts() -> list[str]:
    """The text of every sample mail that has enough words to detect (what the daemon
    passes to the detector: the noise stripped, the first 2,000 characters)."""
    from inboxwatch.core import language

    texts = []
    paths = sorted((REPO / "inboxwatch" / "testing" / "samples").glob("*.eml"))
    paths += sorted((REPO / "tests" / "mail").rglob("*.eml"))
    for path in paths:
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        try:
            body = msg.get_body(("plain", "html"))
            text = body.get_content() if body is not None else ""
        except (LookupError, ValueError, AttributeError):
            continue
        text = language._NOISE.sub(" ", str(text)[: language.MAX_CHARS])
        if len(language._WORD.findall(text)) >= language.MIN_WORDS:
            texts.append(text)
    return texts


def detection_speed(quick: bool) -> tuple[float, float, int]:
    """Milliseconds per text for the lean model and for py3langid's own (the daemon's
    former detector), medians of interleaved passes over the sample texts; both must
    give every text the same language and probability."""
    from inboxwatch.adapters.langmodel import FullModel, load

    texts = sample_texts()
    lean, full = load(), FullModel()
    if any(lean.best(t) != full.best(t) for t in texts):
        raise SystemExit("the lean language model decided differently from py3langid")
    times: dict[str, list[float]] = {"lean": [], "full": []}
    for _ in range(3 if quick else 15):
        for name, model in (("lean", lean), ("full", full)):
            t0 = time.perf_counter()
            for text in texts:
                model.best(text)
            times[name].append((time.perf_counter() - t0) / len(texts) * 1e3)
    return statistics.median(times["lean"]), statistics.median(times["full"]), len(texts)


def bench_state_cost(quick: bool) -> None:
    sizes = (200, 1000) if quick else (1000, 5000, 20000)
    target_size = 1000 if quick else 5000
    archived = 5000 if quick else 50000
    repeats = 5 if quick else 15
    header("state at scale: the real Daemon.tick on TinyDbStore (in-memory mail, no servers)")
    print(
        f"per size: medians of {repeats}. start = open the state + the first tick (every wake "
        "time again);\nidle = a cadence tick with nothing due; txn = one enquiry's state "
        "transaction (due, known,\nput_lead, put_outbox, add_ours, journal append + fsync); "
        "enquiry = a whole tick taking in one\nnew enquiry (parse … ack and alert sent to the "
        f"SMTP twin). {archived:,} archived leads beside the\n{target_size:,} row (the "
        "daemon never reads the archive)."
    )
    print(
        f"  {'active':>7} {'snapshot':>9} {'start':>9} {'idle tick':>10} {'txn':>8} "
        f"{'journal/txn':>11} {'enquiry':>9}"
    )
    rng = random.Random(3)
    book = load_rulebook(RULES, TEMPLATES)
    tmp = Path(tempfile.mkdtemp(prefix="iw-bench-state-"))
    results: dict[int, dict[str, float]] = {}
    try:
        for active in sizes:
            folder = tmp / f"s{active}"
            folder.mkdir(parents=True)
            config = state_config(folder)
            path = load_all(config)[0].state_path
            seed_state(path, active, archived if active == target_size else 0, rng, book)
            r = results[active] = measure(config, book, active, repeats)
            print(
                f"  {active:>7} {human_bytes(r['snapshot']):>9} {r['start'] * 1e3:7.0f}ms "
                f"{r['idle'] * 1e3:8.1f}ms {r['txn'] * 1e3:6.1f}ms "
                f"{human_bytes(r['journal_per_txn']):>11} {r['enquiry_tick'] * 1e3:7.1f}ms"
            )
            if active == target_size:
                runs = 1 if quick else 3
                plain, with_model, full = (
                    statistics.median(rss(config, mode) for _ in range(runs)) for mode in RSS_MODES
                )
                print(
                    f"  resident memory (VmRSS, medians of {runs} fresh processes), "
                    f"{active:,} active + {archived:,} archived: {plain:.0f} MB; with the "
                    "language model loaded and used (lean copy of py3langid's + numpy): "
                    f"{with_model:.0f} MB "
                    f"(py3langid's own model instead: {full:.0f} MB)"
                )
                lean_ms, full_ms, count = detection_speed(quick)
                print(
                    f"  language detection, {count} sample mails' texts: {lean_ms:.3f} ms each "
                    f"(py3langid's own: {full_ms:.3f} ms; the same result for every text)"
                )
            shutil.rmtree(folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    r = results[target_size]
    n = f"{target_size:,} active"
    targets.check(f"cadence tick, {n}", r["idle"] * 1e3, 30, "ms")
    targets.check(f"taking in a new lead (its state transaction), {n}", r["txn"] * 1e3, 10, "ms")
    targets.check(
        f"start-up, {n} + {archived:,} archived (open + first tick)", r["start"], 2.0, "s"
    )
    targets.check(f"resident memory, {n} + {archived:,} archived", with_model, 150, "MB")
    first, last = sizes[0], sizes[-1]
    growth = results[last]["txn"] / results[first]["txn"] if results[first]["txn"] else 0
    print(
        f"  cost curve: a transaction at {last:,} active leads costs {growth:.1f}× the one at "
        f"{first:,} ({last // first}× the leads)"
    )


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "rss" and sys.argv[3] in RSS_MODES:
        _rss_main(Path(sys.argv[2]), sys.argv[3])
    else:
        raise SystemExit(__doc__)
