"""Recognise bounces: delivery status notifications and non-delivery reports.

A DSN (RFC 3464/6522) or an NDR as Postfix, Exim, qmail, Sendmail, Exchange/M365, Gmail
and gateways write it, with whether the failure is permanent (hard) or a delay/warning
(soft) and which recipients failed. One concept with many generator dialects, so it has
its own module; :func:`inboxwatch.core.autodetect.detect` asks it first.
"""

from __future__ import annotations

import re

from inboxwatch.core.detection import (
    REPLY_PREFIX,
    SCAN,
    Detection,
    auto_submitted,
    fold,
    null_sender,
    report_type,
    rx,
    unquoted,
)
from inboxwatch.core.message import Message
from inboxwatch.core.robots import is_noreply_address

_BARE_DAEMON = re.compile(r"\bmailer[-_]?daemon\b", re.I)
_DAEMON_LOCALS = frozenset({"mailer-daemon", "mailerdaemon", "mailer_daemon", "mail-daemon"})
# Typical NDR subjects of Postfix, Exim, Sendmail, qmail, Exchange/M365 (en/de/fr/it/es/
# nl/pt), Gmail, Yahoo. Matched at the start of the (folded) subject only.
_NDR_SUBJECT = rx(
    r"^undeliver(?:ed|able)\b|^returned mail\b|^failure notice\b|^delayed mail\b",
    r"^delivery (?:status notification|failure|failed|has failed|delayed|notification)",
    r"^(?:mail|message) delivery (?:failed|failure|delayed|error)|^mail system error\b",
    # Google Workspace ("Message not delivered"), gateway policy rejections (Mimecast,
    # Proofpoint, Barracuda: "Message blocked", "Message rejected").
    r"^(?:message|mail|e-?mail) (?:not delivered|blocked|rejected|refused)\b",
    r"^warning: (?:message .* delayed|could not send message|delayed mail)",
    r"^(?:nicht zustellbar|unzustellbar|zustellung verzogert|ubermittlung verzogert)",
    r"^(?:non remis|non distribuable|remise differee|echec de (?:la )?remise)",
    r"^(?:non recapitabile|impossibile recapitare|recapito ritardato)",
    r"^(?:no se puede entregar|no entregado|entrega retrasada|onbestelbaar|vertraagd)",
    r"^(?:nao entregue|nao pode ser entregue|entrega atrasada|nao foi possivel entregar)",
)
_NDR_SUBJECT_SOFT = rx(r"delay|verzogert|differee|ritardato|retrasada|vertraagd|atrasada|^warning:")
# Sentences that NDR generators (Postfix, Exim, qmail, Sendmail, Exchange in several
# languages, Gmail) write and people do not.
_NDR_BODY = rx(
    r"this is the mail system at host|this is the qmail-send program",
    r"i'm sorry to have to inform you that your message could not",
    r"this message was created automatically by mail delivery software",
    r"a message that you sent (?:could not be|has not yet been) delivered",
    r"the original message was received at [^\n]{0,120}?\bfrom\b",
    r"-{3,} ?(?:the following addresses had (?:permanent fatal|transient non-fatal) errors"
    r"|transcript of session follows)",
    r"delivery (?:has failed|has been delayed) to these recipients or groups",
    r"your message (?:couldn't|could not|wasn't|was not) (?:be )?delivered",
    r"delivery to the following recipients? (?:failed|has been delayed)",
    r"this is an automatically generated delivery status notification",
    r"\*\* (?:address not found|message not delivered|delivery incomplete) \*\*",
    r"could not be delivered to one or more (?:of its )?recipients",
    r"die zustellung an folgende empfanger oder gruppen ist fehlgeschlagen",
    r"la remise aux destinataires ou groupes suivants a echoue",
    r"error en la entrega a estos destinatarios o grupos",
    r"il recapito ai seguenti destinatari o gruppi non e riuscito",
    r"bezorging aan deze ontvangers of groepen is mislukt",
    r"falha na entrega para estes destinatarios ou grupos",
    r"there was a problem delivering your message to",
    r"your message (?:to \S+ )?(?:was|has been) (?:blocked|rejected) by the recipient'?s?\b",
)
# Phrases of a delay/warning notice, which promise further attempts.
_SOFT_BODY = rx(
    r"this is a warning only|has not yet been delivered|delivery incomplete|still being retried",
    r"will (?:continue to )?(?:retry|try again|keep trying)|delivery attempts will continue",
    r"delivery (?:has been|is) delayed",
)
_HARD_BODY = rx(
    r"\b5\.\d{1,3}\.\d{1,3}\b|\bpermanent|\b55[0-4][ -]|user unknown|no such user",
    r"does(?:n't| not) exist|address not found",
)
_STATUS = re.compile(r"^\s*status:\s*([245])\.\d{1,3}\.\d{1,3}", re.I | re.M)
_DSN_FIELD = re.compile(r"^(original-recipient|final-recipient|action|status)\s*:\s*(.*)$", re.I)
_ADDR = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)+")
# Where an NDR's own text ends and the returned original message begins.
_ORIGINAL_START = rx(
    r"^-+ ?(?:this is a copy of the message|original message|below this line is a copy"
    r"|the header of the original message)",
    r"^original message headers|^(?:received|return-path|message-id|dkim-signature):",
)


def _dsn_records(report: str) -> list[dict[str, str]]:
    """Per-recipient field groups of a message/delivery-status part (RFC 3464 §2.3)."""
    records: list[dict[str, str]] = []
    cur: dict[str, str] = {}
    last = ""
    for line in report.splitlines():
        if line[:1] in (" ", "\t") and line.strip():
            if last:  # folded field, e.g. "Final-Recipient: rfc822;\n  user@example.org"
                cur[last] += " " + line.strip()
            continue
        m = _DSN_FIELD.match(line.strip())
        if not line.strip() or (m and m.group(1).lower() in cur):
            if cur:
                records.append(cur)
            cur = {}
        last = m.group(1).lower() if m else ""
        if m:
            cur[last] = m.group(2).strip()
    if cur:
        records.append(cur)
    return [r for r in records if "action" in r or "final-recipient" in r]


def _dsn_addr(value: str) -> str:
    """``rfc822; <User@Example.org>`` -> ``user@example.org``."""
    found = _ADDR.search(value.partition(";")[2] or value)
    return found.group(0).lower() if found else ""


def _ndr_head(text: str) -> str:
    """The generator's own text of an NDR, before the returned original message."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if _ORIGINAL_START.search(line.strip()):
            return "\n".join(lines[:i])
    return text


def _text_recipients(msg: Message, head: str) -> tuple[str, ...]:
    """Fallback: addresses named in the NDR text that are neither us nor a robot."""
    ours = {a.addr for a in (*msg.to, *msg.cc, *msg.reply_to)}
    if msg.from_:
        ours.add(msg.from_.addr)
    found: dict[str, None] = {}
    for m in _ADDR.finditer(head):
        addr = m.group(0).lower().rstrip(".")
        if addr not in ours and not is_noreply_address(addr):
            found.setdefault(addr, None)
    return tuple(found)[:20]


def detect_bounce(msg: Message) -> Detection | None:
    """A delivery status notification or non-delivery report, else None.

    Decisive on their own: a top-level ``multipart/report; report-type=delivery-status``
    (RFC 3464/6522), ``X-Failed-Recipients`` (Exim, Gmail), Exchange's
    ``X-MS-Exchange-Message-Is-Ndr``, or a From of MAILER-DAEMON. Otherwise the message
    must *say* it is an NDR (typical subject or generator sentence) *and* come from a mail
    system (null Return-Path, postmaster, ``Auto-Submitted``) or say so in both subject and
    body. So "Re: Undeliverable: ..." from a person, or a customer writing "my email
    bounced", is not a bounce. A DSN whose actions are only delivered/relayed/expanded is
    returned as a soft bounce without recipients: nothing failed, but it is still a robot.
    """
    reasons: list[str] = []
    from_local = msg.from_.local if msg.from_ else ""
    if not msg.from_ and _BARE_DAEMON.search(msg.header("from")):
        from_local = "mailer-daemon"  # a local bounce: "From: MAILER-DAEMON (Mail Delivery ...)"
    rtype = report_type(msg)
    ctype_report = msg.content_type == "multipart/report" and rtype.endswith("delivery-status")
    if ctype_report:
        reasons.append(f"multipart/report; report-type={rtype}")
    failed_hdr = [
        a.lower() for v in msg.header_all("x-failed-recipients") for a in _ADDR.findall(v)
    ]
    if msg.has_header("x-failed-recipients"):
        reasons.append("X-Failed-Recipients")
    if msg.has_header("x-ms-exchange-message-is-ndr"):
        reasons.append("X-MS-Exchange-Message-Is-Ndr")
    if from_local in _DAEMON_LOCALS:
        reasons.append(f"From {from_local}")
    strong = bool(reasons)

    subject = fold(msg.subject)
    prefixed = bool(REPLY_PREFIX.match(subject))
    body = fold(unquoted(msg.body_text[:SCAN]))  # an NDR explains itself at the top
    subj_hit = not prefixed and bool(_NDR_SUBJECT.search(subject.strip()))
    body_hit = bool(_NDR_BODY.search(body))
    origin = []
    if null_sender(msg):
        origin.append("Return-Path: <>")
    if from_local == "postmaster":
        origin.append("From postmaster")
    if auto_submitted(msg):
        origin.append(f"Auto-Submitted: {auto_submitted(msg)}")
    if not strong and not ((subj_hit or body_hit) and (origin or (subj_hit and body_hit))):
        return None
    if subj_hit:
        reasons.append(f"NDR subject: {msg.subject[:60]}")
    if body_hit:
        reasons.append("NDR text in body")
    reasons.extend(origin)

    # Severity and recipients: the machine-readable DSN first, then headers, then text.
    failed: list[str] = []
    delayed: list[str] = []
    ok: list[str] = []
    for rec in _dsn_records(msg.report_text):
        addr = _dsn_addr(rec.get("final-recipient", "")) or _dsn_addr(
            rec.get("original-recipient", "")
        )
        action = rec.get("action", "").lower().split()[0] if rec.get("action") else ""
        status = rec.get("status", "")[:1]
        if action == "failed" or (not action and status == "5"):
            failed.append(addr)
        elif action == "delayed" or (not action and status == "4"):
            delayed.append(addr)
        elif action in ("delivered", "relayed", "expanded") or status == "2":
            ok.append(addr)
    if failed:
        reasons.append("DSN action: failed")
        return _bounce(reasons, True, failed + failed_hdr)
    if delayed:
        reasons.append("DSN action: delayed")
        return _bounce(reasons, False, delayed)
    if ok:
        reasons.append("DSN reports delivery, not a failure")
        return _bounce(reasons, False, [])

    head = _ndr_head(fold(msg.body_text[:SCAN]))
    soft = bool(_NDR_SUBJECT_SOFT.search(subject) and subj_hit) or bool(_SOFT_BODY.search(head))
    statuses = set(_STATUS.findall(msg.report_text))
    if "5" in statuses or failed_hdr:
        soft = False
    elif "4" in statuses:
        soft = True
    elif soft and _HARD_BODY.search(head) and not _SOFT_BODY.search(head):
        soft = False
    reasons.append("delivery delayed (transient)" if soft else "delivery failed")
    recipients = failed_hdr or list(_text_recipients(msg, head))
    return _bounce(reasons, not soft, recipients)


def _bounce(reasons: list[str], hard: bool, recipients: list[str]) -> Detection:
    uniq = tuple(dict.fromkeys(r for r in recipients if r))
    return Detection("bounce", tuple(dict.fromkeys(reasons)), hard, uniq)
