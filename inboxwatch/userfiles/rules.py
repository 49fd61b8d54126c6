"""User rules (``[[rule]]`` tables in ``rules/*.toml``): first match wins.

A rule matches on from / to / subject / body / any header, by substring (``from``) or
regular expression (``from_regex``); several values in a list mean "any of them", several
keys mean "all of them". It says what the message is (``enquiry`` or ``ignore``), the lead
source, and where the lead is: the sender, ``Reply-To``, or a regex over the body;
optionally the ``language`` its leads are written to in (otherwise detected).

A rule that takes the lead from the body or from Reply-To writes to someone the sender
named, so it names who may send it (``senders``): an address, ``@domain`` (and its
subdomains) or ``@our-domain`` (our own and the team's addresses, and our domains).

Every pattern runs under the message's time budget (:mod:`inboxwatch.core.safe_regex`);
patterns prone to backtracking are reported as warnings on the rule.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from inboxwatch.core.language import CODE as LANGUAGE_CODE
from inboxwatch.core.lazy import Later, LazyField
from inboxwatch.core.message import Address, Message
from inboxwatch.core.regex_lint import hazards
from inboxwatch.core.safe_regex import Budget, SafePattern, compile_user
from inboxwatch.errors import Problem
from inboxwatch.userfiles.tomlfile import Section

RULE_KINDS = ("enquiry", "ignore")
LEAD_FROM = ("sender", "reply-to", "body")
FIELDS = ("from", "to", "subject", "body")
#: In ``senders``: any of our own or the team's addresses, or an address in our domains.
OUR_DOMAIN = "@our-domain"


@dataclass(frozen=True)
class Condition:
    """One key of ``[rule.match]``: a field and the patterns, any of which may match."""

    field: str  # "from", "to", "subject", "body" or "header:<name>"
    patterns: tuple[SafePattern, ...]
    label: str

    def test(self, values: Mapping[str, str], msg: Message, budget: Budget) -> bool:
        if self.field.startswith("header:"):
            texts = msg.header_all(self.field[7:])
        else:
            texts = (values[self.field],)
        return any(p.search(t, budget) for p in self.patterns for t in texts)


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
    lead_patterns: tuple[SafePattern, ...]
    accept_robots: bool
    match_any: bool = False
    conditions: tuple[Condition, ...] = field(default=())
    #: Who may send what this rule matches (lower-cased; empty: anyone). See module doc.
    senders: tuple[str, ...] = ()
    #: Patterns prone to backtracking: reported by ``check``, never fatal. Linted when
    #: first read (the lint costs more than loading the rules; ``classify`` never reads it).
    warnings: LazyField[tuple[Problem, ...]] = LazyField(())  # noqa: RUF009 (see core/lazy.py)
    #: The language its leads are written to in (a template set's code); "" detects it
    #: from the enquiry (see :mod:`inboxwatch.core.language`).
    language: str = ""

    @property
    def provides(self) -> frozenset[str]:
        """Template variables this rule can fill from the lead pattern's named groups."""
        return frozenset(g for p in self.lead_patterns for g in p.groupindex)

    def matches(self, msg: Message, body: str, budget: Budget | None = None) -> bool:
        """Do the conditions hold? (Patterns draw on ``budget``: a fresh one if none.)"""
        budget = budget or Budget()
        values = {
            "from": str(msg.from_) if msg.from_ else msg.header("from"),
            "to": ", ".join(str(a) for a in (*msg.to, *msg.cc)) or msg.header("to"),
            "subject": msg.subject,
            "body": body,
        }
        test = any if self.match_any and self.conditions else all
        return test(c.test(values, msg, budget) for c in self.conditions)

    def allows(self, sender: str, ours: frozenset[str], our_domains: frozenset[str]) -> bool:
        """May ``sender`` send what this rule matches? ``ours``: our own and the team's
        addresses; ``our_domains``: our domains (public mail providers excluded)."""
        if not self.senders:
            return True
        addr = sender.lower()
        domain = addr.rpartition("@")[2]
        for allowed in self.senders:
            if allowed == OUR_DOMAIN:
                if addr in ours or any(_within(domain, d) for d in our_domains):
                    return True
            elif allowed.startswith("@"):
                if _within(domain, allowed[1:]):
                    return True
            elif addr == allowed:
                return True
        return False


def _within(domain: str, parent: str) -> bool:
    return bool(domain) and (domain == parent or domain.endswith("." + parent))


@dataclass(frozen=True)
class LeadFound:
    address: Address | None
    fields: Mapping[str, str]
    reason: str


def find_lead(rule: Rule, msg: Message, body: str, budget: Budget | None = None) -> LeadFound:
    """Where the person to answer is: never the robot that relayed a form, if told so."""
    if rule.lead_from == "reply-to":
        if msg.reply_to:
            return LeadFound(msg.reply_to[0], {}, "lead from Reply-To")
        return LeadFound(None, {}, "rule wants the lead from Reply-To, but there is none")
    if rule.lead_from == "body":
        budget = budget or Budget()
        groups: dict[str, str] = {}
        for pattern in rule.lead_patterns:
            if m := pattern.search(body, budget):
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
# Elementor and WPForms end the fields with "---" and then the submission's metadata
# ("Date: ...", "Remote IP: ...") or "Sent from <site>": not the lead's words, and never
# to be quoted back to them. A "---" of their own, with their words after it, stays.
_FOOTER_RULE = re.compile(
    r"^---\s*\n\s*(?:[^\s:][^:\n]{0,30}:[ \t]|(?:sent from|powered by|envoyé depuis"
    r"|gesendet von|enviado desde|inviato da|verzonden vanaf|enviado de)\b)",
    re.M | re.I,
)


def _message(value: str) -> str:
    """A form's message field ends where the form tool's footer ("-- ", or "---" before
    the submission's details) begins."""
    ends = [m.start() for m in (_SIGNATURE.search(value), _FOOTER_RULE.search(value)) if m]
    return (value[: min(ends)] if ends else value).strip()


class _Patterns:
    """Compiles a rule's patterns for the budget, and lints them for the warnings."""

    def __init__(self, name: str) -> None:
        self.name = name
        #: (pattern, flags, file, key, line, key as named) of each regular expression,
        #: for :meth:`lint`.
        self.linted: list[tuple[str, int, str, str, int | None, str]] = []

    def lint(self) -> tuple[Problem, ...]:
        """The warnings: patterns prone to backtracking."""
        return tuple(
            Problem(
                file,
                path,
                f"prone to backtracking: {why}. A message can use up its time "
                "budget here and be skipped",
                line,
                label,
            )
            for source, flags, file, path, line, label in self.linted
            for why in hazards(source, flags)
        )

    def compile(
        self, sec: Section, key: str, source: str, flags: int, regex: bool, index: int | None
    ) -> SafePattern | None:
        path = sec.key(key) if index is None else f"{sec.key(key)}.{index}"
        try:
            pattern = compile_user(
                source if regex else re.escape(source), flags, f"rule {self.name!r}, {path}"
            )
        except re.error as exc:
            sec.file.problem(path, f"bad regular expression {source!r}: {exc}")
            return None
        if regex:
            where = (str(sec.file.path), path, sec.file.line_of(path), sec.file.named(path))
            self.linted.append((source, flags, *where))
        return pattern

    def values(
        self, sec: Section, key: str, raw: object, regex: bool, flags: int
    ) -> list[SafePattern]:
        values = raw if isinstance(raw, list) else [raw]
        if not values:
            sec.file.problem(sec.key(key), "an empty list never matches; remove the key instead")
        out: list[SafePattern] = []
        for i, value in enumerate(values):
            if not isinstance(value, str):
                sec.file.problem(sec.key(key), "expected a string or a list of strings")
                continue
            index = i if isinstance(raw, list) else None
            if (pattern := self.compile(sec, key, value, flags, regex, index)) is not None:
                out.append(pattern)
        return out


def _conditions(sec: Section, case_sensitive: bool, pats: _Patterns) -> tuple[Condition, ...]:
    flags = 0 if case_sensitive else re.IGNORECASE
    out: list[Condition] = []
    for key, raw in sec.data.items():
        base, regex = (key[:-6], True) if key.endswith("_regex") else (key, False)
        if base in FIELDS:
            out.append(Condition(base, tuple(pats.values(sec, key, raw, regex, flags)), key))
        elif base == "header":
            if not isinstance(raw, dict):
                sec.file.problem(sec.key(key), 'expected a table, e.g. { "X-Mailer" = "..." }')
                continue
            hsec = Section(sec.file, raw, sec.key(key))
            for hname, hraw in raw.items():
                hpats = tuple(pats.values(hsec, hname, hraw, regex, flags))
                out.append(Condition(f"header:{hname}", hpats, f"{key}.{hname}"))
        else:
            sec.file.problem(
                sec.key(key),
                "unknown match key; use from, to, subject, body, header (or the same with _regex)",
            )
    return tuple(out)


def _senders(sec: Section) -> tuple[str, ...]:
    """The ``senders`` list, lower-cased; problems for entries of no known shape."""
    raw = sec.get("senders", list, [])
    if not isinstance(sec.data.get("senders"), list):
        return ()  # absent (anyone), or of the wrong type (reported by get)
    if not raw:
        sec.file.problem(
            sec.key("senders"), "an empty list lets nobody send; name the senders or remove the key"
        )
    out: list[str] = []
    for value in raw:
        if why := _sender_problem(value):
            sec.file.problem(sec.key("senders"), why)
        else:
            out.append(str(value).strip().lower())
    return tuple(out)


def _sender_problem(value: object) -> str:
    """Why ``value`` is no valid ``senders`` entry ("" when it is)."""
    if not isinstance(value, str):
        return "expected a list of strings"
    text = value.strip().lower()
    if text == OUR_DOMAIN:
        return ""
    local, at, domain = text.rpartition("@")
    labels = domain.split(".")
    if (
        not at
        or "@" in local
        or any(c.isspace() for c in local)
        or len(labels) < 2
        or not all(label and all(c.isalnum() or c == "-" for c in label) for label in labels)
    ):
        return (
            f"{value!r} is not an address (name@example.com), a domain (@example.com) "
            f"or {OUR_DOMAIN}"
        )
    return ""


def _language(sec: Section) -> str:
    """``language = "de"``: lower-case, a language code (whether there is a template set
    for it is the rule book's check)."""
    value = sec.get("language", str, "").strip().lower()
    if value and not LANGUAGE_CODE.match(value):
        sec.file.problem(
            sec.key("language"), f'{value!r} is not a language code: use e.g. "de" or "en"'
        )
        return ""
    return value


def parse_rule(sec: Section, index: int) -> Rule:
    name = sec.get("name", str, f"rule {index + 1}")
    pats = _Patterns(name)
    kind = sec.choice("kind", RULE_KINDS, "enquiry")
    case_sensitive = sec.get("case_sensitive", bool, False)
    lead_from = sec.choice("lead", LEAD_FROM, "sender")
    raw_patterns = sec.get("lead_pattern", object, [])
    sources = raw_patterns if isinstance(raw_patterns, list) else [raw_patterns]
    patterns: list[SafePattern] = []
    for i, src in enumerate(sources):
        key = "lead_pattern" if not isinstance(raw_patterns, list) else f"lead_pattern.{i}"
        if not isinstance(src, str):
            sec.file.problem(sec.key(key), "expected a string or a list of strings")
            continue
        at = i if isinstance(raw_patterns, list) else None
        found = pats.compile(sec, "lead_pattern", src, re.IGNORECASE | re.MULTILINE, True, at)
        if found is not None:
            patterns.append(found)
    if patterns and not any("email" in p.groupindex for p in patterns):
        sec.file.problem(
            sec.key("lead_pattern"), "needs a named group (?P<email>...) for the address"
        )
    if lead_from == "body" and not sources:
        sec.file.problem(sec.key("lead_pattern"), 'required when lead = "body"')
    if sources and lead_from != "body":
        sec.file.problem(sec.key("lead"), 'must be "body" when lead_pattern is given')
    match = sec.sub("match")
    conditions = _conditions(match, case_sensitive, pats)
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
        conditions=conditions,
        senders=_senders(sec),
        warnings=Later(pats.lint),
        language=_language(sec),
    )
    sec.get("description", str, "")
    misplaced = tuple(k for k in sec.data if k.removesuffix("_regex") in (*FIELDS, "header"))
    for key in misplaced:  # a match key written straight into [[rule]]
        sec.file.problem(sec.key(key), f"a match key: put it under [rule.match] ({key} = ...)")
    sec.finish(also_known=misplaced)
    return rule
