"""The lead's language: the rule's ``language``, else detected from the enquiry's own words
(when confident and there is a template set), else the default; the German set and its
time words; ``check`` on language files."""

from __future__ import annotations

import itertools
import shutil
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from inboxwatch.core.classify import Classification, Kind
from inboxwatch.core.decide import Incoming, on_enquiry
from inboxwatch.core.language import DEFAULT, choose_language, detect, detected_language
from inboxwatch.core.lead import Lead
from inboxwatch.core.letters import greeting
from inboxwatch.core.message import Address, parse_message
from inboxwatch.core.settings import Settings
from inboxwatch.core.timewords import attribution, mail_date, when_words
from inboxwatch.core.timing import SendingWindow
from inboxwatch.errors import ConfigError
from inboxwatch.userfiles.rulebook import RuleBook, load_rulebook

ROOT = Path(__file__).resolve().parent.parent
BOOK = load_rulebook(ROOT / "rules", ROOT / "templates")
BERLIN = ZoneInfo("Europe/Berlin")
SETS = frozenset(BOOK.languages)

ENGLISH = [
    "Hello, what would a new oak kitchen cost, roughly 4 metres with an island? "
    "We are moving in May.",
    "Do you deliver to Potsdam? We need six oak chairs by the end of April.",
    "Hi, can you send me a quote for a bathroom renovation?",
    "Are you open on Saturdays?",
    "I'd like to book a consultation next week if possible.",
    "Could you call me back tomorrow morning please?",
    "How much for a website with five pages?",
    "We are looking for a caterer for 40 people in June.",
    "Is the blue sofa still available?",
    "Please send me your price list.",
]
GERMAN = [
    "Guten Tag, was würde eine neue Eichenküche kosten, etwa 4 Meter mit Kochinsel? "
    "Wir ziehen im Mai um.",
    "Liefern Sie auch nach Potsdam? Wir brauchen sechs Eichenstühle bis Ende April.",
    "Hallo, können Sie mir ein Angebot für eine Badsanierung schicken?",
    "Haben Sie samstags geöffnet?",
    "Ich hätte gern nächste Woche einen Beratungstermin, wenn möglich.",
    "Könnten Sie mich bitte morgen früh zurückrufen?",
    "Was kostet eine Website mit fünf Seiten?",
    "Wir suchen einen Caterer für 40 Personen im Juni.",
    "Ist das blaue Sofa noch zu haben?",
    "Bitte schicken Sie mir Ihre Preisliste.",
]
#: Too short to tell: they stay in the default, whatever the detector leans to.
SHORT = ["Hallo", "Hi there", "Thanks!", "Danke", "Preis?", "Anfrage", "Preis bitte", "ok", ""]
#: Other languages, with no template set: the default (not squeezed into German).
OTHER = [
    "Bonjour, pourriez-vous m'envoyer un devis pour une cuisine en chêne ?",
    "Hallo, kunt u mij een offerte sturen voor een nieuwe keuken?",
    "Hola, ¿me pueden enviar un presupuesto para una cocina nueva?",
    "Hej, kan ni skicka en offert på ett nytt kök?",
    "Hej, kan I sende mig et tilbud på et nyt køkken?",
]


def test_the_shipped_sets_are_english_and_german() -> None:
    assert DEFAULT == "en"
    assert set(BOOK.languages) == {"de"}


@pytest.mark.parametrize("text", ENGLISH)
def test_an_english_enquiry_gets_the_default(text: str) -> None:
    assert detect(text)[0] == "en"
    assert detected_language(text, SETS) in ("en", "")  # "" when not confident: the same
    assert choose_language("", text, SETS) == ""


@pytest.mark.parametrize("text", GERMAN)
def test_a_german_enquiry_gets_german(text: str) -> None:
    assert choose_language("", text, SETS) == "de"


@pytest.mark.parametrize("text", SHORT)
def test_a_word_or_two_stays_in_the_default(text: str) -> None:
    assert choose_language("", text, SETS) == ""
    assert detect(text) == ("", 0.0)


@pytest.mark.parametrize("text", OTHER)
def test_a_language_without_a_template_set_gets_the_default(text: str) -> None:
    code, prob = detect(text)
    assert code not in ("en", "de") and prob > 0.5  # recognised as what it is
    assert choose_language("", text, SETS) == ""


def test_german_without_a_german_set_gets_the_default() -> None:
    assert choose_language("", GERMAN[0], frozenset()) == ""


def test_links_addresses_and_quotes_do_not_count_as_words() -> None:
    text = "https://example.com/angebot jana@example.de\n> Guten Tag, wir hätten gern ein Angebot"
    assert detect(text) == ("", 0.0)


def test_the_rule_language_wins_over_detection() -> None:
    assert choose_language("de", ENGLISH[0], SETS) == "de"
    assert choose_language("en", GERMAN[0], SETS) == ""


# --- the lead's language, stored at enquiry time and used by every email ---------------------


def settings_() -> Settings:
    return Settings(
        me=Address("sales@shop.test", "Shop Ltd"),
        owner="owner@shop.test",
        owner_alerts=True,
        window=SendingWindow(BERLIN),
        min_gap=timedelta(hours=20),
        ack_period=timedelta(days=7),
        hold_max=timedelta(days=30),
        signature="",
    )


def enquiry(text: str, subject: str = "Anfrage", rule: str = "direct-email") -> Incoming:
    raw = (
        "From: Jana Schmidt <jana@kunde.test>\r\nTo: sales@shop.test\r\n"
        f"Subject: {subject}\r\nMessage-ID: <e1@kunde.test>\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n"
    ).encode()
    return Incoming(
        parse_message(raw),
        "1",
        datetime(2026, 3, 6, 16, 30, tzinfo=BERLIN),
        Classification(
            Kind.ENQUIRY,
            (f"matched rule {rule!r}",),
            rule=rule,
            source="direct-email",
            lead=Address("jana@kunde.test", "Jana Schmidt"),
            sequence="default",
            new_text=text,
        ),
    )


def ack_to_lead(inc: Incoming, book: RuleBook = BOOK) -> tuple[Lead, str]:
    ids = itertools.count(1)
    d = on_enquiry(inc, book, settings_(), inc.arrived, lambda: f"<x{next(ids)}@s>")
    assert d.lead is not None
    (ack,) = [s for s in d.sends if s.out.purpose == "ack"]
    return d.lead, ack.out.body


def test_a_german_enquiry_is_acknowledged_in_german_and_the_lead_keeps_it() -> None:
    lead, body = ack_to_lead(enquiry(GERMAN[2]))
    assert lead.language == "de"
    assert body.startswith("Guten Tag Jana Schmidt,\n\nvielen Dank")
    assert any(e.what == "language" and e.detail == "de" for e in lead.events)
    assert Lead.from_dict(lead.to_dict()).language == "de"


def test_an_english_enquiry_is_acknowledged_in_english() -> None:
    lead, body = ack_to_lead(enquiry(ENGLISH[0], subject="Quote"))
    assert lead.language == ""
    assert body.startswith("Hi Jana,")
    assert not any(e.what == "language" for e in lead.events)


def test_an_old_lead_without_a_language_reads_as_the_default() -> None:
    lead, _ = ack_to_lead(enquiry(ENGLISH[0]))
    row = lead.to_dict()
    del row["language"]
    assert Lead.from_dict(row).language == ""


def copy_book(tmp_path: Path) -> tuple[Path, Path]:
    rules, templates = tmp_path / "rules", tmp_path / "templates"
    shutil.copytree(ROOT / "rules", rules)
    shutil.copytree(ROOT / "templates", templates)
    return rules, templates


def set_rule_language(rules: Path, rule: str, language: str) -> None:
    path = rules / "rules.toml"
    text = path.read_text(encoding="utf-8")
    marker = f'name = "{rule}"\n'
    assert marker in text
    path.write_text(text.replace(marker, f'{marker}language = "{language}"\n'), "utf-8")


def test_a_rule_language_chooses_the_set_whatever_the_words(tmp_path: Path) -> None:
    rules, templates = copy_book(tmp_path)
    set_rule_language(rules, "direct-email", "de")
    book = load_rulebook(rules, templates)
    lead, body = ack_to_lead(enquiry(ENGLISH[0], subject="Quote"), book)
    assert lead.language == "de" and "vielen Dank" in body


def test_a_template_missing_from_a_set_falls_back_to_the_default(tmp_path: Path) -> None:
    rules, templates = copy_book(tmp_path)
    (templates / "de" / "ack.toml").unlink()
    book = load_rulebook(rules, templates)
    assert book.template("ack", "de") is book.templates["ack"]
    assert book.template("followup-day1", "de") is book.languages["de"]["followup-day1"]
    assert book.template("ack", "fr") is book.templates["ack"]
    assert book.template("nope", "de") is None
    lead, body = ack_to_lead(enquiry(GERMAN[2]), book)
    assert lead.language == "de" and body.startswith("Hi Jana,")


def problems_of(rules: Path, templates: Path) -> str:
    with pytest.raises(ConfigError) as err:
        load_rulebook(rules, templates)
    return str(err.value)


def test_check_finds_an_unknown_variable_in_a_language_file(tmp_path: Path) -> None:
    rules, templates = copy_book(tmp_path)
    path = templates / "de" / "nudge-day3.toml"
    path.write_text(path.read_text("utf-8").replace("{{ enquiry }}", "{{ anfrage }}"), "utf-8")
    text = problems_of(rules, templates)
    assert "de/nudge-day3.toml" in text and "anfrage" in text and "unknown variable" in text


def test_check_finds_a_language_file_that_translates_nothing(tmp_path: Path) -> None:
    rules, templates = copy_book(tmp_path)
    shutil.copy(templates / "de" / "ack.toml", templates / "de" / "akc.toml")
    assert "no template 'akc' in the default language" in problems_of(rules, templates)


def test_check_finds_a_rule_language_without_a_set(tmp_path: Path) -> None:
    rules, templates = copy_book(tmp_path)
    set_rule_language(rules, "direct-email", "fr")
    text = problems_of(rules, templates)
    assert "no template set for language 'fr'" in text and "have: de, en" in text


def test_check_finds_a_rule_language_that_is_no_code(tmp_path: Path) -> None:
    rules, templates = copy_book(tmp_path)
    set_rule_language(rules, "direct-email", "German")
    assert "'german' is not a language code" in problems_of(rules, templates)


def test_a_rule_may_name_the_default_language(tmp_path: Path) -> None:
    rules, templates = copy_book(tmp_path)
    set_rule_language(rules, "direct-email", "en")
    book = load_rulebook(rules, templates)
    assert {r.name: r.language for r in book.rules}["direct-email"] == "en"


def test_a_form_rule_needs_a_subject_in_each_language(tmp_path: Path) -> None:
    rules, templates = copy_book(tmp_path)
    path = templates / "de" / "ack-form.toml"
    text = path.read_text("utf-8")
    path.write_text(text.replace('subject = "Ihre Anfrage an {{ our_name }}"\n', ""), "utf-8")
    problems = problems_of(rules, templates)
    assert "de/ack-form.toml" in problems and "subject" in problems


# --- German words for times and greetings ---------------------------------------------------

NOW = datetime(2026, 3, 16, 9, 0, tzinfo=BERLIN)  # a Monday


@pytest.mark.parametrize(
    ("then", "en", "de"),
    [
        (datetime(2026, 3, 16, 8, 0, tzinfo=BERLIN), "today", "heute"),
        (datetime(2026, 3, 15, 8, 0, tzinfo=BERLIN), "yesterday", "gestern"),
        (datetime(2026, 3, 13, 16, 0, tzinfo=BERLIN), "on Friday", "am Freitag"),
        (datetime(2026, 3, 9, 10, 0, tzinfo=BERLIN), "last week", "letzte Woche"),
        (datetime(2026, 3, 4, 10, 0, tzinfo=BERLIN), "on 4 March", "am 4. März"),
        (datetime(2025, 3, 4, 10, 0, tzinfo=BERLIN), "on 4 March 2025", "am 4. März 2025"),
    ],
)
def test_time_words_in_german(then: datetime, en: str, de: str) -> None:
    assert when_words(then, NOW, BERLIN) == en
    assert when_words(then, NOW, BERLIN, "de") == de
    assert when_words(then, NOW, BERLIN, "fr") == en  # no words of its own: English


def test_attribution_lines() -> None:
    t = datetime(2026, 3, 4, 10, 0, tzinfo=BERLIN)
    assert mail_date(t, BERLIN, "de") == "04.03.2026 um 10:00"
    assert attribution(t, "Jana", BERLIN, "de") == "Am 04.03.2026 um 10:00 schrieb Jana:"
    assert attribution(t, "Jane", BERLIN) == "On Wed, 4 Mar 2026 at 10:00, Jane wrote:"


@pytest.mark.parametrize(
    ("name", "language", "words"),
    [
        ("Jane Doe", "", "Hi Jane"),
        ("", "", "Hi there"),
        ("Jana Schmidt", "de", "Guten Tag Jana Schmidt"),
        ("Schmidt, Jana", "de", "Guten Tag Jana Schmidt"),
        ("Frau Dr. Meier", "de", "Guten Tag Frau Dr. Meier"),
        ("jana schmidt", "de", "Guten Tag Jana Schmidt"),
        ("jana@kunde.test", "de", "Guten Tag"),
        ("", "de", "Guten Tag"),
    ],
)
def test_greeting(name: str, language: str, words: str) -> None:
    assert greeting(name, language) == words
