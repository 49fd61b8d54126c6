"""The language model, lean: py3langid's own decisions from a compact copy of its model.

py3langid's model, loaded as py3langid loads it, takes about 70 MB, most of it not the
model's knowledge but its tokenizer: an Aho-Corasick automaton over byte n-grams
(104,583 states, 38,346 distinct rows of 256 transitions: 39 MB) and a Python list of
each state's feature. The automaton's only job is to find, at each byte of the text, the
longest n-gram ending there that is one of its states (a prefix of some feature), and
count that state's feature. A hash table of those n-grams (packed into integers, with
each one's feature: 3 MB) finds the same for every byte at once, in a few numpy
operations; the scoring is then py3langid's own arithmetic on its own feature weights
(``nb_ptc``, float16, 28 MB), in the same order, so every probability is the same
number (``tests/test_language_lean.py`` compares both on many languages, noisy text
and invalid bytes). It is as fast as py3langid's walk of the automaton.

The compact model is derived once per py3langid version and model file, in a child
process (loading the full model leaves its memory and its load garbage behind as
resident pages the daemon would keep), and cached as one ``.npz`` file in the first
writable of ``$CACHE_DIRECTORY`` (systemd's ``CacheDirectory=``), ``$XDG_CACHE_HOME/
inboxwatch``, ``~/.cache/inboxwatch``. The file is written atomically and carries a
digest of its arrays: a damaged or partial one is derived again, never trusted. Where
no cache folder is writable the model is derived in-process (the same decisions, a
higher peak), and if the model is not of the shape this copy knows (a future
py3langid's), py3langid itself is used; either is logged.

The derivation proves its one assumption about the automaton instead of trusting it:
each state's transitions are its trie children, else its failure state's transitions
(the Aho-Corasick construction), so by induction over the depth every transition goes to
the longest suffix of the text read that is a state — what the lookup finds.
"""

from __future__ import annotations

import hashlib
import importlib
import io
import json
import logging
import math
import os
import subprocess
import sys
import unicodedata
from collections import Counter
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from inboxwatch.adapters.statefile import write_bytes_atomic

log = logging.getLogger("inboxwatch")

#: The cache file's layout; a new one is derived when this changes.
FORMAT = 1
#: The longest n-gram a packed key holds: 7 bytes, the length in the top byte.
MAX_DEPTH = 7
_BYTE = np.uint64(8)
#: A state's code holds its feature + 1 in these low bits, its length above them.
FEATURE_BITS = 24
FEATURE_MASK = (1 << FEATURE_BITS) - 1
#: Fibonacci hashing's multiplier (2^64 / the golden ratio, odd).
HASH_MULT = np.uint64(0x9E3779B97F4A7C15)
#: Deriving takes a few seconds; a child still running after this has hung.
DERIVE_TIMEOUT = 300.0
#: The deriving child's exit status for a model of another shape (no use trying again).
EXIT_OTHER_SHAPE = 3

Ranking = list[tuple[str, float]]
Arrays = dict[str, npt.NDArray[Any]]


class ModelShapeError(Exception):
    """py3langid's model is not the automaton this lean copy knows how to replace."""


def _langid() -> Any:
    return importlib.import_module("py3langid.langid")


# --- scoring -------------------------------------------------------------------------


class CompactModel:
    """py3langid's ``LanguageIdentifier(norm_probs=True).rank`` over the compact arrays."""

    __slots__ = (
        "_aliases",
        "_lengths",
        "_shift",
        "_whole",
        "classes",
        "codes",
        "depth",
        "mults",
        "pc",
        "ptc",
        "table",
    )

    def __init__(self, arrays: Mapping[str, npt.NDArray[Any]]) -> None:
        self.table: npt.NDArray[np.uint64] = arrays["table"]
        self.codes: npt.NDArray[np.int32] = arrays["codes"]
        self.mults: npt.NDArray[np.uint64] = arrays["mults"].reshape(2, 1, 1)
        self.ptc: npt.NDArray[np.floating[Any]] = arrays["ptc"]
        self.pc: npt.NDArray[np.floating[Any]] = arrays["pc"]
        self.classes: list[str] = [str(c) for c in arrays["classes"].tolist()]
        self.depth = int(arrays["depth"])
        self._shift = np.uint64(64 - (len(self.table) - 1).bit_length())
        lengths = np.arange(1, self.depth + 1, dtype=np.uint64)
        self._lengths = (lengths << np.uint64(56))[:, None]
        # 1 where the n-gram of row L fits before column i (i >= L - 1), else 0.
        columns = np.arange(max(self.depth - 1, 1), dtype=np.uint64)
        self._whole = (columns[None, :] + np.uint64(1) >= lengths[:, None]).astype(np.uint64)
        first: dict[str, int] = {}
        self._aliases: list[tuple[int, int]] = []
        for i, code in enumerate(self.classes):
            if code in first:  # a script alias (srl → sr) folds into the first column
                self._aliases.append((first[code], i))
            else:
                first[code] = i

    def features(self, data: bytes) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.float32]]:
        """The features counted in ``data`` and their counts, in order of first
        occurrence (py3langid sums them in that order)."""
        n, depth = len(data), min(self.depth, len(data))
        if not n:
            return np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.float32)
        # want[L-1, i]: the n-gram of L bytes ending at byte i, its length in the top
        # byte; 0 (never a key) where the text is shorter than L.
        b = np.frombuffer(data, dtype=np.uint8).astype(np.uint64)
        want = np.empty((depth, n), dtype=np.uint64)
        want[0] = b
        for row in range(1, depth):
            np.bitwise_or(want[row - 1, row - 1 : -1] << _BYTE, b[row:], out=want[row, row:])
        want |= self._lengths[:depth]
        head = min(n, self.depth - 1)
        want[:, :head] *= self._whole[:depth, :head]
        # Each n-gram's slot holds its code (its length × 2^24 + its feature + 1; 0 for a
        # state that counts none): in one of its two cuckoo slots, or not a state.
        slots = ((want * self.mults) >> self._shift).view(np.intp)  # (2, depth, n)
        codes = np.where(self.table[slots] == want, self.codes[slots], 0)
        # The longest n-gram that is a state decides: the highest code at each byte.
        found = (codes.max(axis=(0, 1)) & FEATURE_MASK) - 1
        visits = Counter(found[found >= 0].tolist())  # py3langid's own counting and order
        ids = np.fromiter(visits.keys(), dtype=np.intp, count=len(visits))
        counts = np.fromiter(visits.values(), dtype=np.float32, count=len(visits))
        return ids, counts

    def scores(self, text: str | bytes) -> npt.NDArray[np.floating[Any]]:
        """Each class's probability (py3langid's ``_decide`` with ``norm_probs``): the
        aliases' columns folded into the first of their code."""
        data = encode(text)
        ids, counts = self.features(data)
        scores: npt.NDArray[np.floating[Any]]
        if len(ids):
            scores = np.log1p(counts) @ self.ptc[ids] + self.pc
        else:  # no features: uniform, as py3langid's norm_probs gives
            scores = np.zeros(len(self.classes), dtype=np.float32)
        scores *= 1.0 / math.sqrt(len(data) or 1)
        np.exp(scores - scores.max(), out=scores)
        scores /= scores.sum()
        for i, j in self._aliases:
            scores[i] += scores[j]
            scores[j] = 0.0
        return scores

    def rank(self, text: str | bytes) -> Ranking:
        """Every language by probability, best first, one entry per code (py3langid's
        ``rank``)."""
        merged: dict[str, float] = {}
        for code, score in zip(self.classes, self.scores(text).tolist(), strict=True):
            merged.setdefault(code, score)
        return sorted(merged.items(), key=lambda item: item[1], reverse=True)

    def best(self, text: str | bytes) -> tuple[str, float]:
        """``rank(text)[0]`` without ranking the rest: the first column of the highest
        probability (a tie goes to the earlier code, as in the stable sort)."""
        scores = self.scores(text)
        i = int(scores.argmax())
        return self.classes[i], float(scores[i])


def encode(text: str | bytes) -> bytes:
    """The bytes py3langid scores (its ``_encode``): UTF-8 of the NFC text, lower-cased
    when all upper; bytes as given when they are not UTF-8."""
    if isinstance(text, bytes):
        decoded = _langid().decode_trimmed(text)
        if decoded is None:
            return text
        text = str(decoded)
    if text.isupper():
        text = text.lower()
    return unicodedata.normalize("NFC", text).encode("utf8", errors="surrogatepass")


# --- deriving ------------------------------------------------------------------------


def model_path() -> Path:
    langid = _langid()
    return Path(langid.MODEL_DIR) / str(langid.MODEL_FILE)


def source_id() -> str:
    """What the compact model is derived from: py3langid's version and its model file."""
    digest = hashlib.sha256()
    with model_path().open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return f"{metadata.version('py3langid')}-{digest.hexdigest()[:16]}"


def derive() -> Arrays:
    """The compact arrays, from py3langid's full model (a few seconds, 300 MB)."""
    langid = _langid()
    ident = langid.LanguageIdentifier.from_model_file(langid.MODEL_FILE, norm_probs=True)
    return compact(
        _as_numpy(ident.tk_nextmove).reshape(-1, 256),
        _as_numpy(ident.tk_row),
        np.asarray(ident.tk_output, dtype=np.int64),
        np.ascontiguousarray(ident.nb_ptc),
        np.asarray(ident.nb_pc),
        list(ident.nb_classes),
    )


def compact(
    nextmove: npt.NDArray[Any],
    row_of_state: npt.NDArray[Any],
    outs: npt.NDArray[np.int64],
    ptc: npt.NDArray[Any],
    pc: npt.NDArray[Any],
    classes: list[str],
) -> Arrays:
    """The compact arrays of an automaton (``nextmove``: its distinct rows of 256
    transitions; ``row_of_state``; ``outs``: each state's feature or -1) and the feature
    weights, which are kept as they are (their dtype decides py3langid's arithmetic)."""
    rows = nextmove.astype(np.int32)
    row_of = row_of_state.astype(np.intp)
    if outs.shape != row_of.shape or ptc.shape[1] != len(classes) or len(pc) != len(classes):
        raise ModelShapeError("the automaton's arrays disagree in size")
    if rows.max() >= len(row_of) or row_of.max() >= len(rows):
        raise ModelShapeError("a transition to a state that does not exist")
    depth, parent, byte = _trie(rows, row_of)
    max_depth = int(depth.max())
    if max_depth > MAX_DEPTH or outs.max() >= min(len(ptc), FEATURE_MASK):
        raise ModelShapeError(f"n-grams of {max_depth} bytes or unknown features")
    packed = np.zeros(len(depth), dtype=np.uint64)
    for d in range(1, max_depth + 1):
        at = np.flatnonzero(depth == d)
        packed[at] = (packed[parent[at]] << np.uint64(8)) | byte[at].astype(np.uint64)
    keys = packed | (depth.astype(np.uint64) << np.uint64(56))
    _check_aho_corasick(rows, row_of, depth, parent, byte, packed, keys)
    # A state's code: its length × 2^24 + its feature + 1 (0 for none), so the longest
    # state is the highest code and the feature its low bits.
    codes = (depth << FEATURE_BITS) + np.where(outs >= 0, outs + 1, 0)
    table, table_codes, mults = _hash_table(keys[1:], codes[1:])  # the root is never looked up
    return {
        "table": table,
        "codes": table_codes,
        "mults": mults,
        "ptc": ptc,
        "pc": pc,
        "classes": np.array(classes),
        "depth": np.array(max_depth),
    }


def _hash_table(
    keys: npt.NDArray[np.uint64], codes: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.int32], npt.NDArray[np.uint64]]:
    """Cuckoo hashing, at most 45 % full (3 MB): each key sits in one of its two slots,
    so a lookup is two gathers and no loop. Returns the slots (0: empty; every key has
    its length in the top byte), their codes and the two hash multipliers."""
    bits = max(1, math.ceil(math.log2(len(keys) / 0.45)))
    rng = np.random.default_rng(12)  # fixed: the same model gives the same file
    for _attempt in range(20):
        mults = rng.integers(1 << 62, 1 << 63, size=2, dtype=np.uint64) | np.uint64(1)
        placed = _cuckoo([int(k) for k in keys.tolist()], [int(m) for m in mults], bits)
        if placed is not None:
            order = np.array(placed, dtype=np.int64)
            table = np.zeros(1 << bits, dtype=np.uint64)
            table_codes = np.zeros(1 << bits, dtype=np.int32)
            used = order >= 0
            table[used], table_codes[used] = keys[order[used]], codes[order[used]]
            return table, table_codes, mults
    raise ModelShapeError("no cuckoo hash table found for the n-grams")


def _cuckoo(keys: list[int], mults: list[int], bits: int) -> list[int] | None:
    """Slot → index of its key (-1 empty), or None when an insertion cycles."""
    slots = [-1] * (1 << bits)
    full, shift = (1 << 64) - 1, 64 - bits
    for i in range(len(keys)):
        item, which = i, 0
        for _kick in range(500):
            slot = ((keys[item] * mults[which]) & full) >> shift
            item, slots[slot] = slots[slot], item
            if item < 0:
                break
            # The evicted key goes to its other slot.
            which = 1 if ((keys[item] * mults[0]) & full) >> shift == slot else 0
        else:
            return None
    return slots


def _as_numpy(arr: Any) -> npt.NDArray[Any]:
    """A stdlib ``array.array`` (py3langid's automaton) as a numpy view."""
    return np.frombuffer(arr, dtype=np.dtype(f"u{arr.itemsize}"))


def _trie(
    rows: npt.NDArray[np.int32], row_of: npt.NDArray[np.intp]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Each state's depth, parent and last byte: breadth first from the root, the first
    path to a state is its trie path (fallback transitions only lead back up)."""
    states = len(row_of)
    depth = np.full(states, -1, dtype=np.int64)
    parent = np.full(states, -1, dtype=np.int64)
    byte = np.zeros(states, dtype=np.int64)
    depth[0] = 0
    frontier = np.array([0])
    for d in range(1, MAX_DEPTH + 2):
        targets = rows[row_of[frontier]]
        fi, bj = np.nonzero(depth[targets] == -1)
        if not len(fi):
            break
        new, first = np.unique(targets[fi, bj], return_index=True)
        depth[new], parent[new], byte[new] = d, frontier[fi[first]], bj[first]
        frontier = new
    if (depth < 0).any():
        raise ModelShapeError("states the root never reaches")
    return depth, parent, byte


def _check_aho_corasick(
    rows: npt.NDArray[np.int32],
    row_of: npt.NDArray[np.intp],
    depth: npt.NDArray[np.int64],
    parent: npt.NDArray[np.int64],
    byte: npt.NDArray[np.int64],
    packed: npt.NDArray[np.uint64],
    keys: npt.NDArray[np.uint64],
) -> None:
    """Every transition is the trie child, else the failure state's transition (the
    root's: the child, else the root): then each one reaches the longest suffix that is
    a state, which is what :meth:`CompactModel.features` looks up."""
    states = len(depth)
    sorted_keys = np.sort(keys)
    if len(np.unique(sorted_keys)) != states:
        raise ModelShapeError("two states spell the same n-gram")
    fail = np.zeros(states, dtype=np.int64)  # the longest proper suffix that is a state
    state_of_key = np.argsort(keys)
    for d in range(2, int(depth.max()) + 1):
        at = np.flatnonzero(depth == d)
        best = np.zeros(len(at), dtype=np.int64)
        for length in range(1, d):  # longer suffixes overwrite shorter ones
            want = (packed[at] & np.uint64((1 << (8 * length)) - 1)) | np.uint64(length << 56)
            pos = np.minimum(np.searchsorted(sorted_keys, want), states - 1)
            hit = sorted_keys[pos] == want
            best[hit] = state_of_key[pos[hit]]
        fail[at] = best
    columns = np.arange(256)
    for start in range(0, states, 8192):
        block = np.arange(start, min(states, start + 8192))
        actual = rows[row_of[block]]
        # A child's edge is right by construction: the breadth-first walk took it.
        child = (parent[actual] == block[:, None]) & (byte[actual] == columns)
        inherited = rows[row_of[fail[block]]]
        inherited[block == 0] = 0
        if not np.array_equal(actual, np.where(child, actual, inherited)):
            raise ModelShapeError("a transition that is not Aho-Corasick's")


# --- the cache file ------------------------------------------------------------------


def cache_folders() -> list[Path]:
    """Where the cache may live, best first (systemd's, the user's XDG cache, ~/.cache)."""
    folders = []
    if given := os.environ.get("CACHE_DIRECTORY", "").split(":")[0]:
        folders.append(Path(given))
    if xdg := os.environ.get("XDG_CACHE_HOME", ""):
        folders.append(Path(xdg) / "inboxwatch")
    home = os.environ.get("HOME", "")
    if home and home != "/nonexistent":
        folders.append(Path(home) / ".cache" / "inboxwatch")
    return folders


def cache_file(folder: Path, source: str) -> Path:
    return folder / f"langid-{source}-f{FORMAT}.npz"


def _digest(arrays: Mapping[str, npt.NDArray[Any]]) -> str:
    h = hashlib.blake2b(digest_size=16)
    for name in sorted(arrays):
        h.update(name.encode())
        h.update(np.ascontiguousarray(arrays[name]).view(np.uint8).data)  # no copy
    return h.hexdigest()


def save(path: Path, arrays: Arrays, source: str) -> None:
    """Write the cache file atomically (a crash leaves the old one or none), and remove
    the files of other py3langid versions beside it."""
    meta = json.dumps({"format": FORMAT, "source": source, "digest": _digest(arrays)})
    buffer = io.BytesIO()
    np.savez(buffer, allow_pickle=False, meta=np.array(meta), **arrays)
    write_bytes_atomic(path, buffer.getvalue())
    for old in path.parent.glob("langid-*.npz"):
        if old != path:
            old.unlink(missing_ok=True)


def read(path: Path, source: str) -> CompactModel | None:
    """The cached model, or None when the file is missing, damaged or of another source."""
    if not path.is_file():
        return None
    try:
        with path.open("rb") as fh, np.load(fh, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
        meta = json.loads(str(arrays.pop("meta")))
        if meta != {"format": FORMAT, "source": source, "digest": _digest(arrays)}:
            raise ValueError("its digest or source does not match")
        return CompactModel(arrays)
    except Exception as exc:  # a damaged zip fails in many ways: each means "derive again"
        log.warning("language model cache %s is damaged (%s); deriving it again", path, exc)
        return None


class FullModel:
    """py3langid's own identifier, where the lean copy cannot be derived."""

    def __init__(self) -> None:
        langid = _langid()
        self.ident = langid.LanguageIdentifier.from_model_file(langid.MODEL_FILE, norm_probs=True)

    def rank(self, text: str | bytes) -> Ranking:
        return [(str(code), float(p)) for code, p in self.ident.rank(text)]

    def best(self, text: str | bytes) -> tuple[str, float]:
        return self.rank(text)[0]


def load() -> CompactModel | FullModel:
    """The lean model: from the cache, else derived in a child process and cached; where
    no cache folder is writable, derived here; if that fails, py3langid itself."""
    source = source_id()
    for folder in cache_folders():
        path = cache_file(folder, source)
        if (model := read(path, source)) is not None:
            return model
        try:
            folder.mkdir(parents=True, exist_ok=True)
            subprocess.run(
                [sys.executable, "-m", __name__, str(path), source],
                check=True,
                capture_output=True,
                timeout=DERIVE_TIMEOUT,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            stderr = getattr(exc, "stderr", None) or b""
            last = stderr.decode(errors="replace").strip().splitlines()[-1:]
            if getattr(exc, "returncode", None) == EXIT_OTHER_SHAPE:
                return _full(last[0] if last else "another shape")
            log.debug(  # one warning below, if no folder will do
                "language model: cannot cache it in %s (%s)%s",
                folder,
                exc,
                f": {last[0]}" if last else "",
            )
            continue
        if (model := read(path, source)) is not None:
            log.debug("language model: derived from py3langid into %s", path)
            return model
    try:
        model = CompactModel(derive())
    except ModelShapeError as exc:
        return _full(str(exc))
    log.warning(
        "language model: no writable cache folder (tried %s); derived in memory",
        ", ".join(str(f) for f in cache_folders()) or "none: no $HOME",
    )
    return model


def _full(why: str) -> FullModel:
    log.warning("language model: using py3langid's own, about 50 MB more (%s)", why)
    return FullModel()


def main(argv: list[str]) -> int:
    """``python -m inboxwatch.adapters.langmodel FILE SOURCE``: derive and cache."""
    path, source = Path(argv[0]), argv[1]
    try:
        arrays = derive()
    except ModelShapeError as exc:
        print(f"ModelShapeError: {exc}", file=sys.stderr)
        return EXIT_OTHER_SHAPE
    save(path, arrays, source)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
