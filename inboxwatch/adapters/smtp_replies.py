"""Reading an SMTP server's replies: which party a refusal is about, and how long to wait.

The reply code, its enhanced status code (RFC 3463, carried as RFC 2034 says) and the
stage of the transaction it answered (RFC 5321 §3.3) give an
:class:`~inboxwatch.core.queue.Outcome` (the table is on ``Outcome``). Shared by the
SMTP sender and its in-memory twin, so both read a reply the same way.
"""

from __future__ import annotations

import re
from datetime import timedelta
from enum import StrEnum

from inboxwatch.adapters.ports import Outcome, Result

#: Pauses when the reply names no time: a provider's daily quota, an hourly one, a rate.
DAILY_QUOTA = timedelta(hours=24)
HOURLY_QUOTA = timedelta(hours=1)
RATE_LIMIT = timedelta(minutes=15)
#: A time the server gives ("try again in 5 minutes") is kept within these.
_HINT_MIN, _HINT_MAX = timedelta(seconds=30), timedelta(hours=25)


class Stage(StrEnum):
    """Where in the session a reply came (RFC 5321 §3.3: a mail transaction's steps)."""

    CONNECT = "connect"  # greeting, EHLO, STARTTLS, AUTH: before any message
    MAIL = "mail"
    RCPT = "rcpt"
    DATA = "data"  # the DATA command and the reply after the message's end

    @property
    def command(self) -> str:
        return {
            Stage.CONNECT: "the greeting, EHLO or login",
            Stage.MAIL: "MAIL FROM",
            Stage.RCPT: "RCPT TO",
            Stage.DATA: "DATA",
        }[self]


# -- reading replies ----------------------------------------------------------------------

_ENHANCED = re.compile(r"^\s*([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])", re.M)
#: The recipient's mailbox is full (X.2.2 without the code): their quota, it passes.
_MAILBOX_FULL = re.compile(
    r"mailbox (?:is )?full|over ?quota|mailbox\b.{0,30}\bquota|quota\b.{0,30}\bmailbox"
    r"|insufficient (?:system )?storage|storage (?:allocation|limit)|disk quota",
    re.I,
)
#: Words that make a quota ours (the account's sending), not the recipient's mailbox.
_OUR_QUOTA = re.compile(
    r"\b(?:send|sending|submission|daily|hourly|outbound|per (?:day|hour))\b", re.I
)
#: A quota or rate limit on our sending.
_RATE = re.compile(
    r"rate.?limit|throttl|unusual rate|unexpected volume|too fast|slow down"
    r"|too many (?:messages|mails?|e-?mails?|recipients|connections|sessions|requests|sends?"
    r"|login|auth)"
    r"|(?:sending|send|submission|message|daily|hourly|outbound|user) ?(?:quota|limit)"
    r"|(?:quota|limit) ?(?:exceeded|reached|was exceeded)"
    r"|exceeded (?:the |your )?(?:\w+ ){0,2}(?:quota|limit)",
    re.I,
)
_HOURLY = re.compile(r"\bhour(?:ly)?\b", re.I)
_DAILY = re.compile(r"\bdaily\b|\bper day\b|\b24 ?h(?:ours?|rs?)?\b|\bday\b", re.I)
_HINT = re.compile(
    r"(?:try (?:again|later)|retry|wait|again)\D{0,20}?\b(?:in|after|for)\s+"
    r"(\d+(?:\.\d+)?)\s*(seconds?|secs?|s|minutes?|mins?|m|hours?|hrs?|h)\b",
    re.I,
)
#: The refusal is about us (our sender address, our login, relaying, our domain).
_SENDER = re.compile(
    r"relay|sender address|sender domain|\bsender (?:is )?(?:not|rejected|refused|blocked|"
    r"denied|unknown)|from address|envelope from|mail from|authenticat|auth required"
    r"|not (?:allowed|authori[sz]ed|permitted) to (?:send|relay)|send ?as\b|client host"
    r"|your (?:ip|account|domain)|account (?:is )?(?:disabled|suspended|blocked|locked)",
    re.I,
)
#: The refusal names the recipient (when a policy code could be either).
_RECIPIENT = re.compile(
    r"recipient|user unknown|unknown user|no such (?:user|mailbox|address|recipient)"
    r"|mailbox (?:unavailable|not found|does not exist|disabled|inactive)|does not exist"
    r"|invalid (?:mailbox|address)|address unknown",
    re.I,
)
#: Enhanced codes (subject, detail) about us: X.1.7/X.1.8 our sender address (RFC 3463
#: §3.2); X.7.8/X.7.9/X.7.11 authentication (RFC 4954 §6); X.7.13/X.7.14 our account
#: (RFC 5248); X.7.20-X.7.27 our domain's DKIM/SPF/DMARC (RFC 7372).
_SENDER_CODES = {(1, 7), (1, 8), (7, 8), (7, 9), (7, 11), (7, 13), (7, 14)} | {
    (7, n) for n in range(20, 28)
}


def parse_reply(reply: str) -> tuple[int, str]:
    """``"550 5.1.1 no such user"`` → ``(550, "5.1.1 no such user")``."""
    code, _, text = reply.strip().partition(" ")
    return int(code[:3]), text.strip()


def enhanced_code(text: str) -> tuple[int, int, int] | None:
    """The RFC 3463 status code a reply's text starts with (``5.1.1``), if any."""
    m = _ENHANCED.search(text)
    return (int(m[1]), int(m[2]), int(m[3])) if m else None


def _hint(text: str) -> timedelta | None:
    """A wait the server names ("try again in 10 minutes"), within sane bounds."""
    m = _HINT.search(text)
    if m is None:
        return None
    n, unit = float(m[1]), m[2].lower()
    span = (
        timedelta(hours=n)
        if unit.startswith("h")
        else timedelta(minutes=n)
        if unit.startswith("m")
        else timedelta(seconds=n)
    )
    return min(_HINT_MAX, max(_HINT_MIN, span))


def _rate_limited(code: int, esc: tuple[int, int, int] | None, text: str) -> bool:
    sd = esc[1:] if esc else None
    # X.4.5 (Gmail's "550 5.4.5 daily sending quota"), X.7.28 (a rate of unsolicited
    # mail), X.5.3 "too many recipients" for a message that has only one (RFC 5321
    # §4.5.3.1.10: a limit per period, then).
    return sd in ((4, 5), (7, 28), (5, 3)) or bool(_RATE.search(text))


def _pause(code: int, esc: tuple[int, int, int] | None, text: str) -> timedelta:
    """How long a quota or rate limit should stop all sending."""
    hint = _hint(text)
    if hint is not None:
        return hint
    if _HOURLY.search(text) and not _DAILY.search(text):
        return HOURLY_QUOTA
    if (
        _DAILY.search(text)
        or "quota" in text.lower()
        or (code >= 500 and esc and esc[1:] == (4, 5))
    ):
        return DAILY_QUOTA  # until a daily quota can have reset
    return RATE_LIMIT


def _recipient_quota(stage: Stage, esc: tuple[int, int, int] | None, text: str) -> bool:
    """The recipient's mailbox is full (X.2.2): it passes, for them alone."""
    if stage not in (Stage.RCPT, Stage.DATA) or _OUR_QUOTA.search(text):
        return False
    if esc is not None:
        return esc[1:] == (2, 2)
    return bool(_MAILBOX_FULL.search(text))


def _outcome(stage: Stage, code: int, text: str) -> Outcome:
    esc = enhanced_code(text)
    sd = esc[1:] if esc else None
    if stage is Stage.CONNECT:
        return Outcome.PAUSED if _rate_limited(code, esc, text) else Outcome.UNREACHABLE
    if _recipient_quota(stage, esc, text):
        return Outcome.DEFERRED
    if _rate_limited(code, esc, text):
        return Outcome.PAUSED
    if not 500 <= code < 600:
        return Outcome.DEFERRED  # 4yz (a 421 closes the connection too), or nonsense
    if stage is Stage.MAIL:
        # Nothing about the recipient yet: our sender, unless our message is too big
        # (X.3.4, X.2.3; 552 to a SIZE parameter, RFC 1870).
        too_big = sd in ((3, 4), (2, 3)) or (esc is None and code == 552)
        return Outcome.CONTENT_REFUSED if too_big else Outcome.SENDER_REFUSED
    if sd in _SENDER_CODES or code == 530:
        return Outcome.SENDER_REFUSED
    if esc is None and _SENDER.search(text) and not _RECIPIENT.search(text):
        return Outcome.SENDER_REFUSED
    if stage is Stage.RCPT:
        if code in (500, 502, 503, 504, 555):  # our client and this server disagree
            return Outcome.SENDER_REFUSED
        if sd in ((3, 4), (2, 3)):
            return Outcome.CONTENT_REFUSED
        if sd is not None and sd[0] == 7 and not _RECIPIENT.search(text):
            # Policy (X.7.x) before any content: relaying, our account, our address.
            return Outcome.SENDER_REFUSED
        return Outcome.REFUSED  # 550 5.1.1 and the like: this address
    # After DATA: the recipient only when the code (or plain words) say so.
    if sd is not None and (sd[0] in (1, 4) or (sd[0] == 2 and sd != (2, 3))):
        return Outcome.REFUSED
    if esc is None and _RECIPIENT.search(text):
        return Outcome.REFUSED
    return Outcome.CONTENT_REFUSED  # X.7.x policy/spam, X.6.x content, X.3.4 size, ...


def classify_reply(stage: Stage | str, code: int, text: str) -> Result:
    """The :class:`Result` for an SMTP reply ``code text`` at ``stage``.

    Reads the enhanced status code (RFC 3463) where there is one, else the reply code
    and plain words; see :class:`~inboxwatch.core.queue.Outcome` for what each outcome
    means. ``retry_after``: how long a PAUSED outcome should stop all sending (a daily
    quota: 24 h, until it can have reset; a rate limit: 15 min), or a time the server
    named ("try again in 5 minutes").
    """
    stage = Stage(stage)
    outcome = _outcome(stage, code, text)
    esc = enhanced_code(text)
    after = _pause(code, esc, text) if outcome is Outcome.PAUSED else _hint(text)
    error = f"SMTP {code} {text} (reply to {stage.command})".replace("\n", " ")
    return Result(outcome, error, retry_after=after)


def halts_batch(stage: Stage | str, result: Result) -> bool:
    """After ``result`` (at ``stage``) the rest of the batch is not attempted.

    A quota or rate limit, a server that cannot be reached, and a refusal at MAIL FROM
    (nothing about a recipient yet, so every message would get it). A SENDER_REFUSED
    later in a transaction is not: it might be about one recipient after all.
    """
    if result.outcome in (Outcome.PAUSED, Outcome.UNREACHABLE):
        return True
    return result.outcome is Outcome.SENDER_REFUSED and Stage(stage) is Stage.MAIL
