"""Edits taking effect without a restart: rules, sequences and templates when their
files change (checked each tick), and after SIGHUP config.toml too.

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
import logging
from typing import TYPE_CHECKING

from inboxwatch.core.queue import Caps
from inboxwatch.core.settings import Settings
from inboxwatch.errors import ConfigError
from inboxwatch.userfiles.config import Config, load_config
from inboxwatch.userfiles.rulebook import RuleBook, load_rulebook

if TYPE_CHECKING:
    from inboxwatch.service.daemon import Daemon

log = logging.getLogger("inboxwatch")


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


def rules_fingerprint(cfg: Config) -> tuple[tuple[str, int, int], ...]:
    """Names, sizes and mtimes of the editable files: cheap enough for every tick."""
    out = []
    for folder in (cfg.rules_dir, cfg.templates_dir):
        for path in sorted(folder.glob("*.toml")):
            try:
                st = path.stat()
            except OSError:
                continue
            out.append((str(path), st.st_size, st.st_mtime_ns))
    return tuple(out)


def reload_if_changed(d: Daemon) -> None:
    """Edits to rules, sequences and templates apply without a restart, if they are
    valid; after SIGHUP, the whole config too."""
    if d.reload_asked:
        d.reload_asked = False
        _reload_whole(d)
        return
    stamp = rules_fingerprint(d.cfg)
    if stamp == d.rules_stamp:
        return
    d.rules_stamp = stamp
    try:
        book = load_rulebook(d.cfg.rules_dir, d.cfg.templates_dir)
    except ConfigError as exc:
        for problem in exc.problems:
            log.error("rules not reloaded: %s", problem)
        log.error("keeping the previous rules until the files are fixed")
        return
    if book != d.book:
        d.book = book
        d.rewake_all = True
        log.info("rules, sequences and templates reloaded")
        d.log_warnings()


def _reload_whole(d: Daemon) -> None:
    """After SIGHUP: the new config if it passes `check` (:func:`reload_config`), else
    the old one kept, each problem logged."""
    try:
        cfg, book, kept = reload_config(d.cfg)
    except ConfigError as exc:
        for problem in exc.problems:
            log.error("config not reloaded: %s", problem)
        log.error("keeping the previous config until %s is fixed", d.cfg.file)
        return
    for what in kept:
        log.warning("%s changed in %s: that takes a restart", what, cfg.file)
    d.cfg, d.book = cfg, book
    d.settings = Settings.from_config(cfg, simulated=d.time_scale != 1.0)
    s = cfg.sending
    d.outbox.caps = Caps(s.max_per_hour, s.max_per_day)
    d.outbox.window = d.settings.window
    d.rules_stamp = rules_fingerprint(cfg)
    d.rewake_all = True  # new hours, holidays or sequences move wake times
    log.info("config reloaded from %s", cfg.file)
    d.log_warnings()
