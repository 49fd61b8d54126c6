"""`inboxwatch test-send`: one sample of every template, sent to the owner.

To see the templates as mail clients show them (HTML, wrapping, the signature, the From
name) before a lead does, and to prove the SMTP login works. The samples go straight to
the SMTP server: no state is read or written and no lead is involved, so it is safe
beside a running daemon. Each subject starts with "[inboxwatch test: NAME]".
"""

from __future__ import annotations

import argparse
import dataclasses
from datetime import UTC, datetime

from inboxwatch.adapters.ports import Envelope
from inboxwatch.core.letters import LeadView, Thread, lead_values, to_lead
from inboxwatch.core.message import Address
from inboxwatch.core.mime import new_message_id, to_bytes
from inboxwatch.core.owner_mail import to_owner
from inboxwatch.errors import InboxwatchError
from inboxwatch.service.commands import load_all

SAMPLE = LeadView(
    Address("jane.doe@example.com", "Jane Doe"),
    "website-form",
    "website-form",
    "Question about your prices",
    {"phone": "+1 555 0100", "message": "Hello, what would a kitchen cost? Jane"},
)
#: What the owner's templates get besides the lead's values, as the daemon would fill them.
OWNER_SAMPLE = {
    "excerpt": "Hello, what would a kitchen cost? Jane",
    "task": "call",  # the step's channel, as the daemon fills it
    "waiting_since": "2 business hours",
    "arrived": "Monday 09:14",
    "acked": "Monday 09:14",
}


def cmd_test_send(args: argparse.Namespace) -> int:
    from inboxwatch.adapters.oauth import credentials
    from inboxwatch.adapters.smtp import SmtpSender

    cfg, book = load_all(args.config)
    if not cfg.owner:
        raise InboxwatchError(f"{cfg.file}: [owner] address is needed to send the samples to")
    now = datetime.now(UTC).astimezone(cfg.timezone)
    me = Address(cfg.identity.address, cfg.identity.name)
    values = lead_values(SAMPLE, me, cfg.owner)
    thread = Thread(SAMPLE.subject, ("<enquiry@example.com>",))
    envelopes: list[Envelope] = []
    # The default set, then each translated set (templates/de/ as "de/ack").
    every = sorted(book.templates.items()) + [
        (f"{lang}/{name}", tpl)
        for lang, tpls in sorted(book.languages.items())
        for name, tpl in sorted(tpls.items())
    ]
    for name, template in every:
        mid = new_message_id(me.addr)
        if name.rpartition("/")[2].startswith("owner-"):
            out = to_owner(
                purpose="test-send",
                template=template,
                values={**values, **OWNER_SAMPLE},
                me=me,
                owner=cfg.owner,
                lead=SAMPLE.address,
                message_id=mid,
                now=now,
            )
        else:
            out, _ = to_lead(
                purpose="test-send",
                template=template,
                values=values,
                me=me,
                to=Address(cfg.owner),
                thread=thread,
                message_id=mid,
                now=now,
                answers_lead_message=True,
            )
        out = dataclasses.replace(out, subject=f"[inboxwatch test: {name}] {out.subject}")
        envelopes.append(Envelope(mid, me.addr, cfg.owner, to_bytes(out)))
    names = dict(zip((e.id for e in envelopes), (n for n, _ in every), strict=True))
    results = SmtpSender(cfg.smtp, credentials(cfg)[1]).send(envelopes)
    failed: dict[str, list[str]] = {}  # one line per error: a refused connection fails all
    for env in envelopes:
        res = results.get(env.id)
        if res is not None and res.ok:
            print(f"{names[env.id]}: sent to {cfg.owner}")
        else:
            # The rest of a batch a refused connection stopped: "not attempted: <same>".
            error = res.error.removeprefix("not attempted: ") if res else "not attempted"
            failed.setdefault(error, []).append(names[env.id])
    for error, which in failed.items():
        what = which[0] if len(which) == 1 else f"{len(which)} samples ({', '.join(which)})"
        print(f"{what}: not sent: {error}")
    return 1 if failed else 0
