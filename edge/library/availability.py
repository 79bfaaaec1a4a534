"""Which apps' libraries a process refuses, why, and when it looks at them again.

An app whose library.db is damaged, missing or cannot be opened is refused on its own:
each of its calls answers the db error at once, with no traceback and without
touching the files again, while the other apps are served. One log line names the
file and the remedy. The refusal lifts by itself once the files change (`edge library
recover` replaced them, or the operator fixed a permission); one that may pass by
itself (a full disk, a busy or unreadable file) is also looked at again every RETRY_S.
A damaged file does not heal: it is not reopened until it changes.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from edge.sqlite import StorageError

log = logging.getLogger("edge.library")

RETRY_S = 30.0


@dataclass(frozen=True)
class Refusal:
    error: StorageError
    since: float           # unix time of the first refusal
    signature: tuple       # the files as they were when refused
    look_again: float      # monotonic time of the next attempt to open


def _signature(directory: Path) -> tuple:
    out = []
    for path in (directory, directory / "library.db", directory / "library.db-wal", directory / "index",
                 directory / "index" / "manifest.json"):
        try:
            st = os.stat(path)
            out.append((st.st_ino, st.st_size, st.st_mtime_ns, st.st_mode, st.st_ctime_ns))
        except OSError:
            out.append(None)
    return tuple(out)


class Availability:
    def __init__(self):
        self._down: dict[str, Refusal] = {}
        self._lock = threading.Lock()

    def check(self, app_id: str, directory: Path) -> None:
        """Raise the app's StorageError while it is refused and its files are unchanged."""
        with self._lock:
            refusal = self._down.get(app_id)
            if refusal is None:
                return
            waiting = refusal.error.sticky or time.monotonic() < refusal.look_again
            if waiting and _signature(directory) == refusal.signature:
                raise refusal.error
            del self._down[app_id]
        log.info("app %s: opening its library again (%s)", app_id, directory)

    def refuse(self, app_id: str, directory: Path, error: StorageError) -> None:
        with self._lock:
            before = self._down.get(app_id)
            self._down[app_id] = Refusal(error, before.since if before else time.time(), _signature(directory),
                                         time.monotonic() + RETRY_S)
        log.error("app %s refused, its other requests answer the db error: %s", app_id, error)

    def refused(self) -> dict[str, str]:
        """app_id -> why, for /health and the metrics."""
        with self._lock:
            return {app: str(r.error) for app, r in self._down.items()}
