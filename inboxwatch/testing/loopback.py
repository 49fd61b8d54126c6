"""Where the private test servers listen: 127.0.0.1, on ports the kernel picks free.

Kept apart so the Dovecot runner, the SMTP stand-in and the MailServers facade agree on
one address without importing each other.
"""

from __future__ import annotations

import socket

HOST = "127.0.0.1"


def free_port() -> int:
    """A port that was free a moment ago (the kernel's pick for port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])
