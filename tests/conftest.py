"""Shared fixtures: one private Dovecot + SMTP stand-in for the whole test session.

Starting Dovecot costs ~0.1 s and stopping it ~1.1 s, so it runs once per session; tests
keep out of each other's way by taking their own lead mailbox from ``fresh_user``.
"""

from __future__ import annotations

import gc
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from inboxwatch.adapters.imap import LoginFailed, Mailbox
from inboxwatch.testing.devservers import MailServers, dovecot_missing
from inboxwatch.testing.faultysmtp import FaultySmtp

# CI explores the same examples every run: a red build must be reproducible.
settings.register_profile("ci", derandomize=True, deadline=None)
if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
    settings.load_profile("ci")

BUSINESS = "shop"  # the mailbox the daemon watches
#: Leads live in another domain, as customers do (mail from our own domain is never a lead).
LEADS = tuple(f"lead{i}@customer.test" for i in range(1, 41))
#: One business mailbox per daemon test, so each daemon starts on an inbox of its own.
SHOPS = tuple(f"shop{i}" for i in range(1, 201))
USERS = (BUSINESS, "owner", "team", *LEADS, *SHOPS)


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


class LeadPool:
    """Hands out each lead mailbox once per session, so no test sees another's mail."""

    def __init__(self, names: tuple[str, ...]) -> None:
        self._free = list(names)
        self._size = len(names)

    def take(self) -> str:
        if not self._free:
            raise RuntimeError(
                f"all {self._size} mailboxes of this pool are taken: add more in tests/conftest.py"
            )
        return self._free.pop(0)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests using the servers are marked ``servers`` even if they forgot to say so."""
    for item in items:
        if "mail_servers" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.servers)


@pytest.fixture(scope="session")
def mail_servers() -> Iterator[MailServers]:
    """Dovecot (IMAP, IMAPS, LMTP) and the SMTP stand-in, with TLS, for the session.

    Skipped when Dovecot is missing on a developer machine; under CI that is a failure.
    """
    missing = dovecot_missing()
    if missing is not None:
        if _in_ci():
            pytest.fail(f"CI must run the server tests, but {missing}", pytrace=False)
        pytest.skip(missing)
    # Not under pytest's basetemp: a second pytest run on the same machine prunes old
    # basetemp folders, and Dovecot must not lose its homes under a running session.
    workdir = Path(tempfile.mkdtemp(prefix="inboxwatch-mail-"))
    servers = MailServers(workdir, USERS, tls=True)
    servers.start()
    try:
        yield servers
    finally:
        servers.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def lead_pool() -> LeadPool:
    return LeadPool(LEADS)


@pytest.fixture(scope="session")
def shop_pool() -> LeadPool:
    return LeadPool(SHOPS)


@pytest.fixture
def shop(mail_servers: MailServers, shop_pool: LeadPool) -> str:
    """A business mailbox (local part) no other test's daemon has watched."""
    return shop_pool.take()


@pytest.fixture
def fresh_user(mail_servers: MailServers, lead_pool: LeadPool) -> str:
    """A lead mailbox (local part) no other test has used."""
    return lead_pool.take()


@pytest.fixture(autouse=True)
def _logging_isolated() -> Iterator[None]:
    """Logging is global: a test that quiets a library (``mailparser`` to ERROR) or runs
    ``cli.main`` (handlers, levels, no propagation) would change what later tests see.
    Each logger that existed before the test gets its level, propagation, handlers and
    ``disabled`` back (pytest's own handlers on the root are the same objects each phase)."""
    loggers = [logging.root, *logging.root.manager.loggerDict.values()]
    saved = [
        (x, x.level, x.propagate, x.disabled, list(x.handlers))
        for x in loggers
        if isinstance(x, logging.Logger)
    ]
    disabled_below = logging.root.manager.disable
    yield
    for logger, level, propagate, disabled, handlers in saved:
        if logger.level != level:
            logger.setLevel(level)
        logger.propagate, logger.disabled = propagate, disabled
        logger.handlers[:] = handlers
    logging.disable(disabled_below)


@pytest.fixture(autouse=True)
def _collect_garbage(request: pytest.FixtureRequest) -> Iterator[None]:
    """Leaked sockets warn at garbage collection: make that happen in the test that leaked
    (only the tests that open connections; a collection costs ~20 ms)."""
    yield
    if request.node.get_closest_marker("servers") or "smtp" in request.node.name:
        gc.collect()


@pytest.fixture(scope="module")
def faulty() -> Iterator[FaultySmtp]:
    """A controllable SMTP server (:mod:`inboxwatch.testing.faultysmtp`), one per module."""
    with FaultySmtp() as smtp:
        yield smtp


@pytest.fixture
def server(faulty: FaultySmtp) -> FaultySmtp:
    """The module's controllable SMTP server, as new for each test (rules, records)."""
    faulty.reset()
    return faulty


@pytest.fixture
def no_connect(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record any IMAP connection attempt and end the daemon at once (LoginFailed → exit 1)."""
    calls: list[str] = []

    def connect(self: Mailbox) -> None:
        calls.append(f"{self.cfg.host}:{self.cfg.port}")
        raise LoginFailed("test guard: the daemon tried to connect")

    monkeypatch.setattr(Mailbox, "connect", connect)
    return calls
