"""config.toml → frozen, validated objects. Every problem is collected and reported at once."""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass, replace
from datetime import date, time
from pathlib import Path

from inboxwatch.core.message import is_valid_address
from inboxwatch.errors import ConfigError, Problem
from inboxwatch.userfiles.servers import TLS_MODES as TLS_MODES
from inboxwatch.userfiles.servers import ImapConfig as ImapConfig
from inboxwatch.userfiles.servers import Secret as Secret
from inboxwatch.userfiles.servers import ServerConfig as ServerConfig
from inboxwatch.userfiles.servers import is_loopback_host as is_loopback_host
from inboxwatch.userfiles.servers import resolve_path as _resolve
from inboxwatch.userfiles.servers import server_section, share_token_command
from inboxwatch.userfiles.tomlfile import Section, TomlFile

#: [smtp] connections: a backlog's acknowledgements go over this many at once. Providers
#: limit concurrent logins per account (Microsoft 365 allows 3 for SMTP AUTH).
SMTP_CONNECTIONS = 3
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


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
    #: Archived leads that closed more than this many days ago are deleted (0: kept for
    #: ever); the daemon purges them once a day.
    state_retention_days: int = 0

    @property
    def own_addresses(self) -> frozenset[str]:
        return self.identity.addresses


def _hhmm(sec: Section, name: str, default: time) -> time:
    value = sec.get(name, str, default.strftime("%H:%M"))
    if value == "24:00" and name.endswith("_end"):
        # The end is exclusive, so "23:59" left the last minute of an all-day window shut;
        # "24:00" (ISO 8601's end of day) is the end of the local day.
        return time.max
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
    if sec.data.get("days") == []:  # an unknown day or a wrong type: its own problem
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
    base = server_section(imap_sec, {"ssl": 993, "starttls": 143, "none": 143}, "ssl")
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
    smtp = server_section(smtp_sec, {"ssl": 465, "starttls": 587, "none": 25}, "starttls")
    connections = smtp_sec.get("connections", int, SMTP_CONNECTIONS)
    if not 1 <= connections <= 10:
        toml.problem("smtp.connections", "must be between 1 and 10")
        connections = SMTP_CONNECTIONS
    smtp = replace(smtp, connections=connections)
    smtp_sec.finish()
    if imap.auth == "oauth2" and not imap.token_command:
        toml.problem(
            "imap.token_command",
            'missing: auth = "oauth2" needs a command that prints an access token '
            "(mutt_oauth2.py, oama, pizauth...)",
        )
    smtp = share_token_command(toml, imap, smtp)

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
    retention_days = state_sec.get("retention_days", int, 0)
    if retention_days < 0:
        toml.problem("state.retention_days", "must be 0 (keep for ever) or a number of days")
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
        state_retention_days=retention_days,
        rules_dir=rules_dir,
        templates_dir=templates_dir,
        sending=sending,
    )
