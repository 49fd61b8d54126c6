"""The lean language model (adapters/langmodel.py) decides exactly as py3langid does, in
less memory, and its cache file is derived in a child process, kept atomically, rebuilt
when damaged and done without where no folder is writable."""

from __future__ import annotations

import array
import functools
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from py3langid import langid
from test_systemd import unit

from inboxwatch.adapters import langmodel
from inboxwatch.adapters.langmodel import CompactModel, FullModel, ModelShapeError

#: Enquiries in many languages and scripts, and text that is not quite language.
CORPUS: list[str | bytes] = [
    "Hello, what would a new oak kitchen cost, roughly 4 metres with an island?",
    "Guten Tag, können Sie mir ein Angebot für eine Badsanierung schicken?",
    "Bonjour, pourriez-vous m'envoyer un devis pour une cuisine en chêne ?",
    "Hola, ¿me pueden enviar un presupuesto para una cocina nueva?",
    "Buongiorno, potreste mandarmi un preventivo per una cucina in rovere?",
    "Olá, podem enviar-me um orçamento para uma cozinha nova?",
    "Hallo, kunt u mij een offerte sturen voor een nieuwe keuken?",
    "Hej, kan ni skicka en offert på ett nytt kök?",
    "Hej, kan I sende mig et tilbud på et nyt køkken?",
    "Hei, kan dere sende meg et tilbud på et nytt kjøkken?",
    "Hei, voisitteko lähettää tarjouksen uudesta keittiöstä?",
    "Dzień dobry, czy mogą Państwo przesłać wycenę nowej kuchni?",
    "Dobrý den, můžete mi poslat cenovou nabídku na novou kuchyň?",
    "Jó napot, küldenének árajánlatot egy új konyhára?",
    "Bună ziua, îmi puteți trimite o ofertă pentru o bucătărie nouă?",
    "Merhaba, yeni bir mutfak için fiyat teklifi gönderebilir misiniz?",
    "Здравствуйте, пришлите, пожалуйста, смету на новую кухню.",
    "Добрий день, надішліть, будь ласка, кошторис на нову кухню.",
    "Καλημέρα, μπορείτε να μου στείλετε μια προσφορά για νέα κουζίνα;",
    "مرحبا، هل يمكنكم إرسال عرض سعر لمطبخ جديد؟",
    "שלום, תוכלו לשלוח לי הצעת מחיר למטבח חדש?",
    "नमस्ते, क्या आप नई रसोई के लिए कोटेशन भेज सकते हैं?",
    "您好，请给我发一份新厨房的报价。",
    "こんにちは、新しいキッチンの見積もりをお願いできますか。",
    "안녕하세요, 새 주방 견적을 보내주실 수 있나요?",
    "สวัสดีครับ ช่วยส่งใบเสนอราคาห้องครัวใหม่ให้หน่อยได้ไหม",
    "Xin chào, bạn có thể gửi báo giá cho một căn bếp mới không?",
    "Halo, bisakah Anda mengirimkan penawaran harga untuk dapur baru?",
    # short, mixed, shouting, noisy
    "Hallo",
    "Preis bitte",
    "ok",
    "",
    "   \n\t ",
    "12345 67 89",
    "!!!???",
    "PLEASE CALL ME BACK ABOUT THE KITCHEN",
    "Hi! Wir brauchen ein quote for the kitchen, bitte asap. Merci!",
    "Danke 🙏🙏 super 👍 kitchen 🍳🔥",
    "<html><body><p>Guten&nbsp;Tag,<br>bitte <b>Angebot</b> schicken</p></body></html>",
    "Sent from my iPhone\n\n> On Monday, Jane wrote:\n> Hello there",
    "https://example.com/kitchen?id=42 www.example.org shop@example.test",
    "Ｆｕｌｌｗｉｄｔｈ ｔｅｘｔ ａｎｄ ｶﾀｶﾅ",
    "e\u0301te\u0301 cafe\u0301 (decomposed accents)",
    "lone surrogate \ud800 inside",
    "\x00\x01\x02 control \x7f characters",
    ("Guten Tag, was würde eine neue Eichenküche kosten, etwa 4 Meter mit Kochinsel? " * 40)[:2000],
    "word " * 1000,
    # bytes: UTF-8, a cut-off UTF-8 tail, Latin-1, random bytes
    "Guten Tag, können Sie mir ein Angebot schicken?".encode(),
    "Grüße aus Köln".encode()[:-1],
    "Grüße aus Köln, bitte ein Angebot".encode("latin-1"),
    bytes(range(256)),
    b"\xff\xfe\xfd\x80\x81 not utf-8 at all \xc3\x28",
    b"",
]


@functools.cache
def py3langid_model() -> Any:
    return langid.LanguageIdentifier.from_model_file(langid.MODEL_FILE, norm_probs=True)


@functools.cache
def lean_model() -> CompactModel:
    return CompactModel(langmodel.derive())  # in this process: the derivation is tested too


@pytest.fixture
def ident() -> Any:
    return py3langid_model()


@pytest.fixture
def lean() -> CompactModel:
    return lean_model()


@pytest.mark.parametrize("text", CORPUS, ids=range(len(CORPUS)))
def test_the_lean_model_ranks_exactly_as_py3langid(
    text: str | bytes, ident: Any, lean: Any
) -> None:
    """The same features, summed in the same order with the same arithmetic: the same
    numbers, not just close ones, for every one of the 140 languages."""
    expected = ident.rank(text)
    assert lean.rank(text) == expected
    assert lean.best(text) == expected[0]


def test_the_corpus_is_varied(ident: Any) -> None:
    """The comparison above is worth something only if the texts really differ."""
    firsts = {ident.rank(t)[0][0] for t in CORPUS if isinstance(t, str) and len(t) > 40}
    assert len(firsts) >= 25, firsts


WORDS = [w for t in CORPUS if isinstance(t, str) for w in t.split()]


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.text(max_size=200),
        st.binary(max_size=200),
        st.lists(st.sampled_from(WORDS), max_size=30).map(" ".join),
        st.lists(st.sampled_from(WORDS), max_size=30).map(
            lambda ws: " ".join(ws).encode("utf-8", "surrogatepass")  # a lone surrogate too
        ),
    )
)
def test_any_text_ranks_as_py3langid(text: str | bytes) -> None:
    assert lean_model().rank(text) == py3langid_model().rank(text)


# --- the derivation, on automata small enough to write down -----------------------------


def aho_corasick(features: list[bytes]) -> tuple[list[list[int]], list[int]]:
    """Transitions and outputs of the Aho-Corasick automaton of ``features``, built the
    textbook way; a state outputs the longest feature that ends it."""
    goto: list[dict[int, int]] = [{}]
    out = [-1]
    for fid, feature in enumerate(features):
        state = 0
        for c in feature:
            if c not in goto[state]:
                goto[state][c] = len(goto)
                goto.append({})
                out.append(-1)
            state = goto[state][c]
        out[state] = fid
    fail, delta = [0] * len(goto), [[0] * 256 for _ in goto]
    queue = []
    for c in range(256):
        delta[0][c] = goto[0].get(c, 0)
        if c in goto[0]:
            queue.append(goto[0][c])
    while queue:
        state = queue.pop(0)
        if out[state] < 0:
            out[state] = out[fail[state]]
        for c in range(256):
            if c in goto[state]:
                child = goto[state][c]
                fail[child] = delta[fail[state]][c]
                delta[state][c] = child
                queue.append(child)
            else:
                delta[state][c] = delta[fail[state]][c]
    return delta, out


SMALL = [b"ab", b"abc", b"bca", b"ca", b"c", b"\x00\x00", b"\xc3\xa4", b"aaaa", b"bab"]
CLASSES = ["xx", "yy", "zz", "yy"]  # an alias, as py3langid's srl/sr


def small_model(delta: list[list[int]], out: list[int]) -> tuple[Any, Any]:
    """The same automaton as py3langid's identifier and as our compact arrays."""
    rows, row_of = np.unique(np.array(delta, dtype=np.uint32), axis=0, return_inverse=True)
    rng = np.random.default_rng(5)
    ptc = rng.uniform(-9, -1, size=(len(SMALL), len(CLASSES))).astype(np.float16)
    pc = rng.uniform(-3, -1, size=len(CLASSES)).astype(np.float32)
    nextmove = array.array("I", rows.ravel().tolist())
    ident = langid.LanguageIdentifier(
        ptc, pc, CLASSES, nextmove, out, norm_probs=True, tk_row=row_of.ravel().tolist()
    )
    arrays = langmodel.compact(rows, row_of.ravel(), np.array(out), ptc, pc, CLASSES)
    return ident, arrays


@pytest.mark.parametrize(
    "text",
    [b"", b"a", b"abcabca", b"bcabab", b"aaaaaaab", b"\x00\x00\x00abc", "häh ä".encode(), b"cc"],
)
def test_a_small_automaton_counts_and_ranks_as_py3langid(text: bytes) -> None:
    ident, arrays = small_model(*aho_corasick(SMALL))
    model = CompactModel(arrays)
    expected = langid.visit_counts(ident.tk_nextmove, ident._rowbase, ident.tk_output, text)
    ids, counts = model.features(text)
    assert dict(zip(ids.tolist(), counts.tolist(), strict=True)) == dict(expected or {})
    assert list(ids) == list(expected or [])  # the same order: the same float sums
    assert model.rank(text) == ident.rank(text)


def test_an_automaton_that_is_not_aho_corasick_is_refused() -> None:
    """A transition that skips the longest suffix would make the lookup count something
    else than the automaton: the derivation refuses it instead of deciding differently."""
    delta, out = aho_corasick(SMALL)
    state_ab = delta[delta[0][ord("a")]][ord("b")]
    assert delta[state_ab][ord("c")] != 0  # "abc" is a state ...
    delta[state_ab][ord("x")] = delta[0][ord("c")]  # ... "abx" must fall back to the root
    with pytest.raises(ModelShapeError, match="Aho-Corasick"):
        small_model(delta, out)


def test_an_unreachable_state_is_refused() -> None:
    delta, out = aho_corasick(SMALL)
    delta.append([0] * 256)
    with pytest.raises(ModelShapeError):
        small_model(delta, [*out, 0])


# --- the cache ---------------------------------------------------------------------------


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No cache folder but the ones a test names."""
    for key in ("CACHE_DIRECTORY", "XDG_CACHE_HOME", "HOME"):
        monkeypatch.delenv(key, raising=False)
    return tmp_path


@pytest.fixture(scope="module")
def good_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A cache file as the child process writes it (derived once for these tests)."""
    folder = tmp_path_factory.mktemp("cache")
    path = langmodel.cache_file(folder, langmodel.source_id())
    subprocess.run(
        [sys.executable, "-m", "inboxwatch.adapters.langmodel", str(path), langmodel.source_id()],
        check=True,
        timeout=300,
    )
    yield path


def no_deriving_here(*args: Any) -> Any:
    raise AssertionError("the daemon's process derived the model itself")


def test_the_first_load_derives_in_a_child_and_later_ones_read_the_cache(
    env: Path, monkeypatch: pytest.MonkeyPatch, ident: Any
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(env / "xdg"))
    monkeypatch.setattr(langmodel, "derive", no_deriving_here)
    model = langmodel.load()
    assert isinstance(model, CompactModel)
    (cached,) = (env / "xdg" / "inboxwatch").iterdir()
    assert cached.name == f"langid-{langmodel.source_id()}-f{langmodel.FORMAT}.npz"
    assert model.rank(CORPUS[1]) == ident.rank(CORPUS[1])

    def no_child(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("derived again although the cache was there")

    monkeypatch.setattr(subprocess, "run", no_child)
    again = langmodel.load()
    assert isinstance(again, CompactModel)
    assert again.rank(CORPUS[2]) == ident.rank(CORPUS[2])


def test_systemd_cache_directory_comes_first(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CACHE_DIRECTORY", str(env / "unit"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(env / "xdg"))
    monkeypatch.setenv("HOME", str(env / "home"))
    assert langmodel.cache_folders() == [
        env / "unit",
        env / "xdg" / "inboxwatch",
        env / "home" / ".cache" / "inboxwatch",
    ]
    monkeypatch.delenv("CACHE_DIRECTORY")
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert langmodel.cache_folders() == [env / "home" / ".cache" / "inboxwatch"]
    monkeypatch.setenv("HOME", "/nonexistent")  # a system user's (useradd --system)
    assert langmodel.cache_folders() == []


def damage(path: Path, how: str) -> None:
    data = path.read_bytes()
    if how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif how == "a flipped byte":
        middle = len(data) // 2
        path.write_bytes(data[:middle] + bytes([data[middle] ^ 1]) + data[middle + 1 :])
    elif how == "empty":
        path.write_bytes(b"")
    else:
        path.write_bytes(b"PK\x03\x04 not a zip file" * 100)


@pytest.mark.parametrize("how", ["truncated", "a flipped byte", "empty", "garbage"])
def test_a_damaged_cache_file_is_never_trusted(
    how: str, good_file: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / good_file.name
    shutil.copyfile(good_file, path)
    assert langmodel.read(path, langmodel.source_id()) is not None
    damage(path, how)
    with caplog.at_level(logging.WARNING, logger="inboxwatch"):
        assert langmodel.read(path, langmodel.source_id()) is None
    assert f"language model cache {path} is damaged" in caplog.text


def test_a_file_of_another_source_is_not_read(good_file: Path) -> None:
    assert langmodel.read(good_file, "0.3.0-0123456789abcdef") is None


def test_a_damaged_cache_is_derived_again_and_replaced(
    env: Path, good_file: Path, monkeypatch: pytest.MonkeyPatch, ident: Any
) -> None:
    monkeypatch.setenv("CACHE_DIRECTORY", str(env))
    path = env / good_file.name
    shutil.copyfile(good_file, path)
    damage(path, "a flipped byte")
    stale = env / "langid-0.3.0-0123456789abcdef-f1.npz"  # an older py3langid's
    stale.write_bytes(b"old")
    monkeypatch.setattr(langmodel, "derive", no_deriving_here)
    model = langmodel.load()
    assert isinstance(model, CompactModel)
    assert model.rank(CORPUS[3]) == ident.rank(CORPUS[3])
    assert langmodel.read(path, langmodel.source_id()) is not None  # derived anew
    assert sorted(p.name for p in env.iterdir()) == [path.name]  # no temp files, no stale


def test_without_a_writable_cache_folder_the_model_is_derived_in_memory(
    env: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, ident: Any
) -> None:
    blocker = env / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))  # .../a-file/inboxwatch: cannot exist
    with caplog.at_level(logging.DEBUG, logger="inboxwatch"):
        model = langmodel.load()
    assert isinstance(model, CompactModel)
    assert model.rank(CORPUS[4]) == ident.rank(CORPUS[4])
    assert f"cannot cache it in {blocker / 'inboxwatch'}" in caplog.text  # (debug)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "no writable cache folder" in warnings[0]  # one line


def test_a_model_of_another_shape_falls_back_to_py3langid(
    env: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, ident: Any
) -> None:
    def other_shape() -> Any:
        raise ModelShapeError("n-grams of 9 bytes")

    monkeypatch.setattr(langmodel, "derive", other_shape)
    with caplog.at_level(logging.WARNING, logger="inboxwatch"):
        model = langmodel.load()
    assert isinstance(model, FullModel)
    assert model.best(CORPUS[5]) == ident.rank(CORPUS[5])[0]
    assert "using py3langid's own" in caplog.text and "n-grams of 9 bytes" in caplog.text


def test_a_child_that_finds_another_shape_means_py3langid_at_once(
    env: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The child says so by its exit status: no other folder, no derivation here."""

    def other_shape() -> Any:
        raise ModelShapeError("n-grams of 9 bytes")

    monkeypatch.setattr(langmodel, "derive", other_shape)
    path = env / "one" / "model.npz"
    assert langmodel.main([str(path), "x"]) == langmodel.EXIT_OTHER_SHAPE
    assert not path.exists()

    def child(cmd: list[str], **kwargs: Any) -> Any:
        stderr = b"ModelShapeError: n-grams of 9 bytes\n"
        raise subprocess.CalledProcessError(langmodel.EXIT_OTHER_SHAPE, cmd, stderr=stderr)

    monkeypatch.setattr(subprocess, "run", child)
    monkeypatch.setattr(langmodel, "derive", no_deriving_here)
    monkeypatch.setenv("CACHE_DIRECTORY", str(env / "one"))
    monkeypatch.setenv("HOME", str(env / "home"))
    with caplog.at_level(logging.WARNING, logger="inboxwatch"):
        assert isinstance(langmodel.load(), FullModel)
    assert "n-grams of 9 bytes" in caplog.text
    assert "cannot cache" not in caplog.text


MEASURE = """
import sys
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
before = rss()
from inboxwatch.adapters import langmodel
model = langmodel.load() if sys.argv[1] == "lean" else langmodel.FullModel()
model.best("Guten Tag, können Sie mir ein Angebot für eine Badsanierung schicken?")
print(rss() - before)
"""


def test_the_lean_model_costs_half_of_py3langids(good_file: Path) -> None:
    """Resident memory a fresh process gains by loading and using the model, numpy
    included: py3langid's own costs about 100 MB, the lean one about 55 (the feature
    weights alone are 28 MB)."""
    env = {**os.environ, "CACHE_DIRECTORY": str(good_file.parent)}
    grown = {
        kind: float(
            subprocess.run(
                [sys.executable, "-c", MEASURE, kind],
                env=env,
                capture_output=True,
                text=True,
                check=True,
                timeout=120,
            ).stdout
        )
        for kind in ("lean", "full")
    }
    assert grown["lean"] < 70, grown
    assert grown["full"] - grown["lean"] > 30, grown


def test_each_unit_gives_the_cache_a_folder_of_its_own() -> None:
    """Under ProtectSystem=strict and ProtectHome=yes only the unit's own folders are
    writable: CacheDirectory= is one (``$CACHE_DIRECTORY``, tried first), per instance
    as the state is (systemd hands it, recursively, to the unit's user)."""
    single = unit("inboxwatch.service")
    template = unit("inboxwatch@.service")
    assert single["CacheDirectory"] == ["inboxwatch/default"]
    assert template["CacheDirectory"] == ["inboxwatch/%i"]
    assert single["CacheDirectoryMode"] == template["CacheDirectoryMode"] == ["0700"]
