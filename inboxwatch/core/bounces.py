"""Recognise bounces: delivery status notifications and non-delivery reports.

A DSN (RFC 3464/6522) or an NDR as Postfix, Exim, qmail, Sendmail, Exchange/M365, Gmail
and gateways write it, with whether the failure is permanent (hard) or a delay/warning
(soft) and which recipients failed. One concept with many generator dialects, so it has
its own module; :func:`inboxwatch.core.autodetect.detect` asks it first.
"""

from __future__ import annotations

import re

from inboxwatch.core.bounce_recipients import (
    ADDR,
    dsn_addr,
    dsn_records,
    inline_recipients,
    original_recipients,
    provider_notification,
    text_recipients,
)
from inboxwatch.core.detection import (
    REPLY_PREFIX,
    SCAN,
    Detection,
    auto_submitted,
    fold,
    null_sender,
    report_type,
)
from inboxwatch.core.message import Message
from inboxwatch.core.prefilter import gated, rx

_BARE_DAEMON = re.compile(r"\bmailer[-_]?daemon\b", re.I)
_DAEMON_LOCALS = frozenset({"mailer-daemon", "mailerdaemon", "mailer_daemon", "mail-daemon"})
# Typical NDR subjects of Postfix, Exim, Sendmail, qmail, Exchange/M365 (en/de/fr/it/es/
# nl/pt), Gmail, Yahoo. Matched at the start of the (folded) subject only.
_NDR_SUBJECT = rx(
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
# Success reports that read like an NDR's subject: Gmail's "Delivery Status Notification
# (Success)", Postfix's "Successful Mail Delivery Report", Exchange's "Delivered:"/"Relayed:".
_SUCCESS_SUBJECT = rx(
    r"^delivery status notification \((?:success|relay|delivered|relayed)\)",
    r"^successful mail delivery report\b",
    r"^(?:delivered|relayed)\s*:",
)
_NDR_SUBJECT_SOFT = rx(r"delay|verzogert|differee|ritardato|retrasada|vertraagd|atrasada|^warning:")
# Sentences that NDR generators (Postfix, Exim, qmail, Sendmail, Exchange in several
# languages, Gmail) write and people do not.
_NDR_BODY = rx(
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
# NDR wording in other languages: Japanese, Chinese, Korean carrier/ISP servers, Russian
# (Yandex, Mail.ru, Exchange), Ukrainian, Polish, Czech, Nordic, Finnish, Turkish,
# Hungarian, Romanian, Greek. Literal words, folded like the text (NFKD splits Hangul and
# kana with voicing marks), searched anywhere in the subject or the generator's text.
_NDR_WORDS_INTL = (
    "メールエラー通知", "エラー通知", "配信エラー", "配送エラー", "配信不能", "配送不能",
    "配信できません", "配送できません", "送信できません", "配信失敗", "配送失敗", "未配達",
    "宛先不明", "届きませんでした", "配信されませんでした", "返送",
    "退信", "系统退信", "退回", "投递失败", "投遞失敗", "发送失败", "發送失敗", "无法投递",
    "無法投遞", "无法送达", "無法送達", "未能送达", "無法傳遞", "傳送失敗", "退件",
    "반송", "전송 실패", "전송실패", "배달 실패", "발송 실패", "발송실패", "전달 실패",
    "배달되지 않", "전달되지 않", "전송되지 않",
    "недоставленное сообщение", "сообщение не доставлено", "не доставлено", "недоставлено",
    "ошибка доставки", "невозможно доставить", "не удалось доставить", "не может быть доставлено",
    "уведомление о недоставке", "возврат почты", "не вдалося доставити", "не доставлено",
    "niedostarczalne", "nie mozna dostarczyc", "nie dostarczono", "blad dostarczenia",
    "nedorucitelne", "nelze dorucit", "nedoruceno",
    "ej levererbart", "kan inte levereras", "kunde inte levereras", "leveransfel",
    "kan ikke leveres", "kunne ikke leveres", "ikke levert", "levering mislykkedes",
    "ei voitu toimittaa", "toimitus epaonnistui", "teslim edilemedi", "iletilemedi",
    "kezbesithetetlen", "nem kezbesitheto", "nu a putut fi livrat", "nelivrat",
    "δεν παραδοθηκε", "μη παραδοσιμο", "αδυναμια παραδοσης",
)  # fmt: skip
_NDR_INTL = gated(re.compile("|".join(re.escape(fold(w)) for w in _NDR_WORDS_INTL)))
# Mailing-list managers' error and loop notices (Mailman, Sympa, LISTSERV, Majordomo,
# ezmlm, Google Groups): the list did not take our message.
_LIST_ERROR = rx(
    r"\b(?:mail|message) loop(?:ing)? (?:detected|problem)|\bloop detected\b",
    r"\b(?:your )?(?:message|post(?:ing)?|submission) (?:to \S+ )?(?:has been |was )?"
    r"(?:rejected|refused|discarded|bounced)\b",
    r"\b(?:non-?member|not a member|not subscribed|not allowed to post|are not permitted to post"
    r"|posting restricted|members only)\b",
    r"\buncaught bounce\b|\bcommand(?:s)? (?:not understood|failed)\b|\berror(?:s)? processing\b",
)
# Generators' own words of a failed delivery when a role sender or the returned original
# corroborates them; too weak alone ("failed", "undeliverable" anywhere in the text).
_FAILURE_WORDS = rx(
    r"\bundeliver(?:ed|able)\b|\bdelivery (?:failure|failed|problem|error|status)|\bbounced?\b",
    r"\b(?:could|can)(?:not|n't| not) be (?:delivered|sent)\b|\bnot (?:be )?delivered\b",
    r"\b(?:permanent|fatal|delivery) error\b|\buser unknown\b|\bmailbox (?:full|unavailable"
    r"|not found|does not exist)|\bno such (?:user|mailbox|address)\b|\brecipient rejected\b",
    r"\bunrouteable\b|\bunknown (?:user|recipient|address)\b|\bhost not found\b",
    r"\b(?:rejected|returned) (?:mail|message)\b|\bsms (?:delivery )?(?:failed|failure)\b",
    r"\bmessage (?:rejected|blocked|refused)\b|\bfailed (?:recipient|delivery)\b",
)
# SMTP reply text a generator pastes: "550 5.1.1 <x@y>: Recipient address rejected",
# "said: 554", "Diagnostic-Code: smtp; 550", enhanced status codes of RFC 3463.
_SMTP_TEXT = rx(
    r"^\s*(?:diagnostic-code|final-recipient|remote-mta|reporting-mta)\s*:",
    r"\b[45]\d\d[ -][45]\.\d{1,3}\.\d{1,3}\b|\bsaid: [45]\d\d\b",
    r"\bsmtp (?:error|reply|response)\b[^\n]{0,40}\b[45]\d\d\b",
)
# Role senders of mail systems, carriers' SMS gateways and list managers. Compared with
# the local part with separators ignored ("post_master", "Mailer-Daemon", "MAILER").
_SYSTEM_WHOLE = frozenset(
    {"postmaster", "mailer", "mailerdaemon", "maildaemon", "mdaemon", "maildelivery",
     "maildeliverysystem", "maildeliverysubsystem", "mailadmin", "mailadministrator",
     "mailsystem", "smtp", "smtpd", "bounce", "bounces", "smsgateway", "smsadmin",
     "mmsadmin", "mailerror", "mailerrors", "deliverystatus"}
)  # fmt: skip
_SYSTEM_PREFIX = ("bounce", "postmaster", "mailerdaemon", "maildaemon")
_ROLE_WHOLE = frozenset(
    {"daemon", "root", "nobody", "listserv", "majordomo", "mailman", "sympa", "ezmlm",
     "listmanager", "lyris", "noreply", "donotreply", "admin", "notify", "system"}
)  # fmt: skip
_ROLE_SUFFIX = re.compile(r"\w[-_](?:admin|owner|request|bounces?|errors|daemon)$")
_ROLE_PREFIX = ("noreply", "donotreply")
_LIST_ROLE_SUFFIX = ("admin", "owner", "request")
_LIST_ROLE_WHOLE = frozenset({"listserv", "majordomo", "mailman", "sympa", "ezmlm", "lyris"})
_ROLE_NAME = rx(
    r"^\s*\W*(?:mail delivery (?:subsystem|system|service)|mail(?:er)? ?daemon|postmaster"
    r"|mail administrator|system administrator|mail system|delivery (?:status|subsystem))\b",
)


def _role_local(local: str) -> str:
    """``post_master`` -> ``postmaster``: the local part without tag and separators."""
    return re.sub(r"[-_.=]+", "", local.lower().split("+", 1)[0])


def role_sender(msg: Message) -> tuple[str, bool]:
    """Why the sender is a role address, else "", and whether it is a mail system's own.

    Mail-system roles (postmaster, MAILER-DAEMON, ``bounce*@``, "Mail Delivery System")
    send nothing but reports; other roles (``no-reply@``, ``*-admin@``, list managers)
    send notices of all sorts, so they count only with the structure of a report.
    """
    if not msg.from_:
        return "", False
    local, raw = _role_local(msg.from_.local), msg.from_.local.lower()
    why = f"role sender {msg.from_.addr}"
    if local in _SYSTEM_WHOLE or local.startswith(_SYSTEM_PREFIX):
        return why, True
    if _ROLE_NAME.search(msg.from_.name):
        return f"mail-system sender name {msg.from_.name[:40]}", True
    if local in _ROLE_WHOLE or local.startswith(_ROLE_PREFIX):
        return why, False
    if _ROLE_SUFFIX.search(raw):
        return why, False
    return "", False


def _list_manager(msg: Message) -> bool:
    if not msg.from_:
        return False
    tokens = [t for t in re.split(r"[-_.=+]+", msg.from_.local.lower()) if t]
    return bool(tokens) and (
        (len(tokens) > 1 and tokens[-1] in _LIST_ROLE_SUFFIX)
        or _role_local(msg.from_.local) in _LIST_ROLE_WHOLE
    )


_INLINE_HEADERS = re.compile(r"^\s*(?:message-id|from|subject|date)\s*:", re.I | re.M)


def _quoted_original(text: str) -> bool:
    """An original message returned inline: at least three of its header fields as lines."""
    return len(_INLINE_HEADERS.findall(text[:SCAN])) >= 3


# Phrases of a delay/warning notice, which promise further attempts.
_SOFT_BODY = rx(
    r"this is a warning only|has not yet been delivered|delivery incomplete|still being retried",
    r"will (?:continue to )?(?:retry|try again|keep trying)|delivery attempts will continue",
    r"delivery (?:has been|is) delayed",
)
_HARD_BODY = rx(
    r"\b5\.\d{1,3}\.\d{1,3}\b|\bpermanent|\b55[0-4][ -]|user unknown|no such user",
    r"does(?:n't| not) exist|address not found",
)
_STATUS = re.compile(r"^\s*status:\s*([245])\.\d{1,3}\.\d{1,3}", re.I | re.M)
# Where an NDR's own text ends and the returned original message begins.
_ORIGINAL_START = rx(
    r"^-+ ?(?:this is a copy of the message|original message|below this line is a copy"
    r"|the header of the original message)",
    r"^original message headers|^(?:received|return-path|message-id|dkim-signature):",
)


# The same words anywhere: where they are not, no line starts with them (issue 12: one
# scan instead of one per line for most messages).
_ORIGINAL_ANYWHERE = gated(
    re.compile(_ORIGINAL_START.pattern.replace("^", ""), _ORIGINAL_START.flags)
)


def _ndr_head(text: str) -> str:
    """The generator's own text of an NDR, before the returned original message."""
    if not _ORIGINAL_ANYWHERE.search(text):
        return text
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if _ORIGINAL_START.search(line.strip()):
            return "\n".join(lines[:i])
    return text


def detect_bounce(msg: Message) -> Detection | None:
    """A delivery status notification or non-delivery report, else None.

    Decisive on their own: a top-level ``multipart/report; report-type=delivery-status``
    (RFC 3464/6522), ``X-Failed-Recipients`` (Exim, Gmail), Exchange's
    ``X-MS-Exchange-Message-Is-Ndr``, or a From of MAILER-DAEMON. Otherwise the message
    must *say* it is an NDR (typical subject or generator sentence) *and* come from a mail
    system (null Return-Path, postmaster, ``Auto-Submitted``) or say so in both subject and
    body. So "Re: Undeliverable: ..." from a person, or a customer writing "my email
    bounced", is not a bounce.

    A success report (RFC 3464 Action delivered, relayed or expanded only; or a "(Success)"
    / "Successful Mail Delivery Report" notice without a failure status) is returned as an
    ``auto_reply``: a robot's mail, never answered, never counted or acted on as a bounce
    (a sender asked for it with NOTIFY=SUCCESS, or a gateway reports a relay).
    """
    reasons: list[str] = []
    from_local = msg.from_.local if msg.from_ else ""
    if not msg.from_ and _BARE_DAEMON.search(msg.header("from")):
        from_local = "mailer-daemon"  # a local bounce: "From: MAILER-DAEMON (Mail Delivery ...)"
    rtype = report_type(msg)
    ctype_report = msg.content_type == "multipart/report" and rtype.endswith("delivery-status")
    if ctype_report:
        reasons.append(f"multipart/report; report-type={rtype}")
    failed_hdr = [a.lower() for v in msg.header_all("x-failed-recipients") for a in ADDR.findall(v)]
    if msg.has_header("x-failed-recipients"):
        reasons.append("X-Failed-Recipients")
    if msg.has_header("x-ms-exchange-message-is-ndr"):
        reasons.append("X-MS-Exchange-Message-Is-Ndr")
    if from_local in _DAEMON_LOCALS:
        reasons.append(f"From {from_local}")
    strong = bool(reasons)

    subject = fold(msg.subject)
    prefixed = bool(REPLY_PREFIX.match(subject))
    body = msg.scan_text  # an NDR explains itself at the top
    head = _ndr_head(body)
    subj_hit = not prefixed and bool(_NDR_SUBJECT.search(subject.strip()))
    body_hit = bool(_NDR_BODY.search(body))
    # Short words in other languages ("退信", "반송") are what a person writes too: they
    # count with a mail-system origin, never by appearing in both subject and body.
    intl_hit = not prefixed and bool(_NDR_INTL.search(subject) or _NDR_INTL.search(head))
    origin = []
    if null_sender(msg):
        origin.append("Return-Path: <>")
    if from_local == "postmaster":
        origin.append("From postmaster")
    if auto_submitted(msg):
        origin.append(f"Auto-Submitted: {auto_submitted(msg)}")
    notice = None if prefixed else provider_notification(msg.body_text[:SCAN])
    if notice is not None:
        reasons.append("provider bounce notification (SES/SNS JSON)")
        strong = True
    if not strong and not (
        (subj_hit or body_hit or intl_hit) and (origin or (subj_hit and body_hit))
    ):
        # Outside the wording we know: the structure of a report. A returned original
        # (attached or quoted inline), SMTP/DSN status text, a mail-system or list-manager
        # sender; two of them, or one with failure words, make a bounce.
        role, system = role_sender(msg)
        attached = bool(msg.attached)
        if prefixed or not (role or attached or subj_hit or body_hit or intl_hit):
            return None  # what follows cannot make it one: skip its scans (issue 12)
        inline = bool(role) and _quoted_original(body)
        status_text = bool(_SMTP_TEXT.search(head))
        ndr_words = subj_hit or body_hit or intl_hit
        words = ndr_words or bool(
            not prefixed and (_FAILURE_WORDS.search(subject) or _FAILURE_WORDS.search(head))
        )
        list_error = (
            not prefixed
            and _list_manager(msg)
            and bool(_LIST_ERROR.search(subject) or _LIST_ERROR.search(head))
        )
        structural = attached or inline or status_text or list_error
        evidence = [
            e
            for e, ok in (
                (role, bool(role)),
                ("returned original message", attached or inline),
                ("SMTP/DSN status text", status_text),
                ("delivery-failure wording", words),
                ("mailing-list manager error notice", list_error),
                *((o, True) for o in origin),
            )
            if ok
        ]
        if prefixed or not (
            (role and structural and (words or system or list_error))
            or (system and words)
            or ((attached or status_text) and ndr_words)
            or (attached and status_text and words)
        ):
            return None
        reasons.extend(evidence)
        if list_error:  # the list refused the post; no recipient's mailbox failed
            reasons.append("list did not take the message")
            return _bounce(reasons, False, original_recipients(msg.attached))
    if intl_hit and not (subj_hit or body_hit):
        reasons.append("NDR wording (non-English)")
    if subj_hit:
        reasons.append(f"NDR subject: {msg.subject[:60]}")
    if body_hit:
        reasons.append("NDR text in body")
    reasons.extend(origin)

    # Severity and recipients: the machine-readable DSN first, then headers, then text.
    failed: list[str] = []
    delayed: list[str] = []
    gave_up: list[str] = []
    ok: list[str] = []
    for rec in dsn_records(msg.report_text):
        addr = dsn_addr(rec.get("final-recipient", "")) or dsn_addr(
            rec.get("original-recipient", "")
        )
        action = rec.get("action", "").lower().split()[0] if rec.get("action") else ""
        status = rec.get("status", "")[:1]
        if action == "failed" and status == "4":
            # RFC 3463: 4.x.x is a persistent transient condition (a full mailbox, 4.2.2):
            # the sending server gave up on this message, but the address is good.
            gave_up.append(addr)
        elif action == "failed" or (not action and status == "5"):
            failed.append(addr)
        elif action == "delayed" or (not action and status == "4"):
            delayed.append(addr)
        elif action in ("delivered", "relayed", "expanded") or status == "2":
            ok.append(addr)
    if failed:
        reasons.append("DSN action: failed")
        return _bounce(reasons, True, failed + failed_hdr)
    if gave_up:
        reasons.append("DSN action: failed, transient status 4.x.x (e.g. mailbox full)")
        return _bounce(reasons, False, gave_up + delayed)
    if delayed:
        reasons.append("DSN action: delayed")
        return _bounce(reasons, False, delayed)
    if ok:
        return _success(reasons, "DSN action: delivered/relayed/expanded only")

    if notice is not None:
        return _bounce(reasons, notice[0], notice[1] or failed_hdr)
    head = _ndr_head(fold(msg.body_text[:SCAN]))
    soft = bool(_NDR_SUBJECT_SOFT.search(subject) and subj_hit) or bool(_SOFT_BODY.search(head))
    statuses = set(_STATUS.findall(msg.report_text))
    if not failed_hdr and not statuses & {"4", "5"} and _SUCCESS_SUBJECT.search(subject):
        return _success(reasons, f"success notice: {msg.subject[:60]}")
    if "5" in statuses or failed_hdr:
        soft = False
    elif "4" in statuses:
        soft = True
    elif soft and _HARD_BODY.search(head) and not _SOFT_BODY.search(head):
        soft = False
    reasons.append("delivery delayed (transient)" if soft else "delivery failed")
    recipients = (
        failed_hdr
        or list(text_recipients(msg, head))
        or original_recipients(msg.attached)
        or inline_recipients(msg, fold(msg.body_text[:SCAN]))
    )
    return _bounce(reasons, not soft, recipients)


def _success(reasons: list[str], why: str) -> Detection:
    """A delivery report that says nothing failed: machine mail, not a bounce."""
    reasons = [*reasons, why, "a delivery report of success, not a bounce"]
    return Detection("auto_reply", tuple(dict.fromkeys(reasons)))


def _bounce(reasons: list[str], hard: bool, recipients: list[str]) -> Detection:
    uniq = tuple(dict.fromkeys(r for r in recipients if r))
    return Detection("bounce", tuple(dict.fromkeys(reasons)), hard, uniq)
