"""new_text, more shapes: the classes that reply-parser test suites show we missed.

Every body is written here (no fixture is copied): the layout and wording follow what the
named client produces. ``CASES`` is also the sample set of ``bench/quotes.py``: each case is
(name, body, the expected new text, the quoted history that must not be left in it).
"""

from __future__ import annotations

import pytest

from inboxwatch.core.quotes import new_text

QUOTE = "> Hi Anna,\n>\n> the room is free again. Are you available next month?\n"
HDR_EN = (
    "From: Bob Smith <bob@acme-roofing.com>\nSent: Wednesday, January 15, 2025 5:03 PM\n"
    "To: Anna Novak <anna@example.org>\nSubject: RE: Booking"
)


def top(name: str, new: str, history: str) -> tuple[str, str, str, str]:
    """A top-posted reply: the new text, a blank line, then the history."""
    return (name, f"{new}\n\n{history}\n", new, history)


def trim(name: str, new: str, tail: str) -> tuple[str, str, str, str]:
    """A reply whose tail (signature, footer) goes, with no quoted history."""
    return (name, f"{new}\n\n{tail}\n", new, "")


CASES: list[tuple[str, str, str, str]] = [
    # --- attributions wrapped over two or three lines ---------------------------------
    top(
        "ru-android-wrapped",
        "Да, подходит. Созвонимся завтра.",
        '15.01.2025 17:03 пользователь "Боб Смит" <bob.smith@acme-roofing.com>\n'
        f"написал:\n\n{QUOTE}",
    ),
    top(
        "ru-android-one-line",
        "Спасибо, договорились.",
        f"15.01.2025 17:03 пользователь Боб Смит <bob@acme-roofing.com> написал:\n{QUOTE}",
    ),
    top(
        "cs-gmail-wrapped",
        "Děkuji, podmínky mi vyhovují.",
        "Dne st 15. led. 2025 17:03 Bob Smith <bob.smith@acme-roofing-services.example>\n"
        f"napsal(a):\n\n{QUOTE}",
    ),
    top(
        "sv-gmail-wrapped-in-address",
        "Tack, det låter bra.",
        "Den ons 15 jan. 2025 17:03 skrev Bob Smith <\n"
        f"bob.smith@acme-roofing-services.example>:\n\n{QUOTE}",
    ),
    top(
        "pl-gmail-wrapped",
        "Dziękuję, pasuje.",
        "W dniu śr., 15 sty 2025 o 17:03 Bob Smith <bob.smith@acme-roofing.example>\n"
        f"napisał(a):\n\n{QUOTE}",
    ),
    top(
        "date-time-gmt-wrapped",
        "Replying ok",
        f"2025-01-15 17:03 GMT+01:00 Postmaster <\npostmaster@mg.acme-roofing.example>:\n\n{QUOTE}",
    ),
    top(
        "de-gmail-wrapped",
        "Passt, danke.",
        "Am Mi., 15. Jan. 2025 um 17:03 Uhr schrieb Bob Smith <\n"
        f"bob.smith@acme-roofing-services.example>:\n\n{QUOTE}",
    ),
    top(
        "nl-apple-wrapped",
        "Prima, tot dan.",
        "Op 15 jan. 2025 om 17:03 heeft Bob Smith <bob.smith@acme-roofing.example> het\n"
        f"volgende geschreven:\n\n{QUOTE}",
    ),
    # --- attribution lines by language ------------------------------------------------
    top(
        "ru-apple",
        "Хорошо.",
        f"15 янв. 2025 г., в 17:03, Bob Smith <bob@acme-roofing.com> написал(а):\n\n{QUOTE}",
    ),
    top(
        "ru-gmail",
        "Хорошо, жду.",
        f"ср, 15 янв. 2025 г. в 17:03, Bob Smith <bob@acme-roofing.com>:\n\n{QUOTE}",
    ),
    top(
        "uk-gmail",
        "Дякую, підходить.",
        f"ср, 15 січ. 2025 р. о 17:03 Bob Smith <bob@acme-roofing.com> пише:\n\n{QUOTE}",
    ),
    top(
        "uk-apple",
        "Добре.",
        f"15 січ. 2025 р. о 17:03 Bob Smith <bob@acme-roofing.com> написав(-ла):\n\n{QUOTE}",
    ),
    top(
        "pl-apple",
        "Pasuje.",
        "Wiadomość napisana przez Bob Smith <bob@acme-roofing.com> w dniu 15.01.2025, "
        f"o godz. 17:03:\n\n{QUOTE}",
    ),
    top(
        "cs-gmail",
        "Ano, platí.",
        f"st 15. 1. 2025 v 17:03 odesílatel Bob Smith <bob@acme-roofing.com> napsal:\n\n{QUOTE}",
    ),
    top(
        "tr-apple",
        "Tamam, teşekkürler.",
        "15 Oca 2025 tarihinde 17:03 saatinde, Bob Smith <bob@acme-roofing.com> şunu "
        f"yazdı:\n\n{QUOTE}",
    ),
    top(
        "ja-apple",
        "了解しました。",
        f"2025/01/15 17:03、Bob Smith <bob@acme-roofing.com>のメール:\n\n{QUOTE}",
    ),
    top(
        "ja-thunderbird",
        "よろしくお願いします。",
        f"2025/01/15 17:03, Bob Smith さんは書きました:\n{QUOTE}",
    ),
    top(
        "zh-apple",
        "好的，谢谢。",
        f"2025年1月15日 17:03，Bob Smith <bob@acme-roofing.com> 写道：\n\n{QUOTE}",
    ),
    top(
        "zh-tw-gmail",
        "好的，謝謝。",
        f"Bob Smith <bob@acme-roofing.com> 於 2025年1月15日 週三 下午5:03寫道：\n\n{QUOTE}",
    ),
    top(
        "ko-apple",
        "네, 좋습니다.",
        "2025년 1월 15일 (수) 오후 5:03, Bob Smith <bob@acme-roofing.com>님이 "
        f"작성했습니다:\n\n{QUOTE}",
    ),
    top(
        "ko-gmail",
        "감사합니다.",
        f"2025년 1월 15일 (수) 오후 5:03, Bob Smith <bob@acme-roofing.com>님이 작성:\n\n{QUOTE}",
    ),
    top(
        "nl-gmail",
        "Prima.",
        f"Op wo 15 jan 2025 om 17:03 schreef Bob Smith <bob@acme-roofing.com>:\n\n{QUOTE}",
    ),
    top(
        "sv-apple",
        "Låter bra.",
        f"15 jan. 2025 kl. 17:03 skrev Bob Smith <bob@acme-roofing.com>:\n\n{QUOTE}",
    ),
    top(
        "da-apple-dot-time",
        "Det er fint.",
        f"Den 15. jan. 2025 kl. 17.03 skrev Bob Smith <bob@acme-roofing.com>:\n\n{QUOTE}",
    ),
    top(
        "fi-gmail",
        "Kiitos, sopii.",
        f"Bob Smith <bob@acme-roofing.com> kirjoitti ke 15.1.2025 klo 17.03:\n\n{QUOTE}",
    ),
    top(
        "hu-gmail",
        "Köszönöm, rendben.",
        "Bob Smith <bob@acme-roofing.com> ezt írta (időpont: 2025. jan. 15., Sze, "
        f"17:03):\n\n{QUOTE}",
    ),
    top(
        "de-yahoo",
        "Passt.",
        "Am Mittwoch, 15. Januar 2025, 17:03:00 MEZ hat Bob Smith <bob@acme-roofing.com> "
        f"Folgendes geschrieben:\n\n{QUOTE}",
    ),
    top(
        "en-yahoo-old-dashes",
        "Yes.",
        f"--- On Wed, 1/15/25, Bob Smith <bob@acme-roofing.com> wrote:\n\n{QUOTE}",
    ),
    top(
        "en-sent",
        "Got it.",
        f"On 15-Jan-2025, at 5:03 PM, Bob Smith <bob@acme-roofing.com> sent:\n\n{QUOTE}",
    ),
    # --- "---- On ... wrote ----" (Zoho and others), no "> " below ---------------------
    top(
        "zoho-on-wrote-dashes",
        "Confirmed for Tuesday.",
        "---- On Wed, 15 Jan 2025 17:03:00 +0100 Bob Smith <bob@acme-roofing.com> wrote ----"
        "\n\nHi Anna,\nthe room is free again.",
    ),
    top(
        "zoho-de-dashes",
        "Bestätigt.",
        "---- Am Mi, 15 Jan 2025 17:03:00 +0100 schrieb Bob Smith <bob@acme-roofing.com> ----"
        "\n\nHallo Anna,\nder Raum ist wieder frei.",
    ),
    top(
        "dashes-on-wrote-unspaced",
        "Sounds good.",
        "------On 01/15/2025 17:03 PM, Bob Smith wrote-----\n\nThe room is free again.",
    ),
    # --- "Original Message" separators: Android, Samsung, Outlook by language ----------
    top(
        "samsung-en",
        "Yes, next month works.",
        "-------- Original message --------\nFrom: Bob Smith <bob@acme-roofing.com> \n"
        "Date: 15/01/2025 17:03 (GMT+01:00) \nTo: anna@example.org \nSubject: Booking \n\n"
        "Hi Anna, the room is free again.",
    ),
    top(
        "samsung-de",
        "Ja, passt.",
        "-------- Originalnachricht --------\nVon: Bob Smith <bob@acme-roofing.com> \n"
        "Datum: 15.01.25 17:03 (GMT+01:00) \nAn: anna@example.org \nBetreff: Buchung \n\n"
        "Hallo Anna, der Raum ist wieder frei.",
    ),
    top(
        "samsung-zh",
        "好的。",
        "-------- 原始信息 --------\n发件人： Bob Smith <bob@acme-roofing.com>\n"
        "日期： 2025年1月15日周三 17:03\n收件人： anna@example.org\n主题： Booking\n\n"
        "Anna 你好，房间又空出来了。",
    ),
    top(
        "outlook-ja",
        "承知しました。",
        "-----Original Message-----\n差出人: Bob Smith <bob@acme-roofing.com>\n"
        "送信日時: 2025年1月15日 17:03\n宛先: anna@example.org\n件名: Booking\n\n"
        "アンナさん、部屋が空きました。",
    ),
    top(
        "outlook-ko-ruler",
        "확인했습니다.",
        "-----원본 메시지-----\n보낸 사람: Bob Smith <bob@acme-roofing.com>\n"
        "보낸 날짜: 2025년 1월 15일 수요일 오후 5:03\n받는 사람: anna@example.org\n"
        "제목: Booking\n\n안나 씨, 방이 다시 비었습니다.",
    ),
    top(
        "outlook-cs-block",
        "Děkuji.",
        "Od: Bob Smith <bob@acme-roofing.com>\nOdesláno: středa 15. ledna 2025 17:03\n"
        "Komu: Anna Nováková <anna@example.org>\nPředmět: RE: Rezervace\n\nAhoj Anno.",
    ),
    top(
        "outlook-uk-block",
        "Дякую.",
        "Від: Bob Smith <bob@acme-roofing.com>\nНадіслано: 15 січня 2025 р. 17:03\n"
        "Кому: Anna <anna@example.org>\nТема: RE: Бронювання\n\nПривіт, Анно.",
    ),
    top(
        "outlook-hu-block",
        "Köszönöm.",
        "Feladó: Bob Smith <bob@acme-roofing.com>\nElküldve: 2025. január 15. 17:03\n"
        "Címzett: Anna <anna@example.org>\nTárgy: RE: Foglalás\n\nSzia Anna.",
    ),
    top(
        "outlook-fi-block",
        "Kiitos.",
        "Lähettäjä: Bob Smith <bob@acme-roofing.com>\nLähetetty: keskiviikko 15. tammikuuta "
        "2025 17.03\nVastaanottaja: Anna <anna@example.org>\nAihe: RE: Varaus\n\nHei Anna.",
    ),
    top(
        "outlook-pt-enviada-em",
        "Obrigada, combinado.",
        "De: Bob Smith <bob@acme-roofing.com>\nEnviada em: quarta-feira, 15 de janeiro de "
        "2025 17:03\nPara: Anna <anna@example.org>\nAssunto: RE: Reserva\n\nOlá Anna.",
    ),
    top(
        "outlook-nl-ruler",
        "Akkoord.",
        "-----Oorspronkelijk bericht-----\nVan: Bob Smith <bob@acme-roofing.com>\n"
        "Verzonden: woensdag 15 januari 2025 17:03\nAan: Anna\nOnderwerp: Boeking\n\nHoi Anna.",
    ),
    top(
        "outlook-sv-ruler",
        "Tack.",
        "-----Ursprungligt meddelande-----\nFrån: Bob Smith <bob@acme-roofing.com>\n"
        "Skickat: den 15 januari 2025 17:03\nTill: Anna\nÄmne: Bokning\n\nHej Anna.",
    ),
    top(
        "outlook-tr-ruler",
        "Teşekkürler.",
        "-----Özgün İleti-----\nKimden: Bob Smith <bob@acme-roofing.com>\n"
        "Gönderildi: 15 Ocak 2025 Çarşamba 17:03\nKime: Anna\nKonu: Rezervasyon\n\nMerhaba.",
    ),
    top(
        "thunderbird-ru-forward",
        "Посмотрите, пожалуйста.",
        "-------- Перенаправленное сообщение --------\nТема: Бронирование\n"
        "Дата: Wed, 15 Jan 2025 17:03:00 +0100\nОт: Bob Smith <bob@acme-roofing.com>\n"
        "Кому: anna@example.org\n\nАнна, комната снова свободна.",
    ),
    top(
        "yahoo-original-spaced",
        "Sure thing.",
        "----- Original Message -----\nFrom: Bob Smith <bob@acme-roofing.com>\n"
        "To: Anna <anna@example.org>\nSent: Wed, Jan 15, 2025 5:03 PM\nSubject: Booking\n\n"
        "Hi Anna.",
    ),
    top(
        "outlook-android-underscores",
        "On my way.",
        f"Get Outlook for Android<https://aka.ms/AAb9ysg>\n________________________________\n"
        f"{HDR_EN}\n\nHi Anna.",
    ),
    # --- "Sent from my iPhone" and other app footers, many languages -------------------
    trim("footer-sv", "Ses imorgon.", "Skickat från min iPhone"),
    trim("footer-da", "Vi ses i morgen.", "Sendt fra min iPhone"),
    trim("footer-fi", "Nähdään huomenna.", "Lähetetty iPhonesta"),
    trim("footer-pl", "Do jutra.", "Wysłane z iPhone'a"),
    trim("footer-cs", "Zítra.", "Odesláno z iPhonu"),
    trim("footer-ru", "До завтра.", "Отправлено с iPhone"),
    trim("footer-uk", "До завтра.", "Надіслано з iPhone"),
    trim("footer-tr", "Yarın görüşürüz.", "iPhone'umdan gönderildi"),
    trim("footer-ja", "また明日。", "iPhoneから送信"),
    trim("footer-zh", "明天见。", "发自我的iPhone"),
    trim("footer-zh-tw", "明天見。", "從我的 iPhone 傳送"),
    trim("footer-ko", "내일 봬요.", "나의 iPhone에서 보냄"),
    trim("footer-hu", "Holnap.", "iPhone-ról küldve"),
    trim("footer-fr-depuis", "À demain.", "Envoyé depuis mon iPhone"),
    trim(
        "footer-samsung-via",
        "See you then.",
        "Sent via the Samsung Galaxy S23, an AT&T 5G smartphone",
    ),
    trim("footer-de-webde", "Bis morgen.", "Gesendet mit der WEB.DE Mail App"),
    trim("footer-yahoo-android", "See you then.", "Sent from Yahoo Mail on Android"),
    trim("footer-outlook-ios", "See you then.", "Sent from Outlook for iOS"),
    # --- one-line "-Name" signatures and mailing-list footers -------------------------
    trim("dash-name", "Thanks, that fixed it.", "-Abhishek Kona"),
    trim("dash-dash-name", "Works now.", "--Jane"),
    top(
        "dash-name-above-quote",
        "Works now, thanks!",
        f"-Jane\n\nOn 15/01/2025 17:03, Bob Smith wrote:\n{QUOTE}",
    ),
    trim(
        "mailman2-footer",
        "I see the same on 3.2, the patch below fixes it for me.",
        "_______________________________________________\nroof-users mailing list\n"
        "roof-users@lists.example.org\nhttps://lists.example.org/mailman/listinfo/roof-users",
    ),
    trim(
        "mailman3-footer",
        "Same here.",
        "_______________________________________________\n"
        "roof-users mailing list -- roof-users@lists.example.org\n"
        "To unsubscribe send an email to roof-users-leave@lists.example.org",
    ),
    (
        "mailman-bottom-post",
        "On 15/01/2025 17:03, Bob Smith wrote:\n> Does 3.2 still crash?\n\nYes, on every start.\n\n"
        "_______________________________________________\nroof-users mailing list\n"
        "roof-users@lists.example.org\nhttps://lists.example.org/mailman/listinfo/roof-users\n",
        "Yes, on every start.",
        "Does 3.2 still crash?",
    ),
]

# What must stay: shapes close to the ones above that are the sender's own text.
KEPT = [
    # A list whose items start with a dash is not a signature.
    "Shopping list:\n-Milk\n-Eggs\n-Bread",
    "Agenda:\n- Budget\n- Hiring",
    # A dashed heading the sender typed, with no header block under it.
    "-------- Notes --------\nbring the ladder",
    # A sentence that mentions a date, an address and "wrote" but is prose.
    "Bob wrote to <ops@example.org> on 15.01.2025 about the roof, and nobody answered.",
    # A line of underscores that is not followed by list information.
    "Sign here:\n_______________________________________________\nName and date",
    # A paragraph that ends in a colon after a date: it introduces what follows.
    "On 15.01.2025 at 17:03 the following was agreed:\nthe roof is done by Friday.",
    "Sent from the office at 17:03, as agreed.",
]


@pytest.mark.parametrize(
    ("body", "expected", "history"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_more_shapes(body: str, expected: str, history: str) -> None:
    assert new_text(body) == expected


@pytest.mark.parametrize("text", KEPT)
def test_near_misses_are_kept(text: str) -> None:
    assert new_text(text) == text


def test_wrapped_attribution_needs_a_paragraph_start() -> None:
    # The tail of a sentence above is never swallowed into an attribution.
    text = (
        "Thanks for the call.\nWe met on 15.01.2025 17:03 with Bob <bob@acme-roofing.com> who"
        "\nwrote:\n> hi\n"
    )
    assert new_text(text) == text.split("\n>")[0]


def test_hostile_lines_stay_fast() -> None:
    # Long runs of the characters the new rules look at; the timeout guards linearity.
    for s in ("-" * 50_000, "-a" * 20_000, "<" * 50_000 + ":", "_" * 50_000 + "\nmailing list"):
        new_text(s + "\n" + s)
