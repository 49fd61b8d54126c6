"""OAuth2 and systemd-credential settings in config.toml (issue 13): what is accepted, the
defaults, [smtp] taking the token command of [imap], and one problem per bad combination
(file, line, key), before any connection."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_config import REPO, REST, line_of, only, write

from inboxwatch.cli import main
from inboxwatch.errors import ConfigError
from inboxwatch.userfiles.config import load_config

GMAIL_IMAP = """\
[imap]
host = "imap.gmail.com"
username = "shop@example.com"
auth = "oauth2"
token_command = "oama access shop@example.com"
"""
GMAIL_SMTP = """\
[smtp]
host = "smtp.gmail.com"
username = "shop@example.com"
auth = "oauth2"
"""
PASSWORD_SMTP = """\
[smtp]
host = "smtp.example.com"
username = "shop@example.com"
password_env = "INBOXWATCH_TEST_SMTP_PW"
"""


def config(tmp_path: Path, imap: str = GMAIL_IMAP, smtp: str = GMAIL_SMTP) -> Path:
    return write(tmp_path, f"{imap}\n{smtp}\n{REST}")


def shipped(path: Path) -> Path:
    """The config at ``path`` with the shipped rules and templates (for commands)."""
    for name in ("rules", "templates"):
        (path.parent / name).rmdir()
        (path.parent / name).symlink_to(REPO / name)
    return path


def test_oauth2_for_imap_and_smtp_with_one_command(tmp_path: Path) -> None:
    cfg = load_config(config(tmp_path))
    assert cfg.imap.auth == cfg.smtp.auth == "oauth2"
    assert cfg.imap.token_command == cfg.smtp.token_command == "oama access shop@example.com"
    # [smtp] uses the command of [imap]: errors name the key it came from.
    assert cfg.imap.token_key == cfg.smtp.token_key == "imap.token_command"
    assert cfg.imap.token_lifetime_seconds == 3000.0
    assert cfg.imap.oauth2_mechanism == cfg.smtp.oauth2_mechanism == "xoauth2"


def test_password_is_the_default_and_keeps_working(tmp_path: Path) -> None:
    imap = GMAIL_IMAP.replace('auth = "oauth2"\n', "").replace(
        'token_command = "oama access shop@example.com"', 'password_env = "X"'
    )
    cfg = load_config(config(tmp_path, imap, PASSWORD_SMTP))
    assert cfg.imap.auth == cfg.smtp.auth == "password"
    assert cfg.imap.token_command == ""


def test_oauthbearer_lifetime_and_an_own_smtp_command(tmp_path: Path) -> None:
    imap = GMAIL_IMAP + 'oauth2_mechanism = "oauthbearer"\ntoken_lifetime_seconds = 1800\n'
    smtp = GMAIL_SMTP + 'token_command = "pizauth show gmail-smtp"\n'
    cfg = load_config(config(tmp_path, imap, smtp))
    assert cfg.imap.oauth2_mechanism == "oauthbearer"
    assert cfg.imap.token_lifetime_seconds == 1800.0
    assert cfg.smtp.token_command == "pizauth show gmail-smtp"
    assert cfg.smtp.token_key == "smtp.token_command"
    assert cfg.smtp.token_lifetime_seconds == 3000.0


@pytest.mark.parametrize(
    ("imap", "smtp", "key", "words"),
    [
        (
            GMAIL_IMAP.replace('token_command = "oama access shop@example.com"\n', ""),
            PASSWORD_SMTP,
            "imap.token_command",
            "missing",
        ),
        (
            GMAIL_IMAP + 'password_env = "X"\n',
            PASSWORD_SMTP,
            "imap.password_env",
            'not used with auth = "oauth2"',
        ),
        (
            GMAIL_IMAP.replace('auth = "oauth2"\n', 'password_env = "X"\n'),
            PASSWORD_SMTP,
            "imap.token_command",
            'only with auth = "oauth2"',
        ),
        (
            GMAIL_IMAP.replace('username = "shop@example.com"\n', ""),
            PASSWORD_SMTP,
            "imap.username",
            "missing",
        ),
        (
            GMAIL_IMAP.replace('"oauth2"', '"kerberos"'),
            PASSWORD_SMTP,
            "imap.auth",
            "must be one of",
        ),
        (GMAIL_IMAP + 'oauth2_mechanism = "plain"\n', PASSWORD_SMTP, "imap", "must be one of"),
        (GMAIL_IMAP + "token_lifetime_seconds = 5\n", PASSWORD_SMTP, "imap", "60 to 86400"),
        (
            GMAIL_IMAP,
            GMAIL_SMTP + 'oauth2_mechanism = "oauthbearer"\n',
            "smtp.oauth2_mechanism",
            '"xoauth2" only',
        ),
        (
            GMAIL_IMAP,
            GMAIL_SMTP.replace("shop@example.com", "sales@example.com"),
            "smtp.token_command",
            "the same username",
        ),
        (
            GMAIL_IMAP.replace('auth = "oauth2"\n', "").replace(
                'token_command = "oama access shop@example.com"', 'password_env = "X"'
            ),
            GMAIL_SMTP,
            "smtp.token_command",
            "missing",
        ),
        (
            GMAIL_IMAP.replace('"oama access shop@example.com"', '"oama \'unbalanced"'),
            PASSWORD_SMTP,
            "imap.token_command",
            "cannot be split",
        ),
        (
            GMAIL_IMAP.replace("imap.gmail.com", "imap.example.net") + 'tls = "none"\n',
            PASSWORD_SMTP,
            "imap.tls",
            "only for loopback",
        ),
    ],
)
def test_bad_combinations_are_one_problem_with_its_line(
    tmp_path: Path, imap: str, smtp: str, key: str, words: str
) -> None:
    path = config(tmp_path, imap, smtp)
    problem = only(path)
    assert problem.key.startswith(key) and words in problem.message, str(problem)
    assert problem.file == str(path) and problem.line is not None


def test_the_problem_points_at_the_offending_line(tmp_path: Path) -> None:
    imap = GMAIL_IMAP + 'password_file = "/etc/pw"\n'
    path = config(tmp_path, imap, PASSWORD_SMTP)
    problem = only(path)
    assert problem.line == line_of(path.read_text(), "password_file")


def test_a_systemd_credential_is_read_from_the_credentials_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "imap-password").write_text("s3cret-cred\n")
    imap = GMAIL_IMAP.replace('auth = "oauth2"\n', "").replace(
        'token_command = "oama access shop@example.com"', 'password_credential = "imap-password"'
    )
    cfg = load_config(config(tmp_path, imap, PASSWORD_SMTP))
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    assert cfg.imap.password.resolve() == "s3cret-cred"
    assert "s3cret" not in repr(cfg)
    monkeypatch.delenv("CREDENTIALS_DIRECTORY")
    with pytest.raises(ConfigError) as info:
        cfg.imap.password.resolve()
    [problem] = info.value.problems
    assert problem.key == "imap.password_credential"
    assert "$CREDENTIALS_DIRECTORY is not set" in problem.message
    assert "LoadCredential=imap-password:" in problem.message
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    (creds / "imap-password").unlink()
    with pytest.raises(ConfigError) as info:
        cfg.imap.password.resolve()
    [problem] = info.value.problems
    assert problem.key == "imap.password_credential"
    assert f"cannot read {creds / 'imap-password'}" in problem.message


@pytest.mark.parametrize("name", ["../etc/shadow", "a/b", ".."])
def test_a_credential_name_is_not_a_path(tmp_path: Path, name: str) -> None:
    imap = GMAIL_IMAP.replace('auth = "oauth2"\n', "").replace(
        'token_command = "oama access shop@example.com"', f'password_credential = "{name}"'
    )
    problem = only(config(tmp_path, imap, PASSWORD_SMTP))
    assert problem.key == "imap.password_credential" and "not a path" in problem.message


def test_run_exits_2_on_a_missing_credential_before_connecting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    imap = GMAIL_IMAP.replace('auth = "oauth2"\n', "").replace(
        'token_command = "oama access shop@example.com"', 'password_credential = "imap"'
    )
    # Port 9 on loopback: nothing listens, so a connection attempt would show as one.
    imap = imap.replace('host = "imap.gmail.com"', 'host = "127.0.0.1"\nport = 9\ntls = "none"')
    path = shipped(config(tmp_path, imap, PASSWORD_SMTP))
    assert main(["run", "--once", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "imap.password_credential: $CREDENTIALS_DIRECTORY is not set" in err
    assert "connect" not in err


def test_check_says_how_each_server_logs_in_without_running_the_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = tmp_path / "ran"
    imap = GMAIL_IMAP.replace("oama access shop@example.com", f"touch {marker}")
    path = shipped(config(tmp_path, imap))
    assert main(["check", "--config", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1:] == [
        "imap: imap.gmail.com:993 (ssl) as shop@example.com, OAuth2 XOAUTH2, "
        "token from imap.token_command",
        "smtp: smtp.gmail.com:587 (starttls) as shop@example.com, OAuth2 XOAUTH2, "
        "token from imap.token_command",
    ]
    assert not marker.exists()


def test_check_names_the_password_source(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    smtp = PASSWORD_SMTP.replace("password_env", "password_credential").replace(
        "INBOXWATCH_TEST_SMTP_PW", "smtp"
    )
    path = shipped(config(tmp_path, GMAIL_IMAP, smtp))
    assert main(["check", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert (
        "smtp: smtp.example.com:587 (starttls) as shop@example.com, "
        "password from password_credential"
    ) in out


def test_the_example_configs_oauth2_lines_are_valid_when_uncommented(tmp_path: Path) -> None:
    text = (REPO / "config.example.toml").read_text(encoding="utf-8")
    text = text.replace('password_env = "INBOXWATCH_PASSWORD"\n', "", 1)
    text = text.replace('password_env = "INBOXWATCH_PASSWORD"', "", 1)
    text = text.replace('# auth = "password"', 'auth = "oauth2"')
    text = text.replace('# auth = "oauth2"', 'auth = "oauth2"')
    for key in ('token_command = "python3', "token_lifetime_seconds", "oauth2_mechanism"):
        assert f"# {key}" in text
        text = text.replace(f"# {key}", key, 1)
    path = shipped(write(tmp_path, text))
    cfg = load_config(path)
    assert cfg.imap.auth == cfg.smtp.auth == "oauth2"
    assert cfg.smtp.token_key == "imap.token_command"
    assert cfg.imap.token_command.endswith(
        "/usr/local/lib/inboxwatch/mutt_oauth2.py /var/lib/inboxwatch/default/oauth2-token"
    )
