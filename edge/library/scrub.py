"""The faces table of a large library, checked once in the background after it opens.

A library too large for the whole-file quick_check at open (edge/sqlite.py,
QUICK_CHECK_MAX_BYTES) used to meet damage in its faces table when a search read the
owners of its hits. Searches no longer read SQLite (edge/library/owners.py), so that
table is checked here instead: `PRAGMA quick_check("faces")` on a read-only connection
of its own (a WAL reader: it blocks no writer and no search; ~1 s for 1M faces here,
~15 s of reads on an SD card). Damage found makes the store refuse every call from
then on, exactly as if a read had met it.
"""
from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

from edge import sqlite as edge_sqlite
from edge.sqlite import StorageError, storage_kind

log = logging.getLogger(__name__)

TABLES = ("faces",)


class Scrub:
    def __init__(self, store, remedy: str):
        self.store, self.remedy = store, remedy
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._stopped = False
        self.result: str | None = None  # "ok", the damage found, or None (not run / stopped)
        self.thread = threading.Thread(target=self._run, name="edge-library-scrub", daemon=True)

    @classmethod
    def start_if_large(cls, store, remedy: str) -> "Scrub | None":
        path = Path(store.path)
        size = sum(p.stat().st_size for p in (path, path.with_name(path.name + "-wal")) if p.exists())
        if size <= edge_sqlite.QUICK_CHECK_MAX_BYTES:
            return None  # checked whole at open
        scrub = cls(store, remedy)
        scrub.thread.start()
        return scrub

    def _run(self) -> None:
        try:
            with self._lock:
                if self._stopped:
                    return
                self._db = sqlite3.connect(f"file:{self.store.path}?mode=ro", uri=True, check_same_thread=False,
                                           timeout=edge_sqlite.BUSY_TIMEOUT_MS / 1000)
            for table in TABLES:
                rows = self._db.execute(f'PRAGMA quick_check("{table}")').fetchall()
                if [r[0] for r in rows] != ["ok"]:
                    self._found(f"quick_check({table}): {str(rows[0][0])[:200]}")
                    return
            self.result = "ok"
        except sqlite3.Error as exc:
            if not self._stopped and storage_kind(exc) in ("corrupt",):
                self._found(str(exc))
            elif not self._stopped:
                log.warning("%s: checking its faces table failed (%s)", self.store.path, exc)
        finally:
            with self._lock:
                if self._db is not None:
                    self._db.close()
                    self._db = None

    def _found(self, detail: str) -> None:
        self.result = detail
        self.store.found_damage(StorageError("corrupt", self.store.path, detail, self.remedy))

    def stop(self) -> None:
        """Interrupt the check (close): nothing is concluded from an unfinished one."""
        with self._lock:
            self._stopped = True
            if self._db is not None:
                self._db.interrupt()
        self.thread.join()
