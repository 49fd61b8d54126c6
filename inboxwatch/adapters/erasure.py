"""Erasing one person from the state (a privacy request), and purging old archived leads.

Why a module of its own: an address can be in many places besides the lead's own row
(its wake time, acknowledgement, suppression, the outbox's recipients and message text,
a notice, a rejected message's error, a marker, another lead's words, the archive, and
the journal that recorded all of these), and "erased" has to mean every one of them. The
rules for each place live here once, for the file store and its in-memory twin:

- the person's own rows (lead, wake, acknowledgement, suppression, archived records) go;
- a message for them, or naming them, that was never sent goes; one already sent stays
  as an anonymous row (no recipient, lead or text), because the sending caps count it;
- rows about something else that merely mention them (a notice, a reject) go; the
  words of *another* lead, or a marker, keep their place with the address replaced by
  ``[erased]``;
- with ``keep_suppression`` only ``sha256:<hex>`` of the address stays on the list
  (:mod:`inboxwatch.core.suppression`), so the daemon still never writes to them.

Mentions are found in every string of a row, and in an outbox message's decoded headers
and parts too (an address in a base64 or quoted-printable body is still there). Matching
respects address boundaries: erasing ``ann@example.com`` leaves ``joann@example.com``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import email
import email.header
import email.policy
import re
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from inboxwatch.core.lead import Lead, iso
from inboxwatch.core.queue import Status
from inboxwatch.core.suppression import hashed

if TYPE_CHECKING:
    from inboxwatch.adapters.memory_store import _Tables
    from inboxwatch.adapters.model import Model

REDACTED = "[erased]"
WHY = "forgotten on request (inboxwatch forget)"


@dataclass(frozen=True)
class Erased:
    """What :meth:`StateStore.erase` did, by kind of record (for the command's report)."""

    address: str
    #: Records gone: "lead", "wake", "ack", "suppression", "outbox" (unsent mail),
    #: "notice", "reject", "archived".
    removed: Mapping[str, int] = field(default_factory=dict)
    #: Records kept with the address taken out: "sent" (outbox rows the caps count),
    #: "other lead", "other archived", "marker", "suppression reason".
    redacted: Mapping[str, int] = field(default_factory=dict)
    #: The hashed suppression entry left behind ("" when none was asked for).
    suppression: str = ""

    @property
    def found(self) -> bool:
        """Anything about the address was stored (a hashed entry kept is not a find)."""
        return any(self.removed.values()) or any(self.redacted.values())


# -- finding and replacing mentions --------------------------------------------------------
def normalize(address: str) -> str:
    return address.strip().lower()


def _pattern(address: str) -> re.Pattern[str]:
    """The address as a whole word: not inside a longer address or domain."""
    return re.compile(
        r"(?<![\w.+-])" + re.escape(normalize(address)) + r"(?![\w-]|\.\w)", re.IGNORECASE
    )


def strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, bytes):
        yield value.decode("utf-8", "replace")
    elif isinstance(value, Mapping):
        for k, v in value.items():
            yield str(k)
            yield from strings(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from strings(v)


def mentions(value: Any, address: str) -> bool:
    """Does any string in ``value`` (a row, nested) name ``address``?"""
    pattern = _pattern(address)
    return any(pattern.search(s) for s in strings(value))


def redact(value: Any, address: str) -> Any:
    """``value`` with every mention of ``address`` replaced (same shape)."""
    pattern = _pattern(address)

    def walk(v: Any) -> Any:
        if isinstance(v, str):
            return pattern.sub(REDACTED, v)
        if isinstance(v, Mapping):
            return {walk(k): walk(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return type(v)(walk(x) for x in v)
        return v

    return walk(value)


def message_mentions(raw: bytes | str, address: str) -> bool:
    """Does a whole message name ``address``, in its bytes or once its headers (RFC 2047)
    and parts (base64, quoted-printable) are decoded?"""
    data = raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else raw
    if not data:
        return False
    pattern = _pattern(address)
    if pattern.search(data.decode("utf-8", "replace")):
        return True
    msg = email.message_from_bytes(data, policy=email.policy.compat32)
    for part in msg.walk():
        for value in part.values():
            with contextlib.suppress(Exception):  # a malformed header: its bytes were searched
                if pattern.search(str(email.header.make_header(email.header.decode_header(value)))):
                    return True
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes):
            charset = part.get_content_charset() or "utf-8"
            try:
                text = payload.decode(charset, "replace")
            except LookupError:
                text = payload.decode("utf-8", "replace")
            if pattern.search(text):
                return True
    return False


def names_lead(row: Mapping[str, Any], address: str) -> bool:
    return normalize(str(row.get("address", ""))) == address


# -- the file store's rows -----------------------------------------------------------------
def _outbox_named(row: Mapping[str, Any], address: str) -> bool:
    if (
        normalize(str(row.get("lead", ""))) == address
        or normalize(str(row.get("rcpt", ""))) == address
    ):
        return True
    rest = {k: v for k, v in row.items() if k != "raw"}
    return mentions(rest, address) or message_mentions(str(row.get("raw", "")), address)


def anonymous_sent(row: Mapping[str, Any]) -> dict[str, Any]:
    """A sent item kept for the caps: when it went, nothing about whom it went to."""
    return {**row, "lead": "", "rcpt": "", "step": "", "raw": "", "error": ""}


def erase_model(model: Model, address: str, now: datetime, keep_suppression: bool) -> Erased:
    """Erase ``address`` from the model's rows (inside the store's open transaction, so
    the journal records each change)."""
    removed: Counter[str] = Counter()
    redacted: Counter[str] = Counter()
    if model.lead(address) is not None:
        model.remove("leads", address)
        removed["lead"] += 1
    for lead in model.leads():
        row = lead.to_dict()
        if mentions(row, address):
            model.put_lead(Lead.from_dict(redact(row, address)))
            redacted["other lead"] += 1
    for table, label in (("wakes", "wake"), ("acks", "ack")):
        removed[label] += model.remove(table, address)
    for key in _suppression_keys(address, keep_suppression):
        removed["suppression"] += model.remove("suppressed", key)
    for row in list(model.rows("suppressed").values()):
        if mentions(row.get("why", ""), address):
            model.put("suppressed", {**row, "why": redact(row["why"], address)})
            redacted["suppression reason"] += 1
    for row in list(model.rows("outbox").values()):
        if not _outbox_named(row, address):
            continue
        if row.get("status") == "pending":
            model.remove("outbox", str(row["id"]))
            removed["outbox"] += 1
        else:
            model.put("outbox", anonymous_sent(row))
            redacted["sent"] += 1
    for table, label in (("notices", "notice"), ("rejects", "reject"), ("ours", "own id")):
        key_field = {"notices": "key", "rejects": "ref", "ours": "id"}[table]
        for row in list(model.rows(table).values()):
            if mentions(row, address):
                model.remove(table, str(row[key_field]))
                removed[label] += 1
    for row in list(model.rows("markers").values()):
        if mentions(row, address):
            model.put("markers", redact(row, address))
            redacted["marker"] += 1
    kept = ""
    if keep_suppression:
        kept = hashed(address)
        if model.get("suppressed", kept) is None:
            model.put("suppressed", {"address": kept, "why": WHY, "at": iso(now)})
    return Erased(address, _positive(removed), _positive(redacted), kept)


def _suppression_keys(address: str, keep_suppression: bool) -> tuple[str, ...]:
    """The entries that go: the plain one always, a hashed one unless it is to stay."""
    return (address,) if keep_suppression else (address, hashed(address))


def _positive(counts: Counter[str]) -> dict[str, int]:
    return {k: v for k, v in counts.items() if v}


# -- the in-memory twin -------------------------------------------------------------------
def erase_tables(t: _Tables, address: str, now: datetime, keep_suppression: bool) -> Erased:
    """The same rules on the twin's typed tables (a transaction's copy of them)."""
    address = normalize(address)
    removed: Counter[str] = Counter()
    redacted: Counter[str] = Counter()
    removed["lead"] += t.active.pop(address, None) is not None
    for key, lead in list(t.active.items()):
        row = lead.to_dict()
        if mentions(row, address):
            t.active[key] = Lead.from_dict(redact(row, address))
            redacted["other lead"] += 1
    removed["wake"] += t.wakes.pop(address, None) is not None
    removed["ack"] += t.acks.pop(address, None) is not None
    for key in _suppression_keys(address, keep_suppression):
        removed["suppression"] += t.suppressions.pop(key, None) is not None
    for key, (why, at) in list(t.suppressions.items()):
        if mentions(why, address):
            t.suppressions[key] = (redact(why, address), at)
            redacted["suppression reason"] += 1
    for item in list(t.outbox.values()):
        named = normalize(item.lead) == address or normalize(item.rcpt) == address
        if not (named or mentions((item.step, item.error), address)) and not message_mentions(
            item.raw, address
        ):
            continue
        if item.status is Status.PENDING:
            del t.outbox[item.id]
            removed["outbox"] += 1
        else:
            t.outbox[item.id] = dataclasses.replace(
                item, lead="", rcpt="", step="", raw=b"", error=""
            )
            redacted["sent"] += 1
    for ref, rej in list(t.rejected.items()):
        if mentions((rej.ref, rej.error), address):
            del t.rejected[ref]
            removed["reject"] += 1
    for key, notice in list(t.notice_board.items()):
        if mentions((notice.key, notice.text), address):
            del t.notice_board[key]
            removed["notice"] += 1
    for mid in [m for m in t.ours if mentions(m, address)]:
        del t.ours[mid]
        removed["own id"] += 1
    for name, value in list(t.markers.items()):
        if mentions(value, address):
            t.markers[name] = redact(value, address)
            redacted["marker"] += 1
    archive = []
    for lead in t.archive:
        if lead.address == address:
            removed["archived"] += 1
        elif mentions(row := lead.to_dict(), address):
            archive.append(Lead.from_dict(redact(row, address)))
            redacted["other archived"] += 1
        else:
            archive.append(lead)
    t.archive = archive
    kept = ""
    if keep_suppression:
        kept = hashed(address)
        t.suppressions.setdefault(kept, (WHY, now))
    return Erased(address, _positive(removed), _positive(redacted), kept)


def purge_lead_list(leads: list[Lead], closed_before: datetime) -> list[Lead]:
    """The twin's archive without the leads closed before ``closed_before``."""
    cut = iso(closed_before) or ""
    return [lead for lead in leads if not (closed_at(lead.to_dict()) < cut)]


def closed_at(row: Mapping[str, Any]) -> str:
    """When an archived lead closed (ISO text): its last "automation ended" event, or its
    last event, or its arrival."""
    events = [e for e in row.get("events", ()) if isinstance(e, Mapping)]
    ends = [
        str(e.get("at", ""))
        for e in events
        if str(e.get("what", "")).startswith("automation ended")
    ]
    if ends:
        return max(ends)
    if events:
        return str(events[-1].get("at", ""))
    return str(row.get("arrived", ""))
