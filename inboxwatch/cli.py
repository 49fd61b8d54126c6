"""Command line. One clear line per error on stderr; a traceback only with ``--debug``.

Exit codes: 0 ok, 2 usage or configuration error, 1 anything else; 141 when the
reader of stdout went away (``| head``), quietly.
"""

from __future__ import annotations

import argparse
import logging
import os
import select
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

from inboxwatch import __version__
from inboxwatch.errors import ConfigError, InboxwatchError

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2
EXIT_BROKEN_PIPE = 128 + 13  # SIGPIPE, as a shell reports a tool it stopped
log = logging.getLogger("inboxwatch")


def parseargs(argv: Sequence[str] | None) -> argparse.Namespace:
    from inboxwatch.service.digest_command import add_arguments as digest_arguments
    from inboxwatch.service.export_command import add_arguments as export_arguments
    from inboxwatch.service.forget_command import add_arguments as forget_arguments
    from inboxwatch.service.init_command import add_arguments as init_arguments
    from inboxwatch.service.stats_command import since_date  # light: no config, no store

    p = argparse.ArgumentParser(
        prog="inboxwatch", description="Lead follow-up from a business's email inbox."
    )
    p.add_argument("--version", action="version", version=f"inboxwatch {__version__}")
    p.add_argument("--debug", action="store_true", help="show tracebacks and protocol detail")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def cmd(name: str, help: str) -> argparse.ArgumentParser:
        c = sub.add_parser(name, help=help, description=help)
        c.add_argument(
            "--config",
            "-c",
            type=Path,
            default=Path("config.toml"),
            metavar="FILE",
            help="the config file (default: ./config.toml, in the current folder)",
        )
        c.add_argument("--debug", action="store_true", default=argparse.SUPPRESS)
        return c

    c = sub.add_parser(
        "init",
        help="write a working config.toml and starter rules and templates into DIR",
        description="Write DIR/config.toml (asking for what is missing when run in a "
        "terminal) and starter rules/ and templates/. Nothing that exists is replaced "
        "without --force.",
    )
    c.add_argument("--debug", action="store_true", default=argparse.SUPPRESS)
    init_arguments(c)
    cmd("check", "validate config, rules, sequences and templates (no network)")
    c = cmd("classify", "try the rules on saved messages; sends nothing")
    c.add_argument("files", nargs="+", type=Path, metavar="FILE.eml")
    c.add_argument("--json", action="store_true", help="one JSON object per line")
    c = cmd("preview", "render a template as the lead would receive it")
    c.add_argument("template", help="template name (file name without .toml)")
    c.add_argument("--lead", type=Path, metavar="FILE.eml", help="take the lead from this enquiry")
    c = cmd("run", "watch the inbox, acknowledge and follow up")
    c.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        metavar="N",
        help="run the cadence clock N times faster (demos and trials)",
    )
    c.add_argument(
        "--force",
        action="store_true",
        help="allow --time-scale with non-loopback servers or an existing state",
    )
    c.add_argument("--once", action="store_true", help="one pass, then exit")
    c.add_argument(
        "--dry-run",
        action="store_true",
        help="read and decide, log every message it would send; send, write and change "
        "nothing (safe beside a running daemon)",
    )
    c = cmd("status", "is the daemon running, what waits, what is wrong (exit 1 if not well)")
    c.add_argument("--json", action="store_true", help="one JSON object")
    c = cmd("leads", "list leads")
    c.add_argument("--json", action="store_true")
    c.add_argument("--all", action="store_true", help="include closed leads from the archive")
    c = cmd("stats", "first-response times, replies per step, endings (from the history)")
    c.add_argument(
        "--since",
        type=since_date,
        metavar="YYYY-MM-DD",
        help="count from this local day (default: the last 30 days)",
    )
    c.add_argument("--json", action="store_true", help="one JSON object")
    c = cmd("digest", "the owner's daily digest now: print it, write its HTML, or mail it")
    digest_arguments(c)
    for name, help in (
        ("show", "print a lead's timeline"),
        ("stop", "stop the automation for a lead (a person takes over)"),
        ("unsuppress", "remove an address from the suppression list"),
    ):
        c = cmd(name, help)
        c.add_argument("address")
    cmd("test-send", "mail the owner one sample of each template (checks SMTP too)")
    export_arguments(cmd("export", "every lead, active and archived, with its timeline"))
    forget_arguments(cmd("forget", "erase everything stored about an address (a privacy request)"))
    c = cmd("pause", "hold all mail to leads (holiday); new leads are still recorded")
    c.add_argument(
        "--until",
        metavar="DATE",
        help="end the pause then, in the business's timezone: YYYY-MM-DD (at 00:00 that "
        "day) or YYYY-MM-DDTHH:MM",
    )
    c = cmd("resume", "end a pause; with ADDRESS: restart a stopped lead where it stood")
    c.add_argument("address", nargs="?", help="the lead (none: the whole daemon)")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = parseargs(argv)
    except SystemExit as exc:  # argparse: usage errors are 2, --help is 0
        return int(exc.code or 0)
    setup_logging(args.debug)
    try:
        result = _dispatch(args)
        sys.stdout.flush()  # here, where a closed pipe is caught, not at interpreter exit
        return result
    except ConfigError as exc:
        if args.debug:
            traceback.print_exc()
        for problem in exc.problems:
            print(f"inboxwatch: {problem}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError as exc:  # before OSError: a closed stdout is not an error of ours
        if _stdout_closed():
            return _closed_pipe()
        if args.debug:
            traceback.print_exc()
        print(f"inboxwatch: {exc}", file=sys.stderr)  # a socket's, say: a real error
        return EXIT_ERROR
    except (InboxwatchError, OSError) as exc:
        if args.debug:
            traceback.print_exc()
        print(f"inboxwatch: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130


def _stdout_closed() -> bool:
    """Whether stdout is a pipe nobody reads any more (poll(2) reports POLLERR on it)."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # a replaced stdout (tests)
        return False
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    return any(events & select.POLLERR for _, events in poller.poll(0))


def _closed_pipe() -> int:
    """The reader went away (``inboxwatch export | head``): stop quietly, as Unix tools do.

    stdout is pointed at /dev/null first, so the flush at interpreter exit finds nowhere
    to fail and prints no "Exception ignored" (the recipe in Python's ``signal`` docs,
    "Note on SIGPIPE"). 141 is what a shell reports for a tool killed by SIGPIPE.
    """
    fd = sys.stdout.fileno()
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)
    return EXIT_BROKEN_PIPE


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to the *current* sys.stderr, so a replaced stream is never written after close."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


class _LibraryFilter(logging.Filter):
    """Third-party records pass at ERROR and above; with --debug, all of them."""

    def __init__(self) -> None:
        super().__init__()
        self.threshold = logging.ERROR

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= self.threshold


#: sd-daemon(3) priority prefixes: journald reads "<N>" at the start of a line as its level.
SYSLOG_LEVELS = ((logging.ERROR, 3), (logging.WARNING, 4), (logging.INFO, 6))


class JournalFormatter(logging.Formatter):
    """``<N>message``: a level journald understands and no time stamp of our own
    (journald stamps every line; a second one only makes the line longer)."""

    def format(self, record: logging.LogRecord) -> str:
        level = next((n for at, n in SYSLOG_LEVELS if record.levelno >= at), 7)
        if record.levelno >= logging.CRITICAL:
            level = 2
        # Every line of a traceback keeps the level: journald reads each line alone.
        return "\n".join(f"<{level}>{line}" for line in super().format(record).splitlines())


def stderr_is_journal() -> bool:
    """systemd sets ``JOURNAL_STREAM=dev:inode`` for a service whose stderr is journald; a
    child process that inherited the variable but writes elsewhere must not match
    (systemd.exec(5): compare with stderr's own device and inode)."""
    want = os.environ.get("JOURNAL_STREAM", "")
    dev, _, ino = want.partition(":")
    try:
        st = os.fstat(2)
    except OSError:
        return False
    return bool(ino) and f"{st.st_dev}:{st.st_ino}" == f"{dev}:{ino}"


def setup_logging(debug: bool) -> None:
    """One line per event on stderr, ours and libraries'.

    In a terminal each line starts with the time and the level. Under systemd, when
    stderr is journald (:func:`stderr_is_journal`), a line is ``<N>message``: journald
    takes the level from the prefix (``journalctl -p warning`` works) and adds the time.
    Third-party loggers (mail-parser, imapclient, aiosmtplib, asyncio, ...) go through the
    same format via the root logger and are quiet unless --debug: only their errors show.
    So mail-parser's "Email content 'alternative' not handled" warning no longer reaches
    the terminal through Python's last-resort handler. imapclient's protocol log (--debug)
    redacts the password on LOGIN, so even then no secret is written.
    """
    journal = stderr_is_journal()
    ours: logging.Formatter
    libraries: logging.Formatter
    if journal:
        ours, libraries = JournalFormatter("%(message)s"), JournalFormatter("%(name)s: %(message)s")
    else:
        ours = logging.Formatter("%(asctime)s %(levelname)s %(message)s")
        libraries = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    logger = logging.getLogger("inboxwatch")
    handlers = [h for h in logger.handlers if getattr(h, "_inboxwatch", False)]
    if handlers:
        handler = handlers[0]
    else:
        handler = _StderrHandler(sys.stderr)
        handler._inboxwatch = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
    handler.setFormatter(ours)
    logger.setLevel(logging.DEBUG if debug else logging.INFO)
    logger.propagate = False

    root = logging.getLogger()
    mine = [h for h in root.handlers if getattr(h, "_inboxwatch_libraries", False)]
    if mine:
        lib = mine[0]
    else:
        lib = _StderrHandler(sys.stderr)
        lib.addFilter(_LibraryFilter())
        lib._inboxwatch_libraries = True  # type: ignore[attr-defined]
        root.addHandler(lib)
    lib.setFormatter(libraries)
    for f in lib.filters:
        if isinstance(f, _LibraryFilter):
            f.threshold = logging.DEBUG if debug else logging.ERROR
    root.setLevel(logging.DEBUG if debug else logging.WARNING)
    if debug:
        logging.getLogger("imapclient").setLevel(logging.DEBUG)


def _dispatch(args: argparse.Namespace) -> int:
    from inboxwatch.service import (
        commands,
        digest_command,
        export_command,
        forget_command,
        init_command,
        lead_commands,
        stats_command,
        status_command,
        test_send_command,
    )

    name = f"cmd_{args.command.replace('-', '_')}"
    handler = (
        getattr(commands, name, None)
        or getattr(init_command, name, None)
        or getattr(export_command, name, None)
        or getattr(forget_command, name, None)
        or getattr(lead_commands, name, None)
        or getattr(status_command, name, None)
        or getattr(test_send_command, name, None)
        or getattr(digest_command, name, None)
        or getattr(stats_command, name)
    )
    result: int = handler(args)
    return result
