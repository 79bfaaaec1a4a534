"""PgLibraryStore: an app's face library in PostgreSQL, with the SQLite store's rules.

The rules (every write, read, the change log, replication and the stale rule) are
LibraryRules' (edge/library/store.py), run over this module's connection: the same
LibraryError kinds, the same change rows (op, group_id, user_id, face_token,
face_ref, data JSON), so a hub's feed bytes do not depend on its backend. What
differs is here:

- Every write is ONE transaction that first locks the app's head row (`SELECT seq
  FROM head FOR UPDATE`) and gives its changes seq head+1, head+2, ... moving head
  with them: an app's writers, in any number of hub processes, run one after the
  other, so commit order is seq order and a feed reader that reads head and then the
  changes up to it never misses a change that commits later with a lower seq
  (docs/scale.md, "The library on PostgreSQL").
- Row ids are SQLite's: groups and members take max(id)+1 (SQLite's rowid rule),
  faces never reuse an id (SQLite's AUTOINCREMENT: the high water is meta
  FACES_SEQ_KEY), all inside the locked transaction, so a rolled-back write leaves
  no gap (a PostgreSQL sequence would) and both backends number faces alike.
- Text is ordered by bytes (COLLATE "C"), as SQLite's BINARY orders it, whatever
  the database's collation.
"""
from __future__ import annotations

import json
import threading
import time
import uuid as uuidlib
from contextlib import contextmanager

import numpy as np

from edge.library.store import LibraryRules, _blob
from edge.postgres.connect import Database
from edge.postgres.migration_mark import MARK_KEY, refuse_incomplete
from edge.postgres.schema import FACES_SEQ_KEY, SchemaError, ensure_app, quoted
from edge.sqlite import StorageError

# The public writes: each runs again whole after a serialization conflict or deadlock.
WRITES = ("register", "register_many", "delete_user", "leave_groups", "copy_user", "delete_face", "add_group",
          "delete_group", "restore", "apply_replica", "apply_push", "put_tokens", "compact")


class _Sql:
    """A psycopg connection speaking LibraryRules' SQL (`?` placeholders)."""

    def __init__(self, conn):
        self.conn = conn

    def execute(self, sql: str, args=()):
        return self.conn.execute(sql.replace("?", "%s"), tuple(args))

    def executemany(self, sql: str, rows) -> None:
        with self.conn.cursor() as cur:
            cur.executemany(sql.replace("?", "%s"), rows)


class PgLibraryStore(LibraryRules):
    """One app's library in its schema of a PostgreSQL database. Thread-safe: every
    call checks out its own pooled connection (reads inside pinned() share one)."""

    BYTES_ORDER = ' COLLATE "C"'

    def __init__(self, db: Database, app_id: str, dim: int = 128):
        self.db = db
        self.app_id = app_id
        self.dim = dim
        self.path = db.location
        self.remedy = ""
        self.fault: StorageError | None = None   # a server's failures are per call, never sticky
        self._pin = threading.local()            # pinned(): this thread's connection for reads
        self.schema_name = self._ensure()
        self._search_path = f"{quoted(self.schema_name)}, public"
        refuse_incomplete(self._one("SELECT value FROM meta WHERE key=?", (MARK_KEY,)), self.path)
        self.uuid = self._open_uuid()

    def _ensure(self) -> str:
        """The app's schema, created or upgraded (schema.ensure_app) in one transaction."""
        def run():
            with self.db.connection() as conn, conn.transaction():
                name = ensure_app(conn, self.app_id, self.dim, adopt=True)
                self.dim = conn.execute("SELECT dim FROM edge.apps WHERE app_id=%s", (self.app_id,)).fetchone()[0]
                return name
        try:
            return self.db.retry(run)
        except SchemaError as exc:
            err = StorageError("schema", self.db.location, f"app {self.app_id}: {exc}")
            self.db.outage(err)
            raise err from None

    def _open_uuid(self) -> str:
        with self._write() as db:
            db.execute("INSERT INTO meta VALUES ('library_uuid', ?) ON CONFLICT (key) DO NOTHING",
                       (uuidlib.uuid4().hex,))
        return self._one("SELECT value FROM meta WHERE key='library_uuid'")

    def close(self) -> None:
        """Nothing of its own to close: the pool is the process's (connect.database)."""

    # -- access -----------------------------------------------------------------
    def _use(self, conn) -> None:
        """This app's schema first on the connection's search path (public: pgvector's operators)."""
        if getattr(conn, "_edge_search_path", None) != self._search_path:
            conn.execute(f"SET search_path TO {self._search_path}")
            conn._edge_search_path = self._search_path

    @contextmanager
    def _write(self):
        """One write transaction holding the app's head row: all of it or nothing."""
        with self.db.connection() as conn:
            self._use(conn)
            with conn.transaction():
                sql = _Sql(conn)
                sql.execute("SELECT seq FROM head FOR UPDATE")
                yield sql

    @contextmanager
    def _token_write(self):
        """put_tokens' transaction WITHOUT the head lock: detected faces are no change of
        the library (no log row), so every hub's detects run side by side, not in the
        enrolments' queue; the upserts go in token order so two never deadlock."""
        with self.db.connection() as conn:
            self._use(conn)
            with conn.transaction():
                yield _Sql(conn)

    @contextmanager
    def pinned(self):
        """The reads inside run on one pooled connection: a search's group lookup, index
        scan and owner lookup cost one checkout (and its liveness check), not three."""
        if getattr(self._pin, "conn", None) is not None:
            yield
            return
        with self.db.connection() as conn:
            self._use(conn)
            self._pin.conn = conn
            try:
                yield
            finally:
                self._pin.conn = None

    def read(self, fn):
        """fn(conn) on a pooled connection in this app's schema (search.py's queries)."""
        conn = getattr(self._pin, "conn", None)
        if conn is not None:
            return fn(conn)
        with self.db.connection() as conn:
            self._use(conn)
            return fn(conn)

    def _one(self, sql: str, args=()):
        row = self.read(lambda conn: _Sql(conn).execute(sql, args).fetchone())
        return None if row is None else row[0]

    def _all(self, sql: str, args=()) -> list:
        return self.read(lambda conn: _Sql(conn).execute(sql, args).fetchall())

    # -- LibraryRules' hooks ----------------------------------------------------------
    def _head(self, db) -> int:
        return db.execute("SELECT seq FROM head").fetchone()[0]

    def _log(self, db, op: str, group_id=None, user_id=None, face_token=None, face_ref=None, data=None):
        db.execute("WITH h AS (UPDATE head SET seq = seq + 1 RETURNING seq) "
                   "INSERT INTO changes (seq, ts, op, group_id, user_id, face_token, face_ref, data) "
                   "SELECT h.seq, ?::float8, ?::text, ?::text, ?::text, ?::text, ?::bigint, ?::text FROM h",
                   (time.time(), op, group_id, user_id, face_token, face_ref,
                    None if data is None else json.dumps(data, ensure_ascii=False)))

    def _insert(self, db, table: str, **cols) -> int:
        names, marks = ", ".join(cols), ", ".join("?" * len(cols))
        if table == "faces":
            high = db.execute("SELECT value FROM meta WHERE key=?", (FACES_SEQ_KEY,)).fetchone()
            face_id = 1 + max(int(high[0]) if high else 0,
                              db.execute("SELECT COALESCE(MAX(id), 0) FROM faces").fetchone()[0])
            self._put_meta(db, FACES_SEQ_KEY, str(face_id))
            return db.execute(f"INSERT INTO faces (id, {names}) VALUES (?, {marks}) RETURNING id",
                              (face_id, *cols.values())).fetchone()[0]
        return db.execute(f"INSERT INTO {table} (id, {names}) VALUES "
                          f"((SELECT COALESCE(MAX(id), 0) + 1 FROM {table}), {marks}) RETURNING id",
                          tuple(cols.values())).fetchone()[0]

    def _put_meta(self, db, key: str, value: str) -> None:
        db.execute("INSERT INTO meta VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                   (key, value))

    def _skip_face(self, db, group_id: str, user_id: str, face_token: str, model: str) -> None:
        db.execute("INSERT INTO sync_skipped VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                   (group_id, user_id, face_token, model))

    def _put_token_rows(self, db, rows: list[tuple]) -> None:
        rows = sorted(rows, key=lambda r: r[0])
        db.executemany("INSERT INTO tokens (face_token, embedding, model, quality, ctime) VALUES (?, ?, ?, ?, ?) "
                       "ON CONFLICT (face_token) DO UPDATE SET embedding = EXCLUDED.embedding, "
                       "model = EXCLUDED.model, quality = EXCLUDED.quality, ctime = EXCLUDED.ctime", rows)

    @staticmethod
    def _emb(vec: np.ndarray):
        return np.ascontiguousarray(vec, dtype=np.float32)

    @staticmethod
    def _unemb(value) -> np.ndarray:
        """pgvector's Vector (its Python package's loader) as float32."""
        return np.asarray(value.to_numpy() if hasattr(value, "to_numpy") else value, dtype=np.float32)

    def _matrix(self, values: list) -> np.ndarray:
        return np.stack([self._unemb(v) for v in values])

    def _wire_rows(self, phase: str, rows: list) -> list:
        if phase != "faces":
            return rows
        return [(*r[:5], _blob(self._unemb(r[5])), *r[6:]) for r in rows]

    # -- what PostgreSQL answers differently ---------------------------------------------
    def last_seq(self) -> int:
        """The app's head: every seq up to it is committed (writers hold the head row)."""
        return self._one("SELECT seq FROM head")

    def nearest_faces(self, query: np.ndarray, k: int, group_refs: list[int] | None):
        """(face_ref, group_ref, similarity) of the k nearest faces (edge.postgres.search)."""
        from edge.postgres.search import nearest_faces
        return self.read(lambda conn: nearest_faces(conn, self.schema_name, query, k, group_refs))


def _retried(name: str):
    base = getattr(LibraryRules, name)

    def method(self, *args, **kwargs):
        return self.db.retry(lambda: base(self, *args, **kwargs))
    method.__name__, method.__doc__, method.__qualname__ = name, base.__doc__, f"PgLibraryStore.{name}"
    return method


for _name in WRITES:
    setattr(PgLibraryStore, _name, _retried(_name))
