"""Varied inbound mail for the benchmarks: enquiries (plain, HTML, web forms) and the noise
a real inbox carries (mailing lists, newsletters, automatic replies, bounces).

Deterministic for a given seed. Every enquiry comes from its own lead address in another
domain than the shop's, so each one is a new lead and gets exactly one acknowledgement.
"""

from __future__ import annotations

import email.policy
import email.utils
import random
import time
from dataclasses import dataclass
from email.message import EmailMessage

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


def _msg(sender: str, to: str, subject: str, *, name: str = "", msgid: str = "") -> EmailMessage:
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = email.utils.formataddr((name, sender)) if name else sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = email.utils.formatdate(localtime=True)
    msg["Message-ID"] = msgid or f"<b{time.time_ns()}.{random.getrandbits(32)}@client.test>"
    return msg


def enquiry(lead: str, shop: str, rng: random.Random, *, html: bool = False) -> bytes:
    name = rng.choice(NAMES)
    msg = _msg(lead, shop, rng.choice(SUBJECTS), name=name)
    body = rng.choice(BODIES).format(name=name)
    msg.set_content(body)
    if html:
        paras = "".join(f"<p>{p}</p>" for p in body.split("\n\n"))
        msg.add_alternative(f"<html><body>{paras}</body></html>", subtype="html")
    return msg.as_bytes()


def web_form(lead: str, shop: str, rng: random.Random) -> bytes:
    name = rng.choice(NAMES)
    msg = _msg("wordpress@shop-site.test", shop, 'Shop Website "New contact form submission"')
    msg["Reply-To"] = lead
    msg.set_content(
        f"From: {name} <{lead}>\nSubject: Quote please\nPhone: +49 30 {rng.randrange(10**6, 10**7)}"
        "\n\nMessage Body:\nHi, do you also install heat pumps? We have a 140 m² house.\n\n-- \n"
        "This e-mail was sent from a contact form on Shop Website (https://shop-site.test)\n"
    )
    return msg.as_bytes()


def list_post(i: int, shop: str) -> bytes:
    msg = _msg(
        f"member{i}@lists.elsewhere.test", "trade@lists.elsewhere.test", f"[trade] Topic {i}"
    )
    msg["List-Id"] = "Furniture trade <trade.lists.elsewhere.test>"
    msg["List-Unsubscribe"] = "<mailto:trade-leave@lists.elsewhere.test>"
    msg["Precedence"] = "list"
    msg["Cc"] = shop
    msg.set_content("Does anyone know a good supplier of oak boards?\n")
    return msg.as_bytes()


def newsletter(i: int, shop: str) -> bytes:
    msg = _msg("news@supplies.elsewhere.test", shop, f"This week's offers ({i})", name="Supplies")
    msg["List-Unsubscribe"] = "<https://supplies.elsewhere.test/u?x=1>"
    msg["Precedence"] = "bulk"
    msg.set_content("20% off screws this week.\n")
    msg.add_alternative("<html><body><h1>20% off</h1><p>screws</p></body></html>", subtype="html")
    return msg.as_bytes()


def auto_reply(i: int, shop: str) -> bytes:
    msg = _msg(f"away{i}@partner.test", shop, "Out of office: your message", name="Away Person")
    msg["Auto-Submitted"] = "auto-replied"
    msg.set_content("I am out of the office until next Monday with limited access to email.\n")
    return msg.as_bytes()


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
            items.append(Item("form", web_form(lead, shop, rng), "wordpress@shop-site.test", lead))
        elif r < 0.91:
            items.append(Item("list", list_post(i, shop), "trade-bounces@lists.elsewhere.test"))
        elif r < 0.94:
            items.append(Item("newsletter", newsletter(i, shop), "bounce@supplies.elsewhere.test"))
        elif r < 0.97:
            items.append(Item("auto-reply", auto_reply(i, shop), ""))
        else:
            items.append(Item("bounce", bounce(i, shop), ""))
    return items
