"""The one way edge keeps data in SQLite: durable, shared between processes, thread-safe.

WAL with synchronous=FULL (a committed write survives a power cut: what the API
acknowledges is never lost), a 30 s busy timeout, and `BEGIN IMMEDIATE` write
transactions, which take the write lock up front so two processes never deadlock
upgrading read locks. The face library, the event outbox and the attendance records
all build on this class.
"""
from __future__ import annotations

import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path

BUSY_TIMEOUT_MS = 30_000


class SqliteFile:
    def __init__(self, path: Path | str, schema: str = "", *, foreign_keys: bool = False):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False,
                                   timeout=BUSY_TIMEOUT_MS / 1000)
        self._db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        if foreign_keys:
            self._db.execute("PRAGMA foreign_keys=ON")
        if schema:
            with self._write() as db:
                for statement in filter(str.strip, schema.split(";")):
                    db.execute(statement)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _write(self):
        """One write transaction: all of it or nothing."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _one(self, sql: str, args=()):
        with self._lock:
            row = self._db.execute(sql, args).fetchone()
        return None if row is None else row[0]

    def _all(self, sql: str, args=()) -> list:
        with self._lock:
            return self._db.execute(sql, args).fetchall()
