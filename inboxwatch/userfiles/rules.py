"""User rules (``[[rule]]`` tables in ``rules/*.toml``): first match wins.

A rule matches on from / to / subject / body / any header, by substring (``from``) or
regular expression (``from_regex``); several values in a list mean "any of them", several
keys mean "all of them". It says what the message is (``enquiry`` or ``ignore``), the lead
source, and where the lead is: the sender, ``Reply-To``, or a regex over the body.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from inboxwatch.core.message import Address, Message
from inboxwatch.userfiles.tomlfile import Section

RULE_KINDS = ("enquiry", "ignore")
LEAD_FROM = ("sender", "reply-to", "body")
FIELDS = ("from", "to", "subject", "body")


@dataclass(frozen=True)
class Condition:
    """One key of ``[rule.match]``: a field and the patterns, any of which may match."""

    field: str  # "from", "to", "subject", "body" or "header:<name>"
    patterns: tuple[re.Pattern[str], ...]
    label: str

    def test(self, values: Mapping[str, str], msg: Message) -> bool:
        if self.field.startswith("header:"):
            texts = msg.header_all(self.field[7:])
        else:
            texts = (values[self.field],)
        return any(p.search(t) for p in self.patterns for t in texts)


@dataclass(frozen=True)
class Rule:
    name: str
    file: str
    key: str  # "rule.N" in its file, for messages that point at the line
    kind: str
    source: str
    sequence: str
    template: str
    lead_from: str
    lead_patterns: tuple[re.Pattern[str], ...]
    accept_robots: bool
    match_any: bool = False
    conditions: tuple[Condition, ...] = field(default=())

    @property
    def provides(self) -> frozenset[str]:
        """Template variables this rule can fill from the lead pattern's named groups."""
        return frozenset(g for p in self.lead_patterns for g in p.groupindex)

    def matches(self, msg: Message, body: str) -> bool:
        values = {
            "from": str(msg.from_) if msg.from_ else msg.header("from"),
            "to": ", ".join(str(a) for a in (*msg.to, *msg.cc)) or msg.header("to"),
            "subject": msg.subject,
            "body": body,
        }
        test = any if self.match_any and self.conditions else all
        return test(c.test(values, msg) for c in self.conditions)


@dataclass(frozen=True)
class LeadFound:
    address: Address | None
    fields: Mapping[str, str]
    reason: str


def find_lead(rule: Rule, msg: Message, body: str) -> LeadFound:
    """Where the person to answer is: never the robot that relayed a form, if told so."""
    if rule.lead_from == "reply-to":
        if msg.reply_to:
            return LeadFound(msg.reply_to[0], {}, "lead from Reply-To")
        return LeadFound(None, {}, "rule wants the lead from Reply-To, but there is none")
    if rule.lead_from == "body":
        groups: dict[str, str] = {}
        for pattern in rule.lead_patterns:
            if m := pattern.search(body):
                for key, value in m.groupdict().items():
                    if value and key not in groups:
                        groups[key] = (
                            _message(value) if key == "message" else " ".join(value.split())
                        )
        addr = groups.pop("email", "").strip("<>.,;").lower()
        name = groups.pop("name", "")
        if "@" in addr:
            return LeadFound(Address(addr, name), groups, "lead from the body")
        # Many form tools put the submitter in Reply-To and not in the text.
        sender = msg.from_.addr if msg.from_ else ""
        if msg.reply_to and msg.reply_to[0].addr != sender:
            found = msg.reply_to[0]
            return LeadFound(
                Address(found.addr, found.name or name),
                groups,
                "lead from Reply-To (no email in the body)",
            )
        return LeadFound(None, groups, "no email address found by the rule's lead_pattern")
    if msg.from_ is None:
        return LeadFound(None, {}, "no usable From address")
    return LeadFound(msg.from_, {}, "lead is the sender")


_SIGNATURE = re.compile(r"^--\s*$", re.M)


def _message(value: str) -> str:
    """A form's message field ends where the form tool's footer ("-- ") begins."""
    m = _SIGNATURE.search(value)
    return (value[: m.start()] if m else value).strip()


def _compile(sec: Section, key: str, raw: object, regex: bool, flags: int) -> list[re.Pattern[str]]:
    values = raw if isinstance(raw, list) else [raw]
    if not values:
        sec.file.problem(sec.key(key), "an empty list never matches; remove the key instead")
    out: list[re.Pattern[str]] = []
    for value in values:
        if not isinstance(value, str):
            sec.file.problem(sec.key(key), "expected a string or a list of strings")
            continue
        try:
            out.append(re.compile(value if regex else re.escape(value), flags))
        except re.error as exc:
            sec.file.problem(sec.key(key), f"bad regular expression {value!r}: {exc}")
    return out


def _conditions(sec: Section, case_sensitive: bool) -> tuple[Condition, ...]:
    flags = 0 if case_sensitive else re.IGNORECASE
    out: list[Condition] = []
    for key, raw in sec.data.items():
        base, regex = (key[:-6], True) if key.endswith("_regex") else (key, False)
        if base in FIELDS:
            out.append(Condition(base, tuple(_compile(sec, key, raw, regex, flags)), key))
        elif base == "header":
            if not isinstance(raw, dict):
                sec.file.problem(sec.key(key), 'expected a table, e.g. { "X-Mailer" = "..." }')
                continue
            hsec = Section(sec.file, raw, sec.key(key))
            for hname, hraw in raw.items():
                pats = tuple(_compile(hsec, hname, hraw, regex, flags))
                out.append(Condition(f"header:{hname}", pats, f"{key}.{hname}"))
        else:
            sec.file.problem(
                sec.key(key),
                "unknown match key; use from, to, subject, body, header (or the same with _regex)",
            )
    return tuple(out)


def parse_rule(sec: Section, index: int) -> Rule:
    name = sec.get("name", str, f"rule {index + 1}")
    kind = sec.choice("kind", RULE_KINDS, "enquiry")
    case_sensitive = sec.get("case_sensitive", bool, False)
    lead_from = sec.choice("lead", LEAD_FROM, "sender")
    raw_patterns = sec.get("lead_pattern", object, [])
    sources = raw_patterns if isinstance(raw_patterns, list) else [raw_patterns]
    patterns: list[re.Pattern[str]] = []
    for i, src in enumerate(sources):
        key = "lead_pattern" if not isinstance(raw_patterns, list) else f"lead_pattern.{i}"
        if not isinstance(src, str):
            sec.file.problem(sec.key(key), "expected a string or a list of strings")
            continue
        try:
            patterns.append(re.compile(src, re.IGNORECASE | re.MULTILINE))
        except re.error as exc:
            sec.file.problem(sec.key(key), f"bad regular expression {src!r}: {exc}")
    if patterns and not any("email" in p.groupindex for p in patterns):
        sec.file.problem(
            sec.key("lead_pattern"), "needs a named group (?P<email>...) for the address"
        )
    if lead_from == "body" and not sources:
        sec.file.problem(sec.key("lead_pattern"), 'required when lead = "body"')
    if sources and lead_from != "body":
        sec.file.problem(sec.key("lead"), 'must be "body" when lead_pattern is given')
    match = sec.sub("match")
    rule = Rule(
        name=name,
        file=str(sec.file.path),
        key=sec.path,
        kind=kind,
        source=sec.get("source", str, "direct-email" if kind == "enquiry" else ""),
        sequence=sec.get("sequence", str, "default"),
        template=sec.get("template", str, ""),
        lead_from=lead_from,
        lead_patterns=tuple(patterns),
        accept_robots=sec.get("accept_robots", bool, False),
        match_any=sec.choice("match_mode", ("all", "any"), "all") == "any",
        conditions=_conditions(match, case_sensitive),
    )
    sec.get("description", str, "")
    sec.finish()
    return rule
