"""Edits taking effect without a restart: rules, sequences and templates when their
files change (checked each tick), and after SIGHUP config.toml too.

Everything that shapes decisions and mail takes effect at once: identity name, aliases
and signature, team, owner, alerts, digest, nudges, sending hours, caps, holidays, the
time zone, the rules folders, and the ``[imap]`` keys read per tick or per message
(:data:`IMAP_LIVE`). What the running connections and the state were opened with is
kept until a restart, and the log names each changed key: the rest of ``[imap]`` and
all of ``[smtp]`` (the mail source and the sender hold them: servers, logins, TLS,
timeouts, folders, IDLE and polling, connections), the ``[state]`` path (the open store
and its lock), and ``[identity] address`` (every Message-ID and the send journal carry
it).

A config or rule file that fails ``inboxwatch check`` is refused as a whole: the daemon
keeps what it has, logs each problem as `check` would, and keeps a notice open
(`inboxwatch status` shows it and exits 1) until the files load again. A refused SIGHUP
is tried again by itself when config.toml or the rule files change.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from inboxwatch.core.actions import ClearNotice, Notice
from inboxwatch.core.queue import Caps
from inboxwatch.core.settings import Settings
from inboxwatch.errors import ConfigError
from inboxwatch.service.apply import Session
from inboxwatch.userfiles.config import Config, load_config
from inboxwatch.userfiles.rulebook import RuleBook, load_rulebook
from inboxwatch.userfiles.servers import ServerConfig

if TYPE_CHECKING:
    from inboxwatch.service.daemon import Daemon

log = logging.getLogger("inboxwatch")

#: [imap] keys the daemon reads per tick or per message (through :class:`Settings`), not
#: the connection: a reload applies them.
IMAP_LIVE = ("save_sent", "lookback_days", "max_age_days", "authserv_id", "trust_spam_verdict")
#: A password's source, as the config names it.
_SECRET_KEYS = {
    "env": "password_env",
    "path": "password_file",
    "command": "password_command",
    "credential": "password_credential",
}
#: Notice keys: config.toml (SIGHUP) refused, and rule files (seen changed) refused.
CONFIG_REFUSED = "config-not-reloaded"
RULES_REFUSED = "rules-not-reloaded"

Stamp = tuple[tuple[str, int, int], ...]


def changed_keys(old: ServerConfig, new: ServerConfig, live: tuple[str, ...] = ()) -> list[str]:
    """The keys of a server table that differ, as the config spells them (``live`` ones
    left out)."""
    out: list[str] = []
    for field in dataclasses.fields(old):
        name = field.name
        if name in live or name == "token_key":  # token_key follows token_command
            continue
        a, b = getattr(old, name), getattr(new, name, None)
        if a == b:
            continue
        if name == "password":
            out += [k for f, k in _SECRET_KEYS.items() if getattr(a, f) != getattr(b, f, None)]
        else:
            out.append(name)
    return out


def reload_config(old: Config) -> tuple[Config, RuleBook, list[str]]:
    """The new config and rule book, with what needs a restart kept from ``old`` and
    named (key by key). Raises :class:`~inboxwatch.errors.ConfigError` (nothing changes
    then)."""
    new = load_config(old.file)
    book = load_rulebook(new.rules_dir, new.templates_dir)
    kept: list[str] = []
    if imap_keys := changed_keys(old.imap, new.imap, IMAP_LIVE):
        kept.append(f"[imap] {', '.join(imap_keys)}")
    if smtp_keys := changed_keys(old.smtp, new.smtp):
        kept.append(f"[smtp] {', '.join(smtp_keys)}")
    if new.state_path != old.state_path:
        kept.append("[state] path")
    if new.identity.address != old.identity.address:
        kept.append("[identity] address")
    live: dict[str, Any] = {k: getattr(new.imap, k) for k in IMAP_LIVE}
    merged = dataclasses.replace(
        new,
        imap=dataclasses.replace(old.imap, **live),
        smtp=old.smtp,
        state_path=old.state_path,
        identity=dataclasses.replace(new.identity, address=old.identity.address),
    )
    return merged, book, kept


def rules_fingerprint(cfg: Config) -> Stamp:
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


def whole_fingerprint(cfg: Config) -> Stamp:
    """:func:`rules_fingerprint` and config.toml's own."""
    own: Stamp
    try:
        st = cfg.file.stat()
        own = ((str(cfg.file), st.st_size, st.st_mtime_ns),)
    except OSError:
        own = ()
    return own + rules_fingerprint(cfg)


def reload_if_changed(d: Daemon) -> None:
    """Edits to rules, sequences and templates apply without a restart, if they are
    valid; after SIGHUP, the whole config too (and again by itself after a refused
    SIGHUP, once the files change)."""
    if d.ticks <= 1:  # started on files that load: notices of an earlier run are over
        _resolve(d, CONFIG_REFUSED, RULES_REFUSED)
    retry = d.reload_refused is not None and whole_fingerprint(d.cfg) != d.reload_refused
    if d.reload_asked or retry:
        if retry and not d.reload_asked:
            log.info("files changed since the refused reload: trying it again")
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
        where = _files(exc)
        log.error("keeping the previous rules until %s is fixed", where)
        text = (
            f"rules not reloaded: {_first(exc)}; the previous rules, sequences and "
            f"templates stay in use until {where} is fixed (saving it reloads them)"
        )
        _refused(d, RULES_REFUSED, text)
        return
    _resolve(d, RULES_REFUSED)
    if book != d.book:
        d.book = book
        d.rewake_all = True
        log.info("rules, sequences and templates reloaded")
        d.log_warnings()


def _reload_whole(d: Daemon) -> None:
    """After SIGHUP: the new config if it passes `check` (:func:`reload_config`), else
    the old one kept, each problem logged and a notice open until it loads."""
    try:
        cfg, book, kept = reload_config(d.cfg)
    except ConfigError as exc:
        for problem in exc.problems:
            log.error("config not reloaded: %s", problem)
        where = _files(exc)
        log.error("keeping the previous config until %s is fixed", where)
        d.reload_refused = whole_fingerprint(d.cfg)
        text = (
            f"config not reloaded (SIGHUP): {_first(exc)}; the previous config stays in "
            f"use until {where} is fixed (it is read again when the file changes)"
        )
        # A mistake in the rules files only is one problem, however it was found (the
        # check of every tick may have opened it already): one notice, one alert.
        config = Path(d.cfg.file).resolve()
        rules_only = all(Path(p.file).resolve() != config for p in exc.problems if p.file)
        _refused(d, RULES_REFUSED if rules_only else CONFIG_REFUSED, text)
        return
    d.reload_refused = None
    for what in kept:
        log.warning("%s changed in %s: that takes a restart", what, cfg.file)
    d.cfg, d.book = cfg, book
    d.settings = Settings.from_config(cfg, simulated=d.time_scale != 1.0)
    s = cfg.sending
    d.outbox.caps = Caps(s.max_per_hour, s.max_per_day)
    d.outbox.window = d.settings.window
    d.rules_stamp = rules_fingerprint(cfg)
    d.rewake_all = True  # new hours, holidays or sequences move wake times
    _resolve(d, CONFIG_REFUSED, RULES_REFUSED)
    log.info("config reloaded from %s", cfg.file)
    d.log_warnings()


def _files(exc: ConfigError) -> str:
    """The files the problems are in (rules.toml, not config.toml, when that failed)."""
    files = list(dict.fromkeys(p.file for p in exc.problems)) or ["the files"]
    return " and ".join(files)


def _first(exc: ConfigError) -> str:
    more = len(exc.problems) - 1
    first = str(exc.problems[0]) if exc.problems else str(exc)
    return first + (f" (and {more} more: see the log)" if more > 0 else "")


def _refused(d: Daemon, key: str, text: str) -> None:
    """Open (or bring up to date) the notice of a refused reload: `inboxwatch status`
    shows it and exits 1; the alert command hears of it once, when it opens."""
    now = d.clock.now()
    try:
        with d.store.transaction() as state:
            old = next((n for n in state.notices() if n.key == key), None)
            if old is not None and old.text == text:
                return
            notice = Notice(key, text, old.since if old is not None else now)
            state.put_notice(notice)
    except Exception:  # the refusal is logged; the state's trouble is the tick's to tell
        log.exception("could not record that the reload was refused")
        return
    if old is None:
        d.alert(notice)


def _resolve(d: Daemon, *keys: str) -> None:
    """Close the notices of refused reloads (logged as resolved, if one was open)."""
    now = d.clock.now()
    try:
        with d.store.transaction() as state:
            if not any(n.key in keys for n in state.notices()):
                return
            Session(state, d.alert).apply([ClearNotice(k) for k in keys], now)
    except Exception:
        log.exception("could not record that the reload succeeded")
