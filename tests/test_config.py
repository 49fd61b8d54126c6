"""config.toml → frozen Config: defaults, paths, TLS/password rules, and problem reporting."""

from __future__ import annotations

import dataclasses
import json
import shlex
import shutil
import sys
import zoneinfo
from datetime import datetime, time
from pathlib import Path

import pytest

from inboxwatch.core.settings import Settings
from inboxwatch.errors import ConfigError, Problem
from inboxwatch.userfiles.config import Config, load_config

REPO = Path(__file__).resolve().parent.parent

IMAP = """\
[imap]
host = "imap.example.com"
username = "hello@shop.example"
password_env = "INBOXWATCH_TEST_IMAP_PW"
"""
SMTP = """\
[smtp]
host = "smtp.example.com"
username = "hello@shop.example"
password_env = "INBOXWATCH_TEST_SMTP_PW"
"""
REST = """\
[identity]
address = "hello@shop.example"
name = "Shop"

[owner]
address = "owner@shop.example"
"""
MINIMAL = f'timezone = "Europe/Berlin"\n\n{IMAP}\n{SMTP}\n{REST}'


def write(folder: Path, text: str, name: str = "config.toml") -> Path:
    """A config file in ``folder`` with the rules/ and templates/ folders it defaults to."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "rules").mkdir(exist_ok=True)
    (folder / "templates").mkdir(exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def problems(path: Path) -> list[Problem]:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.problems, "a ConfigError must carry its problems"
    return info.value.problems


def only(path: Path) -> Problem:
    found = problems(path)
    assert len(found) == 1, [str(p) for p in found]
    return found[0]


def line_of(text: str, needle: str, start: int = 1) -> int:
    """1-based number of the first line at or after ``start`` that contains ``needle``."""
    for number, line in enumerate(text.splitlines(), 1):
        if number >= start and needle in line:
            return number
    raise AssertionError(f"{needle!r} not in text")


# ---- loading and defaults ------------------------------------------------------------


def test_minimal_config_gets_the_documented_defaults(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, MINIMAL))
    assert isinstance(cfg, Config)
    assert cfg.timezone == zoneinfo.ZoneInfo("Europe/Berlin")
    assert (cfg.imap.port, cfg.imap.tls) == (993, "ssl")
    assert (cfg.smtp.port, cfg.smtp.tls) == (587, "starttls")
    assert cfg.imap.inbox == "INBOX" and cfg.imap.sent == ""
    assert cfg.imap.idle and cfg.imap.save_sent
    # IDLE renewed under the few idle minutes after which NAT drops a connection (AWS: 350 s).
    assert (cfg.imap.idle_renew_seconds, cfg.imap.poll_seconds, cfg.imap.lookback_days) == (
        240,
        60,
        0,
    )
    assert cfg.imap.authserv_id == () and cfg.alert_command == ""
    assert (cfg.sending.followup_max_age_days, cfg.sending.owner_mail_max_age_days) == (2, 3)
    assert cfg.imap.timeout == 30.0 and not cfg.imap.tls_insecure_skip_verify
    assert cfg.team == frozenset() and cfg.owner == "owner@shop.example" and cfg.owner_alerts
    s = cfg.sending
    assert (s.window_start, s.window_end) == (time(9, 0), time(17, 0))
    assert s.days == frozenset({0, 1, 2, 3, 4})
    assert (s.min_gap_hours, s.ack_period_days, s.max_per_hour, s.max_per_day) == (
        20.0,
        7.0,
        50,
        300,
    )
    assert s.hold_max_days == 30
    assert cfg.state_path == tmp_path / "state" / "inboxwatch.json"
    assert cfg.rules_dir == tmp_path / "rules"
    assert cfg.templates_dir == tmp_path / "templates"


def test_config_objects_are_frozen(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, MINIMAL))
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.owner = "mallory@example.org"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.imap.host = "evil.example"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.sending.max_per_day = 10**6  # type: ignore[misc]
    assert isinstance(cfg.team, frozenset) and isinstance(cfg.sending.days, frozenset)
    assert isinstance(cfg.identity.aliases, tuple)


@pytest.mark.parametrize(
    ("section", "tls", "host", "port"),
    [
        ("imap", "ssl", "imap.example.com", 993),
        ("imap", "starttls", "imap.example.com", 143),
        ("imap", "none", "127.0.0.1", 143),
        ("smtp", "ssl", "smtp.example.com", 465),
        ("smtp", "starttls", "smtp.example.com", 587),
        ("smtp", "none", "localhost", 25),
    ],
)
def test_default_port_follows_tls_mode(
    tmp_path: Path, section: str, tls: str, host: str, port: int
) -> None:
    text = MINIMAL.replace(
        f'[{section}]\nhost = "{section}.example.com"',
        f'[{section}]\nhost = "{host}"\ntls = "{tls}"',
    )
    cfg = load_config(write(tmp_path, text))
    server = getattr(cfg, section)
    assert (server.tls, server.port) == (tls, port)


def test_identity_addresses_are_lower_cased_and_aliases_are_ours(tmp_path: Path) -> None:
    text = (
        MINIMAL.replace(
            'address = "hello@shop.example"\nname = "Shop"',
            'address = " Hello@Shop.Example "\nname = "Shop"\naliases = ["Info@Shop.Example"]',
        )
        + '\n[team]\naddresses = ["Jane@Shop.Example"]\n'
    )
    cfg = load_config(write(tmp_path, text))
    assert cfg.identity.address == "hello@shop.example"
    assert cfg.own_addresses == frozenset({"hello@shop.example", "info@shop.example"})
    assert cfg.team == frozenset({"jane@shop.example"})


def test_the_shipped_example_config_is_valid(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    shutil.copy(REPO / "config.example.toml", path)
    (tmp_path / "rules").mkdir()
    (tmp_path / "templates").mkdir()
    cfg = load_config(path)
    assert cfg.identity.address and cfg.owner
    assert cfg.rules_dir == tmp_path / "rules"


# ---- paths ---------------------------------------------------------------------------


def test_relative_paths_resolve_against_the_config_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conf = tmp_path / "etc" / "inboxwatch"
    (conf / "my-rules").mkdir(parents=True)
    (tmp_path / "etc" / "shared-templates").mkdir()
    (conf / "secrets").mkdir()
    (conf / "secrets" / "imap-pw").write_text("s3cret-from-file\n", encoding="utf-8")
    text = MINIMAL.replace(
        'password_env = "INBOXWATCH_TEST_IMAP_PW"',
        'password_file = "secrets/imap-pw"\ncafile = "ca/root.pem"',
    )
    text += '\n[state]\npath = "var/state.json"\n\n[paths]\nrules = "my-rules"\n'
    text += 'templates = "../shared-templates"\n'
    path = conf / "config.toml"
    path.write_text(text, encoding="utf-8")
    elsewhere = tmp_path / "somewhere-else"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)

    cfg = load_config(Path("..") / "etc" / "inboxwatch" / "config.toml")
    assert cfg.rules_dir == (conf / "my-rules").resolve()
    assert cfg.templates_dir == (tmp_path / "etc" / "shared-templates").resolve()
    assert cfg.state_path == (conf / "var" / "state.json").resolve()
    assert Path(cfg.imap.cafile) == (conf / "ca" / "root.pem").resolve()
    assert cfg.imap.password.resolve() == "s3cret-from-file"


def test_absolute_paths_are_kept(tmp_path: Path) -> None:
    rules = tmp_path / "abs" / "rules"
    rules.mkdir(parents=True)
    text = MINIMAL + f"\n[paths]\nrules = {str(rules)!r}\n"
    cfg = load_config(write(tmp_path / "conf", text))
    assert cfg.rules_dir == rules


def test_missing_rules_folder_is_a_problem(tmp_path: Path) -> None:
    text = MINIMAL + '\n[paths]\nrules = "no-such-folder"\n'
    p = only(write(tmp_path, text))
    assert p.key == "paths.rules" and "folder not found" in p.message
    assert p.line == line_of(text, 'rules = "no-such-folder"')


# ---- TLS and passwords ----------------------------------------------------------------


@pytest.mark.parametrize(
    "host", ["imap.example.com", "192.168.1.10", "localhost.example.com", "10.0.0.1"]
)
def test_tls_none_is_refused_for_a_non_loopback_host(tmp_path: Path, host: str) -> None:
    text = MINIMAL.replace('host = "imap.example.com"', f'host = "{host}"\ntls = "none"')
    p = only(write(tmp_path, text))
    assert p.key == "imap.tls"
    assert "loopback" in p.message and host in p.message
    assert p.line == line_of(text, 'tls = "none"')


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "127.0.0.53", "::1", "[::1]"])
def test_tls_none_is_allowed_on_loopback(tmp_path: Path, host: str) -> None:
    text = MINIMAL.replace('host = "smtp.example.com"', f'host = "{host}"\ntls = "none"')
    cfg = load_config(write(tmp_path, text))
    assert cfg.smtp.tls == "none" and cfg.smtp.is_loopback


def test_unknown_tls_mode_is_a_problem(tmp_path: Path) -> None:
    text = MINIMAL.replace('host = "imap.example.com"', 'host = "imap.example.com"\ntls = "tls"')
    p = only(write(tmp_path, text))
    assert p.key == "imap.tls" and "'tls'" in p.message


def test_two_password_sources_are_refused(tmp_path: Path) -> None:
    text = MINIMAL.replace(
        'password_env = "INBOXWATCH_TEST_IMAP_PW"',
        'password_env = "INBOXWATCH_TEST_IMAP_PW"\npassword_command = "pass show mail"',
    )
    p = only(write(tmp_path, text))
    assert p.key == "imap.password_command"
    assert "password_env" in p.message and "password_command" in p.message
    assert p.line == line_of(text, "password_command")


def test_three_password_sources_are_refused(tmp_path: Path) -> None:
    text = MINIMAL.replace(
        'password_env = "INBOXWATCH_TEST_SMTP_PW"',
        'password_env = "X"\npassword_file = "pw"\npassword_command = "pass show mail"',
    )
    p = only(write(tmp_path, text))
    assert p.key.startswith("smtp.password_")
    for name in ("password_env", "password_file", "password_command"):
        assert name in p.message


def test_a_username_without_password_source_is_refused(tmp_path: Path) -> None:
    text = MINIMAL.replace('password_env = "INBOXWATCH_TEST_IMAP_PW"\n', "")
    p = only(write(tmp_path, text))
    assert p.key.startswith("imap.password")
    assert "password_env" in p.message and "password_file" in p.message


def test_smtp_without_username_needs_no_password(tmp_path: Path) -> None:
    text = MINIMAL.replace(
        'username = "hello@shop.example"\npassword_env = "INBOXWATCH_TEST_SMTP_PW"\n', ""
    )
    cfg = load_config(write(tmp_path, text))
    assert cfg.smtp.username == "" and cfg.smtp.password.resolve() == ""


def test_the_password_never_shows_in_a_repr(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "pw").write_text("file-secret-4711", encoding="utf-8")
    monkeypatch.setenv("INBOXWATCH_TEST_SMTP_PW", "env-secret-0815")
    text = MINIMAL.replace('password_env = "INBOXWATCH_TEST_IMAP_PW"', 'password_file = "pw"')
    cfg = load_config(write(tmp_path, text))
    assert cfg.imap.password.resolve() == "file-secret-4711"
    assert cfg.smtp.password.resolve() == "env-secret-0815"
    for shown in (repr(cfg), str(cfg), repr(cfg.imap), repr(cfg.smtp.password), f"{cfg.smtp}"):
        assert "file-secret-4711" not in shown
        assert "env-secret-0815" not in shown
        assert "INBOXWATCH_TEST_SMTP_PW" not in shown  # not even where it comes from


def test_a_password_command_is_not_shown_either(tmp_path: Path) -> None:
    script = tmp_path / "pw.py"
    script.write_text("print('cmd-secret-42')\n", encoding="utf-8")
    command = f"{shlex.quote(sys.executable)} {shlex.quote(str(script))}"
    text = MINIMAL.replace(
        'password_env = "INBOXWATCH_TEST_IMAP_PW"', f"password_command = {json.dumps(command)}"
    )
    cfg = load_config(write(tmp_path, text))
    assert cfg.imap.password.resolve() == "cmd-secret-42"
    assert "cmd-secret-42" not in repr(cfg)


def test_an_unset_password_variable_is_reported_when_resolved(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("INBOXWATCH_TEST_IMAP_PW", raising=False)
    cfg = load_config(write(tmp_path, MINIMAL))  # loading does not need the password
    with pytest.raises(ConfigError) as info:
        cfg.imap.password.resolve()
    (p,) = info.value.problems
    assert p.key == "imap.password_env" and "INBOXWATCH_TEST_IMAP_PW" in p.message


def test_a_failing_password_command_is_reported(tmp_path: Path) -> None:
    command = f'{shlex.quote(sys.executable)} -c "raise SystemExit(3)"'
    text = MINIMAL.replace(
        'password_env = "INBOXWATCH_TEST_IMAP_PW"', f"password_command = {json.dumps(command)}"
    )
    cfg = load_config(write(tmp_path, text))
    with pytest.raises(ConfigError) as info:
        cfg.imap.password.resolve()
    (p,) = info.value.problems
    assert p.key == "imap.password_command" and "3" in p.message


# ---- values that are wrong ------------------------------------------------------------


@pytest.mark.parametrize("zone", ["Mars/Olympus", "europe/berlin", "Europe", ""])
def test_invalid_timezone(tmp_path: Path, zone: str) -> None:
    text = MINIMAL.replace('timezone = "Europe/Berlin"', f'timezone = "{zone}"')
    p = only(write(tmp_path, text))
    assert (p.key, p.line) == ("timezone", 1)
    assert repr(zone) in p.message


@pytest.mark.parametrize(("start", "end"), [("17:00", "09:00"), ("09:00", "09:00")])
def test_window_start_must_be_before_window_end(tmp_path: Path, start: str, end: str) -> None:
    text = MINIMAL + f'\n[sending]\nwindow_start = "{start}"\nwindow_end = "{end}"\n'
    p = only(write(tmp_path, text))
    assert p.key == "sending.window_end" and "window_start" in p.message
    assert p.line == line_of(text, "window_end")


def test_window_end_24_00_keeps_the_window_open_to_the_end_of_the_local_day(
    tmp_path: Path,
) -> None:
    text = MINIMAL + '\n[sending]\nwindow_start = "00:00"\nwindow_end = "24:00"\n'
    window = Settings.from_config(load_config(write(tmp_path, text))).window
    berlin = zoneinfo.ZoneInfo("Europe/Berlin")
    monday = datetime(2026, 3, 2, tzinfo=berlin)
    assert window.is_open(monday)
    assert window.is_open(monday.replace(hour=23, minute=59, second=59))
    # "24:00" only ends a window: it is not a start, and "23:59" still ends at 23:59.
    late = MINIMAL + '\n[sending]\nwindow_end = "23:59"\n'
    closing = Settings.from_config(load_config(write(tmp_path / "b", late))).window
    assert not closing.is_open(monday.replace(hour=23, minute=59, second=30))
    p = only(write(tmp_path / "c", MINIMAL + '\n[sending]\nwindow_start = "24:00"\n'))
    assert p.key == "sending.window_start"


def test_a_time_that_is_not_hh_mm_is_a_problem(tmp_path: Path) -> None:
    text = MINIMAL + '\n[sending]\nwindow_start = "9am"\n'
    p = only(write(tmp_path, text))
    assert p.key == "sending.window_start" and "'9am'" in p.message
    assert p.line == line_of(text, "window_start")


def test_sending_days(tmp_path: Path) -> None:
    text = MINIMAL + '\n[sending]\ndays = ["Monday", "sat", "SUN"]\n'
    assert load_config(write(tmp_path, text)).sending.days == frozenset({0, 5, 6})
    p = only(write(tmp_path, MINIMAL + '\n[sending]\ndays = ["mon", "funday"]\n'))
    assert p.key == "sending.days" and "'funday'" in p.message
    p = only(write(tmp_path, MINIMAL + "\n[sending]\ndays = []\n"))
    assert p.key == "sending.days" and "at least one" in p.message


@pytest.mark.parametrize(
    ("where", "snippet", "key", "needle"),
    [
        ("top", 'timezon = "UTC"', "timezon", "timezon"),
        ("imap", "idel = true", "imap.idel", "idel"),
        ("smtp", "prot = 25", "smtp.prot", "prot"),
        ("end", '[sending]\nwindow_strat = "08:00"', "sending.window_strat", "window_strat"),
        ("end", '[smpt]\nhost = "smtp.example.com"', "smpt", "[smpt]"),
        ("end", "[owner]\nalert = false", "owner.alert", "alert ="),
    ],
)
def test_unknown_keys_are_reported_with_their_line(
    tmp_path: Path, where: str, snippet: str, key: str, needle: str
) -> None:
    if where == "top":
        text = snippet + "\n" + MINIMAL
    elif where == "end":
        text = MINIMAL.replace('[owner]\naddress = "owner@shop.example"\n', "")
        text += "\n" + snippet + "\n"
        if "[owner]" in snippet:
            text += 'address = "owner@shop.example"\n'
        else:
            text += '\n[owner]\naddress = "owner@shop.example"\n'
    else:
        text = MINIMAL.replace(f"[{where}]\n", f"[{where}]\n{snippet}\n")
    p = only(write(tmp_path, text))
    assert p.key == key and p.message == "unknown key"
    assert p.line == line_of(text, needle)


def test_an_unknown_top_level_key_points_at_its_own_line(tmp_path: Path) -> None:
    """Not at an earlier key whose name merely ends the same way ("timezone" / "zone")."""
    text = MINIMAL.replace(
        'timezone = "Europe/Berlin"\n', 'timezone = "Europe/Berlin"\nzone = "Europe/Berlin"\n'
    )
    p = only(write(tmp_path, text))
    assert (p.key, p.message) == ("zone", "unknown key")
    assert p.line == 2, str(p)


@pytest.mark.parametrize(
    ("old", "new", "key", "expected"),
    [
        ('host = "imap.example.com"', 'host = "imap.example.com"\nport = "993"', "imap.port",
         "expected an integer, got a string"),
        ('host = "imap.example.com"', 'host = "imap.example.com"\nidle = "yes"', "imap.idle",
         "expected true or false, got a string"),
        ('host = "smtp.example.com"', 'host = "smtp.example.com"\ntimeout = "30"', "smtp.timeout",
         "expected a number, got a string"),
        ('host = "imap.example.com"', 'host = "imap.example.com"\nport = 993.0', "imap.port",
         "expected an integer, got a number"),
        ('name = "Shop"', 'name = "Shop"\naliases = "info@shop.example"', "identity.aliases",
         "expected a list, got a string"),
        ('timezone = "Europe/Berlin"', "timezone = 1", "timezone",
         "expected a string, got an integer"),
        ('address = "owner@shop.example"', 'address = "owner@shop.example"\nalerts = 1',
         "owner.alerts", "expected true or false, got an integer"),
    ],
)  # fmt: skip
def test_wrong_types_are_reported_with_their_line(
    tmp_path: Path, old: str, new: str, key: str, expected: str
) -> None:
    text = MINIMAL.replace(old, new, 1)
    p = only(write(tmp_path, text))
    assert (p.key, p.message) == (key, expected)
    assert p.line == line_of(text, new.splitlines()[-1])


def test_a_boolean_is_not_an_integer(tmp_path: Path) -> None:
    text = MINIMAL + "\n[sending]\nmax_per_hour = true\n"
    p = only(write(tmp_path, text))
    assert p.key == "sending.max_per_hour" and "integer" in p.message


def test_a_list_of_numbers_is_not_a_list_of_addresses(tmp_path: Path) -> None:
    text = MINIMAL + "\n[team]\naddresses = [1, 2]\n"
    p = only(write(tmp_path, text))
    assert p.key == "team.addresses" and "list of strings" in p.message


@pytest.mark.parametrize(
    ("snippet", "key"),
    [
        ("[sending]\nmax_per_day = -1", "sending.max_per_day"),
        ("[sending]\nmin_gap_hours = -0.5", "sending.min_gap_hours"),
        ("[team]\naddresses = []\n[imap.x]", "imap.x"),
    ],
)
def test_range_and_structure_problems(tmp_path: Path, snippet: str, key: str) -> None:
    text = MINIMAL + "\n" + snippet + "\n"
    p = only(write(tmp_path, text))
    assert p.key == key


@pytest.mark.parametrize(
    ("setting", "key"),
    [
        ("port = 0", "imap.port"),
        ("port = 70000", "imap.port"),
        ("idle_renew_seconds = 1800", "imap.idle_renew_seconds"),
        ("poll_seconds = 0", "imap.poll_seconds"),
        ("lookback_days = -1", "imap.lookback_days"),
        ('processed_keyword = "two words"', "imap.processed_keyword"),
    ],
)
def test_imap_value_ranges(tmp_path: Path, setting: str, key: str) -> None:
    text = MINIMAL.replace("[imap]\n", f"[imap]\n{setting}\n")
    p = only(write(tmp_path, text))
    assert p.key == key
    assert p.line == line_of(text, setting)


def test_an_identity_that_is_not_an_address(tmp_path: Path) -> None:
    text = MINIMAL.replace('address = "hello@shop.example"', 'address = "hello"')
    p = only(write(tmp_path, text))
    assert p.key == "identity.address" and "'hello'" in p.message


# ---- how problems are reported --------------------------------------------------------


def test_problem_str_names_file_line_key_and_message() -> None:
    assert str(Problem("/etc/iw.toml", "imap.port", "bad port", 7)) == (
        "/etc/iw.toml:7: imap.port: bad port"
    )
    assert str(Problem("/etc/iw.toml", "imap.port", "bad port")) == (
        "/etc/iw.toml: imap.port: bad port"
    )
    assert str(Problem("/etc/iw.toml", "", "TOML syntax error: x", 3)) == (
        "/etc/iw.toml:3: TOML syntax error: x"
    )


def test_config_error_message_has_one_line_per_problem(tmp_path: Path) -> None:
    text = 'timezon = "UTC"\n' + MINIMAL.replace("[imap]\n", "[imap]\nport = 0\n")
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    lines = str(info.value).splitlines()
    assert len(lines) == len(info.value.problems) == 2
    assert all(line.startswith(f"{path}:") for line in lines)


def test_toml_syntax_error_names_the_line(tmp_path: Path) -> None:
    text = MINIMAL.replace('name = "Shop"', 'name = "Shop\n')  # unterminated string
    path = write(tmp_path, text)
    p = only(path)
    assert p.key == "" and p.message.startswith("TOML syntax error")
    assert p.line == line_of(text, 'name = "Shop')
    assert str(p).startswith(f"{path}:{p.line}: TOML syntax error")


def test_toml_syntax_error_in_a_table_header(tmp_path: Path) -> None:
    text = MINIMAL + "\n[sending\nmax_per_day = 1\n"
    p = only(write(tmp_path, text))
    assert p.line == line_of(text, "[sending")


def test_missing_and_unreadable_files(tmp_path: Path) -> None:
    p = only(tmp_path / "nope.toml")
    assert p.file == str(tmp_path / "nope.toml") and "not found" in p.message
    bad = tmp_path / "latin1.toml"
    bad.write_bytes('name = "M\xfcller"\n'.encode("latin-1"))
    p = only(bad)
    assert "cannot read" in p.message


def test_all_problems_are_reported_at_once(tmp_path: Path) -> None:
    text = (
        'timezone = "Nowhere/City"\n'
        + MINIMAL.replace('timezone = "Europe/Berlin"\n', "")
        .replace('host = "imap.example.com"', 'host = "imap.example.com"\nport = "x"')
        .replace('host = "smtp.example.com"', 'host = "smtp.example.com"\ntls = "none"')
        .replace('address = "hello@shop.example"', 'address = "not-an-address"')
        + '\n[sending]\nwindow_start = "18:00"\nwindow_end = "08:00"\nmax_per_hour = -5\n'
        + "bogus = 1\n"
    )
    found = problems(write(tmp_path, text))
    keys = {p.key for p in found}
    assert keys == {
        "timezone",
        "imap.port",
        "smtp.tls",
        "identity.address",
        "sending.window_end",
        "sending.max_per_hour",
        "sending.bogus",
    }
    assert all(p.file == str(tmp_path / "config.toml") for p in found)
    assert all(p.line is not None for p in found), [str(p) for p in found]


def test_missing_required_keys(tmp_path: Path) -> None:
    text = MINIMAL.replace('[owner]\naddress = "owner@shop.example"\n', "[owner]\nalerts = false\n")
    p = only(write(tmp_path, text))
    assert (p.key, p.message) == ("owner.address", "missing (required)")


@pytest.mark.parametrize(
    ("old", "new", "key", "table"),
    [
        ('address = "owner@shop.example"', "alerts = true", "owner.address", "[owner]"),
        ('password_env = "INBOXWATCH_TEST_IMAP_PW"\n', "", "imap.password_env", "[imap]"),
        ('host = "smtp.example.com"\n', "", "smtp.host", "[smtp]"),
    ],
)
def test_a_missing_key_points_at_its_table_header(
    tmp_path: Path, old: str, new: str, key: str, table: str
) -> None:
    """tomlfile.line_of: "the key line inside its table, else the table header"."""
    text = MINIMAL.replace(old, new)
    p = only(write(tmp_path, text))
    assert p.key == key
    assert p.line == line_of(text, table), str(p)


@pytest.mark.parametrize("key", ["max_per_hour", "max_per_day"])
def test_a_send_cap_of_zero_is_refused(tmp_path: Path, key: str) -> None:
    """A cap of 0 would hold every message forever without saying so."""
    cfg = write(tmp_path, MINIMAL + f"\n[sending]\n{key} = 0\n")
    with pytest.raises(ConfigError) as err:
        load_config(cfg)
    assert any(p.key == f"sending.{key}" and "at least 1" in p.message for p in err.value.problems)
