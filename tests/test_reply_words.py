"""What a lead's reply says, as real replies are written: legal disclaimers under it are
not their words (core/disclaimers.py), and a short "we went with another supplier" is an
opt-out as "not interested" is (core/optout.py).

Company mail servers add a confidentiality notice under every mail. Kept in the new text,
it made a short "please remove me" too long to be read as an opt-out, and the owner's
alert quoted it. A person's own last paragraph that mentions confidentiality stays.
"""

from __future__ import annotations

import pytest

from inboxwatch.core.optout import is_opt_out
from inboxwatch.core.quotes import new_text

QUOTE = (
    "\n\nOn Tue, 2 Mar 2027 at 10:00, Shop <hello@shop.example> wrote:\n"
    "> Thanks for your enquiry.\n"
)
SIGNATURE = "Mark Evans | Practice Manager\nEvans Dental Ltd"

DISCLAIMERS = [
    # Exchange transport rule / Outlook signature, English
    "This e-mail and any attachments are confidential and intended solely for the addressee."
    " If you are not the intended recipient, please notify the sender immediately and delete"
    " it. Any views expressed are those of the author.",
    # German (the usual "Diese E-Mail enthält vertrauliche ..." notice)
    "Diese E-Mail enthält vertrauliche und/oder rechtlich geschützte Informationen. Wenn Sie"
    " nicht der richtige Adressat sind oder diese E-Mail irrtümlich erhalten haben,"
    " informieren Sie bitte sofort den Absender und vernichten Sie diese Mail.",
    # French
    "Ce message et toutes les pièces jointes sont confidentiels et établis à l'intention"
    " exclusive de ses destinataires. Si vous avez reçu ce message par erreur, merci d'en"
    " avertir immédiatement l'émetteur.",
    # Spanish
    "Este mensaje y sus anexos son confidenciales y para uso exclusivo del destinatario. Si"
    " usted lo ha recibido por error, por favor notifíquelo al remitente y bórrelo.",
    # The green footer
    "Please consider the environment before printing this e-mail.",
]


@pytest.mark.parametrize("disclaimer", DISCLAIMERS, ids=["en", "de", "fr", "es", "print"])
def test_a_trailing_disclaimer_is_not_part_of_the_reply(disclaimer: str) -> None:
    text = new_text(f"Yes, 20 chairs please.\n\n{SIGNATURE}\n\n{disclaimer}{QUOTE}")
    assert text == f"Yes, 20 chairs please.\n\n{SIGNATURE}"


def test_an_opt_out_with_a_disclaimer_under_it_is_an_opt_out() -> None:
    text = new_text(f"Please remove me from your mailing list.\n\n{SIGNATURE}\n\n{DISCLAIMERS[0]}")
    assert is_opt_out(text)


def test_a_disclaimer_under_a_bottom_posted_answer_goes_too() -> None:
    raw = f"{QUOTE.strip()}\n\nFriday suits us.\n\n{DISCLAIMERS[1]}\n"
    assert new_text(raw) == "Friday suits us."


@pytest.mark.parametrize(
    "last",
    [
        # A person's own words about confidentiality, with one of the notice words
        "Please keep our plans confidential for now: the chairs are intended for our new"
        " office, and the addressee on the invoice is Evans Dental Ltd, 1 High Street.",
        # Short: "confidential" and "in error" in a sentence of their own
        "Confidential: the last price was sent in error.",
    ],
    ids=["mentions-confidential", "short"],
)
def test_a_persons_last_paragraph_about_confidentiality_stays(last: str) -> None:
    assert new_text(f"We need 20 chairs.\n\n{last}{QUOTE}") == f"We need 20 chairs.\n\n{last}"


def test_a_mail_that_is_only_a_disclaimer_keeps_it() -> None:
    assert new_text(DISCLAIMERS[0]) == DISCLAIMERS[0]


# ---- declines that say the need is gone (core/optout.py) --------------------------------
OUTLOOK_HISTORY = (
    "\n\nFrom: Shop <hello@shop.example>\nSent: Tuesday, 2 March 2027 10:00\nTo: Jane\n"
    "Subject: Your enquiry\n\nThanks for your enquiry.\n"
)


@pytest.mark.parametrize(
    "reply",
    [
        "We went with another supplier, thanks.",
        "No longer needed, thank you.",
        "We've found someone else, thanks.",
        "Kein Bedarf mehr, danke.",
        "Wir haben uns für einen anderen Anbieter entschieden.",
        "Merci de ne plus m'écrire.",
        "Nous n'avons plus besoin, merci.",
        "Ya no lo necesito, gracias.",
        "Niet meer nodig, bedankt.",
    ],
)
def test_a_short_reply_saying_the_need_is_gone_is_an_opt_out(reply: str) -> None:
    assert is_opt_out(new_text(reply + OUTLOOK_HISTORY))


@pytest.mark.parametrize(
    "reply",
    [
        "We went with another colour: walnut. Can you quote?",
        "No longer needed in April - can you deliver in May instead?",
        "We found another table in your catalogue, could you quote it?",
        "The old chairs are no longer needed, please quote 12 new ones.",
        "Kein Bedarf mehr an Stühlen, aber wir brauchen Tische.",
        "No longer needed at the moment, maybe next year.",
    ],
)
def test_a_reply_that_goes_on_or_is_about_a_detail_is_no_opt_out(reply: str) -> None:
    assert not is_opt_out(new_text(reply + OUTLOOK_HISTORY))
