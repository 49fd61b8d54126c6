"""Real-world shapes, fourth sweep: replies from many mail clients, and machine mail the
earlier sweeps missed (recalls, calendars, voicemail, fax, e-signature, marketplaces).

Every file in ``tests/mail/realworld3/`` has an expectation here (its ``X-Sample-Shape``
header names the software whose habit it shows). Each is classified twice with the
shipped rules: from an unknown sender, and with its sender a known lead, since the costly
mistakes are answering a machine and taking a machine's mail (or our own quoted text) for
the lead's words. Replies answer a Message-ID inboxwatch made (``<iw.…@shop.example>``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from inboxwatch.core.classify import Classification, classify
from inboxwatch.core.message import parse_message
from inboxwatch.core.verdict import Context, Known
from inboxwatch.userfiles.rulebook import RuleBook, load_rulebook

REPO = Path(__file__).resolve().parent.parent
MAIL = Path(__file__).parent / "mail" / "realworld3"
NOW = datetime(2027, 3, 4, 12, 0, tzinfo=UTC)
OURS = "<iw.5f1e2d3c4b5a69788796a5b4@shop.example>"


@pytest.fixture(scope="module")
def book() -> RuleBook:
    return load_rulebook(REPO / "rules", REPO / "templates")


def run(raw: bytes, book: RuleBook, known: str = "", thread_of: str = "") -> Classification:
    """Classify as hello@shop.example; ``known`` is a lead's address, ``thread_of`` the
    lead whose thread holds our message ``OURS``."""
    by_address = {a: a for a in (known, thread_of) if a}
    ctx = Context(
        own=frozenset({"hello@shop.example"}),
        team=frozenset({"jane@shop.example"}),
        known=Known(by_address=by_address, by_message_id={OURS: thread_of} if thread_of else {}),
    )
    return classify(parse_message(raw), book, ctx, NOW)


@dataclass(frozen=True)
class Want:
    unknown: str  # the kind from an unknown sender
    known: str = ""  # the kind when the sender is a known lead ("" : not asked)
    has: tuple[str, ...] = ()  # the new text must contain
    lacks: tuple[str, ...] = ()  # the new text must not contain
    reason: str = ""  # a reason must contain this


QUOTE = ("Thanks for your enquiry", "get back to you")
R, A, B, E, IGN, OWN = "reply", "auto_reply", "bounce", "enquiry", "ignore", "own"
# Machine mail is never an enquiry, and from a known lead's address never their reply.
RECALL = Want(A, A, reason="message recall")

EXPECTED: dict[str, Want] = {
    # ---- replies: the reply is a reply, and only the lead's new words are kept -------
    "reply_outlook_classic_html_only.eml": Want(
        R, R, ("sofa in charcoal", "Practice Manager"), (*QUOTE, "From:", "confidential")
    ),
    "reply_outlook_french_plain.eml": Want(R, R, ("livrer le 15 mars",), (*QUOTE, "De :")),
    "reply_gmail_spanish.eml": Want(R, R, ("12 sillas de roble", "Lucía"), (*QUOTE, "escribió")),
    "reply_gmail_french_wrapped.eml": Want(R, R, ("je passe samedi",), (*QUOTE, "écrit")),
    "reply_ios_html_only.eml": Want(R, R, ("walnut",), (*QUOTE, "wrote", "iPhone")),
    "reply_thunderbird_html_bottom.eml": Want(R, R, ("ship to Brno",), (*QUOTE, "Novak, Brno")),
    "reply_format_flowed.eml": Want(R, R, ("Malmö",), QUOTE),
    "reply_attachment_only.eml": Want(R, R),
    "reply_big5.eml": Want(R, R, ("請報價二十張椅子",), (*QUOTE, "寫道")),
    "reply_koi8r.eml": Want(R, R, ("доставка в Казань",), (*QUOTE, "пишет")),
    "reply_iso2022jp_outlook.eml": Want(R, R, ("椅子を２０脚",), (*QUOTE, "Original")),
    "reply_outlook_dutch_cp1252.eml": Want(R, R, ("“eiken” afwerking",), (*QUOTE, "Van:")),
    # The subject lost its "Re:" and the thread: still the known lead's reply (their
    # address), though from a stranger it would be a new enquiry.
    "reply_new_subject_no_thread.eml": Want(E, R, ("two matching stools",)),
    # Another address of theirs, in our thread: a reply (see the thread test below).
    "reply_other_address_same_person.eml": Want(R, R, ("invoice here",), QUOTE),
    "reply_colleague_after_forward.eml": Want(
        R, R, ("quote for 60 chairs",), (*QUOTE, "Can you take this one")
    ),
    "reply_outlook_ios_html.eml": Want(R, R, ("Thursday works",), (*QUOTE, "Outlook for iOS")),
    "reply_inline_answers.eml": Want(R, R, ("12.", "Before Easter."), ("How many", "Ola")),
    "reply_yahoo_html_only.eml": Want(R, R, ("Saturday morning",), (*QUOTE, "wrote")),
    "reply_proton_html_only.eml": Want(R, R, ("reserve the desk",), (*QUOTE, "Proton Mail")),
    "reply_zoho_html.eml": Want(R, R, ("30 chairs",), (*QUOTE, "wrote")),
    "reply_outlook_german_html_only.eml": Want(R, R, ("8 Stühle",), (*QUOTE, "Von:")),
    "reply_helpdesk_agent.eml": Want(R, R, ("60 chairs please",)),
    # ---- Outlook's "Recall This Message": the lead's client, not their words ---------
    "recall_exchange_en.eml": RECALL,
    "recall_exchange_de.eml": RECALL,
    "recall_exchange_fr.eml": RECALL,
    "person_recall_subject.eml": Want(E, R, ("oak table",)),
    # ---- calendars: a stranger's response is machine mail; a lead's is their answer --
    "calendar_google_accepted.eml": Want(A, R, reason="calendar reply"),
    "calendar_outlook_declined_comment.eml": Want(A, R, ("could we do Friday",)),
    "calendar_google_reminder.eml": Want(IGN, reason="platform-notifications"),
    # ---- delivery and mailbox notices ------------------------------------------------
    "mailbox_full_notice.eml": Want(B, B, reason="DSN action: failed"),
    "quota_warning_o365.eml": Want(OWN),
    "quarantine_microsoft365.eml": Want(IGN),
    "quarantine_google_workspace.eml": Want(IGN),
    # A DMARC failure report is about our domain's authentication, not a complaint.
    "dmarc_forensic_ruf.eml": Want(A, A, reason="feedback-report"),
    # ---- platforms writing about customers: never a lead by their own address --------
    "voicemail_ringcentral.eml": Want(IGN, reason="platform-notifications"),
    "voicemail_teams.eml": Want(OWN),
    "voicemail_google_voice.eml": Want(IGN),
    "voicemail_pbx.eml": Want(IGN, reason="platform-notifications"),
    "fax_efax.eml": Want(IGN, reason="platform-notifications"),
    "docusign_completed.eml": Want(IGN, reason="platform-notifications"),
    "docusign_request.eml": Want(IGN, reason="platform-notifications"),
    "calendly_new_event.eml": Want(IGN),
    "marketplace_etsy_message.eml": Want(IGN, reason="platform-notifications"),
    "marketplace_ebay_message.eml": Want(IGN, reason="platform-notifications"),
    "receipt_square.eml": Want(IGN),
    "notification_instagram.eml": Want(IGN),
    "notification_google_business.eml": Want(IGN),
    "shopify_order_notification.eml": Want(IGN, reason="platform-notifications"),
}
# ---- web forms on sites in other languages: (lead, name, their message) -----------------
FORMS: dict[str, tuple[str, str, str]] = {
    "form_cf7_german.eml": ("lena.fischer@example.de", "Lena Fischer", "12 Stühle aus Eiche"),
    "form_cf7_french.eml": ("claire.petit@example.fr", "Claire Petit", "12 chaises en chêne"),
    "form_cf7_spanish.eml": ("pablo.ruiz@example.es", "Pablo Ruiz", "12 sillas de roble"),
    "form_cf7_italian.eml": ("giulia.rossi@example.it", "Giulia Rossi", "12 sedie in rovere"),
    "form_cf7_dutch.eml": ("sanne.bakker@example.nl", "Sanne Bakker", "12 eiken stoelen"),
    "form_cf7_portuguese.eml": (
        "joao.silva@example.com.br",
        "João Silva",
        "12 cadeiras de carvalho",
    ),
    "form_elementor_german.eml": ("tim.wagner@example.de", "Tim Wagner", "8 Hocker"),
    "form_wpforms_french.eml": ("marc.durand@example.fr", "Marc Durand", "tabourets en noyer"),
}


def test_every_sample_has_an_expectation() -> None:
    assert sorted(p.name for p in MAIL.glob("*.eml")) == sorted([*EXPECTED, *FORMS])


@pytest.mark.parametrize("name", sorted(FORMS))
def test_form_notifications_of_translated_sites_are_enquiries(name: str, book: RuleBook) -> None:
    """Sent by the site itself (wordpress@ our domain): before, no rule knew the translated
    wording, and mail from our own domain that no rule claims is our own, so these leads
    were silently dropped. Their message field stops before the tool's footer and the
    submission's details (a visitor's IP address is never quoted back to them)."""
    lead, person, words = FORMS[name]
    c = run((MAIL / name).read_bytes(), book)
    assert (c.kind.value, c.source) == ("enquiry", "website-form"), c.reasons
    assert c.lead is not None and (c.lead.addr, c.lead.name) == (lead, person)
    message = c.fields["message"]
    assert words in message
    for footer in ("--", "Remote IP", "Powered by", "Shop (https", "Envoyé depuis"):
        assert footer not in message


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sample(name: str, book: RuleBook) -> None:
    want = EXPECTED[name]
    raw = (MAIL / name).read_bytes()
    sender = parse_message(raw).from_
    assert sender is not None
    runs = [("", want.unknown)] + ([(sender.addr, want.known)] if want.known else [])
    for known, kind in runs:
        c = run(raw, book, known)
        assert c.kind.value == kind, (known, c.reasons)
        if want.reason:
            assert any(want.reason in r for r in c.reasons), c.reasons
        text = c.new_text
        for part in want.has:
            assert part in text, (part, text)
        for part in want.lacks:
            assert part not in text, (part, text)


def test_a_full_mailbox_is_a_soft_bounce(book: RuleBook) -> None:
    """RFC 3463: 4.2.2 is transient. The sending server gave up on this one message, but
    the address is good: the lead is not ended and the address not suppressed for ever."""
    raw = (MAIL / "mailbox_full_notice.eml").read_bytes()
    c = run(raw, book)
    assert c.kind.value == "bounce" and not c.bounce_hard
    assert c.bounced == ("ana.silva@gmail.com",)
    # the same report with a permanent status is a hard bounce
    hard = run(raw.replace(b"Status: 4.2.2", b"Status: 5.2.2"), book)
    assert hard.kind.value == "bounce" and hard.bounce_hard


def test_a_colleague_answering_in_the_leads_thread_answers_for_that_lead(book: RuleBook) -> None:
    """The lead forwarded our mail; the colleague's answer keeps our Message-ID in
    References: it is a reply in the lead's conversation (the automation stops, the owner
    is alerted with the colleague's words), written by the colleague."""
    raw = (MAIL / "reply_colleague_after_forward.eml").read_bytes()
    c = run(raw, book, thread_of="s.whitfield@northwind-logistics.co.uk")
    assert c.kind.value == "reply"
    assert c.lead_key == "s.whitfield@northwind-logistics.co.uk"
    assert c.lead is not None and c.lead.addr == "rachel.green@northwind-logistics.co.uk"


def test_a_recall_from_a_known_lead_concerns_that_lead_and_is_not_their_reply(
    book: RuleBook,
) -> None:
    raw = (MAIL / "recall_exchange_en.eml").read_bytes()
    c = run(raw, book, known="s.whitfield@northwind-logistics.co.uk")
    assert c.kind.value == "auto_reply"
    assert c.lead_key == "s.whitfield@northwind-logistics.co.uk"
    assert not c.opt_out


RECALL_EN = (MAIL / "recall_exchange_en.eml").read_text()


@pytest.mark.parametrize(
    "raw",
    [
        # A person's own words about recalling a message: no quoted subject after it.
        RECALL_EN.replace(
            'Sandra Whitfield would like to recall the message, "Chairs for the Leeds office".',
            "Please ignore my last message, I would like to recall the message I sent.",
        ),
        # Outlook's sentence quoting a subject other than this mail's.
        RECALL_EN.replace("Subject: Recall: Chairs for the Leeds office", "Subject: Re: chairs"),
        # The sentence inside a longer mail of the person's own.
        RECALL_EN.replace(
            "Sandra Whitfield would like",
            "We need 60 chairs for Leeds, delivered in April, in grey fabric with oak legs,"
            " and a quote for the matching desks would help us decide this week. "
            * 2
            + "Sandra Whitfield would like",
        ),
    ],
    ids=["own-words", "other-subject", "long-mail"],
)
def test_a_persons_mail_about_recalling_is_still_theirs(raw: str, book: RuleBook) -> None:
    assert run(raw.encode(), book).kind.value == "enquiry"
    assert run(raw.encode(), book, "s.whitfield@northwind-logistics.co.uk").kind.value == "reply"


@pytest.mark.parametrize(
    "sender",
    [
        "Ann Etsyfan <ann@etsy-crafts.example>",
        "Max Faxon <max.faxon@example.com>",
        "Fax Team <team@fax.example>",
    ],
)
def test_an_enquiry_from_a_person_at_a_platform_domain_name_elsewhere_is_still_one(
    sender: str, book: RuleBook
) -> None:
    """The platform rule names the platforms' mailer domains exactly (with subdomains) and
    a phone system's whole local part: a person whose address merely contains such a name
    is a person."""
    raw = (
        f"From: {sender}\nTo: hello@shop.example\nSubject: Oak table\n"
        "Message-ID: <p1@example.com>\nContent-Type: text/plain\n\n"
        "Do you make oak tables to order?\n"
    ).encode()
    c = run(raw, book)
    assert c.kind.value == "enquiry" and c.source == "direct-email"


# ---- quote marks of clients in more languages ------------------------------------------
SHOP = "Shop <hello@shop.example>"
# Gmail's and Outlook for Mac's attribution lines, as each language's client writes them.
ATTRIBUTIONS = {
    "el": f"Στις Τρί 2 Μαρ 2027 στις 10:00, ο/η {SHOP} έγραψε:",
    "ro": f"{SHOP} a scris în mar., 2 mar. 2027 la 10:00:",
    "vi": f"Vào Th 3, 2 thg 3, 2027 vào lúc 10:00 {SHOP} đã viết:",
    "id": f"Pada tanggal Sel, 2 Mar 2027 pukul 10.00 {SHOP} menulis:",
    "ar": f"في الثلاثاء، 2 مارس 2027 10:00 ص {SHOP} كتب:",
    "th": f"เมื่อ อ. 2 มี.ค. 2027 เวลา 10:00 {SHOP} เขียนว่า:",
    "da": f"Den tir. 2. mar. 2027 kl. 10.00 skrev {SHOP}:",
    "tr": f"{SHOP}, 2 Mar 2027 Sal, 10:00 tarihinde şunu yazdı:",
    # Lotus/HCL Notes puts the sender first
    "notes-en": f"{SHOP} wrote on 02/03/2027 10:00:",
    "notes-de": '"Shop" <hello@shop.example> schrieb am 02.03.2027 10:00:',
}
# Outlook's unquoted history block (From/Sent/To/Subject) in its other languages.
BLOCKS = {
    "el": "Από: Shop <hello@shop.example>\nΣτάλθηκε: Τρίτη, 2 Μαρτίου 2027 10:00 πμ\n"
    "Προς: Nikos\nΘέμα: Your enquiry",
    "ar": "من: Shop <hello@shop.example>\nتم الإرسال: الثلاثاء، 2 مارس، 2027 10:00 ص\n"
    "إلى: Ahmed\nالموضوع: Your enquiry",
    "he": "מאת: Shop <hello@shop.example>\nנשלח: יום שלישי 02 מרץ 2027 10:00\nאל: Noa\n"
    "נושא: Your enquiry",
    "vi": "Từ: Shop <hello@shop.example>\nĐã gửi: Thứ Ba, 2 tháng 3, 2027 10:00 SA\nĐến: Lan\n"
    "Chủ đề: Your enquiry",
    "id": "Dari: Shop <hello@shop.example>\nDikirim: Selasa, 02 Maret 2027 10.00\nKepada: Budi\n"
    "Perihal: Your enquiry",
    "hr": "Šalje: Shop <hello@shop.example>\nPoslano: utorak, 2. ožujka 2027. 10:00\nPrima: Ivan\n"
    "Predmet: Your enquiry",
    "sk": "Od: Shop <hello@shop.example>\nOdoslané: utorok, 2. marca 2027 10:00\nKomu: Jan\n"
    "Predmet: Your enquiry",
    "sl": "Od: Shop <hello@shop.example>\nPoslano: torek, 2. marec 2027 10:00\nZa: Jan\n"
    "Zadeva: Your enquiry",
    "bg": "От: Shop <hello@shop.example>\nИзпратено: вторник, 2 март 2027 г. 10:00\nДо: Ivan\n"
    "Относно: Your enquiry",
    "lt": "Nuo: Shop <hello@shop.example>\nIšsiųsta: 2027 m. kovo 2 d. 10:00\nKam: Jonas\n"
    "Tema: Your enquiry",
    "et": "Saatja: Shop <hello@shop.example>\nSaadetud: teisipäev, 2. märts 2027 10:00\n"
    "Adressaat: Mari\nTeema: Your enquiry",
    "ca": "De: Shop <hello@shop.example>\nEnviat el: dimarts, 2 de març de 2027 10:00\n"
    "Per a: Jordi\nTema: Your enquiry",
    "th": "จาก: Shop <hello@shop.example>\nส่ง: 2 มีนาคม 2027 10:00\nถึง: Somchai\nเรื่อง: Your enquiry",
}


@pytest.mark.parametrize("lang", sorted(ATTRIBUTIONS))
def test_attributions_in_more_languages_are_not_the_leads_words(lang: str) -> None:
    from inboxwatch.core.quotes import new_text

    quoted = "> Thanks for your enquiry.\n> A person will get back to you.\n"
    top = f"Twenty chairs, please.\n\n{ATTRIBUTIONS[lang]}\n\n{quoted}"
    bottom = f"{ATTRIBUTIONS[lang]}\n\n{quoted}\nTwenty chairs, please.\n"
    assert new_text(top) == "Twenty chairs, please."
    assert new_text(bottom) == "Twenty chairs, please."


@pytest.mark.parametrize("lang", sorted(BLOCKS))
def test_outlook_history_blocks_in_more_languages_are_cut(lang: str) -> None:
    from inboxwatch.core.quotes import new_text

    text = f"Twenty chairs, please.\n\n{BLOCKS[lang]}\n\nThanks for your enquiry.\n"
    assert new_text(text) == "Twenty chairs, please."


@pytest.mark.parametrize(
    "text",
    [
        # A delivery asked for, in the shape of a header block but with no address or time
        "Hi, we need a van.\n\nFrom: Leeds\nTo: London\nDate: 12.03.2027\n\nThanks, Tom",
        "Hi, kami perlu truk.\n\nDari: Jakarta\nKepada: Surabaya\nTanggal: 12 Maret 2027\n\nBudi",
        "Γεια σας,\n\nΑπό: Αθήνα\nΠρος: Θεσσαλονίκη\nΗμερομηνία: 12 Μαρτίου\n\nΝίκος",
        # "wrote on" with an address after it is a person's sentence, not Notes' line
        "I wrote on 02/03/2027 to <a@b.example> about this:\nthe chairs were late.",
    ],
    ids=["en", "id", "el", "wrote-on"],
)
def test_a_persons_own_key_value_lines_stay(text: str) -> None:
    from inboxwatch.core.quotes import new_text

    assert new_text(text) == text


def test_a_dashed_line_of_the_visitors_own_stays_in_their_message(book: RuleBook) -> None:
    raw = (
        (MAIL / "form_cf7_german.eml")
        .read_bytes()
        .replace("Café.\n".encode(), "Café.\n---\nWir brauchen auch 3 Tische.\n".encode())
    )
    c = run(raw, book)
    assert "Wir brauchen auch 3 Tische." in c.fields["message"]


@pytest.mark.parametrize(
    ("subject", "matches"),
    [
        ("Nouvelle entrée : Formulaire de contact", True),  # WPForms, French
        ("Neue Einsendung: Kontaktformular", True),  # Jotform/Formidable, German
        ("Nouvelle réponse à Contact", True),
        ("Nuevo envío de formulario", True),
        ("Nuova risposta: Contatti", True),
        ("Nieuwe inzending: Contact", True),
        # a person's or a shop's subject with "new" in it is not a notification
        ("Neue Preise für 2027", False),
        ("Nouvelle collection printemps", False),
        ("Nuevo catálogo de sillas", False),
    ],
)
def test_localized_form_notification_subjects(subject: str, matches: bool, book: RuleBook) -> None:
    rule = next(r for r in book.rules if r.name == "website-form")
    raw = f"From: x@example.org\r\nTo: hello@shop.example\r\nSubject: {subject}\r\n\r\nHi\r\n"
    assert rule.matches(parse_message(raw.encode("utf-8")), "Hi") is matches
