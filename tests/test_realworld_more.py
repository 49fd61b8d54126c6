"""Real-world shapes, third sweep: what a run over public bounce/auto-reply corpora found.

The samples are short excerpts written here in the shapes real systems send (headers and
fixed wording as the named software writes them; addresses are example ones). Each names
the software whose habit it shows. Every case is checked twice: from an unknown sender
and from a known lead, since the costly mistake is taking a machine's answer for the
lead's own reply (which stops the follow-up sequence) or answering a machine.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from inboxwatch.core.classify import Classification, classify
from inboxwatch.core.message import parse_message
from inboxwatch.core.verdict import Context, Known
from inboxwatch.userfiles.rulebook import RuleBook, load_rulebook

REPO = Path(__file__).resolve().parent.parent
NOW = datetime(2027, 3, 4, 12, 0, tzinfo=UTC)
HEAD = "To: hello@shop.example\nDate: Tue, 02 Mar 2027 10:00:00 +0000\n"


@pytest.fixture(scope="module")
def book() -> RuleBook:
    return load_rulebook(REPO / "rules", REPO / "templates")


def run(raw: str, book: RuleBook, known: str = "") -> Classification:
    ctx = Context(
        own=frozenset({"hello@shop.example"}),
        team=frozenset(),
        known=Known(by_address={known: known} if known else {}),
    )
    return classify(parse_message(raw.encode()), book, ctx, NOW)


# Outlook/Exchange plain-text read receipt (no message/disposition-notification part): the
# shape Outlook sends when the reader clicks "send a receipt" on a non-MDN request.
OUTLOOK_READ = (
    "From: Peter Lead <peter@lead.example>\n" + HEAD + "Subject: Read: Your enquiry\n"
    "In-Reply-To: <ours1@shop.example>\nMessage-ID: <r1@lead.example>\n"
    "Content-Type: text/plain; charset=utf-8\n\n"
    "Your message\n\n  To: Peter Lead\n  Subject: Your enquiry\n  Sent: 02/03/2027 09:59\n\n"
    "was read on 02/03/2027 10:00.\n"
)
# The German Outlook wording of the same receipt.
OUTLOOK_READ_DE = (
    "From: Klaus Kunde <klaus@kunde.example.de>\n" + HEAD + "Subject: Gelesen: Ihre Anfrage\n"
    "Message-ID: <r2@kunde.example.de>\nContent-Type: text/plain; charset=utf-8\n\n"
    "Ihre Nachricht\n\n  An: Klaus Kunde\n  Betreff: Ihre Anfrage\n\n"
    "wurde am 02.03.2027 10:00 gelesen.\n"
)
# Japanese out-of-office with no automatic header, subject 不在通知 ("absence notice"),
# as Japanese corporate mail systems (and people's own rules) send it.
OOO_JA = (
    "From: Sato <sato@kaisha.example.jp>\n"
    + HEAD
    + "Subject: =?UTF-8?B?5LiN5Zyo6YCa55+lOiBZb3VyIGVucXVpcnk=?=\n"
    "In-Reply-To: <ours1@shop.example>\nMessage-ID: <j1@kaisha.example.jp>\n"
    "Content-Type: text/plain; charset=utf-8\n\n"
    "誠に申し訳ございませんが、3月10日まで不在にしております。\n"
)
# Spam Arrest's challenge: "Re:" subject, the protected person's From, no automatic header.
CHALLENGE_SPAMARREST = (
    "From: john@lead.example\n" + HEAD + "Subject: Re: Your enquiry\n"
    "Message-ID: <sa1@spamarrest.example>\nContent-Type: text/plain; charset=utf-8\n\n"
    "Hello,\n\nI'm protecting myself from receiving junk mail. Please click the link below to"
    " complete the verification process. You have to do this only once.\n\n"
    "http://verify.example/a2?id=1\n\nThanks, john@lead.example\n"
)
# LISTSERV (L-Soft) post in its default configuration: no List-* field, only Sender.
LISTSERV = (
    "From: John Lead <john@lead.example>\n" + HEAD + "Subject: Request for quotes\n"
    "Message-ID: <ls1@lead.example>\n"
    "Sender: Facilities discussion list <FACILITIES-L@LISTSERV.EXAMPLE.EDU>\n"
    "Reply-To: Facilities discussion list <FACILITIES-L@LISTSERV.EXAMPLE.EDU>\n"
    "Content-Type: text/plain; charset=us-ascii\n\n"
    "We are looking for quotes for office furniture. Please reply with prices.\n"
)
# Majordomo / older Mailman: the list's owner- address in Sender.
MAJORDOMO = LISTSERV.replace(
    "Sender: Facilities discussion list <FACILITIES-L@LISTSERV.EXAMPLE.EDU>\n"
    "Reply-To: Facilities discussion list <FACILITIES-L@LISTSERV.EXAMPLE.EDU>\n",
    "Sender: owner-trades@example.org\n",
)
# Lotus Notes/Domino out-of-office: no automatic header, In-Reply-To or prefix; the subject
# names the person (Notes' fixed "<name> is out of the office." / "ist außer Haus.").
NOTES_OOO = (
    "From: John Smith <jsmith@notes.example.com>\n" + HEAD + "Subject: John Smith is out of the"
    " office.\nMessage-ID: <OFabc@notes.example.com>\nContent-Type: text/plain\n\n"
    "I will be out of the office starting 02/03/2027 and will not return until 10/03/2027.\n"
)
NOTES_OOO_DE = (
    "From: Max Muster <max@notes.example.de>\n" + HEAD + "Subject: Max Muster ist außer Haus.\n"
    "Message-ID: <OFdef@notes.example.de>\nContent-Type: text/plain; charset=utf-8\n\n"
    "Ich werde ab 02.03.2027 nicht im Büro sein. Ich kehre zurück am 10.03.2027.\n"
)
# Korean out-of-office (no automatic header): 부재중 ("absent"). Accent folding used to
# split Hangul into letters, so no Korean pattern could ever match.
OOO_KO = (
    "From: Kim <kim@hoesa.example.kr>\n" + HEAD + "Subject: 부재중 자동응답: Your enquiry\n"
    "In-Reply-To: <ours1@shop.example>\nMessage-ID: <k1@hoesa.example.kr>\n"
    "Content-Type: text/plain; charset=utf-8\n\n안녕하세요. 3월 10일까지 부재중입니다.\n"
)

# A host's autoresponder (Plesk-style) answering under "Re:" with no header at all.
ACK_RE = (
    "From: Info <info@company.example>\n" + HEAD + "Subject: Re: Your enquiry\n"
    "In-Reply-To: <ours1@shop.example>\nMessage-ID: <a1@company.example>\n"
    "Content-Type: text/plain\n\nThank you for contacting Company Ltd. This is an automated"
    " response to let you know we have received your email and will respond within 24 hours.\n"
)


def test_folding_keeps_hangul_and_kana_but_drops_alphabet_accents() -> None:
    from inboxwatch.core.detection import fold

    assert fold("부재중 자동 회신") == "부재중 자동 회신"
    assert fold("ご不在") == "ご不在"
    assert fold("Réponse AUTOMATIQUE ŞİŞ") == "reponse automatique sis"
    assert fold("Автоматический") == "автоматическии"


@pytest.mark.parametrize(
    ("raw", "kind", "reason"),
    [
        (OUTLOOK_READ, "auto_reply", "read receipt"),
        (OUTLOOK_READ_DE, "auto_reply", "read receipt"),
        (OOO_JA, "auto_reply", "automatic-looking subject"),
        (CHALLENGE_SPAMARREST, "auto_reply", "challenge-response"),
        (LISTSERV, "list", "list manager"),
        (MAJORDOMO, "list", "list manager"),
        (NOTES_OOO, "auto_reply", "automatic-looking subject"),
        (NOTES_OOO_DE, "auto_reply", "automatic-looking subject"),
        (OOO_KO, "auto_reply", "automatic-looking subject"),
        (ACK_RE, "auto_reply", "automatic reply wording"),
    ],
    ids=[
        "outlook-read",
        "outlook-read-de",
        "ooo-ja",
        "spamarrest",
        "listserv",
        "majordomo",
        "notes-ooo",
        "notes-ooo-de",
        "ooo-ko",
        "ack-re",
    ],
)
def test_machine_and_list_mail_is_neither_an_enquiry_nor_the_leads_reply(
    raw: str, kind: str, reason: str, book: RuleBook
) -> None:
    sender = parse_message(raw.encode()).from_
    assert sender is not None
    for known in ("", sender.addr):
        c = run(raw, book, known)
        assert c.kind.value == kind, (known, c.reasons)
        assert any(reason in r for r in c.reasons), c.reasons


@pytest.mark.parametrize(
    "raw",
    [
        # People write these prefixes and words too: without the client's fixed wording
        # (or a list manager's Sender) they stay the lead's own mail.
        OUTLOOK_READ.replace("was read on 02/03/2027 10:00.", "Yes, go ahead with the oak."),
        LISTSERV.replace("FACILITIES-L@LISTSERV.EXAMPLE.EDU", "assistant@lead.example"),
        OOO_JA.replace("3月10日まで不在にしております。", "見積もりをお願いします。"),
        NOTES_OOO.replace(
            "I will be out of the office starting", "Can you quote for a desk? Deliver on"
        ).replace("and will not return until", "or"),
        # A person's long answer that mentions such wording is still theirs.
        ACK_RE.replace("Thank you for contacting Company Ltd.", "Thanks for the quote. " * 40),
    ],
    ids=[
        "read-prefix-person",
        "sender-assistant",
        "ja-subject-person",
        "notes-subject-person",
        "long-reply-quoting-machine-words",
    ],
)
def test_a_persons_mail_with_the_same_words_is_still_their_reply(raw: str, book: RuleBook) -> None:
    sender = parse_message(raw.encode()).from_
    assert sender is not None
    assert run(raw, book, sender.addr).kind.value == "reply"
