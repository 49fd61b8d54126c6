"""What a reload applies at once, what it keeps until a restart (named key by key), and
a refused reload as an open problem (review defects 7 and 8). The daemon runs on the
in-memory mail source and sender, over the real state file (the one `status` reads),
driven tick by tick on a fixed clock; ``reload_asked`` is what the SIGHUP handler sets
(the real signal is in ``test_reload.py``)."""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import pytest
from harness import REPO
from test_scenario import START, _config

from inboxwatch.adapters.memory_mail import MemorySource
from inboxwatch.adapters.memory_sender import MemorySender
from inboxwatch.adapters.tinydb_store import TinyDbStore
from inboxwatch.cli import main
from inboxwatch.core.actions import Notice
from inboxwatch.service.clock import FixedClock
from inboxwatch.service.commands import load_all
from inboxwatch.service.daemon import Daemon
from inboxwatch.service.reload import CONFIG_REFUSED, RULES_REFUSED


@pytest.fixture
def daemon(tmp_path: Path) -> Daemon:
    """A daemon whose rules folder is a copy it may break."""
    shutil.copytree(REPO / "rules", tmp_path / "rules")
    path = _config(tmp_path)
    path.write_text(path.read_text().replace(str(REPO / "rules"), str(tmp_path / "rules")))
    cfg, book = load_all(path)
    store = TinyDbStore.open(cfg.state_path)
    clock = FixedClock(START)
    d = Daemon(cfg, book, store, clock, MemorySource(clock=clock.now), MemorySender(), journal=None)
    d.connect(clock.now())
    d.tick(clock.now())
    return d


def hup(d: Daemon) -> None:
    d.reload_asked = True
    d.tick(d.clock.now())


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new))
    st = path.stat()  # a new stamp even within the file system's time resolution
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


def problems(d: Daemon, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    """`inboxwatch status --json`: its exit code and the keys of its open problems."""
    capsys.readouterr()
    code = main(["status", "--json", "--config", str(d.cfg.file)])
    return code, [p["key"] for p in json.loads(capsys.readouterr().out)["problems"]]


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_keys_read_per_tick_apply_at_once_and_no_restart_is_asked(
    daemon: Daemon, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="inboxwatch")
    edit(
        daemon.cfg.file,
        'password_env = "IW_TEST_PASSWORD"\n',
        'password_env = "IW_TEST_PASSWORD"\nmax_age_days = 2\nlookback_days = 3\n'
        'save_sent = false\nauthserv_id = ["mx.shop.test"]\ntrust_spam_verdict = false\n',
    )
    edit(
        daemon.cfg.file,
        'name = "Example Shop"\n',
        'name = "Example Shop"\naliases = ["info@shop.test"]\n',
    )
    hup(daemon)
    imap = daemon.cfg.imap
    assert (imap.max_age_days, imap.lookback_days, imap.save_sent) == (2, 3, False)
    assert imap.authserv_id == ("mx.shop.test",) and imap.trust_spam_verdict is False
    st = daemon.settings
    assert st.max_ages.ack.days == 2 and not st.trust_spam_verdict
    assert st.authserv_ids == ("mx.shop.test",)
    assert "info@shop.test" in st.own  # mail from the alias is ours from now on
    assert not [w for w in warnings(caplog) if "restart" in w], warnings(caplog)


def test_what_needs_a_restart_is_named_key_by_key_and_the_rest_applied(
    daemon: Daemon, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="inboxwatch")
    old_imap, old_smtp = daemon.cfg.imap, daemon.cfg.smtp
    edit(
        daemon.cfg.file,
        'password_env = "IW_TEST_PASSWORD"\n',
        'password_env = "IW_OTHER"\npoll_seconds = 30\nmax_age_days = 5\n',
    )
    edit(
        daemon.cfg.file,
        '[smtp]\nhost = "127.0.0.1"\n',
        '[smtp]\nhost = "127.0.0.1"\nconnections = 5\n',
    )
    edit(daemon.cfg.file, 'address = "shop@shop.test"', 'address = "hello@shop.test"')
    edit(daemon.cfg.file, 'name = "Example Shop"', 'name = "Renamed Shop"')
    hup(daemon)
    said = warnings(caplog)
    assert any(w.startswith("[imap] password_env, poll_seconds changed in") for w in said), said
    assert any(w.startswith("[smtp] connections changed in") for w in said), said
    assert any(w.startswith("[identity] address changed in") for w in said), said
    assert all("takes a restart" in w for w in said if "changed in" in w)
    imap = daemon.cfg.imap
    assert (imap.poll_seconds, imap.password) == (old_imap.poll_seconds, old_imap.password)
    assert daemon.cfg.smtp == old_smtp and daemon.cfg.identity.address == "shop@shop.test"
    assert imap.max_age_days == 5 and daemon.cfg.identity.name == "Renamed Shop"  # applied


def test_a_broken_rule_file_refuses_the_reload_names_that_file_and_is_a_problem_until_fixed(
    daemon: Daemon, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.INFO, logger="inboxwatch")
    rules = daemon.cfg.rules_dir / "rules.toml"
    good = rules.read_text()
    edit(daemon.cfg.file, 'name = "Example Shop"', 'name = "Renamed Shop"')
    rules.write_text(good + "\n[[rule]\n")  # a TOML syntax error
    hup(daemon)
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert f"keeping the previous config until {rules} is fixed" in errors, errors
    assert daemon.cfg.identity.name == "Example Shop"  # nothing of it applied
    code, keys = problems(daemon, capsys)
    assert code == 1 and keys == [RULES_REFUSED], keys  # the rules' problem, once
    # Still broken on the next ticks, and another SIGHUP: one notice, not one per look.
    daemon.tick(daemon.clock.now())
    hup(daemon)
    assert problems(daemon, capsys)[1] == [RULES_REFUSED]
    # Fixed: tried again by itself, applied, and the problem is over.
    rules.write_text(good)
    os.utime(rules, ns=(rules.stat().st_atime_ns, rules.stat().st_mtime_ns + 2_000_000_000))
    daemon.tick(daemon.clock.now())
    assert daemon.cfg.identity.name == "Renamed Shop"
    assert problems(daemon, capsys)[1] == []


def test_a_broken_config_file_is_named_as_the_one_to_fix(
    daemon: Daemon, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.INFO, logger="inboxwatch")
    good = daemon.cfg.file.read_text()
    edit(daemon.cfg.file, 'name = "Example Shop"', 'name = "Example Shop"\nname = "Twice"')
    hup(daemon)
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert f"keeping the previous config until {daemon.cfg.file} is fixed" in errors, errors
    # `status` needs a config.toml that loads: the notice is in the state all the same.
    with daemon.store.transaction() as state:
        assert [n.key for n in state.notices()] == [CONFIG_REFUSED]
    daemon.cfg.file.write_text(good)
    hup(daemon)
    assert problems(daemon, capsys)[1] == []


def test_a_rule_file_broken_between_reloads_is_a_problem_until_it_is_fixed(
    daemon: Daemon,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.INFO, logger="inboxwatch")
    told: list[Notice] = []
    monkeypatch.setattr(daemon, "alert", told.append)  # the owner's alert_command
    rules = daemon.cfg.rules_dir / "rules.toml"
    good = rules.read_text()
    rules.write_text(good + "\n[[rule]\n")
    daemon.tick(daemon.clock.now())
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert f"keeping the previous rules until {rules} is fixed" in errors, errors
    rules.write_text(good + "\n[[rule]]\nname = 1\n")  # another mistake: the text follows
    os.utime(rules, ns=(rules.stat().st_atime_ns, rules.stat().st_mtime_ns + 1_000_000_000))
    daemon.tick(daemon.clock.now())
    assert [n.key for n in told] == [RULES_REFUSED]  # told once
    with daemon.store.transaction() as state:
        (notice,) = state.notices()
    assert notice.text != told[0].text and str(rules) in notice.text
    code, keys = problems(daemon, capsys)
    assert code == 1 and keys == [RULES_REFUSED]
    rules.write_text(good)
    os.utime(rules, ns=(rules.stat().st_atime_ns, rules.stat().st_mtime_ns + 2_000_000_000))
    daemon.tick(daemon.clock.now())
    assert problems(daemon, capsys)[1] == []


def test_a_notice_left_by_an_earlier_run_is_closed_by_a_start_on_good_files(
    daemon: Daemon, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = daemon.cfg.rules_dir / "rules.toml"
    rules.write_text(rules.read_text() + "\n[[rule]\n")
    hup(daemon)
    assert problems(daemon, capsys)[1] == [RULES_REFUSED]
    shutil.copy(REPO / "rules" / "rules.toml", rules)
    cfg, book = load_all(daemon.cfg.file)  # a restart on the fixed files
    again = Daemon(
        cfg, book, daemon.store, daemon.clock, daemon.source, daemon.sender, journal=None
    )
    again.tick(daemon.clock.now())
    assert problems(daemon, capsys)[1] == []
