"""The floor of issue 12 target 1: a Sieve ``vacation`` reply from the same Dovecot.

A deliver-time autoresponder answers while the mail is being delivered, before any IMAP
client could know of it: Dovecot's LMTP runs the mailbox's Sieve script (Pigeonhole,
Debian's ``dovecot-sieve``) and its ``vacation`` action submits the reply by SMTP (to the
stand-in, ``submission_host``) before LMTP answers 250. No mail client can be faster
than that, so it is the floor our acknowledgement is compared with.

Measured the same way as the daemon's figure, one enquiry at a time with the same
generator, from distinct senders (vacation answers a sender once per period), each
between two of the daemon's enquiries: from the moment the LMTP delivery begins to the
moment the stand-in has the reply. (Measured from
when the delivery is done, as the daemon's figure is, the reply is *earlier*, by the time
Dovecot takes to store the mail and answer; so both are also given from the start.)

Needs ``MailServers(..., sieve=True)``; where Pigeonhole is missing, :func:`missing` says
so and the bench prints that the floor was skipped.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence

import corpus

from inboxwatch.testing.devservers import CapturedMail, MailServers, sieve_missing

#: What a shop would write: one reply per sender a day, to every mail addressed to it.
VACATION = (
    'require ["vacation"];\n'
    'vacation :days 1 :subject "We got your message" '
    '"Thank you for writing: we will answer you within the day.";\n'
)


def missing() -> str | None:
    """Why the floor cannot be measured here (printed as "skipped: ..."), or None."""
    return sieve_missing()


class VacationFloor:
    """One mailbox with a ``vacation`` script; :meth:`once` times one enquiry's reply.

    The bench calls :meth:`once` between the daemon's enquiries, once the daemon waits
    for mail again, so floor and figure are measured under the same load, one after the
    other and never at the same time.
    """

    def __init__(self, servers: MailServers, user: str, leads: Sequence[str]) -> None:
        self.servers, self.user = servers, user
        self.address = servers.address(user)
        self.leads = iter(leads)  # distinct senders: vacation answers each once a day
        self.rng = random.Random(3)
        #: Seconds from the start ("start") and the end ("done") of each LMTP delivery to
        #: the reply captured, and the delivery itself ("deliver").
        self.result: dict[str, list[float]] = {"start": [], "done": [], "deliver": []}

    def prepare(self) -> VacationFloor:
        """Put the script in place and deliver one enquiry that is not counted: the first
        delivery compiles the script (Dovecot keeps the binary beside it, as it would on
        a server where the script has been in place for a while)."""
        self.servers.set_sieve_script(self.user, VACATION)
        self._deliver(f"warm-up@{corpus.LEAD_DOMAIN}")
        return self

    def once(self) -> None:
        """Deliver the next lead's enquiry and wait (bounded) for the reply."""
        t0, t1, at = self._deliver(next(self.leads))
        self.result["start"].append(at - t0)
        self.result["done"].append(at - t1)
        self.result["deliver"].append(t1 - t0)

    def _deliver(self, lead: str) -> tuple[float, float, float]:
        raw = corpus.enquiry(lead, self.address, self.rng)
        t0 = time.time()
        self.servers.deliver(self.user, raw, sender=lead)
        t1 = time.time()
        got = self.servers.smtp_wait(1, timeout=10, match=lambda m: _reply_to(m, lead))
        return t0, t1, got[0].at


def _reply_to(mail: CapturedMail, lead: str) -> bool:
    """The vacation reply: null sender (RFC 3834 and 5230), to the lead, auto-replied."""
    return (
        mail.mail_from in ("", "<>")
        and lead in mail.rcpt_tos
        and b"\nAuto-Submitted: auto-replied" in mail.data
    )
