"""Files a command writes that hold leads' personal data: readable by their owner only.

``export -o FILE`` and ``digest --html FILE`` write names, addresses, phone numbers and
timelines. The state is kept 0600; a copy of its contents must not be 0644 because the
user's umask happens to be 022. An existing file is truncated and narrowed to 0600 too
(``open(..., "w")`` would keep whatever mode it had).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO

PRIVATE_MODE = 0o600


def open_private(path: str | os.PathLike[str]) -> IO[str]:
    """``path`` opened for writing text (UTF-8, newlines as written), mode 0600."""
    fd = os.open(Path(path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_MODE)
    try:
        os.fchmod(fd, PRIVATE_MODE)  # a file that existed keeps its mode without this
        return open(fd, "w", encoding="utf-8", newline="")
    except BaseException:
        os.close(fd)
        raise


def write_private(path: str | os.PathLike[str], text: str) -> None:
    """``text`` into ``path``, mode 0600."""
    with open_private(path) as fh:
        fh.write(text)
