"""A durable, bounded queue of events waiting to be delivered, in one SQLite file.

put() returns only after its transaction committed (WAL, synchronous=FULL), so a put
that returned is the acknowledgement: a kill -9 or power cut after it loses nothing.
The sender then claim()s the oldest pending rows and marks each done(), retry()-s it
later, or moves it to the dead-letter table. Delivery is at-least-once: a kill between
a receiver's 200 and done() sends that event again on restart.

Bounded, because a terminal's SD card is small and shared with the face library: a
week-long network outage must not fill the disk and take the library down with it.
Past max_rows the oldest delivered rows go first (they are only kept as a record and
so a replayed put() of the same event_id is ignored); if pending rows alone exceed the
bound, the oldest pending are dropped, logged and counted (meta 'dropped'), rather than
refusing new events: the capture loop must never block on the network, and when only
some events can be kept the newest ones (who is at the gate now) matter most.

One consumer per file (ordering is per file; several writers are fine: SQLite
serialises them and `busy_timeout` makes a writer wait rather than fail).
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from edge.events.event import Event
from edge.sqlite import SqliteFile

log = logging.getLogger(__name__)

DROP_LOG_EVERY_S = 60.0

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    created REAL NOT NULL,
    body TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at REAL NOT NULL,
    delivered REAL,
    last_error TEXT);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox(id) WHERE delivered IS NULL;
CREATE TABLE IF NOT EXISTS dead (
    id INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL,
    created REAL NOT NULL,
    body TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    failed REAL NOT NULL,
    error TEXT NOT NULL);
"""


@dataclass(frozen=True)
class OutboxItem:
    id: int                 # position in creation order
    event_id: str
    created: float
    body: str               # the event's JSON, sent byte for byte on every attempt
    attempts: int           # failed attempts so far


@dataclass(frozen=True)
class DeadLetter:
    id: int
    event_id: str
    created: float
    body: str
    attempts: int
    failed: float
    error: str


@dataclass(frozen=True)
class OutboxStats:
    pending: int
    delivered: int
    dead: int
    dropped: int            # pending rows discarded by the bound, ever


class Outbox(SqliteFile):
    """The queue of one destination. Thread-safe."""

    REMEDY = "`edge run` sets it aside and starts a new outbox at its next start (docs/storage.md)"

    def __init__(self, path: Path | str, max_rows: int = 50_000, max_dead: int = 10_000):
        if max_rows < 1 or max_dead < 1:
            raise ValueError("max_rows and max_dead must be positive")
        super().__init__(path, SCHEMA)
        self.max_rows, self.max_dead = max_rows, max_dead
        self._last_drop_log = 0.0
        self._dropped_unlogged = 0
        with self._write() as db:
            db.execute("INSERT OR IGNORE INTO meta VALUES ('dropped', 0)")
            # the row count put() checks the bound against, recounted at every open
            db.execute("INSERT OR REPLACE INTO meta VALUES ('rows', (SELECT COUNT(*) FROM outbox))")

    def put(self, event: Event) -> int:
        """Queue the event; committed when this returns. Returns its id. A second put
        of an event_id still in the table is ignored (returns the first one's id)."""
        now = time.time()
        with self._write() as db:
            cur = db.execute("INSERT OR IGNORE INTO outbox (event_id, created, body, next_at) VALUES (?, ?, ?, ?)",
                             (event.event_id, now, event.to_json(), now))
            if cur.rowcount == 0:
                return db.execute("SELECT id FROM outbox WHERE event_id=?", (event.event_id,)).fetchone()[0]
            self._count_rows(db, +1)
            return cur.lastrowid

    def _count_rows(self, db, delta: int) -> None:
        """Keep meta 'rows' (no RETURNING: Raspberry Pi OS 11 ships SQLite 3.34) and
        enforce the bound."""
        db.execute("UPDATE meta SET value=value+? WHERE key='rows'", (delta,))
        rows = db.execute("SELECT value FROM meta WHERE key='rows'").fetchone()[0]
        if rows > self.max_rows:
            self._shrink(db, rows - self.max_rows)

    def _shrink(self, db, excess: int) -> None:
        n = db.execute("DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE delivered IS NOT NULL "
                       "ORDER BY id LIMIT ?)", (excess,)).rowcount
        if n < excess:
            n += self._drop_pending(db, excess - n)
        db.execute("UPDATE meta SET value=value-? WHERE key='rows'", (n,))

    def _drop_pending(self, db, count: int) -> int:
        dropped = db.execute("DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE delivered IS NULL "
                             "ORDER BY id LIMIT ?)", (count,)).rowcount
        db.execute("UPDATE meta SET value=value+? WHERE key='dropped'", (dropped,))
        self._dropped_unlogged += dropped
        now = time.monotonic()
        if now - self._last_drop_log >= DROP_LOG_EVERY_S:   # one line a minute, not one per event
            log.warning("outbox %s full (%d undelivered): dropped the %d oldest undelivered event(s)",
                        self.path, self.max_rows, self._dropped_unlogged)
            self._last_drop_log, self._dropped_unlogged = now, 0
        return dropped

    # -- consumer ---------------------------------------------------------------
    def claim(self, batch: int = 20, now: float | None = None) -> list[OutboxItem]:
        """The oldest pending rows, in creation order, up to the first one still in
        back-off: nothing overtakes an event waiting for its retry."""
        now = time.time() if now is None else now
        rows = self._all("SELECT id, event_id, created, body, attempts, next_at FROM outbox "
                         "WHERE delivered IS NULL ORDER BY id LIMIT ?", (batch,))
        out = []
        for r in rows:
            if r[5] > now:
                break
            out.append(OutboxItem(*r[:5]))
        return out

    def next_due(self) -> float | None:
        """When the head of the queue may be sent (unix time); None when nothing is pending."""
        return self._one("SELECT next_at FROM outbox WHERE delivered IS NULL ORDER BY id LIMIT 1")

    def done(self, ids: Iterable[int]) -> None:
        ids = list(ids)
        if not ids:
            return
        now = time.time()
        with self._write() as db:
            db.executemany("UPDATE outbox SET delivered=?, last_error=NULL WHERE id=? AND delivered IS NULL",
                           [(now, i) for i in ids])

    def retry(self, id: int, next_attempt_at: float, error: str = "") -> None:
        """Count a failed attempt and hold the row (and so the queue) until next_attempt_at."""
        with self._write() as db:
            db.execute("UPDATE outbox SET attempts=attempts+1, next_at=?, last_error=? "
                       "WHERE id=? AND delivered IS NULL", (next_attempt_at, error, id))

    def dead(self, id: int, error: str) -> None:
        """Move a row that can never be delivered (or ran out of attempts) to the
        dead-letter table, counting this last failed attempt."""
        with self._write() as db:
            moved = db.execute("INSERT OR REPLACE INTO dead (id, event_id, created, body, attempts, failed, error) "
                               "SELECT id, event_id, created, body, attempts+1, ?, ? FROM outbox "
                               "WHERE id=? AND delivered IS NULL", (time.time(), error, id)).rowcount
            if moved:
                db.execute("DELETE FROM outbox WHERE id=?", (id,))
                self._count_rows(db, -1)
                db.execute("DELETE FROM dead WHERE id IN (SELECT id FROM dead ORDER BY failed DESC, id DESC "
                           "LIMIT -1 OFFSET ?)", (self.max_dead,))

    def redeliver_dead(self, ids: Iterable[int] | None = None) -> int:
        """Put dead letters back in the queue (all when ids is None), at their original
        place: for an operator once the receiver's fault is fixed. Returns how many."""
        if ids is None:
            where, args = "", ()
        else:
            args = tuple(ids)
            if not args:
                return 0
            where = f"WHERE id IN ({','.join('?' * len(args))})"
        with self._write() as db:
            n = db.execute(f"INSERT OR IGNORE INTO outbox (id, event_id, created, body, attempts, next_at) "
                           f"SELECT id, event_id, created, body, 0, ? FROM dead {where}", (time.time(), *args)).rowcount
            db.execute(f"DELETE FROM dead {where}", args)
            self._count_rows(db, n)
        return n

    # -- inspection -------------------------------------------------------------
    def pending_count(self) -> int:
        return self._one("SELECT COUNT(*) FROM outbox WHERE delivered IS NULL")

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        """The most recent dead letters first."""
        return [DeadLetter(*r) for r in self._all(
            "SELECT id, event_id, created, body, attempts, failed, error FROM dead ORDER BY failed DESC, id DESC "
            "LIMIT ?", (limit,))]

    def stats(self) -> OutboxStats:
        with self._lock:
            pending, delivered = self._all("SELECT COUNT(*) - COUNT(delivered), COUNT(delivered) FROM outbox")[0]
            dead = self._one("SELECT COUNT(*) FROM dead")
            dropped = self._one("SELECT value FROM meta WHERE key='dropped'")
        return OutboxStats(pending, delivered, dead, dropped)
