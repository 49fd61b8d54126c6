"""The offline commands: check, classify, preview (no network, nothing sent)."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from inboxwatch.core.classify import Classification, Context, Kind, Known, classify
from inboxwatch.core.decide import Incoming, email_step, on_enquiry
from inboxwatch.core.lead import Lead
from inboxwatch.core.letters import Ids
from inboxwatch.core.message import parse_message
from inboxwatch.core.mime import Outgoing, new_message_id, to_bytes
from inboxwatch.core.owner_mail import owner_mail
from inboxwatch.core.settings import Settings
from inboxwatch.core.wording import counted
from inboxwatch.errors import ConfigError, MessageError, Problem
from inboxwatch.userfiles.config import Config, load_config
from inboxwatch.userfiles.rulebook import OWNER_TEMPLATES, RuleBook, load_rulebook
from inboxwatch.userfiles.sequences import Step

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
    counts = (len(book.rules), "rule"), (len(book.sequences), "sequence")
    files = ", ".join(counted(n, what) for n, what in (*counts, (len(book.templates), "template")))
    print(f"{args.config}: OK ({files}; state {cfg.state_path})")
    # Which login each server gets; nothing is connected and no token command is run.
    print(f"imap: {cfg.imap.describe_login()}\nsmtp: {cfg.smtp.describe_login()}")
    for line in password_warnings(cfg):
        print(f"inboxwatch: warning: {line}", file=sys.stderr)
    return 0


def password_warnings(cfg: Config) -> list[str]:
    """What `run` would stop on when it reads the passwords: an unset variable, a file or
    systemd credential that cannot be read. One line per source, naming every key that
    uses it. Nothing is run: a password_command is only named as not tried (it may
    prompt, or cost a hardware token's touch), and an OAuth2 token_command likewise."""
    found: dict[str, list[str]] = {}  # the problem -> the keys that have it
    for name, server in (("imap", cfg.imap), ("smtp", cfg.smtp)):
        if not server.username or server.auth != "password":
            continue
        for source, value in server.password.sources().items():
            if value:
                why = _password_problem(source, value)
                if why:
                    found.setdefault(why, []).append(f"{name}.{source}")
    return [f"{cfg.file}: {', '.join(keys)}: {why}" for why, keys in found.items()]


def _password_problem(source: str, value: str) -> str:
    import os

    if source == "password_env":
        return "" if value in os.environ else f"${value} is not set here: `run` would stop"
    if source == "password_command":
        return f"not run by check ({value.split()[0]} ...): `run` runs it when it logs in"
    if source == "password_credential":
        folder = os.environ.get("CREDENTIALS_DIRECTORY", "")
        if not folder:
            return (
                f"credential {value!r} not checked: $CREDENTIALS_DIRECTORY is not set "
                "(systemd sets it for the service, from LoadCredential=)"
            )
        value = str(Path(folder) / value)
    try:
        with open(value, "rb"):
            return ""
    except OSError as exc:
        return f"cannot read {value}: {exc.strerror or exc}: `run` would stop"


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
            if args.json:  # one object per file: a script still sees every file
                bad = Classification(Kind.IGNORE, ("cannot read or parse",))
                print(bad.as_json(file=str(path), error=str(err)))
            else:  # an error, like every error: one line on stderr
                sys.stdout.flush()
                why = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
                print(f"inboxwatch: {path}: {why}", file=sys.stderr)
            continue
        print(result.as_json(file=str(path)) if args.json else _line(path, result))
    return 1 if failures and failures == len(args.files) else 0


def cmd_preview(args: argparse.Namespace) -> int:
    """The message the daemon would send, made by the daemon's own code (decide.on_enquiry,
    decide.email_step): the same values (greeting, enquiry, signature, ...), the same
    language choice and threading. Nothing is stored or sent."""
    cfg, book = load_all(args.config)
    if args.template not in book.templates:
        raise ConfigError(
            [
                Problem(
                    str(cfg.templates_dir),
                    args.template,
                    f"no template; have: {', '.join(sorted(book.templates))}",
                )
            ]
        )
    st = Settings.from_config(cfg)
    now = datetime.now(UTC)
    owner = args.template in OWNER_TEMPLATES
    if owner:  # [owner] alerts = false still previews what it would be
        st = dataclasses.replace(st, owner_alerts=True)

    def ids() -> str:
        return new_message_id(cfg.identity.address)

    if args.lead:
        out = _preview_for(args.lead, args.template, book, st, now, ids)
    else:
        lead = Lead(
            address="jane.doe@example.com",
            name="Jane Doe",
            source="direct-email",
            rule="direct-email",
            sequence="",
            arrived=now,
            enquiry_id="<enquiry@example.com>",
            subject="Question about your prices",
            thread_subject="Question about your prices",
            thread=("<enquiry@example.com>",),
            phone="+1 555 0100",
            fields={"message": "Hello, what would a small job cost, and when could you start?"},
        )
        if owner:
            out = _owner_preview(args.template, lead, book, st, now, ids)
        else:
            # An acknowledgement template as the acknowledgement (it answers their message).
            acks = {r.template for r in book.rules} | {
                q.ack.template for q in book.sequences.values() if q.ack
            }
            purpose = "ack" if args.template in acks else "followup"
            step = Step(args.template, 0, "email", args.template)
            out = email_step(lead, step, book, st, now, ids, purpose)[1].out
    print(as_received(to_bytes(out)))
    return 0


def _owner_preview(
    template: str, lead: Lead, book: RuleBook, st: Settings, now: datetime, ids: Ids
) -> Outgoing:
    """An owner's template as the owner gets it about ``lead``, its extra variables
    filled as the daemon fills them (the lead's words, a call task, the time now)."""
    words = lead.fields.get("message", "") or lead.subject
    when = f"{now.astimezone(st.window.tz):%a %d %b %H:%M %Z}"
    extra = {
        "owner-alert": {"excerpt": words, "arrived": when, "acked": "sent at once"},
        "owner-reply": {"excerpt": words},
        "owner-task": {"task": "call"},
        "owner-nudge": {"excerpt": words, "waiting_since": when},
    }.get(template, {})
    return owner_mail(template, lead, book, st, now, ids, ((), ()), **extra)[0].out


def _preview_for(
    path: Path, template: str, book: RuleBook, st: Settings, now: datetime, ids: Ids
) -> Outgoing:
    """``template`` as the daemon would send it to the lead of the enquiry in ``path``,
    had it arrived now: a later step of the lead's sequence as that step, after the
    acknowledgement; an owner's template as the owner gets it about that lead (the new
    lead alert exactly as the daemon writes it); any other template as the
    acknowledgement."""
    msg = parse_message(path.read_bytes())
    c = classify(msg, book, st.context(None), now)
    if c.kind is not Kind.ENQUIRY or c.lead is None:
        raise MessageError(f"{path}: not an enquiry ({c.kind.value}: {'; '.join(c.reasons)})")
    seq = book.sequences.get(c.sequence)
    # The acknowledgement: the rule's own template and the sequence's ack step alike.
    acks = {c.template, seq.ack.template if seq and seq.ack else ""}
    later = {x.template for x in seq.steps if x.is_email} - acks if seq else set()
    owner = template in OWNER_TEMPLATES
    as_ack = template not in later and not owner
    if as_ack:
        c = dataclasses.replace(c, template=template)
    decision = on_enquiry(Incoming(msg, "preview", now, c), book, st, now, ids)
    lead = decision.lead
    assert lead is not None  # on_enquiry always makes the lead
    if as_ack:
        return next(s.out for s in decision.sends if s.out.purpose == "ack")
    if template == "owner-alert":
        alert = next((s.out for s in decision.sends if s.out.purpose == template), None)
        if alert is not None:
            return alert
    if owner:
        return _owner_preview(template, lead, book, st, now, ids)
    step = Step(template, 0, "email", template)
    _, send = email_step(lead, step, book, st, now, ids, "followup")
    return send.out


def as_received(raw: bytes) -> str:
    """Headers as sent, body decoded: what the lead's mail client shows."""
    import email
    import email.policy

    msg = email.message_from_bytes(raw, policy=email.policy.default)
    head = "\n".join(f"{k}: {v}" for k, v in msg.items() if not k.startswith("Content-"))
    part = msg.get_body(("plain",))
    body = part.get_content() if part is not None else ""
    return f"{head}\n\n{body}".replace("\r\n", "\n")  # lines as a terminal shows them


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
    from inboxwatch.service.runner import RunLockKeeper, make_daemon

    passwords = credentials(cfg)  # OAuth2: the token command runs when a login needs it
    if args.dry_run:
        # Beside a live daemon: no run lock, no state written, nothing sent.
        daemon = make_daemon(cfg, book, passwords, time_scale=scale, dry_run=True)
        daemon.install_signal_handlers()
        log.info("dry run on %s of %s: nothing is sent or written", cfg.imap.inbox, cfg.imap.host)
        return daemon.run(once=args.once)
    import signal

    # A command's wake-up (SIGUSR1) as soon as the run lock names us must not kill us
    # before the daemon's own handlers are in place.
    signal.signal(signal.SIGUSR1, signal.SIG_IGN)
    with single_instance(cfg.state_path):
        daemon = make_daemon(cfg, book, passwords, time_scale=scale)
        daemon.hooks.append(RunLockKeeper(cfg.state_path).hook)
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

    from inboxwatch.adapters.statefile import folder_locked

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
        with folder_locked(state_path.parent) as alone:
            if not alone:  # the other one's run lock file was deleted under it
                why = "another inboxwatch is already running on this state (its run lock deleted)"
                raise ConfigError([Problem(str(state_path), "state.path", why)])
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
