"""What a few common mail providers need in config.toml, so `inboxwatch init --provider`
writes a working [imap]/[smtp] without the user looking up hosts, ports and habits.

Each preset says: the IMAP and SMTP servers (host, port, TLS), how to log in (an app
password, or OAuth2 where the provider turned plain passwords off), the usual name of the
Sent folder (the README's table; `init --probe` asks the server for its \\Sent folder
instead, since the name is localized on Gmail and Microsoft 365), whether mail sent by
SMTP already lands in Sent (then `save_sent = false`, or every message would be there
twice), and the provider's daily sending limit as `[sending] max_per_day`.

The limits, as the providers publish them (checked late 2026; they change without notice):

- Gmail: 500 recipients a day for a consumer account, 2,000 messages a day for Google
  Workspace (500 in a Workspace trial), over a rolling 24 hours ("Gmail sending limits",
  support.google.com/mail/answer/22839 and support.google.com/a/answer/166852). The
  preset takes the lower figure; a Workspace account may raise it to 2,000.
- Microsoft 365 (Exchange Online): 10,000 recipients a day and 30 messages a minute per
  mailbox ("Exchange Online limits", Sending limits, learn.microsoft.com).
- iCloud Mail: 1,000 messages and 1,000 recipients a day (Apple, "Mailbox size and message
  sending limits in iCloud", support.apple.com/102198).
- Fastmail: limits per plan, documented as "fair use" (fastmail.com/help/account/limits);
  the preset keeps inboxwatch's own default, far below any of them.
- cPanel hosting: the host sets it (WHM "Max hourly emails per domain"); inboxwatch's
  default again, to be raised if the host allows more.
"""

from __future__ import annotations

from dataclasses import dataclass

#: inboxwatch's own default daily cap (userfiles.config.SendingConfig), for providers
#: that publish no single figure.
DEFAULT_MAX_PER_DAY = 300


@dataclass(frozen=True)
class Preset:
    name: str
    title: str
    imap_host: str
    imap_port: int
    imap_tls: str
    smtp_host: str
    smtp_port: int
    smtp_tls: str
    #: "password" (an app password where the provider has them) or "oauth2".
    auth: str
    #: The Sent folder's usual (English) name; the server's \Sent flag wins over it.
    sent: str
    #: False where the provider itself files mail sent by SMTP in Sent.
    save_sent: bool
    max_per_day: int
    #: One line for the user: what to prepare before the first start.
    login_note: str
    #: For an OAuth2 provider that also takes an app password (a ``--password-*`` flag
    #: instead of ``--token-command``): what that password must be. Empty: it takes none.
    password_note: str = ""

    def hosts_for(self, domain: str) -> tuple[str, str]:
        """IMAP and SMTP host; cPanel's are named after the mail domain."""
        return self.imap_host.format(domain=domain), self.smtp_host.format(domain=domain)


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            name="fastmail",
            title="Fastmail",
            imap_host="imap.fastmail.com",
            imap_port=993,
            imap_tls="ssl",
            smtp_host="smtp.fastmail.com",
            smtp_port=465,
            smtp_tls="ssl",
            auth="password",
            sent="Sent",
            save_sent=True,
            max_per_day=DEFAULT_MAX_PER_DAY,
            login_note="make an app password (Settings → Privacy & Security → App "
            "passwords, access: IMAP and SMTP); the account password is refused",
        ),
        Preset(
            name="gmail",
            title="Gmail and Google Workspace",
            imap_host="imap.gmail.com",
            imap_port=993,
            imap_tls="ssl",
            smtp_host="smtp.gmail.com",
            smtp_port=465,
            smtp_tls="ssl",
            auth="oauth2",
            sent="[Gmail]/Sent Mail",
            save_sent=False,
            max_per_day=500,
            login_note="logs in with OAuth2: give a token_command that prints a fresh "
            "access token for the scope https://mail.google.com/ (README, OAuth2)",
            password_note="the password must be an app password (myaccount.google.com → "
            "Security → App passwords; needs 2-Step Verification, and in Google "
            "Workspace an administrator who allows them); the account password is refused",
        ),
        Preset(
            name="microsoft365",
            title="Microsoft 365 (Exchange Online)",
            imap_host="outlook.office365.com",
            imap_port=993,
            imap_tls="ssl",
            smtp_host="smtp.office365.com",
            smtp_port=587,
            smtp_tls="starttls",
            auth="oauth2",
            sent="Sent Items",
            save_sent=False,
            max_per_day=10_000,
            login_note="logs in with OAuth2 (basic authentication is off): give a "
            "token_command for IMAP.AccessAsUser.All and SMTP.Send (README, OAuth2); "
            "SMTP AUTH must be enabled for the mailbox",
        ),
        Preset(
            name="icloud",
            title="iCloud Mail",
            imap_host="imap.mail.me.com",
            imap_port=993,
            imap_tls="ssl",
            smtp_host="smtp.mail.me.com",
            smtp_port=587,
            smtp_tls="starttls",
            auth="password",
            sent="Sent Messages",
            save_sent=True,
            max_per_day=1_000,
            login_note="make an app-specific password (account.apple.com → Sign-In and "
            "Security → App-Specific Passwords; needs two-factor authentication)",
        ),
        Preset(
            name="cpanel",
            title="cPanel hosting",
            imap_host="mail.{domain}",
            imap_port=993,
            imap_tls="ssl",
            smtp_host="mail.{domain}",
            smtp_port=465,
            smtp_tls="ssl",
            auth="password",
            sent="Sent",
            save_sent=True,
            max_per_day=DEFAULT_MAX_PER_DAY,
            login_note="the mailbox's own password (cPanel → Email Accounts); if the "
            "certificate is the host's and not mail.<your domain>, use the server name "
            "cPanel shows under Connect Devices",
        ),
    )
}
