"""Legal disclaimers under a mail: not the writer's words.

Companies' mail servers and signatures add a confidentiality notice under every mail.
Kept in a reply's new text, one was most of a short answer: "please remove me" with a
60-word disclaimer under it was no longer read as an opt-out (:mod:`.optout` reads short
replies only), and the owner's alert quoted the lawyers. :mod:`.quotes` drops the notices
at the end of the new text, never the whole of it.
"""

from __future__ import annotations

import re

# A notice is a paragraph that says the mail is confidential *and* uses two of the fixed
# words about a wrong recipient (or is such a notice's heading), in en, de, fr, es, it, nl,
# pt, sv/da/no, pl; a person's own last paragraph mentioning confidentiality has no such run.
_CONFIDENTIAL = re.compile(
    r"\b(?:confidential|privileged|vertraulich|confidentiel|confidencial|riservat[aeio]"
    r"|confidenzial[ei]|vertrouwelijk|konfidentiel|konfidensiell|poufn)",
    re.I,
)
_WRONG_RECIPIENT = re.compile(
    r"\b(?:intended (?:solely|only|exclusively) for|intended recipient|addressee|in error"
    r"|not the intended|notify the sender|disclaimer|empfänger|adressat|irrtümlich|absender"
    r"|destinataire|par erreur|destinatario|por error|per errore|destinatário|geadresseerde"
    r"|abusievelijk|per vergissing|mottagare|modtager|mottaker|adresat|omyłkowo|nadawc)",
    re.I,
)
_DISCLAIMER_HEAD = re.compile(
    r"^\W*(?:(?:legal )?disclaimer|confidentiality notice|haftungsausschluss"
    r"|avis de confidentialité|aviso (?:legal|de confidencialidad))\W*$",
    re.I,
)
_ENVIRONMENT = re.compile(
    r"\b(?:before printing|print this e-?mail|bitte denken sie an die umwelt|avant d'imprimer)",
    re.I,
)
_DISCLAIMER_MIN_WORDS = 15


def _is_disclaimer(paragraph: str) -> bool:
    s = " ".join(paragraph.split())
    if _DISCLAIMER_HEAD.match(s) or (len(s) <= 160 and _ENVIRONMENT.search(s)):
        return True
    return (
        len(s.split()) >= _DISCLAIMER_MIN_WORDS
        and bool(_CONFIDENTIAL.search(s))
        and len({m.lower() for m in _WRONG_RECIPIENT.findall(s)}) >= 2
    )


def without_disclaimer(text: str) -> str:
    """The text less the legal disclaimers at its end, never all of it (a mail that is
    only a disclaimer stays as it is: it is still what was sent)."""
    paragraphs = text.split("\n\n")
    while len(paragraphs) > 1 and _is_disclaimer(paragraphs[-1]):
        paragraphs.pop()
    return "\n\n".join(paragraphs)
