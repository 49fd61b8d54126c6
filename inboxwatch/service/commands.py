"""The offline commands: check, classify, preview (no network, nothing sent)."""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from inboxwatch.core.classify import Classification, Context, Kind, Known, classify
from inboxwatch.core.letters import LeadView, Thread, lead_values, thread_start, to_lead
from inboxwatch.core.message import Address, parse_message
from inboxwatch.core.mime import new_message_id, to_bytes
from inboxwatch.core.settings import Settings
from inboxwatch.errors import ConfigError, MessageError, Problem
from inboxwatch.userfiles.config import Config, load_config
from inboxwatch.userfiles.rulebook import RuleBook, load_rulebook

if TYPE_CHECKING:
    from inboxwatch.adapters.tinydb_store import TinyDbStore

log = logging.getLogger("inboxwatch")


def load_all(path: Path) -> tuple[Config, RuleBook]:
    """Config, then rules/sequences/templates; every problem of the failing stage at once."""
    cfg = load_config(path)
    return cfg, load_rulebook(cfg.rules_dir, cfg.templates_dir)


def context(cfg: Config, known: Known | None = None) -> Context:
    return Settings.from_config(cfg).context(known)


def open_state(cfg: Config, readonly: bool = True) -> TinyDbStore:
    from inboxwatch.adapters.tinydb_store import TinyDbStore

    return TinyDbStore.open(cfg.state_path, readonly=readonly, inbox_folder=cfg.imap.inbox)


def read_known(cfg: Config) -> Known:
    """What the state file knows, read-only; no state file means nothing is known yet."""
    if not cfg.state_path.exists():
        return Known()
    with open_state(cfg).transaction() as state:
        return state.known()


def cmd_check(args: argparse.Namespace) -> int:
    cfg, book = load_all(args.config)
    for warning in book.warnings:  # a help, not an error: the time limit is the guarantee
        print(f"inboxwatch: warning: {warning}", file=sys.stderr)
    print(
        f"{args.config}: OK ({len(book.rules)} rules, {len(book.sequences)} sequences, "
        f"{len(book.templates)} templates; state {cfg.state_path})"
    )
    # Which login each server gets; nothing is connected and no token command is run.
    print(f"imap: {cfg.imap.describe_login()}\nsmtp: {cfg.smtp.describe_login()}")
    return 0


def _line(path: Path, c: Classification) -> str:
    parts = [f"{path}: {c.kind.value}"]
    if c.kind is Kind.ENQUIRY and c.lead:
        parts.append(f"lead {c.lead} source={c.source} rule={c.rule!r}")
    elif c.lead_key:
        parts.append(f"lead {c.lead_key}")
    if c.return_date:
        parts.append(f"back {c.return_date.isoformat()}")
    if c.kind is Kind.BOUNCE:
        parts.append(f"{'hard' if c.bounce_hard else 'soft'} {','.join(c.bounced) or '?'}")
    if c.opt_out:
        parts.append("opt-out")
    return " ".join(parts) + " - " + "; ".join(c.reasons)


def cmd_classify(args: argparse.Namespace) -> int:
    cfg, book = load_all(args.config)
    ctx = context(cfg, read_known(cfg))
    failures = 0
    for path in args.files:
        try:
            msg = parse_message(path.read_bytes())
            received = msg.date or datetime.now(UTC)
            if received.tzinfo is None:
                received = received.replace(tzinfo=UTC)
            result = classify(msg, book, ctx, received)
        except Exception as exc:  # one bad file must not stop the others
            if args.debug and not isinstance(exc, (MessageError, OSError)):
                log.exception("%s: unexpected error", path)
            failures += 1
            err = f"{exc.strerror}: {path}" if isinstance(exc, OSError) and exc.strerror else exc
            bad = Classification(Kind.IGNORE, ("cannot read or parse",))
            print(
                bad.as_json(file=str(path), error=str(err))
                if args.json
                else f"{path}: ignore - error: {err}"
            )
            continue
        print(result.as_json(file=str(path)) if args.json else _line(path, result))
    return 1 if failures and failures == len(args.files) else 0


def cmd_preview(args: argparse.Namespace) -> int:
    cfg, book = load_all(args.config)
    template = book.templates.get(args.template)
    if template is None:
        raise ConfigError(
            [
                Problem(
                    str(cfg.templates_dir),
                    args.template,
                    f"no template; have: {', '.join(sorted(book.templates))}",
                )
            ]
        )
    me = Address(cfg.identity.address, cfg.identity.name)
    now = datetime.now(UTC)
    if args.lead:
        msg = parse_message(args.lead.read_bytes())
        c = classify(msg, book, context(cfg), msg.date or now)
        if c.kind is not Kind.ENQUIRY or c.lead is None:
            raise MessageError(
                f"{args.lead}: not an enquiry ({c.kind.value}: {'; '.join(c.reasons)})"
            )
        start = thread_start(msg, c.lead.addr)
        view = LeadView(c.lead, c.source, c.rule, start.subject, c.fields)
        thread = start
    else:
        view = LeadView(
            Address("jane.doe@example.com", "Jane Doe"),
            "direct-email",
            "direct-email",
            "Question about your prices",
            {"phone": "+1 555 0100"},
        )
        thread = Thread(view.subject, ("<enquiry@example.com>",))
    out, _ = to_lead(
        purpose="preview",
        template=template,
        values=lead_values(view, me, cfg.owner),
        me=me,
        to=view.address,
        thread=thread,
        message_id=new_message_id(me.addr),
        now=now,
        answers_lead_message=bool(thread.message_ids),
    )
    print(as_received(to_bytes(out)))
    return 0


def as_received(raw: bytes) -> str:
    """Headers as sent, body decoded: what the lead's mail client shows."""
    import email
    import email.policy

    msg = email.message_from_bytes(raw, policy=email.policy.default)
    head = "\n".join(f"{k}: {v}" for k, v in msg.items() if not k.startswith("Content-"))
    part = msg.get_body(("plain",))
    body = part.get_content() if part is not None else ""
    return f"{head}\n\n{body}"


# -- the daemon and the lead commands -------------------------------------------------------
def cmd_run(args: argparse.Namespace) -> int:
    cfg, book = load_all(args.config)
    scale = float(args.time_scale)
    if not 1 <= scale <= 10_000_000:  # also refuses nan
        raise ConfigError(
            [Problem("command line", "--time-scale", "must be between 1 and 10000000")]
        )
    if scale != 1 and not args.force:
        far = [s.host for s in (cfg.imap, cfg.smtp) if not s.is_loopback]
        if far:
            raise ConfigError(
                [
                    Problem(
                        str(cfg.file),
                        "--time-scale",
                        f"refused with non-loopback servers ({', '.join(far)}): it would send "
                        "a real cadence in minutes; add --force if you mean it",
                    )
                ]
            )
        if cfg.state_path.exists() and not args.dry_run and not open_state(cfg).simulated:
            raise ConfigError(
                [
                    Problem(
                        str(cfg.file),
                        "--time-scale",
                        f"refused on a real state file ({cfg.state_path}); use another "
                        "[state] path or --force",
                    )
                ]
            )
    from inboxwatch.adapters.oauth import credentials
    from inboxwatch.service.runner import make_daemon

    passwords = credentials(cfg)  # OAuth2: the token command runs when a login needs it
    if args.dry_run:
        # Beside a live daemon: no run lock, no state written, nothing sent.
        daemon = make_daemon(cfg, book, passwords, time_scale=scale, dry_run=True)
        daemon.install_signal_handlers()
        log.info("dry run on %s of %s: nothing is sent or written", cfg.imap.inbox, cfg.imap.host)
        return daemon.run(once=args.once)
    with single_instance(cfg.state_path):
        daemon = make_daemon(cfg, book, passwords, time_scale=scale)
        daemon.install_signal_handlers()
        log.info(
            "inboxwatch watching %s on %s as %s%s",
            cfg.imap.inbox,
            cfg.imap.host,
            cfg.identity.address,
            f" (time-lapse x{scale:g}: simulated state)" if scale != 1 else "",
        )
        return daemon.run(once=args.once)


@contextlib.contextmanager
def single_instance(state_path: Path) -> Iterator[None]:
    """Two daemons on one state would both send every queued message: refuse the second."""
    import fcntl
    import os

    state_path.parent.mkdir(parents=True, exist_ok=True)
    path = state_path.with_name(state_path.name + ".run.lock")
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    os.fchmod(fd, 0o600)  # also for a lock file an older version made 0644
    with os.fdopen(fd, "r+", encoding="ascii") as fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            other = fh.read().strip() or "?"
            raise ConfigError(
                [
                    Problem(
                        str(state_path),
                        "state.path",
                        f"another inboxwatch (pid {other}) is already running on this state",
                    )
                ]
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        yield


def running_pid(state_path: Path) -> int | None:
    """The pid of the daemon running on this state, or None (its run lock is free)."""
    import fcntl

    path = state_path.with_name(state_path.name + ".run.lock")
    try:
        with open(path, encoding="ascii") as fh:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                text = fh.read().strip()
                return int(text) if text.isdigit() else -1
            return None
    except FileNotFoundError:
        return None
