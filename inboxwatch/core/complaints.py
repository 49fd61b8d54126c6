"""Recognise complaints: someone reported our mail as spam or abuse to their provider.

Two shapes reach a business inbox:

- an RFC 5965 Abuse Reporting Format report (``multipart/report;
  report-type=feedback-report``), sent by a mailbox provider's feedback loop: decisive
  by its content type, as RFC 6522 reports are made by machines;
- the older providers' complaint mails, ``multipart/mixed`` with the complained-about
  message attached. A person may forward our mail as an attachment too, so all three
  must hold: the sender is a provider's abuse/complaint/feedback-loop mailbox, the
  attached message is one we sent (our address or our Message-ID), and the text above
  it is not a person's own words (no "I"/"my" in its first paragraph, no reply prefix).

The complained-about recipient is the attached original's ``To`` (RFC 5965 §2 asks the
reporter to attach the original, or its headers); providers that redact it leave the
original's Message-ID, by which the lead is found; an ARF report's own
``Original-Rcpt-To`` fields name it too. A report whose ``Feedback-Type`` is
``not-spam`` (RFC 6650: the recipient *wants* the mail) is not a complaint, nor is a
DMARC/SPF/DKIM failure report (``auth-failure``, RFC 6591): a receiving server's
machine report that our own domain's authentication failed, which says nothing of what
the recipient wants (it is machine mail, never answered, and the lead carries on).
A forged complaint can only make us stop writing to an address: the safe direction.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from inboxwatch.core.detection import REPLY_PREFIX, report_type
from inboxwatch.core.message import Message, is_valid_address, parse_addresses, parse_msgids
from inboxwatch.core.mime import made_by_us

_SEP = re.compile(r"[-_.=+]+")
# Local-part tokens of feedback-loop and abuse-desk mailboxes (AOL's "scomp", "fbl",
# "feedbackloop", "abuse", "complaints", "spamreport", Microsoft's JMRP "staff"-less
# "jmrp", ARF senders' "arf").
_COMPLAINT_TOKENS = frozenset(
    {"abuse", "complaint", "complaints", "fbl", "feedbackloop", "scomp", "spamreport"}
    | {"arf", "jmrp", "abusereport", "abusedesk"}
)
# Feedback types that are reports, not a recipient's complaint (RFC 6650, RFC 6591).
_NOT_COMPLAINTS = frozenset({"not-spam", "auth-failure"})
_PERSON = re.compile(r"\b(?:i|i'm|i've|i'd|my|me|mine)\b", re.I)


@dataclass(frozen=True)
class Complaint:
    reasons: tuple[str, ...]
    #: Lower-cased addresses the complaint concerns (the original's recipients).
    recipients: tuple[str, ...] = ()
    #: Message-IDs of the complained-about original(s): the lead's thread, if ours.
    message_ids: tuple[str, ...] = ()


def is_complaint_sender(addr: str) -> bool:
    """A provider's abuse desk or feedback loop, by the address's local part."""
    local = addr.rpartition("@")[0].lower()
    tokens = [t for t in _SEP.split(local) if t]
    return bool(_COMPLAINT_TOKENS.intersection(tokens)) or "".join(tokens) in _COMPLAINT_TOKENS


def _ours(heads: Mapping[str, tuple[str, ...]], own: frozenset[str]) -> bool:
    domains = frozenset(a.rpartition("@")[2] for a in own)
    senders = parse_addresses(heads.get("from", ()))
    mids = parse_msgids(" ".join(heads.get("message-id", ())))
    return any(a.addr in own for a in senders) or any(made_by_us(m, domains) for m in mids)


_FIELD = re.compile(r"^([A-Za-z-]{1,40})\s*:\s*(.{0,500})$")


def _feedback_fields(report: str) -> dict[str, list[str]]:
    """The fields of a message/feedback-report part (RFC 5965 §3.1), lower-cased names."""
    out: dict[str, list[str]] = {}
    for line in report.splitlines()[:200]:
        if m := _FIELD.match(line.strip()):
            out.setdefault(m.group(1).lower(), []).append(m.group(2).strip())
    return out


def _first_paragraph(text: str) -> str:
    return text.strip().split("\n\n", 1)[0][:800]


def detect_complaint(msg: Message, own: frozenset[str]) -> Complaint | None:
    """A spam/abuse complaint about mail we sent, else None."""
    reasons: list[str] = []
    rtype = report_type(msg)
    reported: list[str] = []
    if msg.content_type == "multipart/report" and rtype == "feedback-report":
        fields = _feedback_fields(msg.report_text)
        kind = (fields.get("feedback-type") or ["abuse"])[0].lower()
        if kind in _NOT_COMPLAINTS:
            return None
        reasons.append(f"abuse report (RFC 5965 ARF, feedback type {kind})")
        originals = msg.attached
        reported = [a.addr for a in parse_addresses(fields.get("original-rcpt-to", []))]
    else:
        if msg.content_type == "multipart/report" or not msg.attached:
            return None
        sender = msg.from_.addr if msg.from_ else ""
        if not is_complaint_sender(sender) or REPLY_PREFIX.match(msg.subject):
            return None
        originals = tuple(h for h in msg.attached if _ours(h, own))
        if not originals or _PERSON.search(_first_paragraph(msg.text)):
            return None
        reasons += [
            f"complaint from a provider's abuse/feedback address {sender}",
            "the attached message is one we sent",
        ]
    recipients: list[str] = list(reported)
    mids: list[str] = []
    for heads in originals:
        recipients += [a.addr for a in parse_addresses(heads.get("to", ()))]
        mids += parse_msgids(" ".join(heads.get("message-id", ())))
    named = tuple(dict.fromkeys(a for a in recipients if is_valid_address(a) and a not in own))
    if named:
        reasons.append(f"complained-about recipient: {', '.join(named)}")
    return Complaint(tuple(reasons), named, tuple(dict.fromkeys(mids)))
