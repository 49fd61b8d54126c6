"""A config.toml that points inboxwatch at one user of the private test servers.

The other side of ``MailServers``: the servers are the mail world, this is how the
program under test is told to reach it (ports, TLS with the test CA, the user's
password in a file). Tests, the bench and the demo all configure inboxwatch this way,
through ``MailServers.inboxwatch_config`` (defined on ``MailAccess``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from inboxwatch.testing.mail_access import MailAccess


def write_inboxwatch_config(
    servers: MailAccess,
    user: str,
    folder: Path,
    *,
    rules: Path,
    templates: Path,
    owner: str = "owner",
    team: Sequence[str] = ("team",),
    tls: bool = False,
    extra: str = "",
    imap_extra: str = "",
    timezone: str = "UTC",
) -> Path:
    """Write folder/config.toml (and folder/password) for user; returns the config path.

    With tls, IMAP uses implicit TLS and SMTP STARTTLS, both trusting the servers' CA.
    extra is appended to the file, imap_extra to its [imap] table.
    """
    folder.mkdir(parents=True, exist_ok=True)
    pw = folder / "password"
    pw.write_text(servers.password(user))
    pw.chmod(0o600)
    if tls:
        imap = f'port = {servers.imaps_port}\ntls = "ssl"\ncafile = "{servers.cafile}"'
        smtp = f'port = {servers.smtp_port}\ntls = "starttls"\ncafile = "{servers.cafile}"'
    else:
        imap = f'port = {servers.imap_port}\ntls = "none"'
        smtp = f'port = {servers.smtp_port}\ntls = "none"'
    team_list = ", ".join(f'"{servers.address(t)}"' for t in team)
    text = f"""timezone = "{timezone}"

[imap]
host = "127.0.0.1"
{imap}
username = "{servers.address(user)}"
password_file = "{pw}"
timeout = 10
{imap_extra}

[smtp]
host = "127.0.0.1"
{smtp}
username = "{servers.address(user)}"
password_file = "{pw}"
timeout = 10

[identity]
address = "{servers.address(user)}"
name = "Example Shop"

[team]
addresses = [{team_list}]

[owner]
address = "{servers.address(owner)}"

[state]
path = "{folder / "state" / "inboxwatch.json"}"

[paths]
rules = "{rules}"
templates = "{templates}"
{extra}
"""
    path = folder / "config.toml"
    path.write_text(text)
    return path
