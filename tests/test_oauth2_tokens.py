"""The OAuth2 token provider on a fake clock: cached until its lifetime less a margin,
refreshed when a server refuses it, one clear error for a failing or hanging command,
and the token never in a log line or a repr (issue 13)."""

from __future__ import annotations

import logging
import shlex
import sys
import time
from pathlib import Path

import pytest

from inboxwatch.adapters.oauth import (
    OAuth2Login,
    TokenError,
    TokenProvider,
    credential,
    credentials,
)
from inboxwatch.errors import TransientError
from inboxwatch.testing.oauth2_servers import runs_of, token_script
from inboxwatch.userfiles.config import load_config

WHERE = "/etc/inboxwatch/config.toml: imap.token_command"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def helper(tmp_path: Path) -> tuple[str, Path, Path]:
    """(command, token file, runs file): a helper that prints what the token file holds."""
    token_file = tmp_path / "token"
    token_file.write_text("ya29.first-token\n")
    command, runs = token_script(tmp_path / "helper", token_file)
    return command, token_file, runs


def provider(command: str, clock: FakeClock, lifetime: float = 3000.0) -> TokenProvider:
    return TokenProvider(command, where=WHERE, lifetime=lifetime, clock=clock)


def test_the_token_is_cached_until_its_lifetime_less_a_margin(
    helper: tuple[str, Path, Path],
) -> None:
    command, token_file, runs = helper
    clock = FakeClock()
    p = provider(command, clock, lifetime=3000)
    assert p.token() == "ya29.first-token"
    token_file.write_text("ya29.second-token\n")
    clock.now += 2939  # a minute before the hour's end: still the cached one
    assert p.token() == "ya29.first-token"
    assert runs_of(runs) == 1
    clock.now += 1  # within the margin (60 s): a fresh one, before the old can expire
    assert p.token() == "ya29.second-token"
    assert p.token() == "ya29.second-token"
    assert runs_of(runs) == 2


def test_a_short_lifetime_has_a_margin_of_a_tenth(helper: tuple[str, Path, Path]) -> None:
    command, _token_file, runs = helper
    clock = FakeClock()
    p = provider(command, clock, lifetime=100)
    p.token()
    clock.now += 89.9
    p.token()
    assert runs_of(runs) == 1
    clock.now += 0.1
    p.token()
    assert runs_of(runs) == 2


def test_a_refused_token_is_replaced_but_a_newer_one_is_kept(
    helper: tuple[str, Path, Path],
) -> None:
    command, token_file, runs = helper
    clock = FakeClock()
    p = provider(command, clock)
    old = p.token()
    token_file.write_text("ya29.second-token\n")
    p.rejected(old)
    assert p.token() == "ya29.second-token"
    p.rejected(old)  # a late report about the old token (the other server) changes nothing
    assert p.token() == "ya29.second-token"
    assert runs_of(runs) == 2


def test_a_login_refused_once_is_retried_with_a_fresh_token(
    helper: tuple[str, Path, Path],
) -> None:
    command, token_file, runs = helper
    p = provider(command, FakeClock())
    tried: list[str] = []

    def attempt(token: str) -> str:
        tried.append(token)
        token_file.write_text("ya29.second-token\n")
        if token == "ya29.first-token":
            raise PermissionError("refused")
        return "logged in"

    assert OAuth2Login(p).login(attempt, PermissionError) == "logged in"
    assert tried == ["ya29.first-token", "ya29.second-token"]
    assert runs_of(runs) == 2


def test_a_login_refused_twice_fails_and_neither_token_is_offered_again(
    helper: tuple[str, Path, Path],
) -> None:
    command, _token_file, runs = helper
    p = provider(command, FakeClock())
    tried: list[str] = []

    def refuse(token: str) -> None:
        tried.append(token)
        raise PermissionError("refused")

    with pytest.raises(PermissionError):
        OAuth2Login(p).login(refuse, PermissionError)
    assert len(tried) == 2 and runs_of(runs) == 2
    p.token()  # the next connection asks the command again
    assert runs_of(runs) == 3


def test_a_failing_command_is_one_clear_line_naming_the_key(
    helper: tuple[str, Path, Path],
) -> None:
    command, token_file, runs = helper
    token_file.write_text("FAIL")
    p = provider(command, FakeClock())
    with pytest.raises(TokenError) as info:
        p.token()
    message = str(info.value)
    assert message == (
        f"{WHERE}: exited with status 1: invalid_grant: Token has been expired or revoked."
    )
    assert isinstance(info.value, TransientError)  # the daemon retries, with back-off
    # Not cached: the next call runs the command again (the owner may have fixed it).
    token_file.write_text("ya29.fixed\n")
    assert p.token() == "ya29.fixed"
    assert runs_of(runs) == 2


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("true", "printed no token"),
        ("printf '\\n  \\n'", "printed no token"),
        ("/nonexistent/oauth2-helper --user x", "cannot run '/nonexistent/oauth2-helper'"),
        ("sh -c 'echo no refresh token >&2; exit 3'", "exited with status 3: no refresh token"),
        ("", "is empty"),
        ("sh -c 'kill -TERM $$'", "was killed by signal 15"),
        ("helper 'unbalanced", "cannot be split into words"),
    ],
)
def test_each_failure_says_what_happened(command: str, expected: str) -> None:
    with pytest.raises(TokenError) as info:
        provider(command, FakeClock()).token()
    assert str(info.value).startswith(f"{WHERE}: ")
    assert expected in str(info.value)
    assert "\n" not in str(info.value)


def test_output_that_is_not_utf8_is_replaced_not_fatal() -> None:
    assert provider("printf 'ya29.\\377\\376'", FakeClock()).token() == "ya29.\ufffd\ufffd"


def test_only_the_first_line_is_the_token() -> None:
    p = provider("printf 'ya29.tok\\nwarning: cache dir missing\\n'", FakeClock())
    assert p.token() == "ya29.tok"


def test_a_hanging_command_and_its_children_are_killed_after_the_timeout() -> None:
    # A shell script whose child keeps the output pipe open: killing the shell alone
    # would leave us reading that pipe until the child ends.
    command = "sh -c 'sleep 30 & sleep 30; echo ya29.late'"
    p = TokenProvider(command, where=WHERE, timeout=0.5, clock=FakeClock())
    started = time.monotonic()
    with pytest.raises(TokenError) as info:
        p.token()
    assert time.monotonic() - started < 5
    assert str(info.value) == f"{WHERE}: gave no token within 0.5 s (killed)"


def test_the_token_is_never_logged_nor_shown_in_a_repr(
    helper: tuple[str, Path, Path], caplog: pytest.LogCaptureFixture
) -> None:
    command, token_file, _runs = helper
    caplog.set_level(logging.DEBUG)
    p = provider(command, FakeClock())
    login = OAuth2Login(p, "xoauth2")
    token = p.token()

    def refuse_first(t: str) -> None:
        if t == token:
            raise PermissionError("refused")

    token_file.write_text("ya29.second-token\n")
    login.login(refuse_first, PermissionError)
    shown = caplog.text + repr(p) + repr(login) + str(vars(login))
    assert "first-token" not in shown and "second-token" not in shown
    assert WHERE in repr(p) and "refused the access token" in caplog.text


def _config(tmp_path: Path, imap_command: str, smtp_extra: str) -> Path:
    (tmp_path / "rules").mkdir(exist_ok=True)
    (tmp_path / "templates").mkdir(exist_ok=True)
    path = tmp_path / "config.toml"
    path.write_text(
        f"""\
[imap]
host = "imap.gmail.com"
username = "shop@example.com"
auth = "oauth2"
token_command = {imap_command!r}

[smtp]
host = "smtp.gmail.com"
username = "shop@example.com"
auth = "oauth2"
{smtp_extra}

[identity]
address = "shop@example.com"

[owner]
address = "owner@example.com"
""",
        encoding="utf-8",
    )
    return path


def test_imap_and_smtp_with_one_command_share_one_token(tmp_path: Path) -> None:
    command, runs = token_script(tmp_path / "helper", tmp_path / "token")
    (tmp_path / "token").write_text("ya29.shared\n")
    cfg = load_config(_config(tmp_path, command, ""))
    imap, smtp = credentials(cfg)
    assert isinstance(imap, OAuth2Login) and isinstance(smtp, OAuth2Login)
    assert imap.provider is smtp.provider
    assert imap.provider.token() == smtp.provider.token() == "ya29.shared"
    assert runs_of(runs) == 1
    assert imap.where == f"{cfg.file}: imap.token_command"


def test_smtp_with_its_own_command_has_its_own_token(tmp_path: Path) -> None:
    other = f"{shlex.quote(sys.executable)} -c 'print(1)'"
    cfg = load_config(
        _config(tmp_path, "oama access shop@example.com", f"token_command = {other!r}")
    )
    imap, smtp = credentials(cfg)
    assert isinstance(imap, OAuth2Login) and isinstance(smtp, OAuth2Login)
    assert imap.provider is not smtp.provider
    assert smtp.where == f"{cfg.file}: smtp.token_command"
    assert isinstance(credential(cfg.smtp), OAuth2Login)
