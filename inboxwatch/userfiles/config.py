"""config.toml → frozen, validated objects. Every problem is collected and reported at once."""

from __future__ import annotations

import ipaddress
import os
import shlex
import subprocess
import zoneinfo
from dataclasses import dataclass, replace
from datetime import date, time
from pathlib import Path
from typing import Any

from inboxwatch.core.message import is_valid_address
from inboxwatch.errors import ConfigError, Problem
from inboxwatch.userfiles.tomlfile import Section, TomlFile

TLS_MODES = ("ssl", "starttls", "none")
AUTH_MODES = ("password", "oauth2")
OAUTH2_MECHANISMS = ("xoauth2", "oauthbearer")
PASSWORD_SOURCES = ("password_env", "password_file", "password_command", "password_credential")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


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
                return Path(self.path).read_text(encoding="utf-8").strip("\r\n")
            except OSError as exc:
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
            return path.read_text(encoding="utf-8").strip("\r\n")
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


@dataclass(frozen=True)
class Identity:
    address: str
    name: str
    aliases: tuple[str, ...] = ()
    #: How a message written in the first person is signed ("Anna\nExample Ltd");
    #: empty: the templates sign with ``name``.
    signature: str = ""

    @property
    def addresses(self) -> frozenset[str]:
        return frozenset(a.lower() for a in (self.address, *self.aliases))


@dataclass(frozen=True)
class SendingConfig:
    """Limits and hours that keep us polite and under provider caps."""

    window_start: time = time(9, 0)
    window_end: time = time(17, 0)
    days: frozenset[int] = frozenset(range(5))
    min_gap_hours: float = 20.0
    ack_period_days: float = 7.0
    max_per_hour: int = 50
    max_per_day: int = 300
    hold_max_days: int = 30
    #: Dates that are not sending days (public holidays, the office closed).
    holidays: frozenset[date] = frozenset()
    followup_max_age_days: float = 2.0
    owner_mail_max_age_days: float = 3.0
    #: `inboxwatch pause` holds the acknowledgement too (false: only follow-ups).
    pause_acknowledgements: bool = True


@dataclass(frozen=True)
class Config:
    file: Path
    timezone: zoneinfo.ZoneInfo
    imap: ImapConfig
    smtp: ServerConfig
    identity: Identity
    team: frozenset[str]
    owner: str
    state_path: Path
    rules_dir: Path
    templates_dir: Path
    sending: SendingConfig
    owner_alerts: bool = True
    #: A command that gets each urgent alert on stdin ("" = none).
    alert_command: str = ""
    #: The owner's daily digest, and the local time (``timezone``) it should arrive.
    digest: bool = True
    digest_time: time = time(8, 0)
    #: More new-lead alerts than this from one read (a backlog after a start or an
    #: outage) become one summary alert.
    backlog_summary_over: int = 20
    #: The mailbox or the SMTP server out of reach this long: the owner is told.
    unreachable_alert_minutes: int = 15
    #: Nudges: a lead waiting for an answer this many business hours reminds the owner,
    #: at most once per ``nudge_every_hours`` (0: no nudges), inside sending hours unless
    #: ``nudge_outside_hours``.
    nudge_after_hours: float = 1.0
    nudge_every_hours: float = 24.0
    nudge_outside_hours: bool = False
    #: The new-lead alert carries the enquiry's attachments up to this many KiB in all
    #: (0: never); the rest are named in its text with their size.
    alert_attachments_max_kb: int = 5120

    @property
    def own_addresses(self) -> frozenset[str]:
        return self.identity.addresses


def is_loopback_host(host: str) -> bool:
    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _server(sec: Section, default_port: dict[str, int], default_tls: str) -> ServerConfig:
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
        pw_file = str(_resolve(sec.file.path, pw_file))
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
        cafile=str(_resolve(sec.file.path, cafile)) if cafile else "",
        tls_insecure_skip_verify=sec.get("tls_insecure_skip_verify", bool, False),
        timeout=timeout,
        **oauth,
    )


def _oauth2(sec: Section, auth: str, username: str, judge: bool = True) -> dict[str, Any]:
    """The OAuth2 keys of a server table, checked against ``auth`` (if ``judge``).

    A missing ``token_command`` is not a problem here: [smtp] may take the one of
    [imap] (see :func:`_share_token_command`).
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


def _share_token_command(toml: TomlFile, imap: ServerConfig, smtp: ServerConfig) -> ServerConfig:
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


def _resolve(config_file: Path, value: str) -> Path:
    p = Path(value).expanduser()
    return p if p.is_absolute() else (config_file.parent / p).resolve()


def _hhmm(sec: Section, name: str, default: time) -> time:
    value = sec.get(name, str, default.strftime("%H:%M"))
    try:
        parsed = time.fromisoformat(value)
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is not None:
        sec.file.problem(
            sec.key(name),
            f'expected a local time as "HH:MM" (the zone is `timezone`), got {value!r}',
        )
        return default
    return parsed


def _dates(sec: Section, name: str) -> frozenset[date]:
    out: set[date] = set()
    for value in sec.str_list(name):
        try:
            out.add(date.fromisoformat(value))
        except ValueError:
            sec.file.problem(sec.key(name), f'expected dates as "YYYY-MM-DD", got {value!r}')
    return frozenset(out)


def _sending(sec: Section) -> SendingConfig:
    d = SendingConfig()
    days_raw = sec.str_list("days") if "days" in sec.data else WEEKDAYS[:5]
    days: set[int] = set()
    for day in days_raw:
        if day.lower()[:3] in WEEKDAYS:
            days.add(WEEKDAYS.index(day.lower()[:3]))
        else:
            sec.file.problem(sec.key("days"), f"unknown day {day!r}; use mon, tue, ... sun")
    start, end = _hhmm(sec, "window_start", d.window_start), _hhmm(sec, "window_end", d.window_end)
    if start >= end:
        sec.file.problem(sec.key("window_end"), "must be later than window_start")
    if not days:
        sec.file.problem(sec.key("days"), "at least one sending day is needed")
    out = SendingConfig(
        window_start=start,
        window_end=end,
        days=frozenset(days) or d.days,
        min_gap_hours=sec.get("min_gap_hours", float, d.min_gap_hours),
        ack_period_days=sec.get("ack_period_days", float, d.ack_period_days),
        max_per_hour=sec.get("max_per_hour", int, d.max_per_hour),
        max_per_day=sec.get("max_per_day", int, d.max_per_day),
        pause_acknowledgements=sec.get("pause_acknowledgements", bool, True),
        hold_max_days=sec.get("hold_max_days", int, d.hold_max_days),
        holidays=_dates(sec, "holidays"),
        followup_max_age_days=sec.get("followup_max_age_days", float, d.followup_max_age_days),
        owner_mail_max_age_days=sec.get(
            "owner_mail_max_age_days", float, d.owner_mail_max_age_days
        ),
    )
    for name in ("min_gap_hours", "ack_period_days", "hold_max_days"):
        if getattr(out, name) < 0:
            sec.file.problem(sec.key(name), "must not be negative")
    for name in ("max_per_hour", "max_per_day"):
        if getattr(out, name) < 1:
            sec.file.problem(sec.key(name), "must be at least 1 (to stop sending, stop the daemon)")
    for name in ("followup_max_age_days", "owner_mail_max_age_days"):
        if not getattr(out, name) > 0:  # also rejects nan
            sec.file.problem(sec.key(name), "must be more than 0")
    sec.finish()
    return out


def load_config(path: Path | str) -> Config:
    """Load and validate; raises :class:`ConfigError` listing every problem found."""
    path = Path(path)
    problems: list[Problem] = []
    toml = TomlFile.load(path, problems)
    if toml is None:
        raise ConfigError(problems)
    root = Section(toml, toml.data, "")

    tz_name = root.get("timezone", str, "UTC")
    try:
        tz = zoneinfo.ZoneInfo(tz_name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        toml.problem("timezone", f"unknown IANA time zone {tz_name!r} (e.g. 'Europe/Berlin')")
        tz = zoneinfo.ZoneInfo("UTC")

    imap_sec = root.sub("imap")
    base = _server(imap_sec, {"ssl": 993, "starttls": 143, "none": 143}, "ssl")
    if not base.username and "imap" in toml.data and base.auth != "oauth2":
        imap_sec.require("username", str, "")  # (OAuth2 has said so already)
    imap = ImapConfig(
        **base.__dict__,
        inbox=imap_sec.get("inbox", str, "INBOX"),
        sent=imap_sec.get("sent", str, ""),
        save_sent=imap_sec.get("save_sent", bool, True),
        idle=imap_sec.get("idle", bool, True),
        idle_renew_seconds=imap_sec.get("idle_renew_seconds", int, 240),
        poll_seconds=imap_sec.get("poll_seconds", int, 60),
        lookback_days=imap_sec.get("lookback_days", int, 0),
        max_age_days=imap_sec.get("max_age_days", int, 7),
        processed_keyword=imap_sec.get("processed_keyword", str, ""),
        authserv_id=tuple(a.strip().lower() for a in imap_sec.str_list("authserv_id")),
        trust_spam_verdict=imap_sec.get("trust_spam_verdict", bool, True),
    )
    if not 30 <= imap.idle_renew_seconds <= 1740:
        toml.problem("imap.idle_renew_seconds", "must be between 30 and 1740 (29 minutes)")
    if imap.poll_seconds < 1:
        toml.problem("imap.poll_seconds", "must be at least 1")
    if imap.lookback_days < 0:
        toml.problem("imap.lookback_days", "must not be negative")
    if imap.max_age_days < 1:
        toml.problem("imap.max_age_days", "must be at least 1")
    if imap.processed_keyword and not imap.processed_keyword.replace("$", "").isalnum():
        toml.problem(
            "imap.processed_keyword", "must be letters and digits (optionally a leading $)"
        )
    imap_sec.finish()

    smtp_sec = root.sub("smtp")
    smtp = _server(smtp_sec, {"ssl": 465, "starttls": 587, "none": 25}, "starttls")
    smtp_sec.finish()
    if imap.auth == "oauth2" and not imap.token_command:
        toml.problem(
            "imap.token_command",
            'missing: auth = "oauth2" needs a command that prints an access token '
            "(mutt_oauth2.py, oama, pizauth...)",
        )
    smtp = _share_token_command(toml, imap, smtp)

    id_sec = root.sub("identity")
    identity = Identity(
        address=id_sec.require("address", str, "").strip().lower(),
        name=id_sec.get("name", str, ""),
        aliases=tuple(a.strip().lower() for a in id_sec.str_list("aliases")),
        signature=id_sec.get("signature", str, "").strip("\n"),
    )
    for key, addr in [("address", identity.address)] + [("aliases", a) for a in identity.aliases]:
        if addr and not is_valid_address(addr):
            toml.problem(f"identity.{key}", f"not an email address: {addr!r}")
    id_sec.finish()

    team_sec = root.sub("team")
    team = frozenset(a.strip().lower() for a in team_sec.str_list("addresses"))
    for addr in sorted(team):
        if not is_valid_address(addr):
            toml.problem("team.addresses", f"not an email address: {addr!r}")
    team_sec.finish()

    owner_sec = root.sub("owner")
    owner = owner_sec.require("address", str, "").strip().lower()
    if owner and not is_valid_address(owner):
        toml.problem("owner.address", f"not a plain email address: {owner!r} (no name, no <>)")
    owner_alerts = owner_sec.get("alerts", bool, True)
    alert_command = owner_sec.get("alert_command", str, "").strip()
    digest = owner_sec.get("digest", bool, True)
    digest_time = _hhmm(owner_sec, "digest_time", time(8, 0))
    backlog_over = owner_sec.get("backlog_summary_over", int, 20)
    unreachable_minutes = owner_sec.get("unreachable_alert_minutes", int, 15)
    if unreachable_minutes < 1:
        toml.problem("owner.unreachable_alert_minutes", "must be at least 1")
    if backlog_over < 1:
        toml.problem("owner.backlog_summary_over", "must be at least 1")
    nudge_after = owner_sec.get("nudge_after_hours", float, 1.0)
    nudge_every = owner_sec.get("nudge_every_hours", float, 24.0)
    nudge_outside = owner_sec.get("nudge_outside_hours", bool, False)
    attachments_kb = owner_sec.get("alert_attachments_max_kb", int, 5120)
    if not 0 <= attachments_kb <= 25 * 1024:
        toml.problem(
            "owner.alert_attachments_max_kb",
            "must be 0 (never) to 25600 (25 MiB, more than most mail servers accept)",
        )
    if nudge_after < 0:
        toml.problem("owner.nudge_after_hours", "must not be negative")
    if nudge_every < 0:
        toml.problem("owner.nudge_every_hours", "must not be negative (0 turns nudges off)")
    owner_sec.finish()

    state_sec = root.sub("state")
    state_path = _resolve(path, state_sec.get("path", str, "state/inboxwatch.json"))
    state_sec.finish()

    paths_sec = root.sub("paths")
    rules_dir = _resolve(path, paths_sec.get("rules", str, "rules"))
    templates_dir = _resolve(path, paths_sec.get("templates", str, "templates"))
    for key, folder in (("rules", rules_dir), ("templates", templates_dir)):
        if not folder.is_dir():
            toml.problem(f"paths.{key}", f"folder not found: {folder}")
    paths_sec.finish()

    sending = _sending(root.sub("sending"))
    root.finish()
    if problems:
        raise ConfigError(problems)
    return Config(
        file=path,
        timezone=tz,
        imap=imap,
        smtp=smtp,
        identity=identity,
        team=team,
        owner=owner,
        owner_alerts=owner_alerts,
        alert_command=alert_command,
        digest=digest,
        digest_time=digest_time,
        backlog_summary_over=backlog_over,
        unreachable_alert_minutes=unreachable_minutes,
        nudge_after_hours=nudge_after,
        nudge_every_hours=nudge_every,
        nudge_outside_hours=nudge_outside,
        alert_attachments_max_kb=attachments_kb,
        state_path=state_path,
        rules_dir=rules_dir,
        templates_dir=templates_dir,
        sending=sending,
    )
