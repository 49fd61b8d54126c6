"""The files a private Dovecot runs from: homes, passwd-file, certificate and dovecot.conf.

Everything lives in one work directory, so an instance never touches a system mail
service and is gone with the folder. Kept apart from starting the process
(``dovecot.py``) because what these files must say depends on who runs the tests: as
root, mail is stored as nobody/nogroup and Dovecot's service users must be able to
enter the work directory; as a normal user, every service runs as that user unchrooted.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from inboxwatch.testing.loopback import HOST


def write_mailboxes(workdir: Path, mailboxes: Sequence[tuple[str, str]]) -> None:
    """Work dir, one home per (address, password) and the passwd-file listing them."""
    workdir.mkdir(parents=True, exist_ok=True)
    root = os.geteuid() == 0
    if root:
        _make_traversable(workdir)
    homes = workdir / "home"
    homes.mkdir(exist_ok=True)
    os.chmod(homes, 0o755)
    lines = []
    nobody = _ids("nobody", "nogroup") if root else None
    for address, password in mailboxes:
        home = homes / address
        home.mkdir(exist_ok=True)
        if nobody is not None:
            os.chown(home, *nobody)
        os.chmod(home, 0o700)
        lines.append(f"{address}:{{PLAIN}}{password}::::{home}::\n")
    passwd = workdir / "passwd"
    passwd.write_text("".join(lines))
    if root:
        # The auth process runs as the dovecot user: let its group read the file.
        os.chown(passwd, 0, _ids("dovecot", "dovecot")[1])
    os.chmod(passwd, 0o640 if root else 0o600)


def make_certificate(workdir: Path) -> tuple[Path, Path]:
    """(cert, key): a self-signed P-256 certificate for localhost and 127.0.0.1.

    Made once per work dir (a restart reuses it); the certificate is also the CA file
    clients trust.
    """
    tls_dir = workdir / "tls"
    tls_dir.mkdir(exist_ok=True)
    cert, key = tls_dir / "cert.pem", tls_dir / "key.pem"
    if not (cert.exists() and key.exists()):
        openssl = shutil.which("openssl")
        if openssl is None:
            raise RuntimeError("tls=True needs the openssl command: apt-get install -y openssl")
        args = [openssl, "req", "-x509", "-nodes", "-days", "30", "-subj", "/CN=localhost"]
        args += ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]
        args += ["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"]
        args += ["-addext", "basicConstraints=critical,CA:TRUE"]
        args += ["-keyout", str(key), "-out", str(cert)]
        result = subprocess.run(
            args, stdin=subprocess.DEVNULL, capture_output=True, timeout=30, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(f"openssl failed: {result.stderr.decode(errors='replace')}")
        os.chmod(key, 0o600)
    return cert, key


def write_oauth2_args(workdir: Path, introspection_url: str) -> Path:
    """The args file of Dovecot's ``oauth2`` passdb: every XOAUTH2/OAUTHBEARER token is
    checked at ``introspection_url`` (RFC 7662: POST ``token=...``, answer
    ``{"active": true, "username": "..."}``), and the username it names must be the one
    logging in."""
    path = workdir / "dovecot-oauth2.conf.ext"
    path.write_text(
        f"introspection_url = {introspection_url}\n"
        "introspection_mode = post\n"
        "username_attribute = username\n"
        "active_attribute = active\n"
        "active_value = true\n"
        "force_introspection = yes\n"
    )
    if os.geteuid() == 0:  # read by the auth process, as the dovecot user
        os.chown(path, 0, _ids("dovecot", "dovecot")[1])
    os.chmod(path, 0o640 if os.geteuid() == 0 else 0o600)
    return path


#: Pigeonhole's LMTP plugin (Debian's ``dovecot-sieve``), needed only by :func:`sieve_config`.
SIEVE_PLUGIN = Path("/usr/lib/dovecot/modules/lib90_sieve_plugin.so")


def sieve_config(submission_port: int) -> str:
    """Opt-in lines for dovecot.conf: LMTP runs a user's ``~/.dovecot.sieve`` at delivery
    (Pigeonhole), and what a script sends, such as a ``vacation`` reply, goes by SMTP to
    ``127.0.0.1:submission_port`` (the SMTP stand-in), the way a deliver-time autoresponder
    answers before any IMAP client has looked. Users without the file run no script."""
    return (
        "protocol lmtp {\n  mail_plugins = $mail_plugins sieve\n}\n"
        f"submission_host = {HOST}:{submission_port}\n"
        "plugin {\n  sieve = file:~/sieve;active=~/.dovecot.sieve\n}\n"
    )


def write_sieve_script(workdir: Path, address: str, script: str) -> Path:
    """Make ``script`` the active Sieve script of the mailbox ``address`` (its home, from
    :func:`write_mailboxes`); owned by the mail user, who also stores the compiled form."""
    home = workdir / "home" / address
    if not home.is_dir():
        raise ValueError(f"{address}: no such mailbox home in {workdir}")
    path = home / ".dovecot.sieve"
    path.write_text(script)
    if os.geteuid() == 0:
        os.chown(path, *_ids("nobody", "nogroup"))
    os.chmod(path, 0o600)
    return path


def _passdbs(work: Path, oauth2_args: Path | None) -> str:
    """The passwd-file passdb; with ``oauth2_args`` an ``oauth2`` passdb before it, and
    each restricted to its own mechanisms, so a password never passes as a token."""
    passwd = f"  driver = passwd-file\n  args = scheme=PLAIN username_format=%u {work}/passwd\n"
    if oauth2_args is None:
        return f"auth_mechanisms = plain login\npassdb {{\n{passwd}}}\n"
    return (
        "auth_mechanisms = plain login xoauth2 oauthbearer\n"
        f"passdb {{\n  driver = oauth2\n  mechanisms = xoauth2 oauthbearer\n"
        f"  args = {oauth2_args}\n}}\n"
        f"passdb {{\n{passwd}  mechanisms = plain login\n}}\n"
    )


def render_config(
    *,
    workdir: Path,
    instance_name: str,
    domain: str,
    imap_port: int,
    lmtp_port: int,
    imaps_port: int | None,
    tls_files: tuple[Path, Path] | None,
    extra_config: str,
    oauth2_args: Path | None = None,
) -> str:
    """The text of dovecot.conf; tls_files (cert, key) turns on IMAPS and STARTTLS;
    oauth2_args (:func:`write_oauth2_args`) also lets users log in with OAuth2 tokens."""
    work = workdir
    root = os.geteuid() == 0
    ssl_lines = "ssl = no\n"
    imaps = ""
    if tls_files is not None:
        cert, key = tls_files
        ssl_lines = f"ssl = yes\nssl_cert = <{cert}\nssl_key = <{key}\nssl_min_protocol = TLSv1.2\n"
        imaps = (
            f"  inet_listener imaps {{\n    address = {HOST}\n"
            f"    port = {imaps_port}\n    ssl = yes\n  }}\n"
        )
    else:
        imaps = "  inet_listener imaps {\n    port = 0\n  }\n"
    if root:
        users = (
            "mail_uid = nobody\nmail_gid = nogroup\nfirst_valid_uid = 1\nfirst_valid_gid = 1\n"
            "default_internal_user = dovecot\ndefault_login_user = dovenull\n"
        )
        chroots = anvil_chroot = login_chroot = ""
    else:
        import grp
        import pwd

        me = pwd.getpwuid(os.geteuid()).pw_name
        my_group = grp.getgrgid(os.getegid()).gr_name
        users = (
            f"default_internal_user = {me}\ndefault_internal_group = {my_group}\n"
            f"default_login_user = {me}\n"
            "first_valid_uid = 1\nfirst_valid_gid = 1\n"
        )
        anvil_chroot = login_chroot = "  chroot =\n"
        chroots = "service stats {\n  chroot =\n}\n"
    return f"""\
# Written by inboxwatch.testing.devservers: a private, disposable Dovecot. Do not edit.
instance_name = {instance_name}
base_dir = {work}/run
state_dir = {work}/state
log_path = {work}/dovecot.log
protocols = imap lmtp
listen = {HOST}
hostname = mail.{domain}
postmaster_address = postmaster@{domain}
{ssl_lines}disable_plaintext_auth = no
# A wrong password must not slow the tests after it: no failure delay (a failure still
# takes up to 0.5 s), and no auth penalty (below; by default one failure from
# 127.0.0.1 delays the next login from anywhere on 127.0.0.1 by 2-15 s).
auth_failure_delay = 0
{_passdbs(work, oauth2_args)}userdb {{
  driver = passwd-file
  args = username_format=%u {work}/passwd
}}
{users}mail_location = maildir:~/Maildir
mail_fsync = never
# A daemon under test, its helpers and the test itself all log in as the same user.
mail_max_userip_connections = 200
namespace inbox {{
  inbox = yes
  separator = /
  mailbox Drafts {{
    special_use = \\Drafts
    auto = subscribe
  }}
  mailbox Sent {{
    special_use = \\Sent
    auto = subscribe
  }}
  mailbox Trash {{
    special_use = \\Trash
    auto = subscribe
  }}
  mailbox Junk {{
    special_use = \\Junk
    auto = subscribe
  }}
}}
service imap-login {{
{login_chroot}  inet_listener imap {{
    address = {HOST}
    port = {imap_port}
  }}
{imaps}}}
service lmtp {{
  inet_listener lmtp {{
    address = {HOST}
    port = {lmtp_port}
  }}
}}
service anvil {{
{anvil_chroot}  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
{chroots}{extra_config}
"""


def _make_traversable(path: Path) -> None:
    """Add o+x up the path so Dovecot's service users can reach homes and the passwd-file.

    pytest's temp folders are 0700; only the search bit for others is added, nothing else.
    """
    for p in [path, *path.parents]:
        mode = p.stat().st_mode
        if not mode & 0o001:
            os.chmod(p, (mode & 0o7777) | 0o001)


def _ids(user: str, group: str) -> tuple[int, int]:
    import grp
    import pwd

    return pwd.getpwnam(user).pw_uid, grp.getgrnam(group).gr_gid
