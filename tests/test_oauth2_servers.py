"""OAuth2 logins against real servers (issue 13): a Dovecot whose ``oauth2`` passdb checks
tokens at a token-introspection endpoint on 127.0.0.1, and an aiosmtpd server that
accepts only AUTH XOAUTH2 and refuses a bad token as Gmail does.

The token command is a real helper script that counts its runs, so "once per expiry,
not once per connection" is counted, not assumed. Cases that make Dovecot refuse a
login come last in the file: Dovecot is slower to answer after a failure.
"""

from __future__ import annotations

import base64
import dataclasses
import logging
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from harness import REPO

from inboxwatch.adapters.imap import LoginFailed, Mailbox
from inboxwatch.adapters.imap_source import ImapSource
from inboxwatch.adapters.oauth import OAuth2Login, TokenError, TokenProvider, credentials
from inboxwatch.adapters.ports import Envelope, Outcome
from inboxwatch.adapters.smtp import SmtpSender
from inboxwatch.adapters.tinydb_store import TinyDbStore
from inboxwatch.core.delivery import MAILBOX_UNREACHABLE
from inboxwatch.errors import TransientError
from inboxwatch.service.clock import FixedClock
from inboxwatch.service.commands import load_all
from inboxwatch.service.runner import make_daemon
from inboxwatch.testing.devservers import MailServers, dovecot_missing
from inboxwatch.testing.mailfactory import mail
from inboxwatch.testing.oauth2_servers import (
    OAuth2Dovecot,
    TokenIssuer,
    XOAuth2Log,
    runs_of,
    start_xoauth2_smtp,
    token_script,
)
from inboxwatch.userfiles.config import ImapConfig, Secret, ServerConfig

pytestmark = pytest.mark.servers

USERS = ("shop", "shop2", "shop3", "owner")


class FakeClock:
    """Monotonic seconds that move only when told (shared by the issuer and the provider)."""

    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="module")
def issuer(clock: FakeClock) -> Iterator[TokenIssuer]:
    made = TokenIssuer(clock)
    made.start()
    try:
        yield made
    finally:
        made.stop()


@pytest.fixture(scope="module")
def dovecot(issuer: TokenIssuer) -> Iterator[OAuth2Dovecot]:
    missing = dovecot_missing()
    if missing is not None:
        pytest.skip(missing)
    workdir = Path(tempfile.mkdtemp(prefix="inboxwatch-oauth2-"))
    server = OAuth2Dovecot(workdir, USERS, issuer)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="module")
def smtp(issuer: TokenIssuer) -> Iterator[tuple[int, XOAuth2Log]]:
    controller, port, seen = start_xoauth2_smtp(issuer)
    try:
        yield port, seen
    finally:
        controller.stop()


@dataclasses.dataclass
class Helper:
    """A token command (a script) and the file it prints the token from."""

    command: str
    token_file: Path
    runs: Path

    def hand_out(self, token: str) -> None:
        self.token_file.write_text(token + "\n")

    @property
    def count(self) -> int:
        return runs_of(self.runs)


@pytest.fixture
def helper(tmp_path: Path) -> Helper:
    token_file = tmp_path / "token"
    token_file.write_text("FAIL")
    command, runs = token_script(tmp_path / "helper", token_file)
    return Helper(command, token_file, runs)


def imap_config(dovecot: OAuth2Dovecot, user: str, mechanism: str = "xoauth2") -> ImapConfig:
    return ImapConfig(
        host="127.0.0.1",
        port=dovecot.imap_port,
        tls="none",
        username=dovecot.address(user),
        password=Secret("config.toml", "imap"),
        timeout=10,
        auth="oauth2",
        token_key="imap.token_command",
        oauth2_mechanism=mechanism,
    )


def login(helper: Helper, clock: FakeClock, mechanism: str = "xoauth2") -> OAuth2Login:
    where = "config.toml: imap.token_command"
    provider = TokenProvider(helper.command, where=where, lifetime=600, clock=clock)
    return OAuth2Login(provider, mechanism)


def connect_once(cfg: ImapConfig, cred: OAuth2Login) -> None:
    box = Mailbox(cfg, cred)
    box.connect()
    try:
        assert box.select("INBOX").uidvalidity > 0  # logged in as that user, for real
    finally:
        box.close()


# -- IMAP ---------------------------------------------------------------------------------


@pytest.mark.parametrize("mechanism", ["xoauth2", "oauthbearer"])
def test_imap_logs_in_with_a_valid_token(
    dovecot: OAuth2Dovecot,
    issuer: TokenIssuer,
    helper: Helper,
    clock: FakeClock,
    mechanism: str,
) -> None:
    helper.hand_out(issuer.issue(dovecot.address("shop")))
    asked = issuer.introspections
    connect_once(imap_config(dovecot, "shop", mechanism), login(helper, clock, mechanism))
    assert issuer.introspections == asked + 1  # Dovecot checked the token at the endpoint
    assert helper.count == 1


@pytest.mark.parametrize("mechanism", ["xoauth2", "oauthbearer"])
def test_the_token_never_reaches_the_protocol_log(
    dovecot: OAuth2Dovecot,
    issuer: TokenIssuer,
    helper: Helper,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
    mechanism: str,
) -> None:
    caplog.set_level(logging.DEBUG)  # as under --debug: imapclient's protocol log too
    token = issuer.issue(dovecot.address("shop"))
    helper.hand_out(token)
    connect_once(imap_config(dovecot, "shop", mechanism), login(helper, clock, mechanism))
    logged = caplog.text
    assert "AUTHENTICATE **REDACTED**" in logged  # the protocol was logged...
    assert token not in logged  # ...but not the token, plain or inside the SASL string
    assert token[5:20] not in logged
    for sasl in (f"auth=Bearer {token}", token):
        for n in range(3):  # base64 of the string at each of its three alignments
            assert base64.b64encode((" " * n + sasl).encode())[8:40].decode() not in logged


def test_a_short_lived_token_is_renewed_once_per_expiry_not_per_connection(
    dovecot: OAuth2Dovecot, issuer: TokenIssuer, helper: Helper, clock: FakeClock
) -> None:
    cfg = imap_config(dovecot, "shop")
    cred = login(helper, clock)  # lifetime 600 s: renewed from 540 s on (a 60 s margin)
    user = dovecot.address("shop")
    first = issuer.issue(user, lifetime=600)
    helper.hand_out(first)
    for _ in range(3):  # three connections within the token's life: one run
        connect_once(cfg, cred)
        clock.now += 100
    assert helper.count == 1
    clock.now += 250  # 550 s after the first run: inside the margin
    second = issuer.issue(user, lifetime=600)
    helper.hand_out(second)
    connect_once(cfg, cred)
    connect_once(cfg, cred)
    assert helper.count == 2
    clock.now += 60  # the first token has expired by now: the server would refuse it
    assert issuer.user_of(first) is None and issuer.user_of(second) == user
    connect_once(cfg, cred)
    assert helper.count == 2


def test_imap_and_smtp_share_one_token_in_the_daemon(
    dovecot: OAuth2Dovecot,
    issuer: TokenIssuer,
    smtp: tuple[int, XOAuth2Log],
    helper: Helper,
    tmp_path: Path,
) -> None:
    """The whole path: config.toml with auth = "oauth2" for both servers, an enquiry read
    over IMAP and acknowledged over SMTP, with one run of the token command."""
    port, seen = smtp
    helper.hand_out(issuer.issue(dovecot.address("shop2")))
    config = write_config(tmp_path, dovecot, "shop2", port, helper.command)
    cfg, book = load_all(config)
    imap_cred, smtp_cred = credentials(cfg)
    assert isinstance(imap_cred, OAuth2Login) and isinstance(smtp_cred, OAuth2Login)
    now = datetime.now(UTC)
    daemon = make_daemon(cfg, book, (imap_cred, smtp_cred), clock=FixedClock(now))
    try:
        daemon.connect(now)
        daemon.tick(now)  # the first start
        lead = "lead@customer.test"
        dovecot.deliver("shop2", mail(lead, dovecot.address("shop2"), "Price of a roof?"))
        daemon.tick(now + timedelta(seconds=5))
    finally:
        daemon.source.close()
    acks = [m for m in seen.messages if m[1] == (lead,)]
    assert len(acks) == 1 and b"Auto-Submitted: auto-replied" in acks[0][2]
    assert (dovecot.address("shop2"), True) in seen.logins
    assert helper.count == 1


def write_config(
    tmp_path: Path, dovecot: OAuth2Dovecot, user: str, smtp_port: int, cmd: str
) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        f"""\
timezone = "UTC"

[imap]
host = "127.0.0.1"
port = {dovecot.imap_port}
tls = "none"
username = "{dovecot.address(user)}"
auth = "oauth2"
token_command = {cmd!r}
timeout = 10

[smtp]
host = "127.0.0.1"
port = {smtp_port}
tls = "none"
username = "{dovecot.address(user)}"
auth = "oauth2"
timeout = 10

[identity]
address = "{dovecot.address(user)}"
name = "Example Shop"

[owner]
address = "{dovecot.address("owner")}"
alert_command = "sh -c 'cat >> {tmp_path / "alerts.txt"}'"

[state]
path = "{tmp_path / "state" / "inboxwatch.json"}"

[paths]
rules = "{REPO / "rules"}"
templates = "{REPO / "templates"}"

[sending]
window_start = "00:00"
window_end = "23:59"
days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
""",
        encoding="utf-8",
    )
    return path


# -- SMTP ---------------------------------------------------------------------------------


def smtp_config(port: int, user: str) -> ServerConfig:
    return ServerConfig(
        host="127.0.0.1",
        port=port,
        tls="none",
        username=user,
        password=Secret("config.toml", "smtp"),
        timeout=10,
        auth="oauth2",
        token_key="smtp.token_command",
    )


def envelope(sender: str, n: int) -> Envelope:
    raw = mail(sender, "lead@customer.test", f"Re: Quote {n}")
    return Envelope(f"<oauth{n}@t>", sender, "lead@customer.test", raw)


def test_smtp_sends_after_xoauth2(
    issuer: TokenIssuer, smtp: tuple[int, XOAuth2Log], helper: Helper, clock: FakeClock
) -> None:
    port, seen = smtp
    user = "smtp1@example.test"
    helper.hand_out(issuer.issue(user))
    sender = SmtpSender(smtp_config(port, user), login(helper, clock))
    for n in (1, 2):  # two batches, two connections: one token
        env = envelope(user, n)
        assert sender.send([env])[env.id].outcome is Outcome.ACCEPTED
    assert [who for who, ok in seen.logins if who == user] == [user, user]
    assert helper.count == 1


def test_smtp_refusing_a_token_gets_a_fresh_one_and_sends(
    issuer: TokenIssuer, smtp: tuple[int, XOAuth2Log], helper: Helper, clock: FakeClock
) -> None:
    port, seen = smtp
    user = "smtp2@example.test"
    revoked = issuer.issue(user)
    helper.hand_out(revoked)
    cred = login(helper, clock)
    assert cred.provider.token() == revoked  # cached...
    issuer.revoke(revoked)  # ...and then revoked at the provider (a password change)
    helper.hand_out(issuer.issue(user))
    env = envelope(user, 3)
    result = SmtpSender(smtp_config(port, user), cred).send([env])[env.id]
    assert result.outcome is Outcome.ACCEPTED, result.error
    assert [ok for who, ok in seen.logins if who == user] == [False, True]
    assert helper.count == 2


def test_smtp_refusing_the_fresh_token_too_holds_the_batch(
    smtp: tuple[int, XOAuth2Log], helper: Helper, clock: FakeClock
) -> None:
    port, seen = smtp
    user = "smtp3@example.test"
    helper.hand_out("ya29.not-a-token-the-server-knows")
    envs = [envelope(user, 4), envelope(user, 5)]
    results = SmtpSender(smtp_config(port, user), login(helper, clock)).send(envs)
    first, second = results[envs[0].id], results[envs[1].id]
    # As a refused password: the server "cannot be reached", the rest wait, the owner is
    # told after [owner] unreachable_alert_minutes; no lead is blamed.
    assert first.outcome is Outcome.UNREACHABLE
    assert "535" in first.error and "a fresh token from config.toml: imap.token_command" in (
        first.error
    )
    assert "not-a-token" not in first.error
    assert second.outcome is Outcome.UNREACHABLE and not second.attempted
    assert [ok for who, ok in seen.logins if who == user] == [False, False]
    assert helper.count == 2


def test_smtp_without_a_token_is_unreachable_naming_the_key(
    smtp: tuple[int, XOAuth2Log], helper: Helper, clock: FakeClock
) -> None:
    port, seen = smtp
    env = envelope("smtp4@example.test", 6)
    result = SmtpSender(smtp_config(port, "smtp4@example.test"), login(helper, clock)).send([env])
    assert result[env.id].outcome is Outcome.UNREACHABLE
    assert "config.toml: imap.token_command: exited with status 1: invalid_grant" in (
        result[env.id].error
    )
    assert all(who != "smtp4@example.test" for who, _ in seen.logins)  # no AUTH tried


def test_smtp_without_xoauth2_says_what_the_server_offers(
    mail_servers: MailServers, helper: Helper, clock: FakeClock
) -> None:
    """A server that takes passwords only (the session's SMTP stand-in): a login failure
    that names what it offers, and no token is even asked for."""
    user = mail_servers.address("team")
    env = envelope(user, 7)
    cfg = smtp_config(mail_servers.smtp_port, user)
    result = SmtpSender(cfg, login(helper, clock)).send([env])[env.id]
    assert result.outcome is Outcome.UNREACHABLE
    assert "does not offer AUTH XOAUTH2 (it offers LOGIN PLAIN)" in result.error
    assert helper.count == 0


# -- failures with Dovecot (last: Dovecot slows down after a refused login) -------------------


def test_a_failing_token_command_is_a_transient_error_naming_the_key(
    dovecot: OAuth2Dovecot, helper: Helper, clock: FakeClock
) -> None:
    source = ImapSource(imap_config(dovecot, "shop"), login(helper, clock))
    with pytest.raises(TransientError) as info:
        source.open()
    source.close()
    assert isinstance(info.value, TokenError)
    assert str(info.value) == (
        "config.toml: imap.token_command: exited with status 1: "
        "invalid_grant: Token has been expired or revoked."
    )


def test_a_refused_token_is_replaced_once_and_the_login_goes_on(
    dovecot: OAuth2Dovecot, issuer: TokenIssuer, helper: Helper, clock: FakeClock
) -> None:
    cfg = imap_config(dovecot, "shop")
    cred = login(helper, clock)
    revoked = issuer.issue(dovecot.address("shop"))
    helper.hand_out(revoked)
    connect_once(cfg, cred)
    issuer.revoke(revoked)
    helper.hand_out(issuer.issue(dovecot.address("shop")))
    connect_once(cfg, cred)  # refused, renewed, logged in: one connection
    assert helper.count == 2


def test_a_token_refused_twice_is_a_login_failure_without_the_token(
    dovecot: OAuth2Dovecot, issuer: TokenIssuer, helper: Helper, clock: FakeClock
) -> None:
    helper.hand_out("ya29.made-up-token")
    box = Mailbox(imap_config(dovecot, "shop"), login(helper, clock))
    with pytest.raises(LoginFailed) as info:
        box.connect()
    message = str(info.value)
    assert message.startswith("IMAP login failed: ")
    assert "a fresh token from config.toml: imap.token_command was refused too" in message
    assert "made-up-token" not in message
    assert helper.count == 2
    # A token issued for another user is refused as well (the passdb checks the name).
    helper.hand_out(issuer.issue(dovecot.address("owner")))
    with pytest.raises(LoginFailed):
        Mailbox(imap_config(dovecot, "shop"), login(helper, clock)).connect()


def test_the_daemon_retries_a_failing_token_command_and_tells_the_owner(
    dovecot: OAuth2Dovecot,
    issuer: TokenIssuer,
    smtp: tuple[int, XOAuth2Log],
    helper: Helper,
    tmp_path: Path,
) -> None:
    """A refresh token that expired (the helper fails): no crash, no exit; the daemon
    backs off and retries, the owner is told after unreachable_alert_minutes, and the
    daemon goes on by itself once the helper gives tokens again."""
    port, _ = smtp
    config = write_config(tmp_path, dovecot, "shop3", port, helper.command)
    cfg, book = load_all(config)
    start = datetime.now(UTC)
    fake = FixedClock(start)
    daemon = make_daemon(cfg, book, credentials(cfg), clock=fake)
    opened: list[int] = []  # per try: how often the token command ran for it
    real_open = daemon.source.open

    def open_later() -> None:
        fake.set(start + timedelta(minutes=20 * (len(opened) + 1)))  # each retry: 20 min later
        before = helper.count
        try:
            real_open()
        finally:
            opened.append(helper.count - before)

    daemon.source.open = open_later  # type: ignore[method-assign]

    def notices() -> dict[str, Any]:
        # A store of its own, as `inboxwatch status` beside the daemon: the daemon's store
        # object is not shared with this thread (a read could join its open transaction).
        with TinyDbStore.open(cfg.state_path, readonly=True).transaction() as state:
            return {n.key: n for n in state.notices()}

    runner = threading.Thread(target=daemon.run, daemon=True)
    runner.start()
    try:
        deadline = time.monotonic() + 20
        while MAILBOX_UNREACHABLE not in notices() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert runner.is_alive()
        text = notices()[MAILBOX_UNREACHABLE].text
        assert "imap.token_command: exited with status 1: invalid_grant" in text
        assert "imap.token_command" in (tmp_path / "alerts.txt").read_text()
        # Once per try, never in a tight loop. (Counted per try: the owner's notice, sent
        # by SMTP with the same command, may or may not have run it yet at this point.)
        assert len(opened) >= 2 and set(opened) == {1}
        helper.hand_out(issuer.issue(dovecot.address("shop3")))
        while MAILBOX_UNREACHABLE in notices() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert MAILBOX_UNREACHABLE not in notices() and daemon.connected
    finally:
        daemon.stop_event.set()
        runner.join(timeout=10)
    assert not runner.is_alive()
