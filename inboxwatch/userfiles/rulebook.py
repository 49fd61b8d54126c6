"""Everything a user edits, loaded and cross-checked together: rules, sequences, templates."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from inboxwatch.core.language import DEFAULT as DEFAULT_LANGUAGE
from inboxwatch.core.lazy import Later, LazyField
from inboxwatch.core.verdict import PUBLIC_MAIL_DOMAINS
from inboxwatch.errors import ConfigError, Problem
from inboxwatch.userfiles.rules import OUR_DOMAIN, Rule, parse_rule
from inboxwatch.userfiles.sequences import Sequence, parse_sequence
from inboxwatch.userfiles.templates import (
    BUILTIN_VARIABLES,
    Template,
    check_variables,
    load_languages,
    load_templates,
)
from inboxwatch.userfiles.tomlfile import Section, TomlFile

#: Templates the daemon itself uses for the owner; shipped, but a user may override them.
OWNER_TEMPLATES = ("owner-alert", "owner-reply", "owner-task", "owner-nudge")


@dataclass(frozen=True)
class RuleBook:
    rules: tuple[Rule, ...]
    sequences: dict[str, Sequence]
    templates: dict[str, Template]
    #: Not errors: things ``check`` reports and the daemon logs (patterns prone to
    #: backtracking), in the shape of the problems.
    warnings: LazyField[tuple[Problem, ...]] = LazyField(())  # noqa: RUF009 (core/lazy.py)
    #: The template sets in other languages (``templates/de/``), by language code; each
    #: holds the templates it translates, the rest fall back to ``templates``.
    languages: dict[str, dict[str, Template]] = field(default_factory=dict)

    def template(self, name: str, language: str = "") -> Template | None:
        """Template ``name`` in ``language`` if that set has it, else the default one."""
        return self.languages.get(language, {}).get(name) or self.templates.get(name)

    def sequence_for(self, rule: Rule) -> Sequence | None:
        return self.sequences.get(rule.sequence)

    def ack_template(self, rule: Rule) -> Template | None:
        name = rule.template
        if not name and (seq := self.sequence_for(rule)) and seq.ack:
            name = seq.ack.template
        return self.templates.get(name) if name else None


def load_rulebook(rules_dir: Path, templates_dir: Path) -> RuleBook:
    """Load and cross-check; raises :class:`ConfigError` with every problem found."""
    problems: list[Problem] = []
    rules: list[Rule] = []
    sequences: dict[str, Sequence] = {}
    tomls: dict[str, TomlFile] = {}
    files = sorted(rules_dir.glob("*.toml")) if rules_dir.is_dir() else []
    if not rules_dir.is_dir():
        problems.append(Problem(str(rules_dir), "", "rules folder not found"))
    for path in files:
        toml = TomlFile.load(path, problems)
        if toml is None:
            continue
        tomls[str(path)] = toml
        root = Section(toml, toml.data, "")
        for i, raw in enumerate(root.get("rule", list, [])):
            if isinstance(raw, dict):
                rules.append(parse_rule(Section(toml, raw, f"rule.{i}"), len(rules)))
            else:
                toml.problem(f"rule.{i}", "expected a table ([[rule]])")
        for name, sec in root.subsections("sequence"):
            if name in sequences:
                toml.problem(f"sequence.{name}", f"defined twice (also in {sequences[name].file})")
            sequences[name] = parse_sequence(name, sec)
        root.finish()
    templates = load_templates(templates_dir, problems)
    languages = load_languages(templates_dir, problems)
    warnings = Later(lambda: tuple(w for rule in rules for w in rule.warnings))  # when read
    book = RuleBook(tuple(rules), sequences, templates, warnings, languages)
    _cross_check(book, problems, rules_dir, tomls)
    if problems:
        raise ConfigError(problems)
    return book


def _cross_check(
    book: RuleBook, problems: list[Problem], rules_dir: Path, tomls: dict[str, TomlFile]
) -> None:
    def problem(file: str, key: str, message: str) -> None:
        toml = tomls.get(file)
        if toml is None:
            problems.append(Problem(file, key, message))
        else:
            problems.append(Problem(file, key, message, toml.line_of(key), toml.named(key)))

    if not book.rules and not problems:
        problems.append(Problem(str(rules_dir), "", "no [[rule]] found in any *.toml file"))
    names: dict[str, str] = {}
    all_fields = frozenset().union(*(r.provides for r in book.rules)) if book.rules else frozenset()
    known = BUILTIN_VARIABLES | all_fields
    for rule in book.rules:
        if rule.name in names:
            problem(rule.file, f"{rule.key}.name", f"duplicate rule {rule.name!r}")
        names[rule.name] = rule.file
        if rule.kind != "enquiry":
            continue
        if rule.language and rule.language not in book.languages | {DEFAULT_LANGUAGE: {}}:
            have = ", ".join(sorted({DEFAULT_LANGUAGE, *book.languages}))
            problem(
                rule.file,
                f"{rule.key}.language",
                f"no template set for language {rule.language!r} (a templates/"
                f"{rule.language}/ folder); have: {have}",
            )
        if rule.lead_from != "sender" and not rule.senders:
            problem(
                rule.file,
                f"{rule.key}.senders",
                f'required when lead = "{rule.lead_from}": who may send these notifications, '
                f'e.g. senders = ["{OUR_DOMAIN}", "@formspree.io"] (otherwise anyone can name '
                "a stranger in a message and have them written to)",
            )
        if rule.sequence not in book.sequences:
            problem(rule.file, f"{rule.key}.sequence", f"no sequence {rule.sequence!r}")
        if rule.template and rule.template not in book.templates:
            problem(rule.file, f"{rule.key}.template", f"no template {rule.template!r}")
            continue
        tpl = book.ack_template(rule)
        if tpl is None and rule.sequence in book.sequences:
            problem(
                rule.file,
                rule.key,
                f"rule {rule.name!r} has no acknowledgement: give template, or a day-0 email "
                "step in its sequence",
            )
        elif tpl is not None and rule.lead_from != "sender":
            versions = [tpl] + [
                t for s in book.languages.values() if (t := s.get(tpl.name)) is not None
            ]
            problems.extend(
                Problem(
                    t.file,
                    "subject",
                    f"needed: rule {rule.name!r} takes the lead from a notification, so the "
                    "template must give the subject (the notification's is never echoed)",
                )
                for t in versions
                if not t.subject.strip()
            )
    for seq in book.sequences.values():
        for i, step in enumerate(seq.steps):
            if step.template and step.template not in book.templates:
                problem(
                    seq.file,
                    f"sequence.{seq.name}.step.{i}.template",
                    f"no template {step.template!r} in the templates folder",
                )
    for tpl in book.templates.values():
        check_variables(tpl, known, problems, used_by=f"template {tpl.name!r}")
    for code, translated in book.languages.items():
        for tpl in translated.values():
            used_by = f"template {tpl.name!r} in {code!r}"
            check_variables(tpl, known, problems, used_by=used_by)
            if tpl.name not in book.templates:
                problems.append(
                    Problem(
                        tpl.file,
                        "",
                        f"no template {tpl.name!r} in the default language for this to "
                        "translate (a language's templates override the default ones by name)",
                    )
                )


def form_senders_note(book: RuleBook, address: str, rules_dir: Path) -> str:
    """What ``init`` says about a rule that trusts ``@our-domain``: a website on another
    domain than the mailbox must be added to its ``senders``, or its notifications are
    answered to nobody (a fresh user's review, item 1). Empty when no rule does."""
    rule = next((r for r in book.rules if r.kind == "enquiry" and OUR_DOMAIN in r.senders), None)
    if rule is None:
        return ""
    domain = address.rpartition("@")[2].lower()
    ours = address if domain in PUBLIC_MAIL_DOMAINS else f"@{domain}"
    return (
        f"forms: rule {rule.name!r} answers form notifications sent from {ours} and the "
        "form services it lists; if your website is on another domain, add it to the "
        f'rule\'s senders (e.g. "@your-site.example") in {rules_dir / Path(rule.file).name}'
    )
