"""What classification returns, and what it is told: the kinds of mail, the verdict, and
the lookups (what the state knows, who we are) it judges with.

Kept apart from :mod:`inboxwatch.core.classify` (the judging itself) because the whole
core speaks these types: the router, the store's lookups, ``classify --json``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Any

from inboxwatch.core.lazy import LazyField
from inboxwatch.core.message import Address

#: Public mailbox providers: a business on gmail.com does not make gmail.com "ours".
PUBLIC_MAIL_DOMAINS = frozenset(
    [
        "gmail.com",
        "googlemail.com",
        "outlook.com",
        "hotmail.com",
        "hotmail.co.uk",
        "hotmail.de",
        "hotmail.fr",
        "live.com",
        "msn.com",
        "yahoo.com",
        "yahoo.co.uk",
        "yahoo.de",
        "yahoo.fr",
        "ymail.com",
        "aol.com",
        "icloud.com",
        "me.com",
        "mac.com",
        "gmx.de",
        "gmx.net",
        "gmx.com",
        "gmx.at",
        "gmx.ch",
        "web.de",
        "t-online.de",
        "freenet.de",
        "posteo.de",
        "mailbox.org",
        "proton.me",
        "protonmail.com",
        "pm.me",
        "zoho.com",
        "yandex.com",
        "yandex.ru",
        "mail.ru",
        "orange.fr",
        "free.fr",
        "laposte.net",
        "wanadoo.fr",
        "libero.it",
        "virgilio.it",
        "tiscali.it",
        "seznam.cz",
        "wp.pl",
        "o2.pl",
        "interia.pl",
        "fastmail.com",
        "hey.com",
        "tutanota.com",
        "tuta.io",
    ]
)


class Kind(StrEnum):
    ENQUIRY = "enquiry"
    REPLY = "reply"
    AUTO_REPLY = "auto_reply"
    BOUNCE = "bounce"
    LIST = "list"
    OWN = "own"
    IGNORE = "ignore"
    #: An abuse/spam complaint about our mail (RFC 5965 ARF or a provider's forward):
    #: an opt-out of the complained-about address, never answered.
    COMPLAINT = "complaint"


@dataclass(frozen=True)
class Known:
    """What the store knows, reduced to lookups (active leads only, so it stays small)."""

    by_address: Mapping[str, str] = field(default_factory=dict)
    by_message_id: Mapping[str, str] = field(default_factory=dict)
    suppressed: frozenset[str] = frozenset()
    #: Message-IDs of our own mail that is not part of a lead's thread (alerts, digests).
    ours: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Context:
    own: frozenset[str]
    team: frozenset[str]
    known: Known = field(default_factory=Known)
    #: authserv-ids of our own receiving server: only its Authentication-Results count.
    authserv_ids: tuple[str, ...] = ()
    #: Honour the receiving server's spam verdict: a flagged enquiry is not acknowledged.
    trust_spam_verdict: bool = True

    @property
    def own_domains(self) -> frozenset[str]:
        """Our domains, except public mailbox providers (a business on gmail.com is common)."""
        return frozenset(a.rpartition("@")[2] for a in self.own) - PUBLIC_MAIL_DOMAINS


@dataclass(frozen=True)
class Classification:
    kind: Kind
    reasons: tuple[str, ...]
    rule: str = ""
    source: str = ""
    lead: Address | None = None
    #: The known lead this message concerns (its address), for reply/auto_reply/bounce/own.
    lead_key: str = ""
    fields: Mapping[str, str] = field(default_factory=dict)
    sequence: str = ""
    template: str = ""
    #: What the writer wrote this time; classification may give it as a Later.
    new_text: LazyField[str] = LazyField("")  # noqa: RUF009 (a descriptor, see core/lazy.py)
    bounce_hard: bool = False
    bounced: tuple[str, ...] = ()
    return_date: date | None = None
    opt_out: bool = False
    #: Written by a team member (not by us): in a lead's thread, a person took over.
    by_team: bool = False
    #: Complaints: the (lower-cased) addresses that complained about our mail.
    complained: tuple[str, ...] = ()
    #: A notification a rule would answer, from a sender not among the rule's ``senders``:
    #: (the rule, the sender, the address it names). Nobody is answered; the owner is told.
    unlisted: tuple[str, ...] = ()

    def as_json(self, **extra: Any) -> str:
        obj: dict[str, Any] = {
            **extra,
            "kind": self.kind.value,
            "rule": self.rule or None,
            "source": self.source or None,
            "lead": {"address": self.lead.addr, "name": self.lead.name} if self.lead else None,
            "lead_key": self.lead_key or None,
            "fields": dict(self.fields),
            "sequence": self.sequence or None,
            "new_text": self.new_text,
            "reasons": list(self.reasons),
        }
        if self.kind is Kind.BOUNCE:
            obj["bounce"] = {"hard": self.bounce_hard, "recipients": list(self.bounced)}
        if self.kind is Kind.COMPLAINT:
            obj["complaint"] = {"recipients": list(self.complained)}
        if self.return_date:
            obj["return_date"] = self.return_date.isoformat()
        if self.opt_out:
            obj["opt_out"] = True
        return json.dumps(obj, ensure_ascii=False)
