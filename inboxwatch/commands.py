"""The offline commands: check, classify, preview (no network, nothing sent)."""

from __future__ import annotations

import argparse
import logging
from datetime import UTC, datetime
from pathlib import Path

from inboxwatch.classify import Classification, Context, Kind, Known, classify
from inboxwatch.compose import new_message_id, to_bytes
from inboxwatch.config import Config, load_config
from inboxwatch.errors import ConfigError, MessageError, Problem
from inboxwatch.message import Address, parse_message
from inboxwatch.render import LeadView, Thread, lead_values, to_lead
from inboxwatch.rulebook import RuleBook, load_rulebook

log = logging.getLogger("inboxwatch")


def load_all(path: Path) -> tuple[Config, RuleBook]:
    """Config, then rules/sequences/templates; every problem of the failing stage at once."""
    cfg = load_config(path)
    return cfg, load_rulebook(cfg.rules_dir, cfg.templates_dir)


def context(cfg: Config, known: Known | None = None) -> Context:
    team = cfg.team | ({cfg.owner} if cfg.owner else frozenset())
    return Context(own=cfg.own_addresses, team=team - cfg.own_addresses, known=known or Known())


def read_known(cfg: Config) -> Known:
    """What the state file knows, read-only; no state file means nothing is known yet."""
    if not cfg.state_path.exists():
        return Known()
    from inboxwatch.store import Store

    with Store.open(cfg.state_path, readonly=True) as store:
        return store.known()


def cmd_check(args: argparse.Namespace) -> int:
    cfg, book = load_all(args.config)
    print(
        f"{args.config}: OK ({len(book.rules)} rules, {len(book.sequences)} sequences, "
        f"{len(book.templates)} templates; state {cfg.state_path})"
    )
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
        except (MessageError, OSError) as exc:
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
        own_thread = c.lead.addr == (msg.from_.addr if msg.from_ else "")
        rule = next(r for r in book.rules if r.name == c.rule)
        view = LeadView(c.lead, c.source, c.rule, msg.subject if own_thread else "", c.fields)
        thread = Thread(msg.subject, (msg.message_id,) if own_thread and msg.message_id else ())
        del rule
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
    print(to_bytes(out).decode("utf-8", "replace").replace("\r\n", "\n"))
    return 0
