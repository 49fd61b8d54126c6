"""`inboxwatch preview TEMPLATE --lead FILE` shows what the daemon sends that lead: the
daemon's acknowledgement of the same enquiry (real Dovecot + SMTP) and the preview agree
on every value, the signature and the enquiry phrase included, and in the lead's language.
"""

from __future__ import annotations

import email.header
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import RunningDaemon

from inboxwatch.cli import main
from inboxwatch.testing.devservers import MailServers
from inboxwatch.testing.mailfactory import mail, parse

pytestmark = pytest.mark.servers

SIGNATURE = 'signature = """\nPetra Schmidt\nSchmidt Haustechnik\n"""'


@pytest.fixture
def daemon(mail_servers: MailServers, shop: str, tmp_path: Path) -> Iterator[RunningDaemon]:
    rd = RunningDaemon(mail_servers, shop, tmp_path / "iw", poll_seconds=3600)
    text = rd.config_path.read_text(encoding="utf-8")
    assert text.count("[identity]\n") == 1
    rd.config_path.write_text(text.replace("[identity]\n", f"[identity]\n{SIGNATURE}\n"))
    yield rd
    rd.stop()


def _preview(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[dict[str, str], str]:
    assert main(["preview", *map(str, argv)]) == 0
    out = capsys.readouterr().out
    head, _, body = out.partition("\n\n")
    return dict(line.split(": ", 1) for line in head.splitlines()), body


@pytest.mark.parametrize(
    ("subject", "text", "greeting"),
    [
        (
            "Angebot für eine Wärmepumpe",
            "Guten Tag, wir möchten unsere Ölheizung durch eine Wärmepumpe ersetzen. "
            "Können Sie uns ein Angebot machen und sagen, wann Sie Zeit hätten?",
            "Guten Tag",
        ),
        (
            "Heat pump for our house",
            "Hello, we would like to replace our oil boiler with a heat pump. Could you "
            "send us a quote and tell us when you could do it?",
            "Hi",
        ),
    ],
)
def test_preview_of_the_ack_is_the_ack_the_daemon_sends(
    mail_servers: MailServers,
    daemon: RunningDaemon,
    shop: str,
    fresh_user: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    subject: str,
    text: str,
    greeting: str,
) -> None:
    lead = mail_servers.address(fresh_user)
    raw = mail(lead, mail_servers.address(shop), subject, text, name="Jana Weber")
    enquiry = tmp_path / "enquiry.eml"
    enquiry.write_bytes(raw)
    daemon.start()
    mail_servers.deliver(shop, raw, sender=lead)
    sent = parse(daemon.wait_until(lambda: daemon.sent_to(lead, "ack"), what="ack")[0].data)
    part = sent.get_body(("plain",))
    assert part is not None
    sent_body = part.get_content().replace("\r\n", "\n")

    headers, body = _preview(capsys, "ack", "--config", daemon.config_path, "--lead", enquiry)

    assert body.strip() == sent_body.strip()
    for key in ("From", "To", "Subject", "In-Reply-To", "References", "Auto-Submitted"):
        assert (
            str(email.header.make_header(email.header.decode_header(sent[key]))) == (headers[key])
        ), key
    # The values the old preview left empty, and the lead's language.
    assert body.lstrip().startswith(greeting)
    assert "Petra Schmidt\nSchmidt Haustechnik" in body
    assert f'"{subject}"' in body  # {{ enquiry }}: their subject, in quotes


def test_preview_of_a_later_step_follows_the_ack(
    daemon: RunningDaemon, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    enquiry = tmp_path / "enquiry.eml"
    enquiry.write_bytes(
        mail(
            "jana@customer.test",
            "hello@shop.example",
            "Heat pump for our house",
            "Hello, could you send us a quote for a heat pump?",
            name="Jana Weber",
        )
    )
    headers, body = _preview(
        capsys, "followup-day1", "--config", daemon.config_path, "--lead", enquiry
    )
    # Threaded after our acknowledgement (which the daemon sends first), not the enquiry.
    assert headers["In-Reply-To"].startswith("<iw.")
    assert headers["Subject"] == "Re: Heat pump for our house"
    assert "Petra Schmidt" in body and '"Heat pump for our house"' in body
