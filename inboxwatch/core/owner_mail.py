"""Mail to the owner: alerts about a lead (from the owner's templates) and notices about
inboxwatch itself. Pure: the time and the Message-ID come in.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING

from inboxwatch.core.lead import Lead
from inboxwatch.core.letters import Ids, Send, lead_values, view_of
from inboxwatch.core.message import Address
from inboxwatch.core.mime import Outgoing
from inboxwatch.userfiles.rulebook import RuleBook
from inboxwatch.userfiles.templates import Template, render

if TYPE_CHECKING:
    from inboxwatch.core.settings import Settings


def to_owner(
    *,
    purpose: str,
    template: Template,
    values: Mapping[str, str],
    me: Address,
    owner: str,
    lead: Address | None,
    message_id: str,
    now: datetime,
) -> Outgoing:
    """An alert for the owner; Reply-To the lead, so answering it answers the lead."""
    rendered = render(template, values)
    return Outgoing(
        purpose=purpose,
        from_=Address(me.addr, f"inboxwatch ({me.name})" if me.name else "inboxwatch"),
        to=Address(owner),
        subject=rendered.subject,
        body=rendered.body,
        html=rendered.html,
        message_id=message_id,
        date=now,
        reply_to=lead,
        lead=lead.addr if lead else "",
    )


def notice_mail(
    *, me: Address, owner: str, subject: str, body: str, message_id: str, now: datetime
) -> Outgoing:
    """Mail to the owner about inboxwatch itself (sending refused, a message given up):
    written here, not from a template, since it is about the service, not a lead."""
    return Outgoing(
        purpose="owner-notice",
        from_=Address(me.addr, f"inboxwatch ({me.name})" if me.name else "inboxwatch"),
        to=Address(owner),
        subject=f"inboxwatch: {subject}",
        body=body,
        message_id=message_id,
        date=now,
    )


def owner_mail(
    purpose: str, lead: Lead, book: RuleBook, st: Settings, now: datetime, ids: Ids, **extra: str
) -> tuple[Send, ...]:
    tpl = book.templates.get(purpose)
    now = now.astimezone(st.window.tz)  # the Date header in the business's own zone
    if not st.owner_alerts or tpl is None:
        return ()
    values = lead_values(view_of(lead), st.me, st.owner, extra)
    out = to_owner(
        purpose=purpose,
        template=tpl,
        values=values,
        me=st.me,
        owner=st.owner,
        lead=Address(lead.address, lead.name),
        message_id=ids(),
        now=now,
    )
    return (Send(out),)
