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
`inboxwatch check` would (and probed with ``--probe``), then moved into place: a
failure leaves DIR as it was. Nothing that exists is replaced without ``--force``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import tomllib
import zoneinfo
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import tomli_w

from inboxwatch.core.message import is_valid_address
from inboxwatch.errors import ConfigError, Problem
from inboxwatch.userfiles.presets import PRESETS, Preset

#: The one password source both servers share unless told otherwise (one mailbox).
DEFAULT_PASSWORD_ENV = "INBOXWATCH_PASSWORD"
SOURCES = ("password_env", "password_file", "password_command", "password_credential")
WHERE = "command line"
_STATE = "state/inboxwatch.json"  # beside config.toml


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
        help="the state file (default: state/inboxwatch.json beside config.toml; "
        "under systemd: in the unit's StateDirectory, /var/lib/inboxwatch)",
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


@dataclass(frozen=True)
class Question:
    key: str
    prompt: str
    default: Callable[[dict[str, str]], str] = lambda v: ""


def _local_zone() -> str:
    """The machine's zone name, offered as the default when asking (never assumed)."""
    tz = os.environ.get("TZ", "").lstrip(":")
    if tz and "/" in tz:
        return tz
    try:
        link = os.readlink("/etc/localtime")
    except OSError:
        return "UTC"
    return link.split("zoneinfo/", 1)[1] if "zoneinfo/" in link else "UTC"


QUESTIONS = (
    Question("host", "IMAP server (e.g. imap.example.com)"),
    Question("user", "mailbox login (user name)"),
    Question("address", "business address leads write to", lambda v: _mailish(v.get("user"))),
    Question("owner", "owner's address (alerts, digest)"),
    Question("timezone", "time zone of the business", lambda v: _local_zone()),
)


def _mailish(value: str | None) -> str:
    return value if value and "@" in value else ""


def gather(args: argparse.Namespace, ask: Callable[[str], str] | None) -> dict[str, str]:
    """The answers: flags first, then questions (``ask`` is None when not interactive)."""
    preset = PRESETS.get(args.provider or "")
    values = {q.key: (getattr(args, q.key, None) or "").strip() for q in QUESTIONS}
    values["address"] = values["address"] or _mailish(values["user"])
    problems: list[Problem] = []
    for q in QUESTIONS:
        if values[q.key] or (q.key == "host" and preset is not None):
            continue
        default = q.default(values)
        if ask is not None:
            shown = f" [{default}]" if default else ""
            values[q.key] = ask(f"{q.prompt}{shown}: ").strip() or default
        if not values[q.key]:
            problems.append(Problem(WHERE, f"--{q.key}", f"missing: {q.prompt}"))
    if preset is None and not args.smtp_host:
        guess = smtp_guess(values["host"])
        answer = ask(f"SMTP server [{guess}]: ").strip() if ask is not None else ""
        args.smtp_host = answer or guess
    if preset is not None and preset.auth == "oauth2" and not args.token_command:
        if ask is not None:
            args.token_command = ask("command that prints an OAuth2 access token: ").strip()
        if not args.token_command:
            problems.append(
                Problem(WHERE, "--token-command", f"missing: {preset.title} {preset.login_note}")
            )
    if problems:
        raise ConfigError(problems)
    for key in ("address", "owner"):
        if not is_valid_address(values[key]):
            problems.append(Problem(WHERE, f"--{key}", f"not an email address: {values[key]!r}"))
    try:
        zoneinfo.ZoneInfo(values["timezone"])
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        problems.append(
            Problem(WHERE, "--timezone", f"unknown IANA time zone {values['timezone']!r}")
        )
    if problems:
        raise ConfigError(problems)
    return values


def smtp_guess(imap_host: str) -> str:
    """imap.example.com → smtp.example.com (the usual pair); otherwise the same host."""
    head, dot, rest = imap_host.partition(".")
    return f"smtp.{rest}" if dot and head.lower() == "imap" else imap_host


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
        "state": {"path": str(Path(args.state).expanduser().resolve()) if args.state else _STATE},
        "paths": {"rules": "rules", "templates": "templates"},
    }
    if sending:
        doc["sending"] = sending
    for item in args.set:
        set_key(doc, item)
    return doc


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
        "# Every key is explained in config.example.toml (in the source and on the project\n"
        "# page); `inboxwatch check` validates this file, `inboxwatch init --probe` asks the\n"
        "# server for the Sent folder and IDLE. Relative paths are from this file's folder.\n\n"
    )


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
    target.mkdir(parents=True, exist_ok=True)
    head = header(args, datetime.now(UTC))
    with tempfile.TemporaryDirectory(dir=target, prefix=".inboxwatch-init-") as tmp:
        stage = Path(tmp)
        for rel, src in files:
            if src is not None:
                (stage / rel).parent.mkdir(parents=True, exist_ok=True)
                (stage / rel).write_bytes(src.read_bytes())
        write_config(stage / "config.toml", doc, head)
        if args.probe:
            _probe_into(doc, stage / "config.toml", args)
            write_config(stage / "config.toml", doc, head)
        _, book = load_all(stage / "config.toml")  # what `inboxwatch check` does
        for rel, _ in files:
            (target / rel).parent.mkdir(parents=True, exist_ok=True)
            os.replace(stage / rel, target / rel)
    config = target / "config.toml"
    print(
        f"{config}: written ({len(book.rules)} rules, {len(book.sequences)} sequences, "
        f"{len(book.templates)} templates in {target / 'rules'} and {target / 'templates'})"
    )
    preset = PRESETS.get(args.provider or "")
    if preset is not None:
        print(f"{preset.title}: {preset.login_note}")
    env = doc["imap"].get("password_env")
    if env:
        print(f"the password is read from ${env} (or change [imap]/[smtp] password_*)")
    print(f"next: inboxwatch check --config {config}; inboxwatch run --config {config}")
    return 0


def _probe_into(doc: dict[str, Any], path: Path, args: argparse.Namespace) -> None:
    """Log in with the staged config and write what the server said into ``doc``."""
    from inboxwatch.adapters.oauth import credentials
    from inboxwatch.service.mailbox_probe import probe
    from inboxwatch.userfiles.config import load_config

    cfg = load_config(path)
    preset = PRESETS.get(args.provider or "")
    found = probe(cfg.imap, credentials(cfg)[0], preset.sent if preset else "")
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
