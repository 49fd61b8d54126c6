"""Outlook's "Recall This Message", as it reaches a mailbox outside the sender's Exchange.

A recall is an instruction between Exchange mailboxes. Sent across the internet it is
converted into an ordinary-looking mail: Subject "Recall: <their subject>" (localized:
"Rückruf:", "Rappel :", ...) and one fixed sentence, "<Name> would like to recall the
message, "<their subject>".", with no automatic header. Taken at face value it was an
enquiry from a stranger (acknowledged!) and, from a known lead, their reply: the follow-up
stopped and the owner was alerted with Outlook's sentence as the lead's words.

A recall is the lead's own action but not an answer with words, so it is treated as
machine mail made by their client (like a read receipt): never answered, never counted as
a reply, the cadence carries on. It is recognised by its fixed shape, not by the word
"recall": the subject's text after the prefix must come back in quotes in a short body
that uses a recall verb and the word "message" in one of Outlook's languages. A person's
"Recall: the oak table you showed me" never has that shape.
"""

from __future__ import annotations

import re

from inboxwatch.core.detection import Detection, fold
from inboxwatch.core.message import Message

# "<Prefix>: <subject>" (French puts a space before the colon); the prefix is one word.
_SUBJECT = re.compile(r"^\s*(?P<prefix>[^\W\d_]{3,20})\s?[:：]\s*(?P<rest>\S.{0,300}?)\s*$")
# Outlook's sentence in en, de, fr, es, it, nl, pt, sv, da, no, pl, ru (folded: no accents).
_VERB = re.compile(
    r"\b(?:recall|zuruckrufen|zuruckzurufen|rappeler|recuperar|richiamare|intrekken|terughalen"
    r"|recolher|aterkalla|tilbagekalde|tilbakekalle|odwo[lł]ac|отозвать)\b"
)
_NOUN = re.compile(
    r"\b(?:message|nachricht|mensaje|messaggio|bericht|mensagem|meddelandet|meddelelsen"
    r"|meldingen|wiadomosc|сообщение)\b"
)
_QUOTES = "\"'“”„«»‚‘’"
_MAX_WORDS = 40  # the sentence and a quoted subject; a person's mail is longer


def detect_recall(msg: Message) -> Detection | None:
    """An Outlook recall request, as an automatic (client-made) message; else None."""
    subject = _SUBJECT.match(msg.subject or "")
    if subject is None:
        return None
    words = msg.body_text.split(None, _MAX_WORDS)  # the rest of a long mail stays one piece
    if not words or len(words) > _MAX_WORDS:
        return None
    text = " ".join(words)
    folded = fold(text)
    if not (_VERB.search(folded) and _NOUN.search(folded)):
        return None
    rest = subject.group("rest")
    before = text[: max(text.find(rest), 0)].rstrip()
    if not before or before[-1] not in _QUOTES:
        return None
    return Detection("auto_reply", (f"message recall (Outlook): {msg.subject}",))
