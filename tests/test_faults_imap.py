"""A copy saved in Sent whose APPEND was answered too late.

Measured with the real daemon: Dovecot stopped (SIGSTOP) for 45 s right after the
acknowledgement reached SMTP; the daemon's APPEND to Sent timed out and was retried
after the reconnect, but the stopped server had the first APPEND in its socket and
carried it out when it went on: the owner's Sent folder showed the acknowledgement
twice. Here the same moment is made exact against the real Dovecot: the APPEND is
done, then its answer is lost (a timeout), and the copy is saved again on the next tick.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from inboxwatch.adapters.imap_source import ImapSource
from inboxwatch.adapters.ports import CopiesNotSaved
from inboxwatch.errors import TransientError
from inboxwatch.testing.devservers import MailServers
from inboxwatch.userfiles.config import ImapConfig, Secret

pytestmark = pytest.mark.servers


def source(servers: MailServers, user: str) -> ImapSource:
    cfg = ImapConfig(
        "127.0.0.1", servers.imap_port, "none", servers.address(user), Secret("t", "imap")
    )
    return ImapSource(cfg, servers.password(user))


def copy(n: int) -> tuple[str, bytes]:
    mid = f"<iw.{uuid.uuid4().hex[:16]}@example.test>"
    raw = (
        f"From: shop@example.test\r\nTo: lead{n}@customer.test\r\nSubject: Re: Quote\r\n"
        f"Message-ID: {mid}\r\nX-Inboxwatch: ack\r\n\r\nThank you.\r\n"
    ).encode()
    return mid, raw


def in_sent(servers: MailServers, user: str, mid: str) -> int:
    client = servers.imap_client(user)
    try:
        client.select_folder("Sent", readonly=True)
        return len(client.search(["HEADER", "Message-ID", mid]))
    finally:
        client.logout()


def answer_lost(real: Callable[..., Any], after: int) -> Callable[..., Any]:
    """The server does the ``after``-th call, then its answer never comes."""
    calls = {"n": 0}

    def call(*args: Any, **kw: Any) -> Any:
        calls["n"] += 1
        got = real(*args, **kw)
        if calls["n"] == after:
            raise TransientError("IMAP append to Sent: TimeoutError: timed out")
        return got

    return call


@pytest.mark.parametrize("multiappend", [True, False])
def test_a_copy_whose_append_answer_was_lost_is_not_saved_twice(
    mail_servers: MailServers, shop: str, monkeypatch: pytest.MonkeyPatch, multiappend: bool
) -> None:
    src = source(mail_servers, shop)
    src.open()
    try:
        src._multiappend = multiappend and src._multiappend
        copies = [copy(n) for n in range(3)]
        raws = [raw for _, raw in copies]
        name = "multiappend" if src._multiappend else "append"
        # Lost on the first (MULTIAPPEND: the only) batch, or on the second single APPEND.
        after = 1 if src._multiappend else 2
        monkeypatch.setattr(src.mailbox, name, answer_lost(getattr(src.mailbox, name), after))
        when = datetime.now(UTC)
        with pytest.raises(CopiesNotSaved) as lost:
            src.save_sent(raws, when)
        monkeypatch.undo()
        # The caller retries the copies from the first one not known to be saved.
        rest = raws[lost.value.saved :]
        assert len(rest) == (3 if src._multiappend else 2)
        src.save_sent(rest, when)
        assert [in_sent(mail_servers, shop, mid) for mid, _ in copies] == [1, 1, 1]
        # Once sure again, nothing more is looked up: a new copy is simply saved.
        assert src._copies_uncertain is False
    finally:
        src.close()
