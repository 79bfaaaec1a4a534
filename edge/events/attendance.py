"""Attendance: who was recognised, where and when, in one SQLite file, exportable as CSV.

record() is idempotent on event_id (an event replayed after a crash, or delivered by
two paths, counts once) and, with min_interval_s, keeps one record per person per
interval: a person standing at a kiosk is recognised again every few seconds, and an
attendance list wants "arrived 08:58", not sixty rows. Storage follows
edge.library.store: WAL, synchronous=FULL, one BEGIN IMMEDIATE transaction per call,
so a record() that returned is on disk.

Days are the terminal's local days (attendance is about the local working day).
"""
from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TextIO, Union

from edge.events.event import Event, format_iso
from edge.events.sinks import Sink
from edge.fileio import atomic_open
from edge.sqlite import SqliteFile

log = logging.getLogger(__name__)

CSV_COLUMNS = ("time", "date", "user_id", "group_id", "camera", "score", "event_id")

SCHEMA = """
CREATE TABLE IF NOT EXISTS attendance (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    user_id TEXT NOT NULL,
    group_id TEXT NOT NULL,
    camera TEXT NOT NULL,
    score REAL,
    ts REAL NOT NULL);
CREATE INDEX IF NOT EXISTS attendance_ts ON attendance(ts);
CREATE INDEX IF NOT EXISTS attendance_user_ts ON attendance(user_id, ts);
"""

When = Union[float, int, datetime, date]


def _ts(when: When) -> float:
    """Unix time of a float, a datetime (naive = local) or a date (its local midnight)."""
    if isinstance(when, datetime):
        return when.timestamp()
    if isinstance(when, date):
        return datetime(when.year, when.month, when.day).timestamp()
    return float(when)


def _day(day: date | str) -> date:
    return date.fromisoformat(day) if isinstance(day, str) else day


@dataclass(frozen=True)
class AttendanceRecord:
    event_id: str
    user_id: str
    group_id: str
    camera: str
    score: float | None
    ts: float

    @property
    def iso(self) -> str:
        return format_iso(self.ts)


@dataclass(frozen=True)
class DaySummary:
    """One person's day: first and last record and how many records between."""
    user_id: str
    first: float
    last: float
    count: int


class AttendanceStore(SqliteFile):
    """Thread-safe; several processes may share the file."""

    REMEDY = "`edge run` sets it aside and starts a new one at its next start (docs/storage.md)"

    def __init__(self, path: Path | str, min_interval_s: float = 0.0):
        super().__init__(path, SCHEMA)
        self.min_interval_s = min_interval_s

    # -- writes -------------------------------------------------------------------
    def record(self, user_id: str, group_id: str, camera: str, score: float | None, ts: float,
               event_id: str) -> bool:
        """Record a recognition; False (nothing written) when the event_id is already
        recorded or the user has a record within min_interval_s of ts (either side:
        events from two cameras may arrive out of order)."""
        with self._write() as db:
            if db.execute("SELECT 1 FROM attendance WHERE event_id=?", (event_id,)).fetchone():
                log.debug("attendance: event %s already recorded", event_id)
                return False
            if self.min_interval_s > 0 and db.execute(
                    "SELECT 1 FROM attendance WHERE user_id=? AND ts>? AND ts<? LIMIT 1",
                    (user_id, ts - self.min_interval_s, ts + self.min_interval_s)).fetchone():
                log.debug("attendance: %s already recorded within %g s of event %s",
                          user_id, self.min_interval_s, event_id)
                return False
            db.execute("INSERT INTO attendance (event_id, user_id, group_id, camera, score, ts) "
                       "VALUES (?, ?, ?, ?, ?, ?)", (event_id, user_id, group_id, camera, score, ts))
        return True

    def record_event(self, event: Event) -> bool:
        """record() a recognised event; other kinds are not attendance (False)."""
        if event.kind != "recognised":
            return False
        return self.record(event.user_id, event.group_id, event.camera, event.score, event.ts, event.event_id)

    def purge_before(self, when: When) -> int:
        """Delete the records older than `when` (retention); returns how many."""
        with self._write() as db:
            return db.execute("DELETE FROM attendance WHERE ts<?", (_ts(when),)).rowcount

    # -- reads --------------------------------------------------------------------
    def records(self, since: When | None = None, until: When | None = None,
                user_id: str | None = None) -> list[AttendanceRecord]:
        """Records with since <= ts < until, oldest first."""
        where, args = ["1"], []
        if since is not None:
            where.append("ts>=?")
            args.append(_ts(since))
        if until is not None:
            where.append("ts<?")
            args.append(_ts(until))
        if user_id is not None:
            where.append("user_id=?")
            args.append(user_id)
        rows = self._all("SELECT event_id, user_id, group_id, camera, score, ts FROM attendance "
                         f"WHERE {' AND '.join(where)} ORDER BY ts, id", tuple(args))
        return [AttendanceRecord(*r) for r in rows]

    def day(self, day: date | str, user_id: str | None = None) -> list[AttendanceRecord]:
        """The records of one local day ("2024-05-31" or a date)."""
        d = _day(day)
        return self.records(d, d + timedelta(days=1), user_id)

    def day_summary(self, day: date | str) -> list[DaySummary]:
        """First and last record per person on a local day, by user_id."""
        d = _day(day)
        rows = self._all("SELECT user_id, MIN(ts), MAX(ts), COUNT(*) FROM attendance WHERE ts>=? AND ts<? "
                         "GROUP BY user_id ORDER BY user_id", (_ts(d), _ts(d + timedelta(days=1))))
        return [DaySummary(*r) for r in rows]

    def export_csv(self, dest: Path | str | TextIO, since: When | None = None, until: When | None = None) -> int:
        """Write records (since <= ts < until) as CSV with a header row; `time` is ISO
        8601 local time with offset, `date` the local day. A path is written to a
        temporary file and renamed, so a reader never sees half an export. Returns the
        number of records."""
        rows = self.records(since, until)
        if isinstance(dest, (str, Path)):
            with atomic_open(dest, "w", newline="", encoding="utf-8") as f:
                self._write_csv(f, rows)
        else:
            self._write_csv(dest, rows)
        return len(rows)

    @staticmethod
    def _write_csv(f: TextIO, rows: list[AttendanceRecord]) -> None:
        w = csv.writer(f)
        w.writerow(CSV_COLUMNS)
        for r in rows:
            iso = r.iso
            w.writerow((iso, iso[:10], r.user_id, r.group_id, r.camera,
                        "" if r.score is None else f"{r.score:.2f}", r.event_id))


class AttendanceSink(Sink):
    """Feeds recognised events to an AttendanceStore; handle() says if it recorded.
    The sink owns the store: close() closes it."""

    def __init__(self, store: AttendanceStore, name: str = "attendance"):
        self.store, self.name = store, name

    def handle(self, event: Event) -> bool:
        return self.store.record_event(event)

    def close(self) -> None:
        self.store.close()
