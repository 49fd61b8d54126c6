"""Typed reading of user TOML files with errors that name the file, key path and line.

tomllib reports a line only for syntax errors; for a wrong value we find the line of the
key ourselves, so a user can jump straight to it.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from inboxwatch.errors import Problem

T = TypeVar("T")
_TABLE = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"""^\s*("[^"]*"|'[^']*'|[A-Za-z0-9_.-]+)\s*=""")
_LINE = re.compile(r"at line (\d+)")


def _norm(key: str) -> str:
    return ".".join(part.strip().strip("\"'") for part in key.split("."))


_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


def read_text_file(path: Path, problems: list[Problem]) -> str | None:
    """The file's text as UTF-8; on failure one problem a user can act on, and None.

    Editors on Windows write a byte order mark before UTF-8 text (Notepad did so until
    2019): it is dropped, as TOML editors do, instead of failing at "line 1, column 1".
    Text in another encoding (Latin-1, or Notepad's "Unicode", UTF-16) is named with the
    line of its first bad byte, and a folder or unreadable file with the reason, not a
    traceback."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        problems.append(Problem(str(path), "", "file not found"))
        return None
    except IsADirectoryError:
        problems.append(Problem(str(path), "", "is a folder, not a file"))
        return None
    except OSError as exc:
        problems.append(Problem(str(path), "", f"cannot read: {exc.strerror or exc}"))
        return None
    if raw.startswith(_UTF16_BOMS):
        problems.append(Problem(str(path), "", "cannot read: UTF-16 text: save it as UTF-8", 1))
        return None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        skip = 3 if raw.startswith(b"\xef\xbb\xbf") else 0
        start = exc.start + skip
        line = raw.count(b"\n", 0, start) + 1
        column = start - (raw.rfind(b"\n", 0, start) + 1) + 1
        why = f"cannot read as UTF-8: byte 0x{raw[start]:02X} (column {column}): save it as UTF-8"
        problems.append(Problem(str(path), "", why, line))
        return None


_KEY_AT = re.compile(
    r"""\s*((?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*'))*)\s*="""
)


def _set_twice(text: str, line: int) -> str:
    """tomllib's "Cannot overwrite a value" names no key: the key of that line, said
    plainly (a key given twice, often pasted in from another example)."""
    lines = text.splitlines()
    m = _KEY_AT.match(lines[line - 1]) if 0 < line <= len(lines) else None
    if m is None:
        return ""
    key = re.sub(r"\s*\.\s*", ".", m.group(1))
    return f"{key!r} is set again in the same table (once is allowed): keep one"


@dataclass
class TomlFile:
    """One loaded TOML file and the problems found while reading it."""

    path: Path
    data: dict[str, Any]
    text: str = ""
    problems: list[Problem] = field(default_factory=list)
    _line_map: dict[str, int] | None = field(default=None, repr=False)

    @classmethod
    def load(cls, path: Path, problems: list[Problem]) -> TomlFile | None:
        """Read and parse; on failure record a problem (with the line) and return None."""
        text = read_text_file(path, problems)
        if text is None:
            return None
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            m = _LINE.search(str(exc))
            msg = re.sub(r"\s*\(at line \d+, column (\d+)\)", r" (column \1)", str(exc))
            line = int(m.group(1)) if m else None
            if line is not None and msg.startswith("Cannot overwrite a value"):
                msg = _set_twice(text, line) or msg
            elif twice := re.match(r"Cannot declare \((.*),\) twice", msg):
                table = ".".join(k.strip("'\"") for k in twice.group(1).split(", "))
                msg = f"[{table}] is declared twice: merge the two into one table"
            problems.append(Problem(str(path), "", f"TOML syntax error: {msg}", line))
            return None
        return cls(path, data, text, problems)

    def line_of(self, keypath: str) -> int | None:
        """Line of ``a.b.N.c`` (N counts ``[[a.b]]`` tables): the key, else its nearest table."""
        lines = self._lines()
        parts = keypath.split(".")
        for n in range(len(parts), 0, -1):
            if (line := lines.get(".".join(parts[:n]))) is not None:
                return line
        return None

    def _lines(self) -> dict[str, int]:
        """Map every key and table path (with array indices) to its line; built once."""
        if self._line_map is not None:
            return self._line_map
        found: dict[str, int] = {}
        counts: dict[str, int] = {}
        table: list[str] = []
        for lineno, line in enumerate(self.text.splitlines(), 1):
            if m := _TABLE.match(line):
                is_array = line.lstrip().startswith("[[")
                names = _norm(m.group(1)).split(".")
                table = []
                for i, part in enumerate(names):
                    table.append(part)
                    here = ".".join(table)
                    last = i == len(names) - 1
                    if here in counts and not (is_array and last):
                        table.append(str(counts[here] - 1))  # inside the latest [[here]]
                if is_array:
                    here = ".".join(table)
                    counts[here] = counts.get(here, 0) + 1
                    table.append(str(counts[here] - 1))
                found.setdefault(".".join(table), lineno)
                continue
            if m := _KEY.match(line):
                found.setdefault(".".join([*table, *_norm(m.group(1)).split(".")]), lineno)
        self._line_map = found
        return found

    def problem(self, keypath: str, message: str) -> None:
        value = self._value_at(keypath)
        if message.startswith("must ") and ", got " not in message and value is not None:
            # A range or a rule broken: the value as the file has it, to see the slip.
            message += f", got {json.dumps(value, ensure_ascii=False)}"
        self.problems.append(
            Problem(str(self.path), keypath, message, self.line_of(keypath), self.named(keypath))
        )

    def _value_at(self, keypath: str) -> str | int | float | None:
        """The scalar value at ``keypath`` (None for a table, a list or nothing)."""
        node: Any = self.data
        for part in keypath.split("."):
            if isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                node = node.get(part) if isinstance(node, dict) else None
        return node if isinstance(node, str | int | float) else None

    def named(self, keypath: str) -> str:
        """``keypath`` as a person names it: an entry of an array of tables by its
        ``name`` (``rule "website-form".sequence``, ``step "day3".day``), else by its
        place counted from 1 (``rule #2``), not the zero-based index of the path."""
        out: list[str] = []
        node: Any = self.data
        for part in keypath.split("."):
            if isinstance(node, list) and part.isdigit() and out:
                idx = int(part)
                node = node[idx] if idx < len(node) else None
                name = node.get("name") if isinstance(node, dict) else None
                named = isinstance(name, str) and name
                out[-1] += f" {json.dumps(name, ensure_ascii=False)}" if named else f" #{idx + 1}"
            else:
                out.append(part)
                node = node.get(part) if isinstance(node, dict) else None
        return ".".join(out)


class Section:
    """A view on one table that records problems instead of raising, so all are reported."""

    def __init__(self, file: TomlFile, data: dict[str, Any], path: str) -> None:
        self.file = file
        self.data = data
        self.path = path
        self._used: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def get(self, name: str, kind: type[T], default: T) -> T:
        self._used.add(name)
        if name not in self.data:
            return default
        value = self.data[name]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            self.file.problem(
                self.key(name), f"expected {_type_name(kind)}, got {_type_name(type(value))}"
            )
            return default
        return value

    def require(self, name: str, kind: type[T], default: T) -> T:
        if name not in self.data:
            self._used.add(name)
            self.file.problem(self.key(name), "missing (required)")
            return default
        return self.get(name, kind, default)

    def str_list(self, name: str) -> tuple[str, ...]:
        value = self.get(name, list, [])
        if value is not None and all(isinstance(v, str) for v in value):
            return tuple(value)
        self.file.problem(self.key(name), "expected a list of strings")
        return ()

    def choice(self, name: str, choices: tuple[str, ...], default: str) -> str:
        value = self.get(name, str, default)
        if value not in choices:
            self.file.problem(
                self.key(name), f"must be one of {', '.join(map(repr, choices))}, got {value!r}"
            )
            return default
        return value

    def sub(self, name: str) -> Section:
        value = self.get(name, dict, {})
        return Section(self.file, value, self.key(name))

    def subsections(self, name: str) -> Iterator[tuple[str, Section]]:
        for key, value in self.get(name, dict, {}).items():
            if isinstance(value, dict):
                yield key, Section(self.file, value, f"{self.key(name)}.{key}")
            else:
                self.file.problem(f"{self.key(name)}.{key}", "expected a table")

    def finish(self, *, also_known: tuple[str, ...] = ()) -> None:
        """Report keys nobody asked for: a typo must not be silently ignored."""
        for name in self.data:
            if name not in self._used and name not in also_known:
                self.file.problem(self.key(name), "unknown key")


def _type_name(kind: type) -> str:
    return {
        str: "a string",
        int: "an integer",
        float: "a number",
        bool: "true or false",
        list: "a list",
        dict: "a table",
    }.get(kind, kind.__name__)
