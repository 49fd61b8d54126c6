"""Whom a bounce is about: the failed recipients, wherever the report names them.

In order of trust: the DSN's per-recipient fields (RFC 3464), the SES/SNS JSON of a
provider notification, the To of the returned original (attached or quoted inline), and
last the addresses named in the report's own text that are neither us nor a robot.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

from inboxwatch.core.message import Message, parse_addresses
from inboxwatch.core.robots import is_noreply_address

ADDR = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)+")


DSN_FIELD = re.compile(r"^(original-recipient|final-recipient|action|status)\s*:\s*(.*)$", re.I)


INLINE_TO = re.compile(
    r"^\s*(?:to|an|a|para|à|destinataire|收件人|宛先|받는 사람|кому)\s*[:：]\s*(.+)$", re.I | re.M
)


def provider_notification(text: str) -> tuple[bool, list[str]] | None:
    """Amazon SES bounce notifications, bare or in an SNS envelope: (hard, recipients)."""
    start = text.find("{")
    if start < 0 or '"bounce' not in text.lower():
        return None
    try:
        obj = json.loads(text[start : text.rfind("}") + 1])
    except ValueError:
        return None
    for _ in range(2):  # SNS wraps the SES JSON in a string field "Message"
        if isinstance(obj, dict) and isinstance(obj.get("Message"), str):
            try:
                obj = json.loads(obj["Message"])
            except ValueError:
                return None
    if not isinstance(obj, dict):
        return None
    kind = str(obj.get("notificationType") or obj.get("eventType") or "").lower()
    bounce = obj.get("bounce")
    if kind != "bounce" or not isinstance(bounce, dict):
        return None
    recipients = [
        dsn_addr(str(r.get("emailAddress", "")))
        for r in bounce.get("bouncedRecipients") or ()
        if isinstance(r, dict)
    ]
    return str(bounce.get("bounceType", "")).lower() != "transient", recipients


def original_recipients(heads: tuple[Mapping[str, tuple[str, ...]], ...]) -> list[str]:
    """To addresses of the returned original message(s): whom the failed message was for."""
    out: list[str] = []
    for h in heads:
        out += [a.addr for a in parse_addresses(list(h.get("to", ())))]
    return [a for a in out if not is_noreply_address(a)][:20]


def inline_recipients(msg: Message, text: str) -> list[str]:
    """The To line of an original returned inline ("To: lead@example.org")."""
    ours = {a.addr for a in (*msg.to, *msg.cc)}
    out: list[str] = []
    for m in INLINE_TO.finditer(text):
        out += [a.lower() for a in ADDR.findall(m.group(1)) if a.lower() not in ours]
    return [a for a in dict.fromkeys(out) if not is_noreply_address(a)][:20]


def dsn_records(report: str) -> list[dict[str, str]]:
    """Per-recipient field groups of a message/delivery-status part (RFC 3464 §2.3)."""
    records: list[dict[str, str]] = []
    cur: dict[str, str] = {}
    last = ""
    for line in report.splitlines():
        if line[:1] in (" ", "\t") and line.strip():
            if last:  # folded field, e.g. "Final-Recipient: rfc822;\n  user@example.org"
                cur[last] += " " + line.strip()
            continue
        m = DSN_FIELD.match(line.strip())
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


def dsn_addr(value: str) -> str:
    """``rfc822; <User@Example.org>`` -> ``user@example.org``."""
    found = ADDR.search(value.partition(";")[2] or value)
    return found.group(0).lower() if found else ""


def text_recipients(msg: Message, head: str) -> tuple[str, ...]:
    """Fallback: addresses named in the NDR text that are neither us nor a robot."""
    ours = {a.addr for a in (*msg.to, *msg.cc, *msg.reply_to)}
    if msg.from_:
        ours.add(msg.from_.addr)
    found: dict[str, None] = {}
    for m in ADDR.finditer(head):
        addr = m.group(0).lower().rstrip(".")
        if addr not in ours and not is_noreply_address(addr):
            found.setdefault(addr, None)
    return tuple(found)[:20]
