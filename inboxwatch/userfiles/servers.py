"""The [imap] and [smtp] tables of config.toml: where each server is, TLS, and how we log in.

A login is a password from one source (the environment, a file, a command or a systemd
credential), or OAuth2: an access token that a ``token_command`` prints (see
:mod:`inboxwatch.adapters.oauth`). Secrets are only read when connecting, never stored
or shown. Kept apart from :mod:`inboxwatch.userfiles.config`, which loads the whole
file, because the rules of a login (which keys go together, [smtp] taking the token
command of [imap]) are a concept of their own.
"""

from __future__ import annotations

import ipaddress
import os
import shlex
import subprocess
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from inboxwatch.errors import ConfigError, Problem
from inboxwatch.userfiles.tomlfile import Section, TomlFile

TLS_MODES = ("ssl", "starttls", "none")
AUTH_MODES = ("password", "oauth2")
OAUTH2_MECHANISMS = ("xoauth2", "oauthbearer")
PASSWORD_SOURCES = ("password_env", "password_file", "password_command", "password_credential")


def _secret_text(path: Path) -> str:
    """A password file's text without its line end, and without the byte order mark an
    editor on Windows may put first (it would be taken for part of the password, and the
    login refused for a reason nobody can see)."""
    return path.read_text(encoding="utf-8-sig").strip("\r\n")


@dataclass(frozen=True)
class Secret:
    """Where a password comes from; resolved only when connecting, never stored or logged.

    ``credential`` is a systemd credential's name: the file of that name in
    ``$CREDENTIALS_DIRECTORY``, which systemd sets up for a unit with ``LoadCredential=``
    (or ``SetCredentialEncrypted=``), readable only by the service.
    """

    file: str  # the config file, for error messages
    key: str
    env: str = ""
    path: str = ""
    command: str = ""
    credential: str = ""

    def resolve(self) -> str:
        if self.credential:
            return self._systemd_credential()
        if self.env:
            value = os.environ.get(self.env)
            if value is None:
                raise ConfigError(
                    [Problem(self.file, f"{self.key}.password_env", f"${self.env} is not set")]
                )
            return value
        if self.path:
            try:
                return _secret_text(Path(self.path))
            except (OSError, UnicodeDecodeError) as exc:
                raise ConfigError(
                    [Problem(self.file, f"{self.key}.password_file", f"cannot read: {exc}")]
                ) from None
        if self.command:
            try:
                out = subprocess.run(
                    shlex.split(self.command), capture_output=True, text=True, timeout=30
                )
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise ConfigError(
                    [Problem(self.file, f"{self.key}.password_command", f"cannot run: {exc}")]
                ) from None
            if out.returncode != 0:
                raise ConfigError(
                    [
                        Problem(
                            self.file,
                            f"{self.key}.password_command",
                            f"exited with status {out.returncode}",
                        )
                    ]
                )
            return out.stdout.strip("\r\n")
        return ""

    def sources(self) -> dict[str, str]:
        """Each password source key and its value (the value is a name or path, not the
        password)."""
        return dict(
            zip(PASSWORD_SOURCES, (self.env, self.path, self.command, self.credential), strict=True)
        )

    def _systemd_credential(self) -> str:
        key = f"{self.key}.password_credential"
        folder = os.environ.get("CREDENTIALS_DIRECTORY", "")
        if not folder:
            why = (
                "$CREDENTIALS_DIRECTORY is not set: systemd sets it for a service with "
                f"LoadCredential={self.credential}:/path/to/secret; outside systemd use "
                "password_file or password_env"
            )
            raise ConfigError([Problem(self.file, key, why)])
        path = Path(folder) / self.credential
        try:
            return _secret_text(path)
        except UnicodeDecodeError as exc:
            raise ConfigError([Problem(self.file, key, f"cannot read {path}: {exc}")]) from None
        except OSError as exc:
            why = f"cannot read {path}: {exc.strerror or exc} (is it in LoadCredential=?)"
            raise ConfigError([Problem(self.file, key, why)]) from None

    def __repr__(self) -> str:  # never show a secret's source contents
        return f"Secret({self.key})"


@dataclass(frozen=True)
class ServerConfig:
    host: str
    port: int
    tls: str
    username: str
    password: Secret
    cafile: str = ""
    tls_insecure_skip_verify: bool = False
    timeout: float = 30.0
    #: "password", or "oauth2": an access token printed by ``token_command`` (see
    #: :mod:`inboxwatch.adapters.oauth`), valid ``token_lifetime_seconds``.
    auth: str = "password"
    token_command: str = ""
    #: The config key the token command came from ("imap.token_command"), for errors:
    #: [smtp] may use the one of [imap].
    token_key: str = ""
    token_lifetime_seconds: float = 3000.0
    oauth2_mechanism: str = "xoauth2"
    #: [smtp] only: connections a large batch (a backlog) may use at once.
    connections: int = 1

    @property
    def is_loopback(self) -> bool:
        return is_loopback_host(self.host)

    def describe_login(self) -> str:
        """How this server is logged in to, for ``inboxwatch check`` (no secret)."""
        where = f"{self.host}:{self.port} ({self.tls})"
        if not self.username:
            return f"{where}, no login"
        if self.auth == "oauth2":
            how = f"OAuth2 {self.oauth2_mechanism.upper()}, token from {self.token_key}"
        else:
            source = next((k for k, v in self.password.sources().items() if v), "password_env")
            how = f"password from {source}"
        return f"{where} as {self.username}, {how}"


@dataclass(frozen=True)
class ImapConfig(ServerConfig):
    inbox: str = "INBOX"
    sent: str = ""
    save_sent: bool = True
    idle: bool = True
    idle_renew_seconds: int = 240
    poll_seconds: int = 60
    lookback_days: int = 0
    max_age_days: int = 7
    processed_keyword: str = ""
    #: authserv-ids of our own receiving server, whose Authentication-Results we trust.
    authserv_id: tuple[str, ...] = ()
    #: Honour the spam verdict our server wrote (X-Spam-Flag, rspamd, Microsoft SCL):
    #: a new sender's enquiry it calls spam is recorded but never acknowledged.
    trust_spam_verdict: bool = True


def is_loopback_host(host: str) -> bool:
    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def server_section(sec: Section, default_port: dict[str, int], default_tls: str) -> ServerConfig:
    """One [imap] or [smtp] table: where the server is, TLS, and how we log in."""
    host = sec.require("host", str, "")
    tls = sec.choice("tls", TLS_MODES, default_tls)
    port = sec.get("port", int, default_port[tls])
    if not 0 < port < 65536:
        sec.file.problem(sec.key("port"), f"must be between 1 and 65535, got {port}")
    if tls == "none" and host and not is_loopback_host(host):
        sec.file.problem(
            sec.key("tls"),
            f'"none" sends the password or token in clear text: only for loopback hosts, '
            f"not {host!r}",
        )
    auth = sec.choice("auth", AUTH_MODES, "password")
    # An unknown auth is one problem: the keys that go with it are not judged by a guess.
    judge = sec.data.get("auth", "password") in AUTH_MODES
    sources = {k: sec.get(k, str, "") for k in PASSWORD_SOURCES}
    given = [k for k, v in sources.items() if v]
    username = sec.get("username", str, "")
    if judge and auth == "oauth2":
        for k in given:
            sec.file.problem(
                sec.key(k), 'not used with auth = "oauth2" (token_command gives the login)'
            )
    elif judge and len(given) > 1:
        sec.file.problem(sec.key(given[1]), f"give only one of {', '.join(given)}")
    elif judge and username and not given:
        sec.file.problem(
            sec.key("password_env"),
            "missing: give one of password_env, password_file, password_command or "
            'password_credential (or auth = "oauth2" with a token_command)',
        )
    name = sources["password_credential"]
    if name and (name in (".", "..") or "/" in name):
        sec.file.problem(
            sec.key("password_credential"),
            f"a credential's name (as in LoadCredential=NAME:...), not a path: {name!r}",
        )
    pw_file = sources["password_file"]
    if pw_file:
        pw_file = str(resolve_path(sec.file.path, pw_file))
    secret = Secret(
        str(sec.file.path),
        sec.path,
        env=sources["password_env"],
        path=pw_file,
        command=sources["password_command"],
        credential=name,
    )
    oauth = _oauth2(sec, auth, username, judge=judge)
    cafile = sec.get("cafile", str, "")
    timeout = sec.get("timeout", float, 30.0)
    if not 0 < timeout <= 600:  # also rejects nan
        sec.file.problem(sec.key("timeout"), "must be more than 0 and at most 600 seconds")
        timeout = 30.0
    return ServerConfig(
        host=host,
        port=port,
        tls=tls,
        username=username,
        password=secret,
        cafile=str(resolve_path(sec.file.path, cafile)) if cafile else "",
        tls_insecure_skip_verify=sec.get("tls_insecure_skip_verify", bool, False),
        timeout=timeout,
        **oauth,
    )


def _oauth2(sec: Section, auth: str, username: str, judge: bool = True) -> dict[str, Any]:
    """The OAuth2 keys of a server table, checked against ``auth`` (if ``judge``).

    A missing ``token_command`` is not a problem here: [smtp] may take the one of
    [imap] (see :func:`share_token_command`).
    """
    command = sec.get("token_command", str, "").strip()
    lifetime = sec.get("token_lifetime_seconds", float, 3000.0)
    mechanism = sec.choice("oauth2_mechanism", OAUTH2_MECHANISMS, "xoauth2")
    if auth != "oauth2":
        for k in ("token_command", "token_lifetime_seconds", "oauth2_mechanism"):
            if k in sec.data and judge:
                sec.file.problem(sec.key(k), 'only with auth = "oauth2"')
        return {}
    if not username:
        sec.file.problem(sec.key("username"), 'missing: auth = "oauth2" logs in as this address')
    if not 60 <= lifetime <= 86400:  # also rejects nan
        sec.file.problem(
            sec.key("token_lifetime_seconds"),
            "must be 60 to 86400 seconds (Google's and Microsoft's tokens last about 3600)",
        )
        lifetime = 3000.0
    if command:
        try:
            shlex.split(command)
        except ValueError as exc:
            sec.file.problem(sec.key("token_command"), f"cannot be split into words: {exc}")
    return {
        "auth": auth,
        "token_command": command,
        "token_key": sec.key("token_command") if command else "",
        "token_lifetime_seconds": lifetime,
        "oauth2_mechanism": mechanism,
    }


def share_token_command(toml: TomlFile, imap: ServerConfig, smtp: ServerConfig) -> ServerConfig:
    """[smtp] with auth = "oauth2" and no token_command of its own uses the one of [imap]
    when both log in as the same account (one token serves IMAP and SMTP at Google and
    Microsoft if it was granted both scopes); otherwise it must name its own."""
    if smtp.auth != "oauth2":
        return smtp
    if smtp.oauth2_mechanism != "xoauth2":
        toml.problem(
            "smtp.oauth2_mechanism",
            'SMTP logs in with "xoauth2" only (what Gmail and Microsoft 365 accept)',
        )
    if smtp.token_command:
        return smtp
    same = imap.auth == "oauth2" and imap.token_command and imap.username == smtp.username
    if not same:
        toml.problem(
            "smtp.token_command",
            'missing: auth = "oauth2" needs a command that prints an access token (the one '
            'of [imap] is used only with auth = "oauth2" and the same username there)',
        )
        return smtp
    return replace(
        smtp,
        token_command=imap.token_command,
        token_key=imap.token_key,
        token_lifetime_seconds=imap.token_lifetime_seconds,
    )


def resolve_path(config_file: Path, value: str) -> Path:
    """A path from a user file: ``~`` expanded, relative to the folder of that file."""
    p = Path(value).expanduser()
    return p if p.is_absolute() else (config_file.parent / p).resolve()
