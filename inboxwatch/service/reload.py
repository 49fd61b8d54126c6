"""SIGHUP: config.toml, rules, sequences and templates read again, without a restart.

Everything that shapes decisions and mail takes effect at once: identity name and
signature, team, owner, alerts, digest, nudges, sending hours, caps, holidays, the
time zone, the rules folders. What the running connections and the state were opened
with is kept until a restart, and the log says so: the ``[imap]`` and ``[smtp]``
servers and logins (the daemon's connections), the ``[state]`` path (the open store
and its lock), and our own address (every Message-ID and the send journal carry it).
A config that fails ``inboxwatch check`` is refused as a whole: the daemon keeps the
one it has, and logs each problem as `check` would.
"""

from __future__ import annotations

import dataclasses

from inboxwatch.userfiles.config import Config, load_config
from inboxwatch.userfiles.rulebook import RuleBook, load_rulebook


def reload_config(old: Config) -> tuple[Config, RuleBook, list[str]]:
    """The new config and rule book, with what needs a restart kept from ``old`` and
    named. Raises :class:`~inboxwatch.errors.ConfigError` (nothing changes then)."""
    new = load_config(old.file)
    book = load_rulebook(new.rules_dir, new.templates_dir)
    kept: list[str] = []
    if new.imap != old.imap:
        kept.append("[imap]")
    if new.smtp != old.smtp:
        kept.append("[smtp]")
    if new.state_path != old.state_path:
        kept.append("[state] path")
    ours = (old.identity.address, old.identity.aliases)
    if (new.identity.address, new.identity.aliases) != ours:
        kept.append("[identity] address and aliases")
    identity = dataclasses.replace(
        new.identity, address=old.identity.address, aliases=old.identity.aliases
    )
    merged = dataclasses.replace(
        new, imap=old.imap, smtp=old.smtp, state_path=old.state_path, identity=identity
    )
    return merged, book, kept
