"""The shipped rules, sequences and templates, as installed with the package.

The repository keeps one copy, in the top-level ``rules/`` and ``templates/`` folders;
the build maps them to ``inboxwatch.defaults.rules`` and ``inboxwatch.defaults.templates``
(``[tool.setuptools.package-dir]`` in pyproject.toml), so ``pip install inboxwatch``
carries them and ``inboxwatch init`` can copy them out.
"""

from __future__ import annotations

from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

FOLDERS = ("rules", "templates")


def folder(name: str) -> Traversable:
    """The installed copy of ``rules`` or ``templates``; in a checkout (an editable
    install, whose import hook does not map data-only folders), the top-level folder."""
    if name not in FOLDERS:
        raise ValueError(f"no default folder {name!r}; have {', '.join(FOLDERS)}")
    installed = files(__name__) / name
    if installed.is_dir():
        return installed
    return Path(__file__).resolve().parent.parent.parent / name
