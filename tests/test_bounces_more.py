"""Bounces outside the DSN standard (issue 9, item 3): carriers, SMS gateways, list
managers, NDRs in other languages, provider JSON notifications; and people who are not.

Every file in ``tests/mail/bounces2/`` has an expectation here; the samples are written
after the habits of the systems their ``X-Sample-Shape`` header names.
"""

from __future__ import annotations

import email.header
import json
from pathlib import Path

import pytest

from inboxwatch.core.autodetect import detect
from inboxwatch.core.bounces import detect_bounce, role_sender
from inboxwatch.core.message import Message, parse_message

MAIL = Path(__file__).parent / "mail" / "bounces2"

#: file -> (kind or None, hard, failed recipients)
EXPECTED: dict[str, tuple[str | None, bool | None, tuple[str, ...]]] = {
    "jp_carrier_post_master.eml": ("bounce", True, ("sato-k@ezweb.carrier.example.jp",)),
    "cn_system_bounce_headers.eml": ("bounce", True, ("wang.li@corp.example.cn",)),
    "kr_mailer_inline.eml": ("bounce", True, ("kim.minji@portal.example.kr",)),
    "ru_mailer_admin.eml": ("bounce", True, ("ivanov@hosting.example.ru",)),
    "sms_gateway_admin.eml": ("bounce", True, ("5551234567@vtext.carrier.example.com",)),
    "mailman_list_rejected.eml": ("bounce", False, ("buyers@lists.trade.example.org",)),
    "ses_sns_json.eml": ("bounce", True, ("gone@customer.example.net",)),
    "human_forward_as_attachment.eml": (None, None, ()),
    "human_admin_mailbox.eml": (None, None, ()),
}


def load(name: str) -> Message:
    return parse_message((MAIL / name).read_bytes())


def test_every_sample_has_an_expectation_and_a_shape() -> None:
    names = {p.name for p in MAIL.glob("*.eml")}
    assert names == set(EXPECTED)
    for name in names:
        assert load(name).header("x-sample-shape"), name


@pytest.mark.parametrize(("name", "want"), sorted(EXPECTED.items()))
def test_samples(name: str, want: tuple[str | None, bool | None, tuple[str, ...]]) -> None:
    kind, hard, recipients = want
    found = detect(load(name))
    assert (found.kind if found else None) == kind, found
    if kind == "bounce":
        assert found is not None
        assert found.hard is hard
        assert found.recipients == recipients


def mk(subject: str, body: str, frm: str, ctype: str = "text/plain; charset=utf-8") -> Message:
    if not subject.isascii():
        subject = email.header.Header(subject, "utf-8").encode()
    head = [f"From: {frm}", "To: hello@shop.example", f"Subject: {subject}",
            "Date: Wed, 03 Mar 2027 10:00:00 +0000", "Message-ID: <x-1@sender.example>",
            "MIME-Version: 1.0", f"Content-Type: {ctype}",
            "Content-Transfer-Encoding: 8bit"]  # fmt: skip
    return parse_message(("\r\n".join(head) + "\r\n\r\n" + body).encode())


@pytest.mark.parametrize(
    ("subject", "body"),
    [
        ("配信できませんでした", "次の宛先へ配信できませんでした。\nuser@dest.example.jp\n"),
        ("退信通知", "您发送的邮件无法投递到以下收件人：\nli@dest.example.cn\n"),
        ("반송 메일", "메일이 반송되었습니다.\npark@dest.example.kr\n"),
        ("Недоставленное сообщение", "Сообщение не доставлено: petrov@dest.example.ru\n"),
        ("Wiadomość niedostarczalna", "Nie można dostarczyć: nowak@dest.example.pl\n"),
        ("Ej levererbart: offert", "Meddelandet kunde inte levereras till: eva@dest.example.se\n"),
    ],
)
def test_ndr_words_in_other_languages_from_a_mail_system(subject: str, body: str) -> None:
    found = detect_bounce(mk(subject, body, "Mail Delivery System <mailer@mx.dest.example>"))
    assert found is not None and found.hard
    assert len(found.recipients) == 1


@pytest.mark.parametrize(
    ("subject", "body"),
    [
        ("退信了吗？", "你好，我上次的邮件退信了吗？请报价四十把椅子。"),
        ("Re: メールエラー通知", "エラーが出ました。もう一度送ります。"),
        ("Ошибка доставки мебели", "Здравствуйте, курьер не смог доставить заказ. Перезвоните."),
    ],
)
def test_people_writing_those_words_are_not_bounces(subject: str, body: str) -> None:
    assert detect_bounce(mk(subject, body, "Li Wei <li.wei@customer.example.cn>")) is None


def _ses(bounce_type: str) -> str:
    return json.dumps(
        {
            "notificationType": "Bounce",
            "bounce": {
                "bounceType": bounce_type,
                "bouncedRecipients": [{"emailAddress": "Lead <Lead@Dest.example>"}],
            },
            "mail": {"source": "hello@shop.example"},
        }
    )


def test_bare_ses_notification_transient_is_soft() -> None:
    found = detect_bounce(mk("Bounce", _ses("Transient"), "ops@shop.example"))
    assert found is not None and not found.hard
    assert found.recipients == ("lead@dest.example",)


def test_json_that_is_not_a_bounce_notification_is_nothing() -> None:
    body = json.dumps({"notificationType": "Delivery", "delivery": {"recipients": ["a@b.example"]}})
    assert detect_bounce(mk("AWS Notification Message", body, "ops@shop.example")) is None
    assert detect_bounce(mk("Re: bounce stats", '{"bounce": 3', "ann@customer.example")) is None


def test_status_text_and_returned_original_from_an_unknown_sender() -> None:
    ctype = 'multipart/mixed; boundary="z"'
    body = (
        "--z\r\nContent-Type: text/plain\r\n\r\n<lead@dest.example>: host mx.dest.example"
        " said: 550 5.1.1 unknown user\r\n--z\r\nContent-Type: message/rfc822\r\n\r\n"
        "From: hello@shop.example\r\nTo: lead@dest.example\r\nSubject: Thanks\r\n\r\n"
        "Hi\r\n--z--\r\n"
    )
    found = detect_bounce(mk("Returned", body, "gateway@relay.example", ctype))
    assert found is not None and found.hard and found.recipients == ("lead@dest.example",)


@pytest.mark.parametrize(
    ("frm", "role", "system"),
    [
        ("post_master@carrier.example", True, True),
        ("MAILER@isp.example", True, True),
        ("bounce-123@esp.example", True, True),
        ("sales-admin@corp.example", True, False),
        ("list-owner@lists.example", True, False),
        ("no-reply@provider.example", True, False),
        ("Mail Delivery Subsystem <robot@mx.example>", True, True),
        ("anna.admin@corp.example", False, False),
        ("postmistress.jones@corp.example", False, False),
    ],
)
def test_role_senders(frm: str, role: bool, system: bool) -> None:
    why, is_system = role_sender(mk("x", "x", frm))
    assert bool(why) is role and is_system is system
