"""systemd's notify protocol (sd_notify): READY, WATCHDOG, STATUS, STOPPING.

A datagram to $NOTIFY_SOCKET; without it (not started by systemd) nothing happens. Ten
lines, so no dependency (the `sdnotify` package has had no release since 2017)."""
from __future__ import annotations

import os
import socket


def notify(message: str) -> bool:
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):  # abstract namespace
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(address)
            sock.sendall(message.encode())
        return True
    except OSError:
        return False
