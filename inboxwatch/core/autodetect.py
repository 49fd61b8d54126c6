"""Recognise mail we must never answer: bounces, automatic replies, lists and bulk mail.

Pure functions over a parsed :class:`Message`. The rules follow the standards first
(RFC 3464/6522 delivery reports, RFC 3834 ``Auto-Submitted``, RFC 2369/2919 list
headers) and then the documented habits of real mail systems. Header evidence is
trusted; words in a subject or body only count when something else corroborates them,
because a person can write any words but does not set ``Auto-Submitted`` or send from
``<>``. A subject that starts with a reply/forward prefix ("Re:", "AW:", "Fwd:") is a
person answering or forwarding, so its words are never evidence.

Kinds: ``bounce`` (a delivery report), ``auto_reply`` (anything machine-generated in
answer or notification: vacation, helpdesk acknowledgement, read receipt, RFC 3834
``auto-generated`` mail) and ``list`` (mailing lists and bulk senders).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from inboxwatch.core.message import Message
from inboxwatch.core.quotes import new_text


@dataclass(frozen=True)
class Detection:
    kind: str  # "bounce" | "auto_reply" | "list"
    reasons: tuple[str, ...]
    # Bounces: permanent failure (True) vs delay/warning/success notice (False).
    hard: bool = True
    # Bounces: lower-cased addresses that failed (or, for a delay, that are delayed).
    recipients: tuple[str, ...] = ()


def _fold(s: str) -> str:
    """Lower-case and drop accents so "Réponse" matches "reponse"; CJK is unchanged."""
    s = unicodedata.normalize("NFKD", s)
    return "".join(c for c in s if not unicodedata.combining(c)).lower().replace("’", "'")


def _rx(*alternatives: str) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{a})" for a in alternatives), re.I)


# "Re:", "AW:", "Fwd:", "[External] RE:", ... : a person replying to or forwarding something.
_REPLY_PREFIX = re.compile(
    r"^\W*(?:\[[^\]]{1,30}\]\s*)?(?:re|aw|sv|vs|antw|antwort|ref|rif|r|res|odp|fw|fwd|wg|tr|rv"
    r"|enc|doorst|vb|回复|答复|转发)\s*(?:\[\d+\]|\(\d+\))?\s*:",
    re.I,
)

_SCAN = 20_000  # characters of a body worth reading; generators put their text first
_TAG = re.compile(r"^\s*\[[^\]]{1,30}\]\s*")

# ---- bounces -------------------------------------------------------------------------

_BARE_DAEMON = re.compile(r"\bmailer[-_]?daemon\b", re.I)
_DAEMON_LOCALS = frozenset({"mailer-daemon", "mailerdaemon", "mailer_daemon", "mail-daemon"})
# Typical NDR subjects of Postfix, Exim, Sendmail, qmail, Exchange/M365 (en/de/fr/it/es/
# nl/pt), Gmail, Yahoo. Matched at the start of the (folded) subject only.
_NDR_SUBJECT = _rx(
    r"^undeliver(?:ed|able)\b|^returned mail\b|^failure notice\b|^delayed mail\b",
    r"^delivery (?:status notification|failure|failed|has failed|delayed|notification)",
    r"^(?:mail|message) delivery (?:failed|failure|delayed|error)|^mail system error\b",
    # Google Workspace ("Message not delivered"), gateway policy rejections (Mimecast,
    # Proofpoint, Barracuda: "Message blocked", "Message rejected").
    r"^(?:message|mail|e-?mail) (?:not delivered|blocked|rejected|refused)\b",
    r"^warning: (?:message .* delayed|could not send message|delayed mail)",
    r"^(?:nicht zustellbar|unzustellbar|zustellung verzogert|ubermittlung verzogert)",
    r"^(?:non remis|non distribuable|remise differee|echec de (?:la )?remise)",
    r"^(?:non recapitabile|impossibile recapitare|recapito ritardato)",
    r"^(?:no se puede entregar|no entregado|entrega retrasada|onbestelbaar|vertraagd)",
    r"^(?:nao entregue|nao pode ser entregue|entrega atrasada|nao foi possivel entregar)",
)
_NDR_SUBJECT_SOFT = _rx(
    r"delay|verzogert|differee|ritardato|retrasada|vertraagd|atrasada|^warning:"
)
# Sentences that NDR generators (Postfix, Exim, qmail, Sendmail, Exchange in several
# languages, Gmail) write and people do not.
_NDR_BODY = _rx(
    r"this is the mail system at host|this is the qmail-send program",
    r"i'm sorry to have to inform you that your message could not",
    r"this message was created automatically by mail delivery software",
    r"a message that you sent (?:could not be|has not yet been) delivered",
    r"the original message was received at [^\n]{0,120}?\bfrom\b",
    r"-{3,} ?(?:the following addresses had (?:permanent fatal|transient non-fatal) errors"
    r"|transcript of session follows)",
    r"delivery (?:has failed|has been delayed) to these recipients or groups",
    r"your message (?:couldn't|could not|wasn't|was not) (?:be )?delivered",
    r"delivery to the following recipients? (?:failed|has been delayed)",
    r"this is an automatically generated delivery status notification",
    r"\*\* (?:address not found|message not delivered|delivery incomplete) \*\*",
    r"could not be delivered to one or more (?:of its )?recipients",
    r"die zustellung an folgende empfanger oder gruppen ist fehlgeschlagen",
    r"la remise aux destinataires ou groupes suivants a echoue",
    r"error en la entrega a estos destinatarios o grupos",
    r"il recapito ai seguenti destinatari o gruppi non e riuscito",
    r"bezorging aan deze ontvangers of groepen is mislukt",
    r"falha na entrega para estes destinatarios ou grupos",
    r"there was a problem delivering your message to",
    r"your message (?:to \S+ )?(?:was|has been) (?:blocked|rejected) by the recipient'?s?\b",
)
# Phrases of a delay/warning notice, which promise further attempts.
_SOFT_BODY = _rx(
    r"this is a warning only|has not yet been delivered|delivery incomplete|still being retried",
    r"will (?:continue to )?(?:retry|try again|keep trying)|delivery attempts will continue",
    r"delivery (?:has been|is) delayed",
)
_HARD_BODY = _rx(
    r"\b5\.\d{1,3}\.\d{1,3}\b|\bpermanent|\b55[0-4][ -]|user unknown|no such user",
    r"does(?:n't| not) exist|address not found",
)
_STATUS = re.compile(r"^\s*status:\s*([245])\.\d{1,3}\.\d{1,3}", re.I | re.M)
_DSN_FIELD = re.compile(r"^(original-recipient|final-recipient|action|status)\s*:\s*(.*)$", re.I)
_ADDR = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)+")
# Where an NDR's own text ends and the returned original message begins.
_ORIGINAL_START = _rx(
    r"^-+ ?(?:this is a copy of the message|original message|below this line is a copy"
    r"|the header of the original message)",
    r"^original message headers|^(?:received|return-path|message-id|dkim-signature):",
)


def _dsn_records(report: str) -> list[dict[str, str]]:
    """Per-recipient field groups of a message/delivery-status part (RFC 3464 §2.3)."""
    records: list[dict[str, str]] = []
    cur: dict[str, str] = {}
    last = ""
    for line in report.splitlines():
        if line[:1] in (" ", "\t") and line.strip():
            if last:  # folded field, e.g. "Final-Recipient: rfc822;\n  user@example.org"
                cur[last] += " " + line.strip()
            continue
        m = _DSN_FIELD.match(line.strip())
        if not line.strip() or (m and m.group(1).lower() in cur):
            if cur:
                records.append(cur)
            cur = {}
        last = m.group(1).lower() if m else ""
        if m:
            cur[last] = m.group(2).strip()
    if cur:
        records.append(cur)
    return [r for r in records if "action" in r or "final-recipient" in r]


def _dsn_addr(value: str) -> str:
    """``rfc822; <User@Example.org>`` -> ``user@example.org``."""
    found = _ADDR.search(value.partition(";")[2] or value)
    return found.group(0).lower() if found else ""


def _unquoted(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith(">"))


def _ndr_head(text: str) -> str:
    """The generator's own text of an NDR, before the returned original message."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if _ORIGINAL_START.search(line.strip()):
            return "\n".join(lines[:i])
    return text


def _text_recipients(msg: Message, head: str) -> tuple[str, ...]:
    """Fallback: addresses named in the NDR text that are neither us nor a robot."""
    ours = {a.addr for a in (*msg.to, *msg.cc, *msg.reply_to)}
    if msg.from_:
        ours.add(msg.from_.addr)
    found: dict[str, None] = {}
    for m in _ADDR.finditer(head):
        addr = m.group(0).lower().rstrip(".")
        if addr not in ours and not is_noreply_address(addr):
            found.setdefault(addr, None)
    return tuple(found)[:20]


def _report_type(msg: Message) -> str:
    m = re.search(r"report-type\s*=\s*\"?([\w-]+)", msg.header("content-type"), re.I)
    return m.group(1).lower() if m else ""


def detect_bounce(msg: Message) -> Detection | None:
    """A delivery status notification or non-delivery report, else None.

    Decisive on their own: a top-level ``multipart/report; report-type=delivery-status``
    (RFC 3464/6522), ``X-Failed-Recipients`` (Exim, Gmail), Exchange's
    ``X-MS-Exchange-Message-Is-Ndr``, or a From of MAILER-DAEMON. Otherwise the message
    must *say* it is an NDR (typical subject or generator sentence) *and* come from a mail
    system (null Return-Path, postmaster, ``Auto-Submitted``) or say so in both subject and
    body. So "Re: Undeliverable: ..." from a person, or a customer writing "my email
    bounced", is not a bounce. A DSN whose actions are only delivered/relayed/expanded is
    returned as a soft bounce without recipients: nothing failed, but it is still a robot.
    """
    reasons: list[str] = []
    from_local = msg.from_.local if msg.from_ else ""
    if not msg.from_ and _BARE_DAEMON.search(msg.header("from")):
        from_local = "mailer-daemon"  # a local bounce: "From: MAILER-DAEMON (Mail Delivery ...)"
    rtype = _report_type(msg)
    ctype_report = msg.content_type == "multipart/report" and rtype.endswith("delivery-status")
    if ctype_report:
        reasons.append(f"multipart/report; report-type={rtype}")
    failed_hdr = [
        a.lower() for v in msg.header_all("x-failed-recipients") for a in _ADDR.findall(v)
    ]
    if msg.has_header("x-failed-recipients"):
        reasons.append("X-Failed-Recipients")
    if msg.has_header("x-ms-exchange-message-is-ndr"):
        reasons.append("X-MS-Exchange-Message-Is-Ndr")
    if from_local in _DAEMON_LOCALS:
        reasons.append(f"From {from_local}")
    strong = bool(reasons)

    subject = _fold(msg.subject)
    prefixed = bool(_REPLY_PREFIX.match(subject))
    body = _fold(_unquoted(msg.body_text[:_SCAN]))  # an NDR explains itself at the top
    subj_hit = not prefixed and bool(_NDR_SUBJECT.search(subject.strip()))
    body_hit = bool(_NDR_BODY.search(body))
    origin = []
    if _null_sender(msg):
        origin.append("Return-Path: <>")
    if from_local == "postmaster":
        origin.append("From postmaster")
    if _auto_submitted(msg):
        origin.append(f"Auto-Submitted: {_auto_submitted(msg)}")
    if not strong and not ((subj_hit or body_hit) and (origin or (subj_hit and body_hit))):
        return None
    if subj_hit:
        reasons.append(f"NDR subject: {msg.subject[:60]}")
    if body_hit:
        reasons.append("NDR text in body")
    reasons.extend(origin)

    # Severity and recipients: the machine-readable DSN first, then headers, then text.
    failed: list[str] = []
    delayed: list[str] = []
    ok: list[str] = []
    for rec in _dsn_records(msg.report_text):
        addr = _dsn_addr(rec.get("final-recipient", "")) or _dsn_addr(
            rec.get("original-recipient", "")
        )
        action = rec.get("action", "").lower().split()[0] if rec.get("action") else ""
        status = rec.get("status", "")[:1]
        if action == "failed" or (not action and status == "5"):
            failed.append(addr)
        elif action == "delayed" or (not action and status == "4"):
            delayed.append(addr)
        elif action in ("delivered", "relayed", "expanded") or status == "2":
            ok.append(addr)
    if failed:
        reasons.append("DSN action: failed")
        return _bounce(reasons, True, failed + failed_hdr)
    if delayed:
        reasons.append("DSN action: delayed")
        return _bounce(reasons, False, delayed)
    if ok:
        reasons.append("DSN reports delivery, not a failure")
        return _bounce(reasons, False, [])

    head = _ndr_head(_fold(msg.body_text[:_SCAN]))
    soft = bool(_NDR_SUBJECT_SOFT.search(subject) and subj_hit) or bool(_SOFT_BODY.search(head))
    statuses = set(_STATUS.findall(msg.report_text))
    if "5" in statuses or failed_hdr:
        soft = False
    elif "4" in statuses:
        soft = True
    elif soft and _HARD_BODY.search(head) and not _SOFT_BODY.search(head):
        soft = False
    reasons.append("delivery delayed (transient)" if soft else "delivery failed")
    recipients = failed_hdr or list(_text_recipients(msg, head))
    return _bounce(reasons, not soft, recipients)


def _bounce(reasons: list[str], hard: bool, recipients: list[str]) -> Detection:
    uniq = tuple(dict.fromkeys(r for r in recipients if r))
    return Detection("bounce", tuple(dict.fromkeys(reasons)), hard, uniq)


# ---- automatic replies ---------------------------------------------------------------

# Headers whose presence (with a value other than no/false) marks an automatic response:
# cPanel/Exim (X-Autorespond), OpenSRS (X-Autoresponder), osTicket/OTRS/many (X-Autoreply),
# Novell GroupWise/Post (X-POST-MessageClass), FirstClass (X-FC-MachineGenerated),
# Apple (X-Apple-Action: vacation), Exchange side-effect messages (Generated-Message-Source).
_AUTO_HEADERS = (
    "X-Autoreply", "X-Autorespond", "X-Autoresponder", "X-Autoresponse", "X-Auto-Reply",
    "X-AutoReply-From", "X-Mail-Autoreply", "X-Autogenerated", "X-FC-MachineGenerated",
    "X-MS-Exchange-Generated-Message-Source",
)  # fmt: skip
# "This is an automatic reply" as Exchange/Outlook, Gmail, Zimbra, Yahoo, Apple ... localise
# it, followed by ":" or "-" or the end of the subject. Alone they suffice.
_END = r"\s*(?:[:\-–(\[]|$)"
_AUTO_SUBJECT = _rx(
    rf"^(?:automatic|automated|auto)[ -]?(?:reply|response|answer){_END}|^autoreply{_END}",
    rf"^out of (?:the )?office(?: reply| autoreply)?\s*:|^(?:automatische antwort|abwesenheitsnotiz"
    rf"|automatisch antwoord|reponse automatique|respuesta automatica|risposta automatica"
    r"|resposta automatica|autosvar|automaattinen vastaus|automatyczna odpowiedz"
    r"|automaticka odpoved|automatiskt svar|automatisk svar|automatikus valasz"
    r"|raspuns automat|otomatik yan[iı]t|автоматическии ответ|автоматична відповідь"
    rf"|αυτοματη απαντηση){_END}",
    r"^\W*(?:自动回复|自动答复|自動回覆|自動答覆|自動回信|自動返信|自動応答|자동 회신)",
    r"[\[(](?:auto[- ]?reply|auto[- ]?response|out of office)[\])]",
)
# Words of absence or acknowledgement in a subject; need corroboration.
_WEAK_SUBJECT = _rx(
    r"^auto: ",  # Pigeonhole's default; but "Auto" is also German for car
    r"\bout of (?:the )?office\b|\booo\b|\baway from (?:the office|my desk|my e-?mail)\b",
    r"\b(?:on|im|en|de|in|op) (?:vacation|holiday|urlaub|vacances|conges|vacaciones|ferie"
    r"|vakantie|ferias)\b",
    r"\b(?:abwesend|abwesenheit|absent|absence|ausente|assente|afwezig|fuori (?:sede|ufficio))\b",
    r"\b(?:ticket|request|case|anfrage)\b.{0,40}\b(?:received|created|opened|eingegangen)\b",
    r"\bwe(?:'ve| have) received your\b",
    r"\bthank(?:s| you) for (?:contacting|your (?:e-?mail|message|enquiry|inquiry|request))\b",
    # Challenge-response spam filters (RFC 3834 counts them as automatic responders):
    # cPanel BoxTrapper's "Your email requires verification verify#<id>", and alike.
    r"\bverify#|\b(?:requires|needs) (?:your )?verification\b|\bsender verification\b",
    r"\b(?:please )?(?:confirm|verify) your (?:e-?mail|message|sending)\b",
    r"\ben attente de (?:validation|confirmation)\b|\bconfirmez votre (?:envoi|message)\b",
)
# Absence wording. A person announcing an absence writes the same words ("I'll be out of
# the office next week, so ..."), so these corroborate only a message that answers another
# one (RFC 3834 §3.1.5: responders set In-Reply-To/References) or one whose subject *is*
# the absence notice ("Out of office", "Abwesend: <original subject>").
_ABSENCE_BODY = _rx(
    r"\b(?:i am|i'm|i will be|i'll be) (?:currently )?(?:out of (?:the )?office|away|absent"
    r"|on (?:vacation|holiday|leave))\b",
    r"\bwith (?:limited|no) access to (?:my )?e-?mail|\b(?:upon|on|after) my return\b",
    r"\bich bin (?:.{0,40})?(?:nicht im buro|abwesend|im urlaub|nicht erreichbar)",
    r"\bje (?:suis|serai) (?:actuellement )?(?:absente?|en conges|en vacances)",
    r"\b(?:estoy|estare) (?:fuera de la oficina|ausente|de vacaciones)",
    r"\b(?:sono|saro) (?:fuori (?:sede|ufficio)|assente|in ferie)",
    r"\bik ben (?:.{0,30})?(?:afwezig|niet aanwezig|op vakantie)",
    r"\b(?:estou|estarei) (?:fora do escritorio|ausente|de ferias)",
    r"\bjestem (?:.{0,30})?(?:poza biurem|nieobecn[ay]|na urlopie)",
    r"\bjag ar (?:.{0,30})?(?:pa semester|ledig|inte pa kontoret|franvarande)",
    r"\bя (?:.{0,30})?(?:в отпуске|вне офиса|отсутствую)",
)
# Machine wording: generators write it, people do not; corroborates on its own.
_AUTO_BODY = _rx(
    r"\bthis is an (?:automated|automatic|auto-generated) (?:response|reply|message|e-?mail)",
    r"\bthis (?:e-?mail|message) (?:was|has been|is) (?:automatically generated|sent automatic)",
    r"\bce (?:message|mail|courriel) (?:est|a ete) (?:envoye|genere) automatiquement",
    r"\bdiese (?:e-?mail|nachricht) wurde automatisch (?:erstellt|generiert|versendet|versandt)",
    r"\b(?:este|el presente) (?:mensaje|correo) (?:ha sido|fue|se ha|es) (?:generado|enviado)"
    r" automaticamente",
    r"\bquesto messaggio e stato (?:generato|inviato) automaticamente",
    r"\bdit (?:e-?mail)?bericht is automatisch (?:gegenereerd|verzonden|verstuurd)",
    # Helpdesk acknowledgements (Freshdesk, Zendesk, osTicket, Zammad default texts).
    r"\b(?:a|your|the) (?:support |new )?(?:ticket|case) (?:\(?#?\w+\)? )?(?:has been|was)"
    r" (?:created|opened|logged|raised)",
    r"\byour (?:request|ticket|case) \(?#?\w+\)? ?(?:has been|was) (?:received|created|logged)",
    r"\bwe (?:would like to )?acknowledge (?:that we have received|(?:the )?receipt of) your\b",
    # Challenge-response filters: BoxTrapper, MailInBlack and alike ask to prove humanity.
    r"\breal live human being\b|\bnot a spam source\b|\bleave the subject line intact\b",
    r"\bprove (?:that )?you(?:'re| are) (?:a )?(?:human|real person|not a (?:robot|spammer))",
    r"\bverify that you are a real (?:person|human)",
    r"\b(?:your|the) (?:message|e-?mail) (?:is|has been) (?:being )?held (?:for|until|pending)"
    r" (?:verification|approval|confirmation)",
    r"\bprouv\w* que vous n'etes pas un robot|\bpour que votre message soit (?:delivre|remis)",
)
# "Do not reply to this email": a generator's instruction (PayPal, banks, shops). With
# machine wording ("sent automatically") in the sender's own text it marks a notification.
_DO_NOT_REPLY = _rx(
    r"\b(?:please )?(?:do not|don't|dont|never) (?:reply|respond)(?: directly)? to this"
    r" (?:e-?mail|message|address|notification)\b",
    r"\bthis (?:mailbox|e-?mail address|address) is (?:not monitored|unattended|unmonitored)\b",
    r"\bbitte antworten sie nicht auf diese\b|\bmerci de ne pas repondre a ce",
    r"\bpor favor,? no responda a este\b|\bsi prega di non rispondere a questa\b",
)
# iTIP replies (RFC 5546 METHOD:REPLY) that calendar clients generate when an attendee
# clicks accept/decline: Outlook, Google Calendar, Apple Calendar put the answer first in
# the subject. Only with a text/calendar part, so a person's "Accepted: your offer" is mail.
_ITIP_REPLY_SUBJECT = _rx(
    r"^(?:accepted|declined|tentative|tentatively accepted|updated proposed time"
    r"|zugesagt|abgelehnt|mit vorbehalt|accepte|refuse|provisoire|aceptado|rechazado"
    r"|provisional|accettato|rifiutato|provvisorio|geaccepteerd|afgewezen|voorlopig)\s*:",
)
_CALENDAR_TYPES = frozenset({"text/calendar", "application/ics"})
# DMARC aggregate reports: RFC 7489 §7.2.1.1 prescribes this subject. Reporters such as
# dmarcreport@microsoft.com send from addresses that do not look like robots.
_DMARC_SUBJECT = re.compile(r"^\s*report domain:\s*\S+\s+submitter:\s*\S+.*\breport-id:", re.I)
_MAILER = re.compile(r"auto.?respon|auto.?reply|vacation", re.I)


def _null_sender(msg: Message) -> bool:
    """``Return-Path: <>``: the null reverse-path, used only for notifications."""
    return msg.has_header("return-path") and msg.header("return-path").strip() in ("<>", "")


def _auto_submitted(msg: Message) -> str:
    """The RFC 3834 keyword of Auto-Submitted if it is not "no", else ""."""
    m = re.match(r"\s*([\w-]+)", msg.header("auto-submitted"))
    keyword = m.group(1).lower() if m else ""
    return "" if keyword in ("", "no") else keyword


def _set(msg: Message, name: str) -> bool:
    return msg.has_header(name) and msg.header(name).strip().lower() not in ("no", "false", "0")


def detect_auto_reply(msg: Message) -> Detection | None:
    """A machine-generated reply or notification (RFC 3834), else None.

    ``Auto-Submitted`` other than "no" is decisive whatever its keyword: ``auto-replied``
    is a response (vacation), ``auto-generated``/``auto-notified`` is a machine notice;
    RFC 3834 §2 says answer neither. A null Return-Path is decisive too (RFC 5321 §4.5.5:
    only notifications are sent from ``<>``). ``X-Auto-Response-Suppress`` is not: Outlook
    sets it on ordinary mail, so it is no evidence at all; neither is
    ``X-MS-Exchange-Inbox-Rules-Loop``, which rule *forwards* of real mail carry. An
    absence- or acknowledgement-looking subject counts only with matching wording in the
    body (out of office, helpdesk ticket, challenge-response filter); absence wording, which
    people write too, only in a message that answers another one (In-Reply-To/References)
    or whose subject *is* the notice. Machine wording ("sent automatically") together with
    "do not reply to this email" in the sender's own text marks a notification even with
    an ordinary subject (PayPal, banks, shops). A calendar client's
    accept/decline (text/calendar part and an "Accepted:"-style subject) is an automatic
    protocol answer, like a read receipt.
    """
    reasons: list[str] = []
    keyword = _auto_submitted(msg)
    if keyword:
        reasons.append(f"Auto-Submitted: {keyword}")
    reasons += [f"{n}: {msg.header(n)[:40]}".rstrip(": ") for n in _AUTO_HEADERS if _set(msg, n)]
    for name in ("Precedence", "X-Precedence"):
        if msg.header(name).strip().lower() == "auto_reply":
            reasons.append(f"{name}: auto_reply")
    if "autoresponder" in msg.header("x-post-messageclass").lower():
        reasons.append("X-POST-MessageClass: Autoresponder")
    if msg.header("x-apple-action").strip().lower() == "vacation":
        reasons.append("X-Apple-Action: vacation")
    if msg.has_header("x-loop"):
        reasons.append("X-Loop (passed through an automatic responder)")
    if _MAILER.search(msg.header("x-mailer")):
        reasons.append(f"X-Mailer: {msg.header('x-mailer')[:40]}")
    if _null_sender(msg):
        reasons.append("Return-Path: <> (null sender)")
    if msg.content_type == "multipart/report":  # not a DSN (bounces are checked first)
        reasons.append(f"multipart/report; report-type={_report_type(msg) or '?'}")
    if any(t == "message/disposition-notification" for t in msg.part_types):
        reasons.append("read receipt (message/disposition-notification)")
    if _DMARC_SUBJECT.match(msg.subject):
        reasons.append("DMARC aggregate report (RFC 7489)")

    subject = _fold(msg.subject).strip()
    bare = _TAG.sub("", subject)  # "[EXTERNAL] Automatic reply: ..."
    if not _REPLY_PREFIX.match(subject):
        if _AUTO_SUBJECT.search(subject) or _AUTO_SUBJECT.search(bare):
            reasons.append(f"auto-reply subject: {msg.subject[:60]}")
        elif _CALENDAR_TYPES.intersection(msg.part_types) and _ITIP_REPLY_SUBJECT.search(bare):
            reasons.append(f"calendar reply (iTIP, RFC 5546): {msg.subject[:60]}")
        elif _WEAK_SUBJECT.search(subject):
            # X-Auto-Response-Suppress does not corroborate: Outlook and Exchange-connected
            # apps stamp it on ordinary mail, and a business subject may hold "absence".
            support = []
            own = _fold(_unquoted(msg.body_text[:_SCAN]))[:3000]
            head = _WEAK_SUBJECT.match(bare)
            headed = bool(head and re.match(r"\s*(?:[:\-–(\[]|$)", bare[head.end() :]))
            answers = msg.has_header("in-reply-to") or msg.has_header("references")
            if _AUTO_BODY.search(own) or ((answers or headed) and _ABSENCE_BODY.search(own)):
                support.append("out-of-office/automatic wording in body")
            if support or reasons:
                reasons += [f"automatic-looking subject: {msg.subject[:60]}", *support]
        if not reasons:
            own = _fold(new_text(msg.text, msg.html)[:3000])
            if _AUTO_BODY.search(own) and _DO_NOT_REPLY.search(own):
                reasons.append(
                    "automatic notification wording in body (sent automatically, do not reply)"
                )
    return Detection("auto_reply", tuple(dict.fromkeys(reasons))) if reasons else None


# ---- lists and bulk ------------------------------------------------------------------

# RFC 2919/2369 list fields, and stamps of list managers (Mailman, ezmlm, Sympa, ...).
_LIST_HEADERS = (
    "List-Id", "List-Post", "List-Help", "List-Subscribe", "List-Owner", "List-Archive",
    "Mailing-List", "X-Mailing-List", "X-Mailman-Version", "X-BeenThere",
)  # fmt: skip


def detect_list(msg: Message) -> Detection | None:
    """Mailing-list or bulk mail, else None.

    List headers and ``Precedence: bulk|list|junk`` are decisive. ``List-Unsubscribe``
    alone also counts (reason "bulk sender"): Gmail's and Yahoo's bulk-sender rules make
    every bulk stream carry it, and a rule that wants such notifications can accept them.
    ``Feedback-ID`` and ESP campaign headers are *not* used: ESPs stamp them on
    transactional and person-to-person mail as well.
    """
    reasons = [f"{n}: {msg.header(n)[:60]}" for n in _LIST_HEADERS if msg.has_header(n)]
    for name in ("Precedence", "X-Precedence"):
        value = msg.header(name).strip().lower()
        if value in ("bulk", "list", "junk"):
            reasons.append(f"{name}: {value}")
    if msg.has_header("list-unsubscribe"):
        reasons.append("List-Unsubscribe (bulk sender)")
    return Detection("list", tuple(reasons)) if reasons else None


def detect(msg: Message) -> Detection | None:
    """The first of bounce, auto_reply, list that applies, else None."""
    return detect_bounce(msg) or detect_auto_reply(msg) or detect_list(msg)


# ---- robot addresses -----------------------------------------------------------------

_SEP = re.compile(r"[-_.=]+")
_NOREPLY_RUN = ("noreply", "donotreply", "dontreply", "noresponse", "donotrespond", "noreplies")
_ROBOT_TOKENS = frozenset({"bounce", "bounces", "postmaster", "mailerdaemon", "maildaemon"})
# Whole local parts of generators: spam-filter quarantine digests (Barracuda, Sophos,
# Mimecast "quarantine@"), receipt mailers (Stripe "receipts+acct_…@", Square "receipts@").
_ROBOT_WHOLE = frozenset(
    {"notification", "notifications", "autoreply", "autoresponder", "autorespond", "daemon"}
    | {"quarantine", "spamquarantine", "receipts"}
)


def is_noreply_address(addr: str) -> bool:
    """True for no-reply robots and mail-system senders we must never write to.

    Compares the local part with any ``+tag`` removed and separators ignored, so
    ``No_Reply+x@``, ``do-not-reply@``, ``noreply-billing@``, ``list-bounces@`` and
    ``MAILER-DAEMON@`` all match. "notifications" is a robot only as the whole local
    part: ``notifications.team`` may be a person's mailbox, ``info@`` always is.
    """
    addr = addr.strip().strip("<>")
    local = (addr.rpartition("@")[0] if "@" in addr else addr).lower().split("+", 1)[0]
    if not local:
        return True  # the null sender <>
    tokens = [t for t in _SEP.split(local) if t]
    joined = "".join(tokens)
    if joined.startswith(_NOREPLY_RUN) or joined.endswith(_NOREPLY_RUN):
        return True
    for i in range(len(tokens)):  # a separated run "...-no-reply-..." in the middle
        for j in range(i + 1, min(len(tokens), i + 3) + 1):
            if "".join(tokens[i:j]) in (*_NOREPLY_RUN, "mailerdaemon"):
                return True
    return bool(_ROBOT_TOKENS.intersection(tokens)) or joined in _ROBOT_WHOLE
