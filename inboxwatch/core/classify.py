"""Decide what a message is. Pure: the message, the rule book and what we know, in; a verdict out.

Order matters and follows the standards before the user's rules:
bounce → automatic reply → our own / team mail → reply from a known lead → list/bulk →
user rules. Only an ``enquiry`` can ever lead to an automatic answer, and only to an
address that is not a robot, not us, not the team and not suppressed (RFC 3834 §2).

A rule that finds the lead in a notification (body or Reply-To) writes to a person the
sender named: it only counts for the senders it lists, and never for a message whose From
domain failed authentication at our own receiving server (:mod:`inboxwatch.core.authres`).
The user's patterns share one time budget per message (:mod:`inboxwatch.core.safe_regex`).
"""

from __future__ import annotations

import dataclasses
import re
from datetime import datetime

from inboxwatch.core import authres, autodetect, complaints, recall, spamverdict
from inboxwatch.core.detection import REPLY_PREFIX
from inboxwatch.core.lazy import Later
from inboxwatch.core.message import Address, Message, is_valid_address, parse_addresses
from inboxwatch.core.mime import MARK_HEADER, made_by_us
from inboxwatch.core.optout import is_opt_out
from inboxwatch.core.returndate import find_return_date
from inboxwatch.core.robots import is_noreply_address, local_tokens
from inboxwatch.core.safe_regex import Budget
from inboxwatch.core.suppression import is_suppressed
from inboxwatch.core.verdict import PUBLIC_MAIL_DOMAINS
from inboxwatch.core.verdict import Classification as Classification
from inboxwatch.core.verdict import Context as Context
from inboxwatch.core.verdict import Kind as Kind
from inboxwatch.core.verdict import Known as Known
from inboxwatch.userfiles.rulebook import RuleBook
from inboxwatch.userfiles.rules import LeadFound, Rule, find_lead


def _concerns(msg: Message, known: Known, extra: tuple[str, ...] = ()) -> str:
    """The known lead a message is about: by thread first (exact), then by address."""
    for mid in msg.thread_ids:
        if key := known.by_message_id.get(mid):
            return key
    candidates = [*extra, *(a.addr for a in (*msg.to, *msg.cc))]
    if msg.from_:
        candidates.insert(0, msg.from_.addr)
    return next((known.by_address[a] for a in candidates if a in known.by_address), "")


def classify(
    msg: Message, book: RuleBook, ctx: Context, received: datetime, budget: Budget | None = None
) -> Classification:
    """Classify ``msg`` (which reached the mailbox at ``received``).

    The user's patterns draw on ``budget`` (a fresh :class:`Budget` if none); using it up
    raises :class:`~inboxwatch.core.safe_regex.RuleTimeout`, a ``MessageError``.
    """
    msg, via_group = _unwrap_own_group(msg, ctx)
    result = _classify(msg, book, ctx, received, budget or Budget())
    if result.kind is Kind.ENQUIRY and ctx.trust_spam_verdict:
        result = _spam_checked(msg, result, ctx)
    if via_group:
        result = dataclasses.replace(
            result, reasons=("came through our own group", *result.reasons)
        )
    return result


def _text_of(msg: Message) -> Later[str]:
    """The message's new text (:attr:`Message.new_text`), when first read: most verdicts
    (bounces, lists, ignored mail) never need it in the daemon."""
    return Later(lambda: msg.new_text)


def _classify(
    msg: Message, book: RuleBook, ctx: Context, received: datetime, budget: Budget
) -> Classification:
    text = _text_of(msg)  # worked out only if the verdict is asked for it
    sender = msg.from_.addr if msg.from_ else ""
    known = ctx.known

    if (complaint := complaints.detect_complaint(msg, ctx.own)) is not None:
        named = tuple(a for a in complaint.recipients if a not in ctx.team)
        key = next((known.by_address[a] for a in named if a in known.by_address), "")
        key = key or next(
            (known.by_message_id[m] for m in complaint.message_ids if m in known.by_message_id),
            "",
        )
        return Classification(
            Kind.COMPLAINT, complaint.reasons, lead_key=key, complained=named, new_text=text
        )

    # An Outlook recall is made by the client, as a read receipt is (core/recall.py).
    found = autodetect.detect(msg) or recall.detect_recall(msg)
    if found and found.kind == "bounce":
        key = _concerns(msg, known, found.recipients)
        return Classification(
            Kind.BOUNCE,
            found.reasons,
            lead_key=key,
            bounce_hard=found.hard,
            bounced=found.recipients,
            new_text=text,
        )
    if found and found.kind == "auto_reply":
        key = _concerns(msg, known)
        rescued = None if key else _robot_notification(msg, book, ctx, found.reasons, text, budget)
        if rescued is not None:
            return rescued
        if key and sender == key and any(r.startswith("calendar reply") for r in found.reasons):
            # The lead accepted (or declined) a meeting: a person's answer, made by a client.
            return Classification(
                Kind.REPLY,
                (*found.reasons, "from a known lead: their answer to a meeting request"),
                lead=msg.from_,
                lead_key=key,
                new_text=text,
            )
        # The responder's own text: a quoted original could carry unrelated dates.
        back = find_return_date(msg.new_text or msg.body_text or msg.subject, received)
        return Classification(
            Kind.AUTO_REPLY,
            found.reasons,
            lead=msg.from_,
            lead_key=key,
            return_date=back,
            new_text=text,
        )
    if sender in ctx.own and (
        msg.has_header(MARK_HEADER) or _is_our_message_id(msg.message_id, ctx)
    ):
        return Classification(
            Kind.OWN, ("written by inboxwatch",), lead_key=_concerns(msg, known), new_text=text
        )
    if any(mid in known.ours for mid in msg.thread_ids[:1]) and sender not in ctx.team:
        return Classification(
            Kind.OWN, ("answers our own alert",), lead_key=_concerns(msg, known), new_text=text
        )
    if sender in ctx.team:
        # Form plugins often send from the site's admin address, which is the owner's.
        team_why = (f"sent from a team address {sender}",)
        rescued = _robot_notification(msg, book, ctx, team_why, text, budget, hold=False)
        if rescued is not None:
            return rescued
        return Classification(
            Kind.OWN,
            ("sent by the team",),
            lead_key=_concerns(msg, known),
            new_text=text,
            by_team=True,
        )
    key = _concerns(msg, known)
    in_thread = any(m in known.by_message_id for m in msg.thread_ids)
    # A known lead's post to a mailing list we read is not an answer to us (unless it
    # is in the lead's thread with us): the list manager's headers say so.
    from_lead = sender == key and not autodetect.is_list_post(msg)
    if key and (in_thread or from_lead):
        why = "in a known lead's thread" if in_thread else "from a known lead"
        return Classification(
            Kind.REPLY,
            (why,),
            lead=msg.from_,
            lead_key=key,
            new_text=text,
            opt_out=is_opt_out(msg.new_text),
        )

    if (
        not found
        and msg.from_
        and sender not in ctx.own
        and not autodetect.is_noreply_address(sender)
        and any(_is_our_message_id(m, ctx) for m in msg.thread_ids)
    ):
        # Answers a message inboxwatch wrote, but no live lead matches (closed and
        # archived, or another instance's state): still a person answering us.
        return Classification(
            Kind.REPLY,
            ("answers a message inboxwatch sent",),
            lead=msg.from_,
            new_text=text,
            opt_out=is_opt_out(msg.new_text),
        )

    robot_reasons: tuple[str, ...] = ()
    if found and found.kind == "list":
        robot_reasons = found.reasons
    elif sender and autodetect.is_noreply_address(sender):
        robot_reasons = (f"no-reply sender {sender}",)
    elif sender in ctx.own:
        # Form plugins often send from the site's own address (Gravity Forms' admin_email).
        robot_reasons = (f"sent from our own address {sender}",)
    elif msg.from_ and msg.from_.domain in ctx.own_domains:
        robot_reasons = (f"sent from our own domain {msg.from_.domain}",)

    body = msg.body_text
    notes: list[str] = []
    held: Classification | None = None  # a notification from a sender its rule does not list
    for rule in book.rules:
        if robot_reasons and not rule.accept_robots:
            # A list, robot or in-house message only counts when a rule says it carries a
            # lead (asked before the rule's patterns, which it skips: issue 12).
            continue
        if not rule.matches(msg, body, budget):
            continue
        if not _sender_allowed(rule, sender, ctx):
            # Anyone can write "Email: someone@else" under a form-like subject.
            who = sender or "no sender"
            notes.append(f"rule {rule.name!r} skipped: {who} is not one of its senders")
            held = held or _unlisted(rule, msg, body, budget, (*robot_reasons, *notes), text)
            continue
        base = (*robot_reasons, *notes, f"matched rule {rule.name!r}")
        if rule.kind == "ignore":
            return Classification(Kind.IGNORE, base, rule=rule.name, new_text=text)
        if held is not None and rule.lead_from == "sender":
            return held  # never the notification's sender: nobody is answered
        if rule.lead_from != "sender" and (failed := _auth_failure(msg, ctx)):
            return Classification(Kind.IGNORE, (*base, failed), rule=rule.name, new_text=text)
        lead = find_lead(rule, msg, body, budget)
        if lead.address is None:
            # Not the notification the rule expected (e.g. a person's subject happened to
            # match): let the later rules judge it.
            notes.append(f"rule {rule.name!r} skipped: {lead.reason}")
            continue
        reasons = (*base, lead.reason)
        problem = _unanswerable(lead.address, ctx)
        if problem:
            return Classification(Kind.IGNORE, (*reasons, problem), rule=rule.name, new_text=text)
        return _enquiry(rule, lead, reasons, book, text)
    if held is not None:
        return held
    if found and found.kind == "list":
        return Classification(Kind.LIST, (*found.reasons, *notes), new_text=text)
    if robot_reasons and robot_reasons[0].startswith("sent from our own"):
        return Classification(Kind.OWN, (*robot_reasons, *notes), new_text=text)
    return Classification(Kind.IGNORE, (*robot_reasons, *notes, "no rule matched"), new_text=text)


def _spam_checked(msg: Message, result: Classification, ctx: Context) -> Classification:
    """An enquiry our receiving server judged spam is recorded, not acknowledged.

    Only a new sender's enquiry is affected: a known lead's mail stays theirs. A sender
    can write such headers too (our server may not strip them), but they can only keep
    an acknowledgement from going out, which is the safe direction.
    """
    verdict = spamverdict.server_verdict(msg)
    lead = result.lead.addr if result.lead else ""
    if not verdict or lead in ctx.known.by_address:
        return result
    why = f"the receiving server judged it spam ({verdict}): recorded, not acknowledged"
    return dataclasses.replace(result, kind=Kind.IGNORE, reasons=(*result.reasons, why))


def _robot_notification(
    msg: Message,
    book: RuleBook,
    ctx: Context,
    reasons: tuple[str, ...],
    text: Later[str],
    budget: Budget,
    *,
    hold: bool = True,
) -> Classification | None:
    """Web forms and marketplaces often mark their notifications Auto-Submitted.

    Such a message is an enquiry only when a rule accepts robots *and* finds the lead
    somewhere other than the sender (body or Reply-To): we then write to that person,
    never back to the robot, so RFC 3834's loop protection still holds. Rules keep their
    order: an ``ignore`` rule that accepts robots and matches first wins.

    ``hold``: a notification from a sender its rule does not list is held (``_unlisted``)
    rather than left to its kind; not for the team's mail, which stays the team's (a
    person in a lead's thread takes it over).
    """
    body = msg.body_text
    sender = msg.from_.addr if msg.from_ else ""
    held: Classification | None = None
    for rule in book.rules:
        if not rule.accept_robots or not rule.matches(msg, body, budget):
            continue
        if not _sender_allowed(rule, sender, ctx):
            why = (*reasons, f"rule {rule.name!r} skipped: {sender} is not one of its senders")
            held = held or (_unlisted(rule, msg, body, budget, why, text) if hold else None)
            continue
        matched = (*reasons, f"matched rule {rule.name!r}")
        if rule.kind == "ignore":
            return Classification(Kind.IGNORE, matched, rule=rule.name, new_text=text)
        if rule.lead_from == "sender":
            continue
        if failed := _auth_failure(msg, ctx):
            return Classification(Kind.IGNORE, (*matched, failed), rule=rule.name, new_text=text)
        lead = find_lead(rule, msg, body, budget)
        if lead.address is None or lead.address.addr == sender or _unanswerable(lead.address, ctx):
            continue
        why = (*reasons, f"matched rule {rule.name!r} (accepts robots)", lead.reason)
        return _enquiry(rule, lead, why, book, text)
    return held


def _unlisted(
    rule: Rule,
    msg: Message,
    body: str,
    budget: Budget,
    reasons: tuple[str, ...],
    text: Later[str],
) -> Classification | None:
    """A notification that names a person, from a sender the rule does not list.

    It must not fall through to a rule that answers the sender (``direct-email``): that
    would acknowledge a website's robot (a site on another domain than the mailbox) and
    send it the whole sequence. Nor is the person it names answered: the sender may be
    forged, which is what ``senders`` guards against. Nobody is written to; the owner is
    told once per sender (:func:`inboxwatch.core.route.on_prepared`), so a form of their
    own can be added to ``senders``. The later rules still run: an ``ignore`` rule that
    matches wins (a platform's mailer is no form to list), and so does a rule that lists
    the sender; the hold replaces an answer to the sender, or no rule matching.

    ``None`` when it is no such notification: the rule finds nobody, or the sender
    itself, or someone in the sender's own domain (a person's signature naming a
    colleague): the later rules judge it, as before.
    """
    sender = msg.from_.addr if msg.from_ else ""
    if rule.kind != "enquiry" or rule.lead_from == "sender" or not sender or msg.from_ is None:
        return None
    if REPLY_PREFIX.match(msg.subject):
        return None  # a reply or a forward: a person wrote it, answered as before
    lead = find_lead(rule, msg, body, budget)
    named = lead.address
    if named is None or named.addr == sender or named.domain == msg.from_.domain:
        return None
    if not _machine_made(msg) and _same_person(msg.from_, named):
        return None  # a person's mail naming their other address (a signature)
    entry = f'"{sender}"'
    if msg.from_.domain not in PUBLIC_MAIL_DOMAINS:  # all of gmail.com is nobody's form
        entry += f' or "@{msg.from_.domain}"'
    why = (
        f"it looks like a {rule.name!r} notification naming {named.addr}: nobody is "
        f"answered (the sender may be forged); if it is yours, add {entry} to the "
        f"senders of rule {rule.name!r} in {rule.file}"
    )
    return Classification(
        Kind.IGNORE, (*reasons, why), unlisted=(rule.name, sender, named.addr), new_text=text
    )


#: Script mailers (a website's PHP or a framework), not a person's mail program.
_SCRIPT_MAILER = re.compile(
    r"phpmailer|wordpress|wp[ _-]?mail|drupal|joomla|swiftmailer|symfony|laminas|zend"
    r"|nodemailer|phpmail|mailgun|sendgrid|postmark|amazon ses",
    re.I,
)
#: Local parts a website's or a form service's robot writes from (split at . _ - +).
_SITE_ROBOT = frozenset(
    {"wordpress", "wp", "www", "web", "website", "webmaster", "email", "form", "forms",
     "webform", "webforms", "formresponses", "submission", "submissions", "notification",
     "notifications", "notify", "mailer", "system", "apache", "daemon"}
)  # fmt: skip


#: Words of an address or a name that say nothing about whose it is.
_GENERIC = frozenset(
    {"info", "mail", "email", "contact", "office", "admin", "hello", "team", "support",
     "service", "sales", "web", "www", "the", "and", "com", "net", "org"}
)  # fmt: skip


def _words(text: str) -> set[str]:
    return {w for w in re.split(r"[\W_]+", text.lower()) if len(w) >= 3 and w not in _GENERIC}


def _same_person(sender: Address, named: Address) -> bool:
    """Does the address a message names share a name with its sender: "Maria Lopez"
    <maria.lopez@gmail.com> naming maria@lopez-design.de in her signature, or
    k.weber@gmx.de naming info@weber-immobilien.de? The sender by name and local part
    (a mail provider's domain says nothing), the named one by its domain too."""
    local, _, domain = named.addr.rpartition("@")
    mine = _words(f"{sender.name} {sender.addr.rpartition('@')[0]}")
    theirs = _words(f"{named.name} {local} {domain.rpartition('.')[0]}")
    return bool(mine & theirs)


def _machine_made(msg: Message) -> bool:
    """Does the message come from a program rather than a person (a site's mailer, a
    robot's address, Auto-Submitted)? A person's mail that reads like a form ("New
    enquiry: kitchen") and names their own other address is answered as before; a
    program's is held whatever the names."""
    auto = msg.header("Auto-Submitted").strip().lower()
    if auto and not auto.startswith("no"):
        return True
    mailer = f"{msg.header('X-Mailer')} {msg.header('User-Agent')}"
    if _SCRIPT_MAILER.search(mailer):
        return True
    sender = msg.from_.addr if msg.from_ else ""
    return is_noreply_address(sender) or not _SITE_ROBOT.isdisjoint(local_tokens(sender))


def _sender_allowed(rule: Rule, sender: str, ctx: Context) -> bool:
    return rule.allows(sender, ctx.own | ctx.team, ctx.own_domains)


def _auth_failure(msg: Message, ctx: Context) -> str:
    """Why the From domain is not to be believed, by our own server's word ("" if it is)."""
    if msg.from_ is None or not ctx.authserv_ids:
        return ""
    headers = authres.trusted(msg.header_all("authentication-results"), ctx.authserv_ids)
    failed = authres.failure(headers, msg.from_.domain)
    return f"not trusted: the sender's domain failed authentication: {failed}" if failed else ""


def _enquiry(
    rule: Rule,
    lead: LeadFound,
    reasons: tuple[str, ...],
    book: RuleBook,
    text: Later[str],
) -> Classification:
    tpl = book.ack_template(rule)
    return Classification(
        Kind.ENQUIRY,
        reasons,
        rule=rule.name,
        source=rule.source,
        lead=lead.address,
        fields=lead.fields,
        sequence=rule.sequence,
        template=tpl.name if tpl else "",
        new_text=text,
    )


_LIST_HEADERS = (
    "list-id",
    "list-post",
    "list-unsubscribe",
    "list-unsubscribe-post",
    "list-help",
    "list-archive",
    "list-subscribe",
    "list-owner",
    "mailing-list",
    "precedence",
    "x-google-group-id",
)


def _unwrap_own_group(msg: Message, ctx: Context) -> tuple[Message, bool]:
    """A business inbox that is itself a group (Google Workspace collaborative inbox).

    Every message then carries list headers and, for DMARC, a From rewritten to
    "'Name' via Group <our address>". The list is us: judge the message as the person's
    own mail (X-Original-From, else Reply-To), without the list headers.
    """
    posts = " ".join((msg.header("list-post"), msg.header("mailing-list"))).lower()
    if not posts or not any(f"mailto:{a}" in posts or f"list {a}" in posts for a in ctx.own):
        return msg, False
    original = parse_addresses(msg.header_all("x-original-from")) or msg.reply_to
    headers = {k: v for k, v in msg.headers.items() if k not in _LIST_HEADERS}
    from_ = original[0] if original and msg.from_ and msg.from_.addr in ctx.own else msg.from_
    return dataclasses.replace(msg, from_=from_, headers=headers), True


def _is_our_message_id(mid: str, ctx: Context) -> bool:
    return made_by_us(mid, frozenset(a.rpartition("@")[2] for a in ctx.own))


def _unanswerable(addr: Address | None, ctx: Context) -> str:
    """Why we must not write to ``addr`` (empty when we may)."""
    if addr is None:
        return "no address to answer"
    if addr.addr in ctx.own:
        return "the lead address is our own"
    if addr.addr in ctx.team:
        return "the lead address belongs to the team"
    if addr.domain in ctx.own_domains:
        return f"the lead address is in our own domain {addr.domain}"
    if not is_valid_address(addr.addr):
        return f"not a valid email address: {addr.addr!r}"
    if autodetect.is_noreply_address(addr.addr):
        return f"the lead address {addr.addr} is a no-reply robot"
    if is_suppressed(addr.addr, ctx.known.suppressed):  # by name or by hash
        return f"{addr.addr} is on the suppression list"
    return ""
