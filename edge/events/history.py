"""The event history: every event of this terminal, searchable, in <data_dir>/run/events.db.

What the console's Events page searches (time range, camera, person, kind, error code;
newest first, paged by a cursor). One insert per event, bounded by rows and by age: the
oldest are dropped (counted, in the file) every PRUNE_EVERY inserts, so the file cannot
fill the card.

This is a log for people reading it, not the acknowledgement of an event (that is the
webhook outbox, synchronous=FULL): the history runs synchronous=NORMAL, so a commit is
no fsync (WAL: the frames reach the kernel before add() returns, so a killed process
keeps every committed event; a power cut may lose the last moments, the outbox and the
log file still have them). Its pages are 1 KiB, not 4: an insert rewrites the table's
last page and each index's, so small pages write a quarter of the bytes (docs/loop.md,
"Writes on flash": the cost of one event).
"""
from __future__ import annotations

import base64
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from edge.events.event import KINDS, Event
from edge.events.sinks import Sink
from edge.sqlite import BUSY_TIMEOUT_MS, SqliteFile, check_header

PAGE_SIZE = 1024
PRUNE_EVERY = 100          # inserts between two bound checks (a delete is one more commit)
PAGE_MAX = 200             # rows one search answers at most
COLUMNS = ("id", "event_id", "ts", "kind", "camera", "track_id", "user_id", "group_id", "user_info", "score",
           "error_code", "error_msg", "reason", "frames", "liveness", "liveness_score")

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL,
    ts REAL NOT NULL,
    kind TEXT NOT NULL,
    camera TEXT NOT NULL,
    track_id INTEGER,
    user_id TEXT NOT NULL,
    group_id TEXT NOT NULL,
    user_info TEXT NOT NULL,
    score REAL,
    error_code INTEGER NOT NULL,
    error_msg TEXT NOT NULL,
    reason TEXT NOT NULL,
    frames INTEGER NOT NULL,
    liveness TEXT NOT NULL,
    liveness_score REAL);
CREATE INDEX IF NOT EXISTS events_ts ON events(ts);
CREATE INDEX IF NOT EXISTS events_camera ON events(camera, ts);
CREATE INDEX IF NOT EXISTS events_kind ON events(kind, ts);
CREATE INDEX IF NOT EXISTS events_code ON events(error_code, ts);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO meta VALUES ('dropped', 0)
"""


class QueryError(ValueError):
    """A search the history cannot answer (a bad cursor, kind or range): Baidu's 216100."""


@dataclass(frozen=True)
class Query:
    """What the Events page searches. person: a substring of the user id or the user
    info (case-insensitive for ASCII); since <= ts < until; cursor: the `next` of the
    page before (older events)."""
    since: float | None = None
    until: float | None = None
    camera: str = ""
    person: str = ""
    kind: str = ""
    error_code: int | None = None
    cursor: str = ""
    limit: int = 50

    def __post_init__(self):
        if self.kind and self.kind not in KINDS:
            raise QueryError(f"kind must be one of {', '.join(KINDS)}")
        if not 1 <= self.limit <= PAGE_MAX:
            raise QueryError(f"limit must be 1-{PAGE_MAX}")
        if self.since is not None and self.until is not None and self.since >= self.until:
            raise QueryError("the time range is empty (from is not before to)")


@dataclass(frozen=True)
class Row:
    """One stored event and its place in the history (id: the order of arrival)."""
    id: int
    event: Event


@dataclass(frozen=True)
class Page:
    rows: list[Row]
    next: str = ""          # cursor of the next (older) page; "" at the end


def encode_cursor(ts: float, rid: int) -> str:
    return base64.urlsafe_b64encode(f"{ts!r}:{rid}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[float, int]:
    try:
        ts, rid = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode().split(":")
        return float(ts), int(rid)
    except (ValueError, UnicodeDecodeError):
        raise QueryError("cursor is not one this history gave") from None


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _create(path: Path) -> None:
    """A new file gets its small pages before SQLite's WAL fixes the page size."""
    if path.exists() and path.stat().st_size:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(str(path))
    try:
        db.execute(f"PRAGMA page_size={PAGE_SIZE}")
        db.execute("PRAGMA journal_mode=WAL")
    finally:
        db.close()


class EventHistory(SqliteFile):
    """Thread-safe (one connection, a lock); the console reads while the loop writes."""

    REMEDY = "`edge run` sets it aside and starts a new one at its next start (docs/loop.md)"
    SMALL_TABLES = ("meta",)

    def __init__(self, path: Path | str, max_rows: int = 100_000, max_days: float = 90.0):
        if max_rows < 1 or max_days <= 0:
            raise ValueError("the history's bounds must be positive")
        path = Path(path)
        check_header(path, self.REMEDY)
        _create(path)
        super().__init__(path, SCHEMA)
        self._db.execute("PRAGMA synchronous=NORMAL")
        self.max_rows, self.max_days = max_rows, max_days
        self._since_prune = PRUNE_EVERY   # the first insert checks the bounds
        self._count_lock = threading.Lock()
        # Searches read on a connection of their own (WAL: readers never wait for the writer,
        # nor it for them): a 0.2 s scan must not hold up an insert on a camera's thread.
        self._reader = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False,
                                       timeout=BUSY_TIMEOUT_MS / 1000)
        self._read_lock = threading.Lock()

    def close(self) -> None:
        with self._read_lock:
            self._reader.close()
        super().close()

    def _read(self, sql: str, args=()) -> list:
        with self._read_lock:
            self._refuse_if_faulty()
            try:
                return self._reader.execute(sql, args).fetchall()
            except sqlite3.Error as exc:
                err = self._storage_error(exc)
                if err is None:
                    raise
                raise err from None

    # -- writes -------------------------------------------------------------------------
    def add(self, event: Event) -> int:
        """Store one event (one commit); returns its id."""
        values = (event.event_id, event.ts, event.kind, event.camera, event.track_id, event.user_id,
                  event.group_id, event.user_info, event.score, event.error_code, event.error_msg, event.reason,
                  event.frames, event.liveness, event.liveness_score)
        with self._write() as db:
            rid = db.execute(f"INSERT INTO events ({', '.join(COLUMNS[1:])}) VALUES "
                             f"({', '.join('?' * len(values))})", values).lastrowid
        with self._count_lock:
            self._since_prune += 1
            due = self._since_prune >= PRUNE_EVERY
            if due:
                self._since_prune = 0
        if due:
            self.prune()
        return rid

    def prune(self, now: float | None = None) -> int:
        """Drop what is beyond the bounds (older than max_days, then the oldest beyond
        max_rows); returns how many, added to the file's `dropped` count."""
        cutoff = (time.time() if now is None else now) - self.max_days * 86400
        with self._write() as db:
            n = db.execute("DELETE FROM events WHERE ts<?", (cutoff,)).rowcount
            last = db.execute("SELECT id FROM events ORDER BY id DESC LIMIT 1 OFFSET ?",
                              (self.max_rows - 1,)).fetchone()
            if last:   # ids grow with arrival: keep the newest max_rows
                n += db.execute("DELETE FROM events WHERE id<?", (last[0],)).rowcount
            if n:
                db.execute("UPDATE meta SET value=value+? WHERE key='dropped'", (n,))
        return n

    # -- reads --------------------------------------------------------------------------
    def count(self) -> int:
        return self._one("SELECT COUNT(*) FROM events")

    def dropped(self) -> int:
        """Events dropped by the bounds since the file was created."""
        return self._one("SELECT value FROM meta WHERE key='dropped'")

    def cameras(self) -> list[str]:
        """The cameras seen (for the search form)."""
        return [r[0] for r in self._read("SELECT DISTINCT camera FROM events ORDER BY camera")]

    def search(self, q: Query) -> Page:
        """Newest first (time, then arrival); the page's `next` continues after its last."""
        filters = [("ts>=?", q.since, q.since is not None), ("ts<?", q.until, q.until is not None),
                   ("camera=?", q.camera, bool(q.camera)), ("kind=?", q.kind, bool(q.kind)),
                   ("error_code=?", q.error_code, q.error_code is not None)]
        where = [sql for sql, _, on in filters if on]
        args = [value for _, value, on in filters if on]
        if q.person:
            where.append("(user_id LIKE ? ESCAPE '\\' OR user_info LIKE ? ESCAPE '\\')")
            args += [_like(q.person)] * 2
        if q.cursor:
            ts, rid = decode_cursor(q.cursor)
            where.append("(ts<? OR (ts=? AND id<?))")
            args += [ts, ts, rid]
        sql = (f"SELECT {', '.join(COLUMNS)} FROM events WHERE {' AND '.join(where) or '1'} "
               "ORDER BY ts DESC, id DESC LIMIT ?")
        found = self._read(sql, (*args, q.limit + 1))
        rows = [self._row(r) for r in found[:q.limit]]
        more = len(found) > q.limit
        return Page(rows, encode_cursor(rows[-1].event.ts, rows[-1].id) if more else "")

    @staticmethod
    def _row(r) -> Row:
        d = dict(zip(COLUMNS, r))
        return Row(d.pop("id"), Event.from_dict(d))


class HistorySink(Sink):
    """Every event into an EventHistory; the sink owns it (close() closes it)."""

    def __init__(self, history: EventHistory, name: str = "history"):
        self.history, self.name = history, name

    def handle(self, event: Event) -> int:
        return self.history.add(event)

    def close(self) -> None:
        self.history.close()
