"""Message templates: ``templates/NAME.toml`` with ``subject``, ``body`` and optional ``html``;
the same in another language in ``templates/<code>/NAME.toml`` (``templates/de/ack.toml``).

Placeholders are ``{{ name }}`` or ``{{ name | fallback }}``, where each ``|`` alternative
is another variable (used if it has a value) or, the first that is not, literal text:
``{{ name | email }}``, ``{{ first_name | there }}``. Nothing else is evaluated: no
attribute access, no code, so a template (or a lead's input) cannot reach Python
internals. Values are inserted as plain text; header safety is ``core/mime.py``'s job.
"""

from __future__ import annotations

import html as htmllib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from inboxwatch.core.language import CODE as LANGUAGE_CODE
from inboxwatch.errors import Problem
from inboxwatch.userfiles.tomlfile import Section, TomlFile

PLACEHOLDER = re.compile(r"\{\{\s*([^{}|]*?)\s*(?:\|\s*([^{}]*?)\s*)?\}\}")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")

#: Variables every lead has (possibly empty); rules add their extracted form fields.
BUILTIN_VARIABLES = frozenset(
    {
        "name",
        "first_name",
        "email",
        "source",
        "subject",
        "our_name",
        "our_address",
        "phone",
        "message",
        "owner_address",
        "rule",
        "step",
        "task",
        "excerpt",
        "arrived",
        "acked",
        "signature",
        "greeting",
        "enquiry",
        "their_message",
        "you_wrote",
        "we_wrote",
        "waiting_since",
    }
)


@dataclass(frozen=True)
class Template:
    name: str
    file: str
    subject: str
    body: str
    html: str = ""

    @property
    def variables(self) -> frozenset[str]:
        found: set[str] = set()
        for part in (self.subject, self.body, self.html):
            found.update(m.group(1) for m in PLACEHOLDER.finditer(part))
        return frozenset(found)


@dataclass(frozen=True)
class Rendered:
    subject: str
    body: str
    html: str = ""


def _fallback(spec: str, values: Mapping[str, str]) -> str:
    """``{{ name | email | there }}``: each alternative that names a variable gives its
    value if it has one; the first that names none is literal text. So a lead without a
    name reads "jane@example.com", not the word "email"."""
    for alt in (a.strip() for a in spec.split("|")):
        if alt in values or alt in BUILTIN_VARIABLES:
            if value := values.get(alt, ""):
                return value
            continue
        return alt
    return ""


def _fill(text: str, values: Mapping[str, str], escape: bool) -> str:
    def sub(m: re.Match[str]) -> str:
        value = values.get(m.group(1), "") or _fallback(m.group(2) or "", values)
        return htmllib.escape(value) if escape else value

    return PLACEHOLDER.sub(sub, text)


def render(template: Template, values: Mapping[str, str]) -> Rendered:
    """Fill placeholders; a value is never re-scanned, so ``{{`` typed by a lead stays text."""
    return Rendered(
        subject=" ".join(_fill(template.subject, values, escape=False).split()),
        body=_fill(template.body, values, escape=False),
        html=_fill(template.html, values, escape=True) if template.html else "",
    )


def load_languages(folder: Path, problems: list[Problem]) -> dict[str, dict[str, Template]]:
    """The template sets in other languages: ``folder/<code>/*.toml`` (``templates/de/``),
    each by its language code (see :mod:`inboxwatch.core.language`). A sub-folder whose
    name is no language code is not a template set, and is left alone."""
    out: dict[str, dict[str, Template]] = {}
    if not folder.is_dir():
        return out
    for sub in sorted(folder.iterdir()):
        if sub.is_dir() and LANGUAGE_CODE.match(sub.name):
            out[sub.name] = load_templates(sub, problems)
    return out


def load_templates(folder: Path, problems: list[Problem]) -> dict[str, Template]:
    """Every ``*.toml`` in ``folder``; a template's name is its file name without suffix."""
    out: dict[str, Template] = {}
    if not folder.is_dir():
        problems.append(Problem(str(folder), "", "templates folder not found"))
        return out
    for path in sorted(folder.glob("*.toml")):
        toml = TomlFile.load(path, problems)
        if toml is None:
            continue
        sec = Section(toml, toml.data, "")
        tpl = Template(
            name=path.stem,
            file=str(path),
            subject=sec.get("subject", str, ""),
            body=sec.require("body", str, ""),
            html=sec.get("html", str, ""),
        )
        sec.get("description", str, "")
        sec.finish()
        for key in ("subject", "body", "html"):
            for m in PLACEHOLDER.finditer(getattr(tpl, key)):
                if not _NAME.match(m.group(1)):
                    toml.problem(
                        key,
                        f"bad placeholder {m.group(0)!r}: use {{{{ name }}}} with lower-case "
                        "letters, digits and _",
                    )
            stray = PLACEHOLDER.sub("", getattr(tpl, key))
            if "{{" in stray or "}}" in stray:
                toml.problem(key, "unbalanced {{ or }}")
        out[tpl.name] = tpl
    return out


def check_variables(
    template: Template, known: frozenset[str], problems: list[Problem], used_by: str
) -> None:
    """A placeholder no rule can fill is almost always a typo: report it at check time."""
    unknown = sorted(v for v in template.variables - known if _NAME.match(v))
    if not unknown:
        return
    try:
        lines = Path(template.file).read_text(encoding="utf-8").splitlines()
    except OSError:
        lines = []
    for var in unknown:
        pattern = re.compile(r"\{\{\s*" + re.escape(var) + r"\s*[|}]")
        line = next((i for i, text in enumerate(lines, 1) if pattern.search(text)), None)
        problems.append(
            Problem(
                template.file,
                var,
                f"unknown variable (used by {used_by}); known: {', '.join(sorted(known))}",
                line,
            )
        )
