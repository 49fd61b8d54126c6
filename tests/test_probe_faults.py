"""The independent probe's fault classes, end to end on the real Dovecot and SMTP server.

A message built to backtrack, and a forged form notification: delivered to a running
daemon, they must neither freeze it nor reach the wrong party.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from harness import REPO, RunningDaemon
from test_regex_safety import FROZE

from inboxwatch.adapters.tinydb_store import TinyDbStore
from inboxwatch.testing.devservers import MailServers
from inboxwatch.testing.mailfactory import mail
from inboxwatch.userfiles.config import load_config

pytestmark = pytest.mark.servers

#: A user's own form rule with the pattern that once froze the daemon.
HAZARD_RULE = f"""
[[rule]]
name = "my-form"
kind = "enquiry"
source = "website"
lead = "body"
senders = ["@our-domain"]
accept_robots = true
lead_pattern = '''{FROZE}'''
template = "ack-form"
[rule.match]
subject = "New form submission"

"""


def test_a_message_built_to_backtrack_is_skipped_and_the_next_enquiry_is_answered(
    mail_servers: MailServers, shop: str, tmp_path: Path
) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(REPO / "rules", rules)
    shipped = (rules / "rules.toml").read_text()
    (rules / "rules.toml").write_text(HAZARD_RULE + shipped)
    rd = RunningDaemon(mail_servers, shop, tmp_path / "iw", rules=rules, poll_seconds=3600)
    with rd:
        ours = f"wordpress@{rd.address.split('@')[1]}"
        # The "@" keeps the pattern running: a text without one is never searched.
        body = "New form submission\n\ne-mail" + " " * 50_000 + "text @\n"
        mail_servers.deliver(shop, mail(ours, rd.address, "New form submission", body), sender=ours)
        lead = "after.the.poison@customer.test"
        mail_servers.deliver(shop, mail(lead, rd.address, "Quote please"), sender=lead)
        rd.wait_until(lambda: rd.sent_to(lead, "ack"), timeout=15, what="the next enquiry's ack")
        state = load_config(rd.config_path).state_path
        with TinyDbStore.open(state, readonly=True).transaction() as s:
            rejects = s.rejects()
        assert len(rejects) == 1 and "budget" in rejects[0].error, rejects


def test_a_forged_form_notification_enrols_nobody(
    mail_servers: MailServers, shop: str, tmp_path: Path
) -> None:
    rd = RunningDaemon(mail_servers, shop, tmp_path / "iw", poll_seconds=3600)
    victim = "victim@customer.test"
    stranger = "prankster@elsewhere.test"
    with rd:
        forged = mail(
            stranger,
            rd.address,
            "New message from your website",
            f"Name: Victim\nEmail: {victim}\nMessage: please call me\n",
        )
        mail_servers.deliver(shop, forged, sender=stranger)
        # Neither the victim nor the sender (which could be a website's robot) is answered:
        # the owner is told how to list the sender if it is theirs (review item 1).
        owner = mail_servers.address("owner")
        rd.wait_until(lambda: rd.sent_to(owner, "owner-notice"), timeout=10, what="notice")
        assert rd.sent_to(victim) == [] and rd.sent_to(stranger) == []
        assert rd.lead(victim) is None and rd.lead(stranger) is None
