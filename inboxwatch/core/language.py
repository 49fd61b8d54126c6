"""The lead's language: which template set writes to them.

``templates/*.toml`` are in the default language (:data:`DEFAULT`, English);
``templates/<code>/*.toml`` (``templates/de/``) are the same templates in another
language, overriding the default ones by name. A lead's language is chosen once, when
the enquiry arrives, and kept with the lead (``Lead.language``; "" is the default):

1. the rule's ``language``, if it sets one;
2. else the language of the enquiry's own text (the lead's new words, or the form's
   message field), detected by py3langid's model, if the detector is confident and
   there is a template set in that language;
3. else the default.

Detection is cautious on purpose: writing to someone in the wrong language is worse than
writing in the default one. The text is ranked against every language the model knows
(so a Dutch or Swedish enquiry is recognised as such, not squeezed into German), and a
language is taken only when it comes first with :data:`CONFIDENCE` or more and the text
has at least :data:`MIN_WORDS` words ("Hallo", "Preis bitte" stay in the default).
"""

from __future__ import annotations

import functools
import importlib
import re
import threading
from collections.abc import Collection
from typing import Any

#: The language of ``templates/*.toml`` (its code, as a rule's ``language`` may name it).
DEFAULT = "en"
#: A template set's folder name, and a rule's ``language``: ISO 639-1 (or -3) code.
CODE = re.compile(r"^[a-z]{2,3}$")
#: Probability the detector must give its first language (over all it knows).
CONFIDENCE = 0.9
#: Fewer words than this (of two letters or more) are too few to tell.
MIN_WORDS = 3
#: Only the start of a long message is looked at (enough, and bounded in time).
MAX_CHARS = 2000

_WORD = re.compile(r"[^\W\d_]{2,}")
_NOISE = re.compile(r"https?://\S+|www\.\S+|\S+@\S+|^>.*$", re.M)
_lock = threading.Lock()


@functools.cache
def _identifier() -> Any:
    """py3langid's model, loaded once (:func:`warm_up`) in its lean form: the same
    decisions in a third of the memory, from a cache file derived once (the adapter
    ``inboxwatch.adapters.langmodel``, imported here by name so the core stays free of
    adapters); None if the library is missing (then every lead gets the default)."""
    try:
        langmodel = importlib.import_module("inboxwatch.adapters.langmodel")
    except ImportError:  # pragma: no cover - py3langid (and numpy) are declared dependencies
        return None
    return langmodel.load()


def warm_up() -> None:
    """Load the model now (the daemon does at start), so that the first enquiry's
    acknowledgement does not wait for it (a fraction of a second from the cache, a few
    seconds the first time, when the cache is derived)."""
    with _lock:
        _identifier()


def detect(text: str) -> tuple[str, float]:
    """The most probable language of ``text`` and its probability; ("", 0.0) when the
    text has too few words to tell."""
    text = _NOISE.sub(" ", text[:MAX_CHARS])
    if len(_WORD.findall(text)) < MIN_WORDS:
        return "", 0.0
    with _lock:  # one load at a time; the identifier is not documented as thread-safe
        ident = _identifier()
        if ident is None:
            return "", 0.0
        code, prob = ident.best(text)  # the first of all the model knows, ranked
    return str(code), float(prob)


def detected_language(text: str, available: Collection[str]) -> str:
    """The language of ``text`` if it is confidently one of ``available`` (the template
    sets' codes), the default's code if confidently that, else ""."""
    code, prob = detect(text)
    if prob < CONFIDENCE or (code not in available and code != DEFAULT):
        return ""
    return code


def choose_language(rule_language: str, text: str, available: Collection[str]) -> str:
    """The lead's language: the rule's, else the enquiry's if confident and there is a
    template set for it, else "" (the default)."""
    if rule_language:
        return "" if rule_language == DEFAULT and DEFAULT not in available else rule_language
    found = detected_language(text, available)
    return "" if found == DEFAULT else found
