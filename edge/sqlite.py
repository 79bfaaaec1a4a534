"""The one way edge keeps data in SQLite: durable, shared between processes, thread-safe.

WAL with synchronous=FULL (a committed write survives a power cut: what the API
acknowledges is never lost), a 30 s busy timeout, and `BEGIN IMMEDIATE` write
transactions, which take the write lock up front so two processes never deadlock
upgrading read locks. The face library, the event outbox and the attendance records
all build on this class.

Damage at rest is named, not reported as a traceback: every SQLite failure that is
about the file rather than the code (corrupt pages, not a database, disk full,
read-only or unreadable) becomes a StorageError carrying the file, the cause and the
remedy. A corrupt file is *sticky*: after the first such error every call refuses at
once, without touching the file again (one clear log line, not one per request). A
full disk or a read-only directory is not sticky: the write was rolled back whole,
and the next one may succeed once space or permission is back. The -wal file beside a
database holds committed transactions: nothing here ever deletes it (set_aside moves
it with its database).
"""
from __future__ import annotations

import logging
import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path

from edge import fileio

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 30_000
HEADER = b"SQLite format 3\x00"
# A database up to this size (file + WAL; ~40k faces) gets a whole-file PRAGMA
# quick_check at open (31 MB: 50-70 ms here, scripts/bench_storage.py; an SD card reads
# ~40 MB/s). Larger ones check only their small tables at open: damage elsewhere is
# met when it is read.
QUICK_CHECK_MAX_BYTES = 64 * 1024 * 1024
SIDECARS = ("-wal", "-shm")

# SQLite's primary result codes (sqlite3.h) -> what went wrong with the file.
_KINDS = {11: "corrupt", 26: "corrupt", 13: "full", 8: "readonly", 3: "readonly", 14: "unreadable",
          10: "unreadable", 5: "busy", 6: "busy"}
# The same by message, for Pythons before 3.11 (no sqlite_errorcode).
_MESSAGES = (("malformed", "corrupt"), ("not a database", "corrupt"), ("disk is full", "full"),
             ("readonly", "readonly"), ("unable to open", "unreadable"), ("disk i/o", "unreadable"),
             ("locked", "busy"), ("busy", "busy"))
_CAUSES = {"corrupt": "is damaged", "full": "cannot be written: the disk is full",
           "readonly": "cannot be written: the file or its folder is read-only",
           "unreadable": "cannot be opened or read", "busy": "is locked by another process",
           "lost": "is missing or empty", "incomplete": "is an unfinished migration's copy",
           # a database server's (edge/postgres/connect.py)
           "unreachable": "cannot be reached", "overloaded": "is busy: no connection free in time",
           "denied": "refuses edge's role", "schema": "holds a layout this program cannot use",
           "failed": "failed"}


class Location(str):
    """Where data lives when it is not a file: a database server's DSN without its
    password. StorageError keeps it as it is (a file location becomes a Path)."""


class StorageError(Exception):
    """A data file (or database server) cannot be used. `kind`: corrupt | lost (sticky
    until the file is repaired) or full | readonly | unreadable | busy, and a server's
    unreachable | overloaded | denied | schema | failed (this operation failed whole).
    `path`: the file, or a Location (a redacted DSN)."""

    def __init__(self, kind: str, path: Path | str, detail: str = "", remedy: str = ""):
        detail = " ".join(str(detail).replace("*** in database main ***", "").split())  # one log line
        where = path if isinstance(path, Location) else Path(path)
        self.kind, self.path, self.detail, self.remedy = kind, where, detail, remedy
        text = f"{self.path} {_CAUSES.get(kind, kind)}"
        if detail:
            text += f" ({detail})"
        if remedy:
            text += f"; {remedy}"
        super().__init__(text)

    @property
    def sticky(self) -> bool:
        return self.kind in ("corrupt", "lost")


def storage_kind(exc: sqlite3.Error) -> str | None:
    """The StorageError kind of an sqlite3 error, or None when it is not about the file."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return _KINDS.get(code & 0xFF)
    text = str(exc).lower()
    return next((kind for needle, kind in _MESSAGES if needle in text), None)


def check_header(path: Path, remedy: str = "") -> None:
    """Refuse, before SQLite opens it, a file that cannot be a database: a folder, a
    file too short for a header or not starting with SQLite's, or an empty database
    whose WAL holds data (opening it would throw that data away)."""
    if not path.exists():
        return
    if not path.is_file():
        raise StorageError("corrupt", path, "not a regular file", remedy)
    wal = path.with_name(path.name + "-wal")
    try:
        size = path.stat().st_size
        wal_size = wal.stat().st_size if wal.exists() else 0
        with open(path, "rb") as fh:
            head = fh.read(100)
    except OSError as exc:
        raise StorageError("unreadable", path, exc.strerror or str(exc)) from None
    if size == 0:
        if wal_size:
            raise StorageError("corrupt", path, f"empty, but {wal.name} holds {wal_size} bytes", remedy)
        return
    if len(head) < 100 or not head.startswith(HEADER):
        raise StorageError("corrupt", path, "not an SQLite database (bad header)", remedy)


def set_aside(path: Path, tag: str) -> Path:
    """Move a database with its -wal and -shm out of the way (never deleted)."""
    return fileio.set_aside(path, tag, SIDECARS)


def open_or_set_aside(open_file, path: Path, what: str):
    """open_file(), or, when `path` is corrupt, set it aside (kept, with its WAL) and
    open_file() again on a new empty file: for data a terminal must keep working
    without (the event outbox, attendance), never for the face library."""
    try:
        return open_file()
    except StorageError as err:
        if err.kind != "corrupt":
            raise
        aside = set_aside(Path(path), "corrupt")
        log.error("%s: %s; kept as %s, a new empty one is used", what, err, aside)
        return open_file()


class SqliteFile:
    # Tables small enough to check at every open, whatever the file's size.
    SMALL_TABLES: tuple[str, ...] = ()
    REMEDY = ""  # what an operator does about a damaged file of this kind

    def __init__(self, path: Path | str, schema: str = "", *, foreign_keys: bool = False, remedy: str = ""):
        self.path = Path(path)
        self.remedy = remedy or self.REMEDY
        self.fault: StorageError | None = None
        self._lock = threading.RLock()
        self._db = None
        self._opened = False  # errors during the open are the caller's to report
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError("unreadable", self.path.parent, exc.strerror or str(exc), remedy) from None
        check_header(self.path, self.remedy)
        try:
            self._db = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False,
                                       timeout=BUSY_TIMEOUT_MS / 1000)
            self._db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            if foreign_keys:
                self._db.execute("PRAGMA foreign_keys=ON")
            self._quick_check()
            if schema:
                with self._write() as db:
                    for statement in filter(str.strip, schema.split(";")):
                        db.execute(statement)
        except BaseException as exc:
            if self._db is not None:
                self._db.close()
            err = self._storage_error(exc) if isinstance(exc, sqlite3.Error) else None
            if err is None:
                raise
            raise err from None
        self._opened = True

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- damage -------------------------------------------------------------------
    def _storage_error(self, exc: sqlite3.Error) -> StorageError | None:
        kind = storage_kind(exc)
        if kind is None:
            return None
        err = StorageError(kind, self.path, str(exc), self.remedy if kind in ("corrupt", "lost") else "")
        if err.sticky and self.fault is None:
            self.fault = err
            if self._opened:
                log.error("%s: refused until repaired", err)
        return err

    def _quick_check(self) -> None:
        """PRAGMA quick_check at open: the whole file when small, else the small tables
        (quick_check(table) needs SQLite 3.33; older ones skip it)."""
        wal = self.path.with_name(self.path.name + "-wal")
        size = sum(p.stat().st_size for p in (self.path, wal) if p.exists())
        targets = [None] if size <= QUICK_CHECK_MAX_BYTES else list(self.SMALL_TABLES)
        if size and sqlite3.sqlite_version_info < (3, 33):
            targets = [None] if size <= QUICK_CHECK_MAX_BYTES else []
        names = {r[0] for r in self._all("SELECT name FROM sqlite_master WHERE type='table'")} if size else set()
        for table in targets:
            if table is not None and table not in names:
                continue
            sql = "PRAGMA quick_check(1)" if table is None else f'PRAGMA quick_check("{table}")'
            result = self._one(sql)
            if result != "ok":
                raise StorageError("corrupt", self.path, f"quick_check: {str(result)[:200]}", self.remedy)

    # -- access ---------------------------------------------------------------------
    def _refuse_if_faulty(self) -> None:
        if self.fault is not None:
            raise self.fault

    @contextmanager
    def _write(self):
        """One write transaction: all of it or nothing."""
        with self._lock:
            self._refuse_if_faulty()
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    yield self._db
                except BaseException:
                    if self._db.in_transaction:  # SQLite may have rolled back itself (full disk)
                        self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                if self._db.in_transaction:
                    try:
                        self._db.execute("ROLLBACK")
                    except sqlite3.Error:
                        pass
                err = self._storage_error(exc)
                if err is None:
                    raise
                raise err from None

    def _one(self, sql: str, args=()):
        with self._lock:
            self._refuse_if_faulty()
            try:
                row = self._db.execute(sql, args).fetchone()
            except sqlite3.Error as exc:
                err = self._storage_error(exc)
                if err is None:
                    raise
                raise err from None
        return None if row is None else row[0]

    def _all(self, sql: str, args=()) -> list:
        with self._lock:
            self._refuse_if_faulty()
            try:
                return self._db.execute(sql, args).fetchall()
            except sqlite3.Error as exc:
                err = self._storage_error(exc)
                if err is None:
                    raise
                raise err from None
