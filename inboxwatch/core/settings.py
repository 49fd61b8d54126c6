"""The parts of the config the decisions need, in the shapes they need them.

Built once from the config (:meth:`Settings.from_config`); the core never reads the
config itself, so every decision is a function of (state, event, now, settings).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import time, timedelta

from inboxwatch.core.classify import Context, Known
from inboxwatch.core.message import Address
from inboxwatch.core.queue import MaxAge
from inboxwatch.core.timing import SendingWindow
from inboxwatch.userfiles.config import Config


@dataclass(frozen=True)
class Settings:
    """The parts of the config the decisions need, in the shapes they need."""

    me: Address
    owner: str
    owner_alerts: bool
    window: SendingWindow
    min_gap: timedelta
    ack_period: timedelta
    hold_max: timedelta
    #: Our own addresses, and the team's (the owner included, ours excluded).
    own: frozenset[str] = frozenset()
    team: frozenset[str] = frozenset()
    #: An enquiry older than this when first seen is not acknowledged (a person decides).
    max_age: timedelta = timedelta(days=7)
    #: Time-lapse: arrival is "now" on the simulated clock, not the mailbox's date.
    simulated: bool = False
    #: authserv-ids of our own receiving server (lower-cased): whose Authentication-Results
    #: count when a notification's sender is judged.
    authserv_ids: tuple[str, ...] = ()
    #: How long each kind of message may wait to go out before it is given up.
    max_ages: MaxAge = field(default_factory=MaxAge)
    #: Honour the receiving server's spam verdict on new senders' enquiries.
    trust_spam_verdict: bool = True
    #: How mail to leads is signed (``[identity] signature``); empty: ``me.name``.
    signature: str = ""
    #: The owner's daily digest (``[owner] digest``; off without an owner address) and
    #: the local time it should arrive (``[owner] digest_time``, in ``window.tz``).
    digest: bool = False
    digest_time: time = time(8, 0)
    #: More new-lead alerts than this from one read become one summary alert.
    backlog_summary_over: int = 20
    #: The mailbox or the SMTP server out of reach this long: the owner is told.
    unreachable_after: timedelta = timedelta(minutes=15)
    #: Nudges (``[owner] nudge_*``): a lead waiting for us this long (counted from the
    #: first moment inside sending hours) reminds the owner, at most once per
    #: ``nudge_every`` (zero: no nudges), inside sending hours unless ``nudge_outside_hours``.
    #: Off unless set: the config's defaults (1 h, 24 h) come through :meth:`from_config`.
    nudge_after: timedelta = timedelta(hours=1)
    nudge_every: timedelta = timedelta(0)
    nudge_outside_hours: bool = False
    #: The new-lead alert carries the enquiry's attachments up to this many bytes in all
    #: (0: never; ``[owner] alert_attachments_max_kb``); larger ones are only named.
    alert_attachments_max: int = 0

    def context(self, known: Known | None = None) -> Context:
        """What classification needs to know about us and the state: one definition."""
        return Context(
            own=self.own,
            team=self.team,
            known=known or Known(),
            authserv_ids=self.authserv_ids,
            trust_spam_verdict=self.trust_spam_verdict,
        )

    @classmethod
    def from_config(cls, cfg: Config, simulated: bool = False) -> Settings:
        s = cfg.sending
        team = cfg.team | ({cfg.owner} if cfg.owner else frozenset())
        return cls(
            me=Address(cfg.identity.address, cfg.identity.name),
            owner=cfg.owner,
            owner_alerts=cfg.owner_alerts and bool(cfg.owner),
            window=SendingWindow(
                cfg.timezone, s.window_start, s.window_end, s.days, holidays=s.holidays
            ),
            min_gap=timedelta(hours=s.min_gap_hours),
            ack_period=timedelta(days=s.ack_period_days),
            hold_max=timedelta(days=s.hold_max_days),
            own=cfg.own_addresses,
            team=team - cfg.own_addresses,
            max_age=timedelta(days=cfg.imap.max_age_days),
            simulated=simulated,
            authserv_ids=cfg.imap.authserv_id,
            trust_spam_verdict=cfg.imap.trust_spam_verdict,
            signature=cfg.identity.signature,
            digest=cfg.digest and bool(cfg.owner),
            digest_time=cfg.digest_time,
            backlog_summary_over=cfg.backlog_summary_over,
            unreachable_after=timedelta(minutes=cfg.unreachable_alert_minutes),
            nudge_after=timedelta(hours=cfg.nudge_after_hours),
            nudge_every=timedelta(hours=cfg.nudge_every_hours),
            nudge_outside_hours=cfg.nudge_outside_hours,
            alert_attachments_max=cfg.alert_attachments_max_kb * 1024,
            max_ages=MaxAge(
                ack=timedelta(days=cfg.imap.max_age_days),
                followup=timedelta(days=s.followup_max_age_days),
                owner=timedelta(days=s.owner_mail_max_age_days),
            ),
        )
