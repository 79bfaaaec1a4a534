"""The saved graph read after the library opens: ready in seconds on a slow card.

At 1M faces the saved index is ~1.3 GB: 0.5 GB of vectors (with the slot arrays) and
~0.8 GB of hnswlib graph. On a Pi's SD card (~40 MB/s) reading all of it before the
first answer took ~35 s. FaceLibrary now opens with the vectors only (FaceIndex.load
with graph_later): every search is exact over them (a mat-vec over every face: never a
half-read graph), the catch-up of the changes after the save and enrolments go on as
usual, and this thread reads the graph beside them and hands it to the index
(FaceIndex.attach_graph), which then serves as before (docs/storage.md, "Start-up on a
slow card").

The saved files must stay as they are until the graph is read: another process's save
replaces them. So the shared lock on index.lock taken before the vectors were read is
held until then (another process's save waits that long; this process's own saves wait
for the graph: a save without it would drop it from the folder).
"""
from __future__ import annotations

import fcntl
import logging
import threading
import time
from pathlib import Path
from typing import IO, Callable

from edge.sqlite import set_aside

log = logging.getLogger(__name__)

# The graph's read starts this long after the open: the caller's own start-up reads go
# first (edge run's threshold counts the faces: 47 MB of SQLite index at 1M, 1.2 s alone
# at 40 MB/s, ~20 s behind the graph's read, measured), since a card serves reads in order.
START_DELAY_S = 3.0


class GraphLoad:
    """One background read of a FaceIndex's saved graph; `then` runs after it (the
    library's builder, due save and background check), unless the library is closing."""

    def __init__(self, index, directory: Path, lock_file: IO, then: Callable[[], None]):
        self.index, self.directory, self._lock_file, self._then = index, directory, lock_file, then
        self._closing = threading.Event()
        self.seconds: float | None = None  # how long the read and attach took, once done
        self.thread = threading.Thread(target=self._run, name="edge-index-load", daemon=True)

    def start(self) -> "GraphLoad":
        self.thread.start()
        return self

    @property
    def running(self) -> bool:
        return self.thread.is_alive()

    @property
    def closing(self) -> bool:
        return self._closing.is_set()

    def close(self) -> None:
        """The library closes: start the read at once (a save at close needs the graph),
        skip what follows it."""
        self._closing.set()

    def join(self) -> None:
        """Wait for the graph (never from the thread itself: its `then` may save)."""
        if threading.current_thread() is not self.thread and self.thread.ident is not None:
            self.thread.join()

    def _run(self) -> None:
        self._closing.wait(START_DELAY_S)
        t0 = time.perf_counter()
        try:
            ok = self.index.attach_graph()
            if not ok:  # as any damaged save: its intact files may be what a second fault needs
                fcntl.flock(self._lock_file, fcntl.LOCK_EX)
                aside = set_aside(self.directory, "damaged")
                log.warning("saved index kept as %s; its graph is rebuilt from the vectors", aside)
        except Exception:  # noqa: BLE001 - searches stay exact; the graph is a cache
            log.exception("library %s: reading the saved graph failed", self.directory.parent)
            ok = False
        finally:
            fcntl.flock(self._lock_file, fcntl.LOCK_UN)
            self._lock_file.close()
        self.seconds = time.perf_counter() - t0
        log.info("library %s: saved graph %s %.1f s after the library opened", self.directory.parent,
                 "in" if ok else "unusable, being rebuilt", self.seconds)
        if not self.closing:
            self._then()
