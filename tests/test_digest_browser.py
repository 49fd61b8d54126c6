"""The HTML digest in a real headless browser (Debian's chromium): it renders, it draws its
chart, it has no remote reference, and the figures are in it.

Chromium is installed by ``scripts/setup --browser`` (``scripts/test`` asks for it). Without
it the test is skipped on a developer machine; under CI that is a failure.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest
from test_digest import BERLIN, NOW, SINCE, leads_of_a_day, parsed, settings

from inboxwatch.core import digest

#: Flags for a root user on a closed network (../shared/notes/test-servers.md): no sandbox
#: (root), and none of Chromium's own connections (updates, sync, field trials).
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
)
WIDTH, HEIGHT = 800, 2400  # tall enough for the whole digest, the chart at its end included
BAR = (0x25, 0x63, 0xEB)  # the chart's bar colour, #2563eb
TIMEOUT = 60


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        why = "chromium is not installed (scripts/setup --browser installs Debian's)"
        if _in_ci():
            pytest.fail(f"CI must run the browser test, but {why}", pytrace=False)
        pytest.skip(why)
    return found


def screenshot(browser: str, page: Path, png: Path, profile: Path) -> None:
    cmd = [
        browser,
        *FLAGS,
        f"--user-data-dir={profile}",
        f"--screenshot={png}",
        f"--window-size={WIDTH},{HEIGHT}",
        page.as_uri(),
    ]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"chromium took more than {TIMEOUT} s: {e.stderr!r}", pytrace=False)
    assert done.returncode == 0, done.stderr[-2000:]


def pixels(png: bytes) -> tuple[int, int, list[bytes]]:
    """(width, height, rows of RGB(A) bytes) of an 8-bit RGB or RGBA PNG, with the stdlib."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, head = 8, b"", b""
    while pos < len(png):
        (size,) = struct.unpack(">I", png[pos : pos + 4])
        kind, data = png[pos + 4 : pos + 8], png[pos + 8 : pos + 8 + size]
        pos += 12 + size
        if kind == b"IHDR":
            head = data
        elif kind == b"IDAT":
            idat += data
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", head)
    assert depth == 8 and colour in (2, 6) and interlace == 0, (depth, colour, interlace)
    bpp = 3 if colour == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows: list[bytes] = []
    prev = bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        if kind == 1:
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 0xFF
        elif kind == 2:
            line = bytearray((a + b) & 0xFF for a, b in zip(line, prev, strict=True))
        elif kind == 3:
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + prev[i]) >> 1)) & 0xFF
        elif kind == 4:
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b, c = prev[i], prev[i - bpp] if i >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else b if pb <= pc else c
                line[i] = (line[i] + pred) & 0xFF
        rows.append(bytes(line))
        prev = line
    if bpp == 4:  # drop alpha
        rows = [bytes(b for i, b in enumerate(r) if i % 4 != 3) for r in rows]
    return width, height, rows


def remote_references(page: str) -> list[str]:
    """Whatever in the HTML would make a browser fetch something, or run something."""
    p = parsed(page)
    found = [f"<{t}>" for t in p.tags if t in ("script", "img", "iframe", "object", "embed")]
    found += [f"<{t}>" for t in p.tags if t in ("link", "base", "frame", "video", "audio")]
    for name, value in p.attrs:
        low = value.strip().lower()
        fetches = name in ("src", "href", "srcset", "background", "action", "poster", "data")
        if fetches and (low.startswith(("http:", "https:", "//", "ftp:")) or "://" in low):
            found.append(f"{name}={value}")
        if "url(" in low or "@import" in low:
            found.append(f"{name}={value}")
        if name.startswith("on"):
            found.append(name)
    return found


def test_the_html_digest_renders_in_headless_chromium(tmp_path: Path) -> None:
    browser = chromium()
    _, _, page = digest.build(leads_of_a_day(), [], SINCE, NOW, settings(), BERLIN)

    # The HTML, parsed: nothing remote, nothing run; the figures as text.
    assert remote_references(page) == []
    shown = " | ".join(parsed(page).text)
    for figure in (
        "Rita Roof <rita@x.test>",  # a lead's name
        "source: website-form",  # a source
        "source: email",
        "new leads | 4 (email 2, website-form 2)",
        "sequences ended | bounced 1, replied 1",
    ):
        assert figure in shown, figure
    # The acknowledgement of the four new leads (20, 30, 45 s and one never sent): the
    # median is the 2nd of 4 (nearest rank), the 90th the one never sent.
    assert "all | 4 | 30 s | never | 75% | 75% | 1 not sent" in shown

    html = tmp_path / "digest.html"
    html.write_text(page, encoding="utf-8")
    png = tmp_path / "digest.png"
    screenshot(browser, html, png, tmp_path / "profile")

    data = png.read_bytes()
    assert len(data) > 20_000, len(data)  # a page of text, not an empty canvas
    width, height, rows = pixels(data)
    assert (width, height) == (WIDTH, HEIGHT)
    colours = {r[i : i + 3] for r in rows for i in range(0, len(r), 3)}
    assert len(colours) > 20, len(colours)  # text anti-aliased on white, not a blank page
    assert bytes(BAR) in colours, "no bar of the chart was drawn"
