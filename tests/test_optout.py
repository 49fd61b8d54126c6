"""Opt-out replies (pure)."""

from __future__ import annotations

import pytest

from inboxwatch.core.optout import is_opt_out

OPT_OUTS = [
    # en
    "Unsubscribe",
    "STOP",
    "Please stop.",
    "Please remove me from your list.",
    "Hi John,\n\nPlease take me off your mailing list.\n\nThanks\nAnna",
    "Stop emailing me.",
    "Please don't contact me again.",
    "Not interested.",
    "We are not interested in your services.",
    "No thanks, we already have a supplier.",
    "Thanks, but no thanks.",
    "Opt out",
    "Remove me\n\nBest regards\nJohn Smith\nHead of Procurement\nAcme Ltd\n+44 20 7946 0000",
    # de
    "Bitte keine E-Mails mehr.",
    "Kein Interesse, danke.",
    "Bitte austragen",
    "Bitte melden Sie mich ab.",
    "Sehr geehrte Damen und Herren,\nbitte kontaktieren Sie mich nicht mehr.\nMfG\nK. Schmidt",
    "Nein danke",
    # fr
    "Merci de ne plus me contacter.",
    "Pas intéressé.",
    "Je souhaite me désabonner.",
    "Non merci.",
    # es
    "Quiero darme de baja.",
    "No me interesa, no envíen más correos.",
    "No estoy interesado.",
    # it
    "Non sono interessato, grazie.",
    "Vi prego di cancellarmi: non contattatemi più.",
    # nl
    "Geen interesse.",
    "Nee dank je wel",
    "Graag afmelden.",
    "Verwijder mij uit uw bestand.",
    # pt
    "Não tenho interesse.",
    "Por favor, descadastrar meu e-mail.",
    "Não, obrigado.",
]

NOT_OPT_OUTS = [
    "",
    "Thanks, please send the quote.",
    # continues with a contrast, a request or a question
    "I'm not interested in the basic plan, but tell me about the pro plan.",
    "Not interested in the basic plan. Please send pricing for Pro.",
    "Please unsubscribe me. Why do I keep getting these?",
    "Kein Interesse am Basisplan, aber schicken Sie mir Infos zu Pro.",
    "Pas intéressé par l'offre de base, mais envoyez-moi le tarif Pro.",
    "No me interesa el plan básico, pero envíenme el precio del Pro.",
    "Non mi interessa il piano base, ma vorrei il prezzo del Pro.",
    "Geen interesse in het basisplan, maar stuur me de prijs van Pro.",
    # hedged in time: a person should decide
    "Not interested at the moment, maybe next quarter.",
    "Zurzeit kein Interesse.",
    "Pas intéressé pour le moment.",
    "No me interesa por ahora.",
    # negated
    "Please don't remove me, I still want the newsletter.",
    "I do not want to unsubscribe.",
    # the phrase is not at the start
    "Hello,\nwe looked at your offer.\nIt looks good.\n"
    "One thing: please remove me from the CC list of the other thread.",
    # long message that merely contains the words
    " ".join(["We have been discussing your proposal internally for some time."] * 4)
    + " We are not interested in the extended warranty.",
    # a greeting and a closing only
    "Hi John,\n\nThanks\nAnna",
    "Hello, I'd like a quote for 40 chairs. We're not interested in delivery, we'll pick up.",
]


@pytest.mark.parametrize("text", OPT_OUTS)
def test_opt_out(text: str) -> None:
    assert is_opt_out(text)


@pytest.mark.parametrize("text", NOT_OPT_OUTS)
def test_not_opt_out(text: str) -> None:
    assert not is_opt_out(text)


def test_word_limit_applies_before_the_signature() -> None:
    signature = "\n\nKind regards\n" + "\n".join(
        f"Line {i} of a long legal footer" for i in range(20)
    )
    assert is_opt_out("Please unsubscribe me." + signature)
    padding = " ".join(["word"] * 45)
    assert not is_opt_out(f"Please unsubscribe me. {padding}")
