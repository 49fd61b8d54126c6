"""`inboxwatch init [DIR]`: a working config.toml and starter rules and templates.

After `pip install`, copying config.example.toml out of a checkout was the only way to
start, and `check` then failed on the missing rules and templates. `init` asks for the
few values nobody can guess (mailbox host and user, the business address, the owner,
the time zone), or takes them as flags for scripts, and writes:

- ``config.toml`` (with tomli-w: a TOML writer, so a value with quotes or backslashes
  is always written right), with a provider's servers, login method, Sent habit and
  daily cap when ``--provider`` names one (:mod:`inboxwatch.userfiles.presets`);
- ``rules/`` (rules and sequences) and ``templates/``, copied from the package.

Everything is first written to a staging folder inside DIR and checked there as
`inboxwatch check` would (and probed with ``--probe``: IMAP and SMTP), then moved into
place: a failure leaves DIR as it was, and removes DIR if init made it. A problem in
the staged config is named as the user wrote it (``--set imap.port``), never by the
staging folder's path, which is gone by then. Nothing that exists is replaced without
``--force``. The answers themselves: :mod:`inboxwatch.service.init_answers`.

The state file defaults to where it can be written: a system service's config folder
is under /etc, read-only to the service (``ProtectSystem=strict``), so there the state
goes to the folder the units in contrib/ give it (:func:`state_path`).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import tomllib
from collections.abc import Iterator
from datetime import UTC, datetime
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import tomli_w

from inboxwatch.core.wording import counted
from inboxwatch.errors import ConfigError, InboxwatchError, Problem
from inboxwatch.service.init_answers import (
    DEFAULT_PASSWORD_ENV,
    SOURCES,
    WHERE,
    gather,
    login_note,
)
from inboxwatch.userfiles.presets import PRESETS, Preset
from inboxwatch.userfiles.rulebook import form_senders_note

_STATE = "state/inboxwatch.json"  # beside config.toml
#: Where the systemd units keep the state (StateDirectory=inboxwatch/default, or
#: inboxwatch/%i for the instance %i): /etc is read-only under ProtectSystem=strict.
SYSTEM_STATE = Path("/var/lib/inboxwatch")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("dir", nargs="?", type=Path, default=Path("."), metavar="DIR")
    p.add_argument("--provider", choices=sorted(PRESETS), help="servers and habits of a provider")
    p.add_argument("--host", help="IMAP server (SMTP too, unless --smtp-host)")
    p.add_argument("--smtp-host", help="SMTP server, if not the IMAP host")
    p.add_argument("--user", help="the mailbox login (often the address)")
    p.add_argument("--address", help="the business address leads write to (default: --user)")
    p.add_argument("--name", help="the name mail is sent under (default: the address's domain)")
    p.add_argument("--owner", help="the owner's address, for alerts and the digest")
    p.add_argument("--timezone", help="IANA time zone of the business, e.g. Europe/Berlin")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--password-env", metavar="NAME", help=f"default: {DEFAULT_PASSWORD_ENV}")
    src.add_argument("--password-file", metavar="PATH")
    src.add_argument("--password-command", metavar="CMD")
    src.add_argument("--password-credential", metavar="NAME", help="systemd LoadCredential= name")
    p.add_argument("--token-command", metavar="CMD", help="OAuth2: prints an access token")
    p.add_argument(
        "--state",
        metavar="PATH",
        help="the state file (default: in $STATE_DIRECTORY when set; for a DIR under "
        "/etc, /var/lib/inboxwatch/NAME/inboxwatch.json as the systemd units expect; "
        "else state/inboxwatch.json beside config.toml)",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any other key, e.g. imap.port=1993 or 'imap.cafile=\"/etc/ca.pem\"' (TOML value)",
    )
    p.add_argument("--force", action="store_true", help="replace files that exist")
    p.add_argument(
        "--probe",
        action="store_true",
        help="log in once: find the Sent folder and whether IDLE is offered",
    )


def _password(args: argparse.Namespace) -> dict[str, str]:
    for key in SOURCES:
        value = getattr(args, key, None)
        if value:
            if key == "password_file":  # the config may move; the file does not
                value = str(Path(value).expanduser().resolve())
            return {key: value}
    return {"password_env": DEFAULT_PASSWORD_ENV}


def build_config(args: argparse.Namespace, v: dict[str, str]) -> dict[str, Any]:
    """The config.toml document, as a dict for tomli-w."""
    preset: Preset | None = PRESETS.get(args.provider or "")
    domain = v["address"].rpartition("@")[2]
    imap: dict[str, Any] = {}
    smtp: dict[str, Any] = {}
    sending: dict[str, Any] = {}
    if preset is not None:
        imap_host, smtp_host = preset.hosts_for(domain)
        imap = {"host": v["host"] or imap_host, "port": preset.imap_port, "tls": preset.imap_tls}
        smtp = {
            "host": args.smtp_host or (v["host"] or smtp_host),
            "port": preset.smtp_port,
            "tls": preset.smtp_tls,
        }
        sending["max_per_day"] = preset.max_per_day
    else:
        imap = {"host": v["host"], "tls": "ssl"}
        smtp = {"host": args.smtp_host or v["host"], "tls": "starttls"}
    login: dict[str, Any]
    if args.token_command:
        login = {"auth": "oauth2", "token_command": args.token_command}
    else:
        login = _password(args)
    for server in (imap, smtp):
        server.update({"username": v["user"], **login})
    if preset is not None:
        imap["save_sent"] = preset.save_sent
    doc: dict[str, Any] = {
        "timezone": v["timezone"],
        "imap": imap,
        "smtp": smtp,
        "identity": {"address": v["address"].lower(), "name": args.name or domain},
        "team": {"addresses": []},
        "owner": {"address": v["owner"].lower()},
        "state": {"path": state_path(args)},
        "paths": {"rules": "rules", "templates": "templates"},
    }
    if sending:
        doc["sending"] = sending
    for item in args.set:
        set_key(doc, item)
    return doc


def state_path(args: argparse.Namespace) -> str:
    """The [state] path: ``--state``; else ``$STATE_DIRECTORY`` (systemd sets it for a
    unit with StateDirectory=, e.g. ``systemd-run -p StateDirectory=...``); else, for a
    config folder under /etc (a system service: /etc is read-only to it), the folder the
    units in contrib/ give it: /etc/inboxwatch → /var/lib/inboxwatch/default,
    /etc/inboxwatch/shop → /var/lib/inboxwatch/shop; else beside config.toml."""
    if args.state:
        return str(Path(args.state).expanduser().resolve())
    given = os.environ.get("STATE_DIRECTORY", "").split(":")[0]
    if given:
        return str(Path(given) / "inboxwatch.json")
    folder = Path(args.dir).expanduser().resolve()
    if folder == Path("/etc") or Path("/etc") not in folder.parents:
        return _STATE
    mine = Path("/etc/inboxwatch")
    if folder == mine:
        name = "default"
    elif mine in folder.parents:
        name = "-".join(folder.relative_to(mine).parts)
    else:
        name = folder.name
    return str(SYSTEM_STATE / name / "inboxwatch.json")


def set_key(doc: dict[str, Any], item: str) -> None:
    """``section.key=value`` into ``doc``; the value is read as TOML (a number, true,
    "a string", [a, list]) and, if it is none of those, taken as a plain string."""
    key, sep, raw = item.partition("=")
    parts = [p.strip() for p in key.strip().split(".")]
    if not sep or not all(parts):
        raise ConfigError([Problem(WHERE, "--set", f"expected KEY=VALUE, got {item!r}")])
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    table = doc
    for part in parts[:-1]:
        table = table.setdefault(part, {})
        if not isinstance(table, dict):
            raise ConfigError([Problem(WHERE, "--set", f"{key.strip()}: {part} is not a table")])
    if parts[-1] in SOURCES and len(parts) == 2:  # one password source per server
        for other in (*SOURCES, "auth", "token_command"):
            table.pop(other, None)
    table[parts[-1]] = value


def shipped_files() -> Iterator[tuple[Path, Traversable]]:
    """(path under DIR, packaged file) for every starter rule, sequence and template."""
    from inboxwatch.defaults import FOLDERS, folder

    def walk(node: Traversable, rel: Path) -> Iterator[tuple[Path, Traversable]]:
        for child in sorted(node.iterdir(), key=lambda c: c.name):
            if child.is_dir() and not child.name.startswith(("_", ".")):
                yield from walk(child, rel / child.name)
            elif child.is_file() and child.name.endswith(".toml"):
                yield rel / child.name, child

    for name in FOLDERS:
        yield from walk(folder(name), Path(name))


def header(args: argparse.Namespace, now: datetime) -> str:
    made = f"inboxwatch init on {now:%Y-%m-%d}"
    if args.provider:
        made += f" for {PRESETS[args.provider].title} (--provider {args.provider})"
    return (
        f"# Written by {made}.\n"
        "# Every key is explained in config.example.toml (in the source checkout);\n"
        "# `inboxwatch check` validates this file, `inboxwatch init --probe` logs in to both\n"
        "# servers and asks for the Sent folder and IDLE. Relative paths are from this\n"
        "# file's folder.\n\n"
    )


def _make_dirs(target: Path) -> list[Path]:
    """Create ``target`` and missing parents; the ones created, outermost first."""
    missing = [p for p in (target, *target.parents) if not p.exists()]
    target.mkdir(parents=True, exist_ok=True)
    return list(reversed(missing))


def _as_flags(
    problems: list[Problem], stage: Path, target: Path, args: argparse.Namespace
) -> list[Problem]:
    """Problems in the staged files, named as the user gave them: a key set with
    ``--set`` as ``--set imap.port``, any other as the command line's, and a staged
    path (gone once init fails) as the path it would have had."""
    set_keys = {item.partition("=")[0].strip() for item in args.set}
    staged = str(stage / "config.toml")
    out = []
    for p in problems:
        if p.file == staged and p.key in set_keys:
            out.append(Problem(WHERE, f"--set {p.key}", p.message))
        elif p.file == staged:
            out.append(Problem(WHERE, p.key, p.message))
        else:
            out.append(Problem(p.file.replace(str(stage), str(target)), p.key, p.message, p.line))
    return out


def write_config(path: Path, doc: dict[str, Any], head: str) -> None:
    path.write_text(head + tomli_w.dumps(doc), encoding="utf-8")


def cmd_init(args: argparse.Namespace) -> int:
    from inboxwatch.service.commands import load_all

    interactive = sys.stdin is not None and sys.stdin.isatty()
    values = gather(args, input if interactive else None)
    doc = build_config(args, values)
    target: Path = args.dir
    files = [(Path("config.toml"), None), *shipped_files()]
    existing = [target / rel for rel, _ in files if (target / rel).exists()]
    if existing and not args.force:
        why = "exists; not overwritten (--force replaces it)"
        problems = [Problem(str(p), "", why) for p in existing[:3]]
        if len(existing) > 3:
            problems.append(Problem(str(target), "", f"and {len(existing) - 3} more files exist"))
        raise ConfigError(problems)
    head = header(args, datetime.now(UTC))
    made = _make_dirs(target)
    try:
        with tempfile.TemporaryDirectory(dir=target, prefix=".inboxwatch-init-") as tmp:
            stage = Path(tmp)
            for rel, src in files:
                if src is not None:
                    (stage / rel).parent.mkdir(parents=True, exist_ok=True)
                    (stage / rel).write_bytes(src.read_bytes())
            write_config(stage / "config.toml", doc, head)
            try:
                _, book = load_all(stage / "config.toml")  # what `inboxwatch check` does
            except ConfigError as exc:
                raise ConfigError(_as_flags(exc.problems, stage, target, args)) from None
            if args.probe:
                try:
                    _probe_into(doc, stage / "config.toml", args)
                except ConfigError as exc:  # a password that cannot be read, say
                    raise ConfigError(_as_flags(exc.problems, stage, target, args)) from None
                except InboxwatchError as exc:  # "<staged>/config.toml: imap.token_command: .."
                    staged = str(stage / "config.toml")
                    text = str(exc).replace(f"{staged}: ", "").replace(staged, WHERE)
                    raise InboxwatchError(text) from None
                write_config(stage / "config.toml", doc, head)
                _, book = load_all(stage / "config.toml")
            for rel, _ in files:
                (target / rel).parent.mkdir(parents=True, exist_ok=True)
                os.replace(stage / rel, target / rel)
    except BaseException:
        for folder in reversed(made):  # leave no empty folder behind a failure
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise
    config = target / "config.toml"
    counts = ", ".join(
        counted(n, what)
        for n, what in (
            (len(book.rules), "rule"),
            (len(book.sequences), "sequence"),
            (len(book.templates), "template"),
        )
    )
    print(f"{config}: written ({counts} in {target / 'rules'} and {target / 'templates'})")
    name = doc["identity"]["name"]
    why = "--name" if args.name else "the address's domain, as no --name was given"
    print(
        f"name: mail is sent and signed as {name!r} ({why}); [identity] name in {config} changes it"
    )
    preset = PRESETS.get(args.provider or "")
    if preset is not None:
        print(f"{preset.title}: {login_note(args)}")
    print(f"login: {_login_line(doc['imap'])}")
    state = doc["state"]["path"]
    if not args.state and Path(state).is_absolute():
        print(f"state: {state} (the systemd units' StateDirectory; --state chooses another)")
    if forms := form_senders_note(book, doc["identity"]["address"], target / "rules"):
        print(forms)
    print(f"next: inboxwatch check --config {config}; inboxwatch run --config {config}")
    return 0


def _login_line(imap: dict[str, Any]) -> str:
    """How the written config logs in, in the words of its keys."""
    if imap.get("auth") == "oauth2":
        return f"OAuth2, the access token printed by token_command {imap['token_command']!r}"
    if imap.get("password_env"):
        return f"the password is read from ${imap['password_env']} (imap/smtp password_env)"
    for key in SOURCES[1:]:
        if imap.get(key):
            return f"the password from {key} {imap[key]!r}"
    return "as written in [imap] and [smtp]"


def _probe_into(doc: dict[str, Any], path: Path, args: argparse.Namespace) -> None:
    """Log in with the staged config and write what the server said into ``doc``."""
    from inboxwatch.adapters.oauth import credentials
    from inboxwatch.service.mailbox_probe import probe, probe_smtp
    from inboxwatch.userfiles.config import load_config

    cfg = load_config(path)
    preset = PRESETS.get(args.provider or "")
    imap_login, smtp_login = credentials(cfg)
    found = probe(cfg.imap, imap_login, preset.sent if preset else "")
    imap = doc["imap"]
    imap["idle"] = found.idle
    if found.sent is not None:
        imap["sent"] = found.sent
    how = "\\Sent flag" if found.sent_by_flag else "its usual name"
    sent = f'Sent folder "{found.sent}" ({how})' if found.sent else "no Sent folder found"
    print(
        f"probe: logged in to {cfg.imap.host} as {cfg.imap.username}; {sent}; "
        f"IDLE {'offered' if found.idle else 'not offered: polling'}"
    )
    print(f"probe: {probe_smtp(cfg.smtp, smtp_login)}")
