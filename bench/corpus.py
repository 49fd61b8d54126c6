"""Varied inbound mail for the benchmarks: enquiries (plain, HTML, web forms) and the noise
a real inbox carries (mailing lists, newsletters, automatic replies, bounces).

Every message but the bounce comes from the shared test-mail factory
(:func:`inboxwatch.testing.mailfactory.mail`); the bounce is a Postfix-style DSN written out
by hand, which that factory does not build. The mix and the contents are deterministic for
a given seed (Message-IDs and dates are not). Every enquiry comes from its own lead address
in another domain than the shop's, so each one is a new lead and gets exactly one
acknowledgement.
"""

from __future__ import annotations

import email.utils
import random
import time
from dataclasses import dataclass

from inboxwatch.testing.mailfactory import mail

LEAD_DOMAIN = "customer.test"
SUBJECTS = (
    "Need a quote",
    "Price for 3 rooms?",
    "=?utf-8?q?Gr=C3=B6=C3=9Fe?= und Preis",
    "Question about delivery times",
    "Anfrage: Küche renovieren",
    "Can you install a heat pump in Potsdam?",
    "Demande de devis pour une terrasse",
    "Availability next month",
)
BODIES = (
    "Hello,\n\nI would like a quote for painting three rooms, about 60 m² in total.\n"
    "When could you start?\n\nThanks,\n{name}\n",
    "Hi there,\n\ndo you also do small repairs? Our garden gate is broken.\n\n{name}\n"
    "Tel. +49 30 555 0101\n",
    "Guten Tag,\n\nwir planen eine neue Küche und hätten gern ein Angebot.\n"
    "Mit freundlichen Grüßen\n{name}\n",
    "Hello,\n\n" + "We are comparing three offers for a larger project. " * 12 + "\n\n{name}\n",
)
NAMES = ("Lea Lead", "Tom Becker", "Ana Núñez", "Jörg Weiß", "Mia Chen", "Sam O'Neil")


@dataclass(frozen=True)
class Item:
    kind: str  # enquiry | form | list | newsletter | auto-reply | bounce
    raw: bytes
    sender: str  # the SMTP envelope sender for LMTP ("" = null sender, as bounces have)
    lead: str = ""  # the lead address an acknowledgement should go to, if any


def lead_address(i: int) -> str:
    return f"lead{i}@{LEAD_DOMAIN}"


def enquiry(lead: str, shop: str, rng: random.Random, *, html: bool = False) -> bytes:
    name = rng.choice(NAMES)
    subject = rng.choice(SUBJECTS)
    body = rng.choice(BODIES).format(name=name)
    markup = None
    if html:
        paras = "".join(f"<p>{p}</p>" for p in body.split("\n\n"))
        markup = f"<html><body>{paras}</body></html>"
    return mail(lead, shop, subject, body, name=name, html=markup)


def web_form(lead: str, shop: str, rng: random.Random) -> bytes:
    name = rng.choice(NAMES)
    body = (
        f"From: {name} <{lead}>\nSubject: Quote please\nPhone: +49 30 {rng.randrange(10**6, 10**7)}"
        "\n\nMessage Body:\nHi, do you also install heat pumps? We have a 140 m² house.\n\n-- \n"
        "This e-mail was sent from a contact form on Shop Website (https://shop-site.test)\n"
    )
    return mail(
        f"wordpress@{shop.rpartition('@')[2]}",  # the site's own domain, as WordPress sends
        shop,
        'Shop Website "New contact form submission"',
        body,
        headers={"Reply-To": lead},
    )


def list_post(i: int, shop: str) -> bytes:
    return mail(
        f"member{i}@lists.elsewhere.test",
        "trade@lists.elsewhere.test",
        f"[trade] Topic {i}",
        "Does anyone know a good supplier of oak boards?\n",
        headers={
            "List-Id": "Furniture trade <trade.lists.elsewhere.test>",
            "List-Unsubscribe": "<mailto:trade-leave@lists.elsewhere.test>",
            "Precedence": "list",
            "Cc": shop,
        },
    )


def newsletter(i: int, shop: str) -> bytes:
    return mail(
        "news@supplies.elsewhere.test",
        shop,
        f"This week's offers ({i})",
        "20% off screws this week.\n",
        name="Supplies",
        headers={
            "List-Unsubscribe": "<https://supplies.elsewhere.test/u?x=1>",
            "Precedence": "bulk",
        },
        html="<html><body><h1>20% off</h1><p>screws</p></body></html>",
    )


def auto_reply(i: int, shop: str) -> bytes:
    return mail(
        f"away{i}@partner.test",
        shop,
        "Out of office: your message",
        "I am out of the office until next Monday with limited access to email.\n",
        name="Away Person",
        headers={"Auto-Submitted": "auto-replied"},
    )


def bounce(i: int, shop: str) -> bytes:
    """A Postfix-style DSN (multipart/report) for an address that is not one of our leads."""
    rcpt = f"gone{i}@old-customer.test"
    boundary = f"b{i}.{time.time_ns()}/mx.elsewhere.test"
    date = email.utils.formatdate(localtime=True)
    text = f"""Return-Path: <>
From: MAILER-DAEMON@mx.elsewhere.test (Mail Delivery System)
To: {shop}
Subject: Undelivered Mail Returned to Sender
Date: {date}
Message-ID: <dsn{i}.{time.time_ns()}@mx.elsewhere.test>
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"

--{boundary}
Content-Type: text/plain; charset=utf-8

Your message could not be delivered to one or more recipients.

<{rcpt}>: host mx.old-customer.test said: 550 5.1.1 user unknown

--{boundary}
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.elsewhere.test

Final-Recipient: rfc822; {rcpt}
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 user unknown

--{boundary}
Content-Type: text/rfc822-headers

From: Example Shop <{shop}>
To: {rcpt}
Subject: Re: your enquiry

--{boundary}--
"""
    return text.replace("\n", "\r\n").encode()


def backlog(count: int, shop: str, *, seed: int = 7, first_lead: int = 1) -> list[Item]:
    """count messages: ~88 % enquiries (80 % plain/HTML, 8 % web forms), 12 % noise."""
    rng = random.Random(seed)
    items: list[Item] = []
    next_lead = first_lead
    for i in range(count):
        r = rng.random()
        if r < 0.80:
            lead = lead_address(next_lead)
            next_lead += 1
            items.append(Item("enquiry", enquiry(lead, shop, rng, html=r < 0.2), lead, lead))
        elif r < 0.88:
            lead = lead_address(next_lead)
            next_lead += 1
            sender = f"wordpress@{shop.rpartition('@')[2]}"
            items.append(Item("form", web_form(lead, shop, rng), sender, lead))
        elif r < 0.91:
            items.append(Item("list", list_post(i, shop), "trade-bounces@lists.elsewhere.test"))
        elif r < 0.94:
            items.append(Item("newsletter", newsletter(i, shop), "bounce@supplies.elsewhere.test"))
        elif r < 0.97:
            items.append(Item("auto-reply", auto_reply(i, shop), ""))
        else:
            items.append(Item("bounce", bounce(i, shop), ""))
    return items
