"""Recognise a lead's short reply that asks us to stop writing.

``is_opt_out`` sees only the lead's own new text (quotes already stripped). It is
deliberately narrow, because the two errors are not equal: a missed opt-out is still a
reply (the sequence stops and a person reads it), while a false one silences a lead for
good. The rule:

* the message is short: at most 40 words before the signature/closing;
* an opt-out phrase is in its first two lines (after a greeting such as "Hi Anna,");
* it does not go on with a question, a contrast ("but", "aber", "mais", "pero", "ma",
  "maar", "mas", ...) or a request ("please send", "tell me about", "I'd like", ...) -
  "I'm not interested in the basic plan, but tell me about Pro" is a person to answer;
* a decline ("not interested", "no thanks") that is hedged in time ("at the moment",
  "right now", "maybe next quarter", "zurzeit", "pour le moment", ...) or qualified
  ("not interested in the basic plan") is not an opt-out either; an explicit request
  ("unsubscribe", "remove me", "stop emailing me") is, unless it is negated
  ("please don't remove me").

Languages: en, de, fr, es, it, nl, pt. Matching is case- and accent-insensitive.
"""

from __future__ import annotations

import re
import unicodedata


def _rx(*alternatives: str) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{a})" for a in alternatives))


# Explicit requests to stop or to be removed.
_REQUEST = _rx(
    # en
    r"\bunsubscribe\b",
    r"\bopt(?:-| )?out\b",
    r"\bremove (?:me|us|my (?:e-?mail|address|name|details|data)|this (?:e-?mail|address))\b",
    r"\btake (?:me|us|my \w+(?: address)?) off\b",
    r"\bstop (?:e-?mailing|sending|contacting|writing|messaging|spamming|mailing|calling)\b",
    r"^(?:please )?stop(?: it| please| now)?\W*$",
    r"\b(?:don't|dont|do not|never) (?:contact|e-?mail|write to|message|call|spam) (?:me|us)\b",
    r"\b(?:don't|dont|do not) (?:want|wish) to (?:receive|get|hear)\b",
    r"\bleave (?:me|us) alone\b",
    r"\bdelete (?:me|us|my (?:data|details|e-?mail|address|contact))\b",
    r"\bno (?:more|further) (?:e-?mails|messages|contact)\b",
    # de
    r"\babmelden\b|\bmelden sie (?:mich|uns) ab\b|\babbestellen\b",
    r"\baustragen\b|\btragen sie (?:mich|uns) aus\b",
    r"\bkeine (?:weiteren )?(?:e-?mails|mails|nachrichten|werbung|anrufe)(?: mehr)?\b",
    r"\b(?:kontaktieren|schreiben|anschreiben) sie (?:mich|uns) (?:bitte )?nicht mehr\b",
    r"\bnicht mehr (?:kontaktieren|anschreiben|schreiben|anrufen)\b",
    r"\b(?:loschen|entfernen) sie (?:mich|uns|meine (?:daten|adresse|e-?mail))\b",
    r"\b(?:aus|von) (?:ihrem|dem|ihrer) (?:verteiler|liste|mailingliste|newsletter)\b",
    # fr
    r"\bdesabonn\w*|\bdesinscri\w*",
    r"\bne (?:plus|pas) (?:me|nous) (?:contacter|recontacter|relancer|ecrire)\b",
    r"\bne (?:me|nous) (?:contactez|recontactez|relancez|ecrivez) plus\b|\bne m'ecrivez plus\b",
    r"\b(?:retirez|supprimez|enlevez)[- ](?:moi|nous|mon adresse|mes donnees)\b",
    r"\barretez de (?:m'|nous )(?:envoyer|ecrire|contacter|relancer)",
    r"\bne (?:plus|pas) (?:m'|nous )(?:ecrire|envoyer|recontacter)\b",
    # es
    r"\b(?:darme|darnos|dar|denme|dennos) de baja\b",
    r"\bno (?:me |nos )?(?:contacte[ns]?|escriba[ns]?|envie[ns]?|vuelva[ns]? a)\b",
    r"\bdej(?:e|en|a|ad) de (?:enviar|escribir|contactar|mandar)",
    r"\b(?:eliminar|borrar|quitar|sacar|eliminen|borren|quiten|saquen)(?:me|nos)?"
    r" de (?:su|la|tu|vuestra) lista\b",
    # it
    r"\bdisiscriv\w*|\bcancellatemi\b|\bcancellami\b",
    r"\b(?:rimuovetemi|rimuovimi|toglietemi|toglimi)\b|\b(?:rimuovete|togliete) (?:il )?mio\b",
    r"\bnon (?:contattatemi|contattarmi|scrivetemi|scrivermi|mi contattate|mi scrivete)\b",
    r"\bsmett\w+ di (?:scrivermi|contattarmi|inviare|mandare|scrivere)",
    r"\bnon (?:inviatemi|mandatemi) piu\b",
    # nl
    r"\bafmelden\b|\bmeld (?:mij|me|ons) af\b|\buitschrijven\b|\bschrijf (?:mij|me|ons) uit\b",
    r"\bverwijder (?:mij|me|ons|mijn (?:e-?mail|adres|gegevens))\b",
    r"\b(?:stop|stopt|stoppen) met (?:mailen|e-?mailen|benaderen|sturen|bellen)\b",
    r"\bniet meer (?:mailen|e-?mailen|contacteren|benaderen|bellen)\b",
    r"\bhaal (?:mij|me|ons) (?:van|uit)\b",
    # pt
    r"\bdescadastr\w*",
    r"\bcancelar (?:a )?(?:minha )?(?:inscricao|subscricao|assinatura)\b",
    r"\b(?:remova|removam|retire|retirem|exclua|excluam)[- ]?(?:me|nos)\b",
    r"\bnao (?:me |nos )?(?:contate|contatem|contacte|contactem|envie|enviem|mande|mandem)\b",
    r"\b(?:parem|pare) de (?:me )?(?:enviar|mandar|contatar|contactar)",
    r"\bnao quero (?:mais )?receber\b",
)
# Declines: an opt-out when unhedged and unqualified.
_DECLINE = _rx(
    r"\b(?:not|no longer) interested\b|\bnicht (?:mehr )?interessiert\b",
    r"\bno,? thank(?:s| you)\b(?! for)",
    r"\bkein(?:e|en)? (?:weiteres )?interesse\b|\bnein,? danke\b",
    r"\bpas interesse(?:e|s|es)?\b|\bne (?:m'|nous )interesse(?:nt)? pas\b|\bnon,? merci\b",
    r"\bno (?:me|nos) interesa\b|\bno (?:estoy|estamos) interesad[oa]s?\b|\bno,? gracias\b",
    r"\bnon (?:sono|siamo) interessat[oaie]\b|\bnon (?:mi|ci) interessa\b|\bno,? grazie\b",
    r"\bgeen interesse\b|\bniet (?:meer )?geinteresseerd\b|\bnee,? dank(?: ?je| ?u)?(?: wel)?\b",
    r"\bnao (?:tenho|temos) interesse\b|\bnao (?:estou|estamos) interessad[oa]s?\b",
    r"\bnao (?:me|nos) interessa\b|\bnao,? obrigad[oa]\b",
    # the need is gone, or met elsewhere: "no longer needed", "we went with another supplier"
    # (only for the whole offer: "the old chairs are no longer needed" is a detail)
    r"(?:^|[.!,;]\s*)(?:(?:it(?:'s| is)|this is|that(?:'s| is)) )?no longer (?:needed|required)\b"
    r"|\b(?:don't|do not) need (?:it|this) anymore\b",
    r"\b(?:went|gone|decided to go) with (?:another|a different|someone else|an?other)\b",
    r"\bfound (?:someone else|somebody else|another (?:supplier|company|provider|vendor|solution))",
    r"\bkein (?:bedarf|interesse) mehr\b|\bkein bedarf\b|\bnicht mehr (?:notig|erforderlich)\b",
    r"\b(?:fur|bei) (?:einen|ein) (?:anderen?|anderes) (?:anbieter|unternehmen|angebot)\b"
    r"|\banderweitig (?:entschieden|vergeben)\b",
    r"\bplus besoin\b|\bautre (?:prestataire|fournisseur|entreprise)\b",
    r"\bya no (?:lo |la )?(?:necesit\w+|es necesari[oa])\b|\botro proveedor\b",
    r"\bnon (?:ne )?(?:ho|abbiamo) piu bisogno\b|\baltro fornitore\b",
    r"\bniet meer nodig\b|\bandere (?:leverancier|aanbieder|partij)\b",
    r"\bnao (?:preciso|precisamos) mais\b|\boutro fornecedor\b",
)
_NEGATED = re.compile(r"\b(?:don't|dont|do not|not|never|nicht)\W+(?:\w+\W+){0,2}$")
_CONTINUES = _rx(
    r"\b(?:but|however|though|although|except|unless|instead)\b",
    r",\s*(?:ma|mas)\b",  # it/pt "but" after a comma; bare "ma"/"mas" are fr "my", es "more"
    r"\b(?:aber|jedoch|allerdings|sondern|stattdessen|trotzdem)\b",
    r"\b(?:mais|cependant|toutefois|plutot|par contre)\b",
    r"\b(?:pero|sin embargo|sino|en cambio)\b",
    r"\b(?:tuttavia|invece|piuttosto)\b",
    r"\b(?:maar|echter)\b",
    r"\b(?:porem|contudo|entretanto)\b",
    r"\b(?:please send|send me|tell me|let me know|i'd like|i would like|we'd like|we would like"
    r"|call me|can you|could you|please quote"
    r"|interested in (?:the|your) \w+ (?:plan|option|version))",
    r"\b(?:schicken sie|senden sie|ich hatte gern|wir hatten gern|konnen sie)\b",
    r"\b(?:envoyez|pourriez|je voudrais|nous voudrions)\b",
    r"\b(?:envienme|envienos|enviame|me gustaria|nos gustaria|podrian)\b",
    r"\b(?:mandatemi|inviatemi|vorrei|vorremmo|potreste)\b",
    r"\b(?:stuur|graag|zou ik|kunt u)\b",
    r"\b(?:envie-me|gostaria|gostariamos|poderiam)\b",
)
_HEDGE = _rx(
    r"\b(?:at the moment|right now|for now|currently|at this (?:time|stage|point)|yet|maybe"
    r"|perhaps|later|this (?:year|quarter|month)|next (?:year|quarter|month|week))\b",
    r"\b(?:zurzeit|derzeit|momentan|aktuell|im moment|vielleicht|spater|noch nicht)\b",
    r"\b(?:pour le moment|pour l'instant|actuellement|peut-etre|plus tard)\b",
    r"\b(?:por ahora|de momento|en este momento|quizas|quiza|mas adelante|todavia)\b",
    r"\b(?:al momento|per ora|per il momento|forse|piu avanti|ancora)\b",
    r"\b(?:op dit moment|momenteel|voorlopig|misschien|nog niet)\b",
    r"\b(?:no momento|por enquanto|por agora|talvez|mais tarde|ainda)\b",
)
# "not interested in X" declines X only, unless X is us or our offer in general.
_QUALIFIED = re.compile(
    r"^\s*in (?!(?:your|this|that|it|any|these|those|such|working|buying|receiving|hearing"
    r"|further|more|the offer|the product|the service|this offer)\b)"
)
_GREETING = re.compile(
    r"^(?:hi|hello|hey|dear|good (?:morning|afternoon|evening)|hallo|guten (?:tag|morgen|abend)"
    r"|sehr geehrte\w*|liebe\w*|moin|servus|bonjour|bonsoir|salut|madame|monsieur|hola"
    r"|buenos dias|buenas (?:tardes|noches)|estimad[oa]s?|ciao|buongiorno|buonasera|gentile"
    r"|egregio|hoi|beste|geachte|goedemiddag|goedemorgen|ola|oi|bom dia|boa tarde|prezad[oa]s?"
    r"|caro|cara)\b"
)
_CLOSING = re.compile(
    r"^(?:--\s*$|sent from my\b|enviado desde\b|von meinem\b|envoye de mon\b"
    r"|(?:best|kind|warm|many)? ?regards\b|(?:best|cheers|thanks|thank you|many thanks|sincerely"
    r"|br|mfg|mit freundlichen grussen|freundliche grusse|viele grusse|beste grusse|lg"
    r"|liebe grusse|gruss|cordialement|bien a vous|salutations|saludos|atentamente|un saludo"
    r"|cordiali saluti|saluti|distinti saluti|met vriendelijke groet(?:en)?|groeten|groet|mvg"
    r"|atenciosamente|cumprimentos|abracos|obrigad[oa]|merci|danke|gracias|grazie|bedankt)\W*$)"
)
_MAX_WORDS = 40


def _fold(s: str) -> str:
    s = unicodedata.normalize("NFKD", s)
    s = "".join(c for c in s if not unicodedata.combining(c)).lower()
    return s.replace("’", "'").replace("\u00a0", " ")


def _content_lines(text: str) -> list[str]:
    """Non-empty lines of the lead's own words: no greeting, quote, closing or signature."""
    lines: list[str] = []
    for raw in _fold(text).splitlines():
        line = raw.strip()
        if not line or line.startswith(">"):
            continue
        if lines and _CLOSING.match(line):
            break
        lines.append(line)
    if lines and _GREETING.match(lines[0]) and len(lines[0].split()) <= 6:
        lines = lines[1:]
    return lines


def is_opt_out(new_text: str) -> bool:
    """True if this short reply asks us to stop writing (see the module doc for the rule)."""
    lines = _content_lines(new_text)
    text = " ".join(lines)
    if not lines or len(text.split()) > _MAX_WORDS or "?" in text:
        return False
    head = " ".join(lines[:2])
    request = _REQUEST.search(head)
    if request and not _NEGATED.search(head[: request.start()]):
        rest = head[request.end() :] + " " + " ".join(lines[2:])
        return not _CONTINUES.search(rest)
    decline = _DECLINE.search(head)
    if decline is None:
        return False
    rest = head[decline.end() :] + " " + " ".join(lines[2:])
    if _QUALIFIED.match(head[decline.end() :]) or _HEDGE.search(text):
        return False
    return not _CONTINUES.search(rest)
