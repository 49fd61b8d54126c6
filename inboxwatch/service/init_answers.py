"""`inboxwatch init`'s answers: flags first, then questions in a terminal.

Kept apart from writing the files (:mod:`inboxwatch.service.init_command`): what is
asked, what a missing or contradictory flag is called, and the login note that fits
what was chosen. Flags that contradict each other are an error naming both, never one
of them silently dropped; an empty answer to a required question is asked again, a
bounded number of times, so a stray Enter does not end in "--owner: missing" after
every other question.
"""

from __future__ import annotations

import argparse
import os
import sys
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass

from inboxwatch.core.message import is_valid_address
from inboxwatch.errors import ConfigError, Problem
from inboxwatch.userfiles.presets import PRESETS

#: The one password source both servers share unless told otherwise (one mailbox).
DEFAULT_PASSWORD_ENV = "INBOXWATCH_PASSWORD"
SOURCES = ("password_env", "password_file", "password_command", "password_credential")
WHERE = "command line"
#: How many empty answers to a required question before init gives up (exit 2).
MAX_EMPTY_ANSWERS = 3


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


def _answer(ask: Callable[[str], str], q: Question, default: str) -> str:
    """Ask until there is an answer (or a default): a required value is asked again
    after an empty answer, at most :data:`MAX_EMPTY_ANSWERS` times in all."""
    shown = f" [{default}]" if default else ""
    for _ in range(MAX_EMPTY_ANSWERS):
        answer = ask(f"{q.prompt}{shown}: ").strip() or default
        if answer:
            return answer
        print(f"  {q.prompt}: an answer is needed (Ctrl-C stops)", file=sys.stderr)
    return ""


def _missing(q: Question, values: dict[str, str]) -> str:
    """Why a value is missing, in terms of what the user typed."""
    user = values.get("user", "")
    if q.key == "address" and user and not _mailish(user):
        return (
            f"--user {user!r} is not an email address, so it cannot be the business "
            "address too: give that with --address"
        )
    return f"missing: {q.prompt}"


def password_flag(args: argparse.Namespace) -> str:
    """The ``--password-*`` flag given, as typed ("" when none)."""
    key = next((k for k in SOURCES if getattr(args, k, None)), "")
    return f"--{key.replace('_', '-')}" if key else ""


def check_flags(args: argparse.Namespace) -> None:
    """Flags that contradict each other are an error, never silently dropped: each
    problem names both flags (exit 2, before anything is asked or written)."""
    preset = PRESETS.get(args.provider or "")
    given = password_flag(args)
    problems: list[Problem] = []
    if args.token_command and given:
        why = f"conflicts with {given}: OAuth2 (a token) or a password, not both"
        problems.append(Problem(WHERE, "--token-command", why))
    elif preset is not None and args.token_command and preset.auth != "oauth2":
        why = (
            f"conflicts with --provider {preset.name}: {preset.title} logs in with a "
            f"password here ({preset.login_note}); drop --token-command"
        )
        problems.append(Problem(WHERE, "--token-command", why))
    elif preset is not None and given and preset.auth == "oauth2" and not preset.password_note:
        why = (
            f"conflicts with --provider {preset.name}: {preset.title} takes no password "
            f"over IMAP; {preset.login_note}"
        )
        problems.append(Problem(WHERE, given, why))
    if problems:
        raise ConfigError(problems)


def login_note(args: argparse.Namespace) -> str:
    """What to prepare for the login that was written (the preset's note may be about
    OAuth2 while an app password was chosen, as Google allows)."""
    preset = PRESETS.get(args.provider or "")
    if preset is None:
        return ""
    if preset.auth == "oauth2" and not args.token_command and preset.password_note:
        return preset.password_note
    return preset.login_note


def gather(args: argparse.Namespace, ask: Callable[[str], str] | None) -> dict[str, str]:
    """The answers: flags first, then questions (``ask`` is None when not interactive)."""
    check_flags(args)
    preset = PRESETS.get(args.provider or "")
    values = {q.key: (getattr(args, q.key, None) or "").strip() for q in QUESTIONS}
    values["address"] = values["address"] or _mailish(values["user"])
    problems: list[Problem] = []
    for q in QUESTIONS:
        if values[q.key] or (q.key == "host" and preset is not None):
            continue
        default = q.default(values)
        if ask is not None:
            values[q.key] = _answer(ask, q, default)
        if not values[q.key]:
            problems.append(Problem(WHERE, f"--{q.key}", _missing(q, values)))
    if preset is None and not args.smtp_host:
        guess = smtp_guess(values["host"])
        answer = ask(f"SMTP server [{guess}]: ").strip() if ask is not None else ""
        args.smtp_host = answer or guess
    wants_token = preset is not None and preset.auth == "oauth2" and not password_flag(args)
    if preset is not None and wants_token and not args.token_command:
        if ask is not None:
            token = Question("token_command", "command that prints an OAuth2 access token")
            args.token_command = _answer(ask, token, "")
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
