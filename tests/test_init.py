"""`inboxwatch init`: a config that `check` accepts and `run --once` uses, on the real
Dovecot and SMTP servers; with `--probe`, what the server says is written into it."""

from __future__ import annotations

import io
import shutil
import socket
import ssl
import subprocess
import threading
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from inboxwatch.cli import main
from inboxwatch.testing.devservers import MailServers
from inboxwatch.testing.mailfactory import mail
from inboxwatch.userfiles.config import load_config
from inboxwatch.userfiles.presets import PRESETS

Capsys = pytest.CaptureFixture[str]


def server_flags(servers: MailServers, shop: str, folder: Path) -> list[str]:
    """Flags for the private servers: IMAPS and SMTP STARTTLS trusting the test CA."""
    pw = folder.parent / f"{shop}.password"
    pw.write_text(servers.password(shop))
    return [
        "--host",
        "127.0.0.1",
        "--user",
        servers.address(shop),
        "--owner",
        servers.address("owner"),
        "--timezone",
        "UTC",
        "--password-file",
        str(pw),
        "--set",
        f"imap.port={servers.imaps_port}",
        "--set",
        f'imap.cafile="{servers.cafile}"',
        "--set",
        f"smtp.port={servers.smtp_port}",
        "--set",
        f'smtp.cafile="{servers.cafile}"',
        "--set",
        "imap.lookback_days=1",
        "--set",
        "imap.timeout=10",
    ]


def test_init_without_probe_gives_a_config_check_accepts_and_run_uses(
    mail_servers: MailServers, shop: str, tmp_path: Path, capsys: Capsys
) -> None:
    home = tmp_path / "iw"
    assert main(["init", str(home), *server_flags(mail_servers, shop, home)]) == 0
    assert (home / "rules" / "rules.toml").is_file()
    assert (home / "rules" / "sequences.toml").is_file()
    assert (home / "templates" / "ack.toml").is_file()
    assert (home / "templates" / "de" / "ack.toml").is_file()
    assert not [p for p in home.iterdir() if p.name.startswith(".inboxwatch-init")]
    doc = tomllib.loads((home / "config.toml").read_text())
    assert doc["imap"]["host"] == "127.0.0.1" and "sent" not in doc["imap"]
    capsys.readouterr()
    assert main(["check", "--config", str(home / "config.toml")]) == 0
    assert "OK" in capsys.readouterr().out

    lead = "init.lead@customer.test"
    address = mail_servers.address(shop)
    mail_servers.deliver(shop, mail(lead, address, "A quote, please"), sender=lead)
    assert main(["run", "--once", "--config", str(home / "config.toml")]) == 0
    acks = [m for m in mail_servers.smtp_sent if lead in m.rcpt_tos and m.mail_from == address]
    assert len(acks) == 1
    assert load_config(home / "config.toml").state_path.is_file()


def test_init_probe_writes_the_sent_folder_and_idle(
    mail_servers: MailServers, shop: str, tmp_path: Path, capsys: Capsys
) -> None:
    home = tmp_path / "iw"
    flags = server_flags(mail_servers, shop, home)
    assert main(["init", str(home), *flags, "--probe"]) == 0
    out = capsys.readouterr().out
    assert 'Sent folder "Sent" (\\Sent flag)' in out and "IDLE offered" in out
    login = f"SMTP 127.0.0.1:{mail_servers.smtp_port} (starttls) accepted the login as"
    assert login in out
    doc = tomllib.loads((home / "config.toml").read_text())
    assert doc["imap"]["sent"] == "Sent"
    assert doc["imap"]["idle"] is True
    assert main(["check", "--config", str(home / "config.toml")]) == 0
    assert main(["run", "--once", "--config", str(home / "config.toml")]) == 0


def test_init_probe_with_a_wrong_password_says_so_and_writes_nothing(
    mail_servers: MailServers, shop: str, tmp_path: Path, capsys: Capsys
) -> None:
    home = tmp_path / "iw"
    flags = server_flags(mail_servers, shop, home)
    (home.parent / f"{shop}.password").write_text("not the password")
    assert main(["init", str(home), *flags, "--probe"]) == 1
    err = capsys.readouterr().err
    assert f"IMAP login as '{mail_servers.address(shop)}' refused by 127.0.0.1" in err
    assert "[AUTHENTICATIONFAILED]" in err and "b'" not in err  # the server's words, decoded
    assert f"check the password from imap.password_file ({home.parent / shop}.password)" in err
    assert len(err.splitlines()) == 1
    assert not home.exists()  # the staging folder and DIR are gone, nothing was moved


def test_missing_values_are_named_and_nothing_is_written(tmp_path: Path, capsys: Capsys) -> None:
    home = tmp_path / "iw"
    assert main(["init", str(home), "--host", "imap.example.com"]) == 2
    err = capsys.readouterr().err
    for flag in ("--user", "--owner", "--timezone"):
        assert f"command line: {flag}: missing" in err
    assert not home.exists()
    args = ["--user", "me@shop.example", "--owner", "boss", "--timezone", "Mars/Olympus"]
    assert main(["init", str(home), "--host", "imap.example.com", *args]) == 2
    err = capsys.readouterr().err
    assert "--owner: not an email address: 'boss'" in err
    assert "--timezone: unknown IANA time zone 'Mars/Olympus'" in err


OFFLINE = [
    "--host",
    "imap.shop.example",
    "--user",
    "hello@shop.example",
    "--owner",
    "boss@shop.example",
    "--timezone",
    "Europe/Berlin",
]


def test_nothing_existing_is_overwritten_without_force(tmp_path: Path, capsys: Capsys) -> None:
    home = tmp_path / "iw"
    assert main(["init", str(home), *OFFLINE]) == 0
    doc = tomllib.loads((home / "config.toml").read_text())
    assert doc["smtp"]["host"] == "smtp.shop.example"  # the usual pair of names
    assert doc["imap"]["password_env"] == doc["smtp"]["password_env"] == "INBOXWATCH_PASSWORD"
    (home / "templates" / "ack.toml").write_text("# mine\n")
    before = (home / "config.toml").read_text()
    capsys.readouterr()
    assert main(["init", str(home), *OFFLINE, "--timezone", "UTC"]) == 2
    err = capsys.readouterr().err
    assert f"{home / 'config.toml'}: exists; not overwritten (--force replaces it)" in err
    assert "more files exist" in err
    assert (home / "config.toml").read_text() == before
    assert (home / "templates" / "ack.toml").read_text() == "# mine\n"
    assert main(["init", str(home), *OFFLINE, "--timezone", "UTC", "--force"]) == 0
    assert tomllib.loads((home / "config.toml").read_text())["timezone"] == "UTC"
    assert (home / "templates" / "ack.toml").read_text() != "# mine\n"


def test_interactive_init_asks_for_what_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Capsys
) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    answers = "imap.shop.example\nhello@shop.example\n\nboss@shop.example\nEurope/Vienna\n\n"
    monkeypatch.setattr("sys.stdin", Terminal(answers))
    home = tmp_path / "iw"
    assert main(["init", str(home)]) == 0
    out = capsys.readouterr().out
    assert "business address leads write to [hello@shop.example]" in out
    assert "SMTP server [smtp.shop.example]" in out
    doc = tomllib.loads((home / "config.toml").read_text())
    assert doc["identity"]["address"] == "hello@shop.example"
    assert doc["timezone"] == "Europe/Vienna"
    assert doc["smtp"]["host"] == "smtp.shop.example"


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_give_configs_check_accepts(name: str, tmp_path: Path, capsys: Capsys) -> None:
    preset = PRESETS[name]
    home = tmp_path / name
    login = ["--token-command", "oauth2-helper --account hello"] if preset.auth == "oauth2" else []
    flags = ["--user", "hello@shop.example", "--owner", "boss@shop.example"]
    args = ["init", str(home), "--provider", name, *flags, "--timezone", "UTC", *login]
    assert main(args) == 0, capsys.readouterr().err
    assert preset.login_note in capsys.readouterr().out
    cfg = load_config(home / "config.toml")
    imap_host, smtp_host = preset.hosts_for("shop.example")
    assert (cfg.imap.host, cfg.imap.port, cfg.imap.tls) == (imap_host, preset.imap_port, "ssl")
    assert (cfg.smtp.host, cfg.smtp.port) == (smtp_host, preset.smtp_port)
    assert cfg.imap.save_sent is preset.save_sent
    assert cfg.sending.max_per_day == preset.max_per_day
    doc = tomllib.loads((home / "config.toml").read_text())
    if preset.auth == "oauth2":
        assert doc["imap"]["auth"] == doc["smtp"]["auth"] == "oauth2"
    else:
        assert "auth" not in doc["imap"]
    assert main(["check", "--config", str(home / "config.toml")]) == 0


def test_an_oauth2_preset_needs_a_token_command(tmp_path: Path, capsys: Capsys) -> None:
    flags = ["--user", "me@gmail.com", "--owner", "boss@shop.example", "--timezone", "UTC"]
    assert main(["init", str(tmp_path / "g"), "--provider", "gmail", *flags]) == 2
    assert "--token-command: missing: Gmail" in capsys.readouterr().err


def test_cpanel_hosts_follow_the_mail_domain(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    flags = ["--user", "anna@bakery.example", "--owner", "anna@bakery.example"]
    home = tmp_path / "c"
    monkeypatch.chdir(tmp_path)  # --state is taken from where the command runs
    flags += ["--state", "var/iw.json", "--password-credential", "password"]
    assert main(["init", str(home), "--provider", "cpanel", *flags, "--timezone", "UTC"]) == 0
    cfg = load_config(home / "config.toml")
    assert cfg.imap.host == cfg.smtp.host == "mail.bakery.example"
    assert cfg.state_path == tmp_path / "var" / "iw.json"
    doc = tomllib.loads((home / "config.toml").read_text())
    assert doc["smtp"]["password_credential"] == "password" and "password_env" not in doc["smtp"]


# -- a certificate made out for another name ------------------------------------------------
def _starttls(conn: socket.socket, ctx: ssl.SSLContext) -> ssl.SSLSocket | None:
    """The plain-text start of an IMAP STARTTLS session, as far as the client goes."""
    conn.sendall(b"* OK [CAPABILITY IMAP4rev1 STARTTLS] ready\r\n")
    reader = conn.makefile("rb")
    for _ in range(5):  # CAPABILITY (imaplib asks), then STARTTLS
        line = reader.readline()
        if not line:
            return None
        # latin-1: a client that sends a TLS ClientHello here (init's check of the TLS
        # mode) gets no STARTTLS, as from a real server, and the thread lives on.
        tag, _, command = line.decode("latin-1").strip().partition(" ")
        if command.upper() == "CAPABILITY":
            conn.sendall(b"* CAPABILITY IMAP4rev1 STARTTLS\r\n" + f"{tag} OK done\r\n".encode())
        elif command.upper() == "STARTTLS":
            conn.sendall(f"{tag} OK begin TLS\r\n".encode())
            return ctx.wrap_socket(conn, server_side=True)
        else:
            return None
    return None


@pytest.fixture(params=["ssl", "starttls"])
def other_name_tls(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[int, Path, str]]:
    """An IMAP-ish TLS server on 127.0.0.1 (implicit TLS, or STARTTLS) whose self-signed,
    trusted certificate names only mail.other.test: a shared host's certificate, or a
    mistyped host."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("needs the openssl command")
    mode: str = request.param
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            *(openssl, "req", "-x509", "-nodes", "-days", "2", "-subj", "/CN=mail.other.test"),
            *("-addext", "subjectAltName=DNS:mail.other.test", "-newkey", "ec"),
            *("-pkeyopt", "ec_paramgen_curve:P-256", "-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    done = threading.Event()

    def serve() -> None:
        for _ in range(500):  # bounded: at most ~100 s, and the test ends it sooner
            if done.is_set():
                return
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(5)
                try:
                    if mode == "ssl":
                        tls: ssl.SSLSocket | None = ctx.wrap_socket(conn, server_side=True)
                    else:
                        tls = _starttls(conn, ctx)
                    if tls is not None:
                        with tls:
                            tls.recv(1024)
                except (OSError, ssl.SSLError):
                    pass  # the client refused our certificate, as it should

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1], cert, mode
    finally:
        done.set()
        thread.join(timeout=5)
        listener.close()


def test_a_certificate_for_another_name_is_named_with_the_host(
    other_name_tls: tuple[int, Path, str],
    tmp_path: Path,
    capsys: Capsys,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    port, cert, mode = other_name_tls
    monkeypatch.setenv("INBOXWATCH_PASSWORD", "secret")
    home = tmp_path / "iw"
    flags = ["--host", "127.0.0.1", "--user", "me@shop.example", "--owner", "boss@shop.example"]
    flags += ["--timezone", "UTC", "--set", f"imap.port={port}", "--set", f'imap.cafile="{cert}"']
    flags += ["--set", f'imap.tls="{mode}"', "--set", "imap.timeout=5"]
    assert main(["init", str(home), *flags, "--probe"]) == 1
    err = capsys.readouterr().err
    assert f"the certificate of 127.0.0.1:{port} is for mail.other.test, not for 127.0.0.1" in err
    assert not home.exists()


def without(flags: list[str], key: str) -> list[str]:
    """``flags`` less the ``--set KEY=...`` pair for ``key``."""
    out: list[str] = []
    for flag in flags:
        if out and out[-1] == "--set" and flag.startswith(f"{key}="):
            out.pop()
        else:
            out.append(flag)
    return out


def test_probe_of_an_untrusted_certificate_names_the_cafile_key(
    mail_servers: MailServers, shop: str, tmp_path: Path, capsys: Capsys
) -> None:
    home = tmp_path / "iw"
    flags = without(server_flags(mail_servers, shop, home), "imap.cafile")
    assert main(["init", str(home), *flags, "--probe"]) == 1
    err = capsys.readouterr().err
    assert f"the certificate of IMAP 127.0.0.1:{mail_servers.imaps_port} cannot be verified" in err
    assert "imap.cafile" in err and len(err.splitlines()) == 1
    assert not home.exists()


def test_probe_of_smtp_starttls_on_an_implicit_tls_port_names_the_mode_that_fits(
    mail_servers: MailServers, shop: str, tmp_path: Path, capsys: Capsys
) -> None:
    assert mail_servers.smtps_port is not None
    home = tmp_path / "iw"
    flags = without(server_flags(mail_servers, shop, home), "smtp.port")
    flags += ["--set", f"smtp.port={mail_servers.smtps_port}"]  # tls stays "starttls"
    assert main(["init", str(home), *flags, "--probe"]) == 1
    err = capsys.readouterr().err
    assert f"SMTP 127.0.0.1:{mail_servers.smtps_port} speaks TLS from the first byte" in err
    assert 'set smtp.tls = "ssl"' in err
    assert not home.exists()
    # ... and with that mode the same port logs in.
    assert main(["init", str(home), *flags, "--set", 'smtp.tls="ssl"', "--probe"]) == 0
    assert f"SMTP 127.0.0.1:{mail_servers.smtps_port} (ssl) accepted the login" in (
        capsys.readouterr().out
    )


def test_probe_of_smtp_ssl_on_a_plain_port_names_starttls(
    mail_servers: MailServers, shop: str, tmp_path: Path, capsys: Capsys
) -> None:
    home = tmp_path / "iw"
    flags = [*server_flags(mail_servers, shop, home), "--set", 'smtp.tls="ssl"']
    assert main(["init", str(home), *flags, "--probe"]) == 1
    err = capsys.readouterr().err
    assert f"SMTP 127.0.0.1:{mail_servers.smtp_port} does not start with TLS" in err
    assert 'set smtp.tls = "starttls"' in err


def test_probe_of_a_refused_smtp_login_names_its_password_source(
    mail_servers: MailServers,
    shop: str,
    tmp_path: Path,
    capsys: Capsys,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    home = tmp_path / "iw"
    monkeypatch.setenv("SMTP_PW", "not the password")
    flags = [*server_flags(mail_servers, shop, home), "--set", 'smtp.password_env="SMTP_PW"']
    assert main(["init", str(home), *flags, "--probe"]) == 1
    err = capsys.readouterr().err
    assert f"SMTP login as '{mail_servers.address(shop)}' refused by 127.0.0.1:" in err
    assert "check the password from smtp.password_env ($SMTP_PW)" in err
    assert [x for x in err.splitlines() if x.startswith("inboxwatch:")] == err.splitlines()[-1:]


def test_probe_of_a_failing_token_command_names_the_key_not_the_staging_folder(
    mail_servers: MailServers, shop: str, tmp_path: Path, capsys: Capsys
) -> None:
    home = tmp_path / "iw"
    flags = server_flags(mail_servers, shop, home)
    at = flags.index("--password-file")
    del flags[at : at + 2]
    flags += ["--token-command", "sh -c 'echo no grant >&2; exit 3'"]
    assert main(["init", str(home), *flags, "--probe"]) == 1
    err = capsys.readouterr().err.splitlines()[-1]
    assert "imap.token_command: exited with status 3: no grant" in err
    assert ".inboxwatch-init" not in err
    assert not home.exists()
