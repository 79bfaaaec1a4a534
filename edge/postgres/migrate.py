"""`edge library migrate`: an app's library moved whole between SQLite and PostgreSQL.

A table copy, not a replay: groups, members, faces, the change log with its seqs and
head, meta (library uuid, log floor, replica state) and the sync tables keep their row
ids, so terminals following the hub keep following after the move (same uuid, same
seqs). Detected-face tokens (an hour's cache) are not moved.

Resumable: each batch is written in one target transaction with the table's progress
(last key copied), and the target carries MARK_KEY (never served) until both sides'
digests agree. The source's fingerprint (head + meta) is recorded at the start; a run
that finds another one starts the target over. Into PostgreSQL the HNSW index is dropped
first and built once at the end; into SQLite the copy is a `library.db.migrating`
renamed into place once verified (an existing library.db is set aside, never deleted).
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from edge.postgres.bulk import BUILD_SETTINGS
from edge.postgres.migration_mark import MARK_KEY, IncompleteLibrary, refuse_incomplete
from edge.postgres.schema import FACES_SEQ_KEY, SchemaError, app_schema, ensure_app, quoted
from edge.sqlite import set_aside

__all__ = ["MARK_KEY", "IncompleteLibrary", "refuse_incomplete", "MigrateError", "migrate", "Report"]

log = logging.getLogger(__name__)

BATCH_ROWS = 5000
CONNECT_TIMEOUT_S = 10
# pg_advisory_lock(MIGRATE_LOCK, hashtext(app_id)): one migration of an app at a time.
MIGRATE_LOCK = 0x6D696772   # "migr"
TMP_SUFFIX = ".migrating"
PROGRESS = "migration"      # the target's progress table (dropped once verified)


class MigrateError(Exception):
    """The migration cannot start or finish; the message is the one line an operator sees."""


@dataclass(frozen=True)
class Table:
    name: str
    key: tuple[str, ...]        # unique, the copy's and the digest's order
    columns: tuple[str, ...]
    types: tuple[str, ...]      # PostgreSQL's, for the binary COPY

    @property
    def text_key(self) -> bool:
        return self.key[0] not in ("id", "seq")


TABLES = (
    Table("groups", ("id",), ("id", "group_id", "ctime"), ("int8", "text", "float8")),
    Table("members", ("id",), ("id", "group_ref", "user_id", "user_info", "ctime"),
          ("int8", "int8", "text", "text", "float8")),
    Table("faces", ("id",), ("id", "member_ref", "group_ref", "face_token", "embedding", "model", "quality", "ctime"),
          ("int8", "int8", "int8", "text", "vector", "text", "text", "float8")),
    Table("changes", ("seq",), ("seq", "ts", "op", "group_id", "user_id", "face_token", "face_ref", "data"),
          ("int8", "float8", "text", "text", "text", "text", "int8", "text")),
    Table("pushed", ("op_id",), ("op_id", "origin", "first_seq", "last_seq", "error_kind", "detail", "ts"),
          ("text", "text", "int8", "int8", "text", "text", "float8")),
    Table("sync_skipped", ("group_id", "user_id", "face_token"), ("group_id", "user_id", "face_token", "model"),
          ("text", "text", "text", "text")),
    Table("meta", ("key",), ("key", "value"), ("text", "text")),
)
_FLOATS = {"ctime", "ts"}
_EMBEDDING = "embedding"


@dataclass
class Report:
    app_id: str
    to: str
    source: str
    target: str
    library_uuid: str = ""
    head: int = 0
    resumed: bool = False
    restarted: str = ""                    # why the target was started over, if it was
    copied: dict = field(default_factory=dict)   # rows copied by this run, per table
    copy_s: float = 0.0
    rows_per_s: float = 0.0
    index_s: float = 0.0
    verified: dict = field(default_factory=dict)  # rows compared, per table
    verify_s: float = 0.0
    set_aside: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


# -- the two sides ------------------------------------------------------------------
def _sqlite_rows(db: sqlite3.Connection, t: Table, after: list | None, limit: int) -> list[tuple]:
    where, args = "", []
    if after is not None:
        where = f"WHERE ({', '.join(t.key)}) > ({', '.join('?' * len(t.key))})" if len(t.key) > 1 \
            else f"WHERE {t.key[0]} > ?"
        args = list(after)
    if t.name == "meta":   # the mark, and PostgreSQL's face high water (sqlite_sequence's there)
        where = (where + " AND " if where else "WHERE ") + "key NOT IN (?, ?)"
        args += [MARK_KEY, FACES_SEQ_KEY]
    return db.execute(f"SELECT {', '.join(t.columns)} FROM {t.name} {where} ORDER BY {', '.join(t.key)} LIMIT ?",
                      (*args, limit)).fetchall()


def _pg_key(t: Table) -> list[str]:
    return [f'{k} COLLATE "C"' for k in t.key] if t.text_key else list(t.key)


def _pg_rows(cur, s: str, t: Table, after: list | None, limit: int) -> list[tuple]:
    """Rows in the order SQLite's BINARY collation gives (bytes of UTF-8 = "C")."""
    keys = _pg_key(t)
    where, args = "", []
    if after is not None:
        where = f"WHERE ({', '.join(keys)}) > ({', '.join(['%s'] * len(keys))})" if len(keys) > 1 \
            else f"WHERE {keys[0]} > %s"
        args = list(after)
    if t.name == "meta":   # the mark, and the face high water (moved as sqlite_sequence)
        where = (where + " AND " if where else "WHERE ") + "key NOT IN (%s, %s)"
        args += [MARK_KEY, FACES_SEQ_KEY]
    return cur.execute(f"SELECT {', '.join(t.columns)} FROM {s}.{t.name} {where} ORDER BY {', '.join(keys)} "
                       f"LIMIT %s", (*args, limit)).fetchall()


def _key_of(t: Table, row: tuple) -> list:
    return [row[t.columns.index(k)] for k in t.key]


class _PgVector(bytes):
    """A vector in pgvector's binary form (int16 dim, int16 0, big-endian float32s)."""


def _to_pgvector(blob: bytes) -> _PgVector:
    vec = np.frombuffer(blob, dtype="<f4")
    return _PgVector(np.array([len(vec), 0], dtype=">u2").tobytes() + vec.astype(">f4").tobytes())


def _from_pgvector(data) -> bytes:
    """SQLite's form of a vector: little-endian float32s (bit-exact either way)."""
    return np.frombuffer(bytes(data)[4:], dtype=">f4").astype("<f4").tobytes()


def _register_raw_vector(conn) -> None:
    """Vectors as bytes in both directions: no per-row float conversions."""
    from psycopg.adapt import Dumper, Loader
    from psycopg.pq import Format
    from psycopg.types import TypeInfo
    info = TypeInfo.fetch(conn, "vector")
    if info is None:
        raise MigrateError("the database has no pgvector extension (CREATE EXTENSION vector)")
    info.register(conn)

    class RawDumper(Dumper):
        format = Format.BINARY
        oid = info.oid

        def dump(self, obj):
            return bytes(obj)

    class RawLoader(Loader):
        format = Format.BINARY

        def load(self, data):
            return _from_pgvector(data)

    conn.adapters.register_dumper(_PgVector, RawDumper)
    conn.adapters.register_loader(info.oid, RawLoader)


def _canonical(t: Table, row: tuple) -> bytes:
    """A row as bytes that both backends give alike: ints, float64s by their hex,
    text as UTF-8, embeddings as little-endian float32."""
    parts = []
    for name, value in zip(t.columns, row):
        if value is None:
            parts.append(b"N")
        elif name == _EMBEDDING:
            parts.append(b"b%d:" % len(value) + bytes(value))
        elif name in _FLOATS:
            parts.append(b"f" + float(value).hex().encode())
        elif isinstance(value, int):
            parts.append(b"i%d" % value)
        else:
            text = str(value).encode()
            parts.append(b"s%d:" % len(text) + text)
    return b"|".join(parts) + b"\n"


def _digest(read, t: Table, batch: int) -> tuple[int, str]:
    """(rows, sha256) of a table read in key order, batch by batch (read(after, limit))."""
    h, n, after = hashlib.sha256(), 0, None
    while True:
        rows = read(after, batch)
        for row in rows:
            h.update(_canonical(t, row))
        n += len(rows)
        if len(rows) < batch:
            return n, h.hexdigest()
        after = _key_of(t, rows[-1])


# -- source and target facts -----------------------------------------------------------
def _fingerprint(head: int, meta: list[tuple[str, str]]) -> str:
    """What must not change while an app is copied: its head and its meta (uuid, log
    floor, replica state): compacting the log moves the floor, not the head."""
    rows = sorted((k, v) for k, v in meta if k != MARK_KEY)
    return hashlib.sha256(json.dumps([head, rows]).encode()).hexdigest()


def _sqlite_state(db: sqlite3.Connection) -> tuple[int, dict, int]:
    """(head, meta, faces high-water mark) of a SQLite library."""
    head = db.execute("SELECT COALESCE(MAX(seq), 0) FROM changes").fetchone()[0]
    meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
    row = db.execute("SELECT seq FROM sqlite_sequence WHERE name='faces'").fetchone()
    top = db.execute("SELECT COALESCE(MAX(id), 0) FROM faces").fetchone()[0]
    return head, meta, max(top, row[0] if row else 0)


def _pg_state(cur, s: str) -> tuple[int, dict, int]:
    head = cur.execute(f"SELECT seq FROM {s}.head").fetchone()[0]
    meta = dict(cur.execute(f"SELECT key, value FROM {s}.meta").fetchall())
    top = cur.execute(f"SELECT COALESCE(MAX(id), 0) FROM {s}.faces").fetchone()[0]
    return head, meta, max(top, int(meta.get(FACES_SEQ_KEY, 0)))


def _sqlite_holds_data(db: sqlite3.Connection) -> bool:
    return any(db.execute(f"SELECT 1 FROM {t} LIMIT 1").fetchone() for t in ("groups", "changes"))


def _pg_holds_data(cur, s: str) -> bool:
    return any(cur.execute(f"SELECT 1 FROM {s}.{t} LIMIT 1").fetchone() for t in ("groups", "changes"))


def _where(dsn: str) -> str:
    """A DSN without its password, for messages."""
    from psycopg.conninfo import conninfo_to_dict
    try:
        parts = conninfo_to_dict(dsn)
    except Exception:  # noqa: BLE001 - any unparsable DSN is the same operator error
        return "an unparsable DSN"
    host = parts.get("host") or "localhost"
    if "/" in host:
        host = "socket " + host
    return f"{parts.get('user', '')}@{host}:{parts.get('port', 5432)}/{parts.get('dbname', '')}".lstrip("@")


def connect(dsn: str):
    """An autocommit connection: every write below is an explicit transaction."""
    import psycopg
    try:
        conn = psycopg.connect(dsn, connect_timeout=CONNECT_TIMEOUT_S, autocommit=True)
    except psycopg.ProgrammingError as exc:
        raise MigrateError(f"not a valid PostgreSQL DSN: {_first_line(exc)}") from None
    except psycopg.Error as exc:
        raise MigrateError(f"cannot connect to PostgreSQL at {_where(dsn)}: {_first_line(exc)}") from None
    return conn


def _first_line(exc: Exception) -> str:
    """psycopg's message (several lines for a failed connection) as one line."""
    return " ".join(str(exc).split())[:300] or type(exc).__name__


@contextmanager
def _errors():
    """What a database or file failure means to the operator, as one MigrateError."""
    import psycopg
    try:
        yield
    except (SchemaError, IncompleteLibrary) as exc:
        raise MigrateError(str(exc)) from None
    except psycopg.Error as exc:
        raise MigrateError(f"PostgreSQL failed during the migration: {_first_line(exc)}; run the command again "
                           f"to continue") from None
    except sqlite3.Error as exc:
        raise MigrateError(f"SQLite failed during the migration: {exc}; run the command again to continue") from None


@contextmanager
def _locked(conn, app_dir: Path, app_id: str):
    """One migration of an app at a time: a lock file beside its SQLite library (this
    machine) and a session advisory lock in the database (any machine)."""
    app_dir.mkdir(parents=True, exist_ok=True)
    with open(app_dir / "migrate.lock", "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise MigrateError(f"another migration of app {app_id} is running (lock {fh.name})") from None
        got = conn.execute("SELECT pg_try_advisory_lock(%s, hashtext(%s))", (MIGRATE_LOCK, app_id)).fetchone()[0]
        if not got:
            raise MigrateError(f"another migration of app {app_id} is running on this database")
        try:
            yield
        finally:
            if not conn.closed and not conn.broken:
                conn.rollback()
                conn.autocommit = True
                conn.execute("SELECT pg_advisory_unlock(%s, hashtext(%s))", (MIGRATE_LOCK, app_id))


def _open_sqlite(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(str(path), isolation_level=None, timeout=30)
    db.execute("PRAGMA busy_timeout=30000")
    return db


def _mark(source: str, uuid: str, head: int, fingerprint: str, **extra) -> str:
    return json.dumps({"source": source, "library_uuid": uuid, "head": head, "fingerprint": fingerprint,
                       "started": time.time(), **extra}, sort_keys=True)


def _verify(report: Report, src_read, dst_read, src_top: int, dst_top: int, batch: int) -> None:
    t0 = time.perf_counter()
    for t in TABLES:
        a = _digest(lambda after, n, t=t: src_read(t, after, n), t, batch)
        b = _digest(lambda after, n, t=t: dst_read(t, after, n), t, batch)
        if a != b:
            raise MigrateError(f"verification failed: {t.name} differs ({a[0]} rows in the source, {b[0]} in the "
                               f"target); the next run starts over")
        report.verified[t.name] = a[0]
    if src_top != dst_top:
        raise MigrateError(f"verification failed: face id high-water marks differ ({src_top} vs {dst_top})")
    report.verify_s = round(time.perf_counter() - t0, 3)


# -- SQLite -> PostgreSQL ------------------------------------------------------------
def to_postgres(db_path: Path, dsn: str, app_id: str, *, replace: bool = False, batch: int = BATCH_ROWS,
                say=log.warning) -> Report:
    from edge.library.store import LibraryStore
    from edge.sqlite import StorageError
    if not db_path.is_file() or db_path.stat().st_size == 0:
        raise MigrateError(f"app {app_id} has no SQLite library ({db_path} does not exist)")
    try:
        LibraryStore(db_path).close()   # checked (header, quick_check, not a half copy) and at this version
    except StorageError as exc:
        raise MigrateError(str(exc)) from None
    src = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30)
    try:
        conn = connect(dsn)
    except MigrateError:
        src.close()
        raise
    try:
        with _errors(), _locked(conn, db_path.parent, app_id):
            return _to_postgres(src, conn, db_path, app_id, replace, batch, say)
    finally:
        src.close()
        conn.close()


def _to_postgres(src, conn, db_path: Path, app_id: str, replace: bool, batch: int, say) -> Report:
    report = Report(app_id, "postgres", str(db_path), "")
    src.execute("BEGIN")   # one read snapshot of the source for the whole run
    head, meta, src_top = _sqlite_state(src)
    refuse_incomplete(meta.get(MARK_KEY), db_path)
    uuid = meta.get("library_uuid", "")
    fingerprint = _fingerprint(head, list(meta.items()))
    report.library_uuid, report.head = uuid, head
    blob = src.execute("SELECT embedding FROM faces LIMIT 1").fetchone()
    dim = len(blob[0]) // 4 if blob else _default_dim()

    s = _pg_target(conn, app_id, dim, uuid, fingerprint, replace, report, say)
    report.target = f"{_where_conn(conn)} schema {s}"
    _register_raw_vector(conn)
    mark = json.loads(conn.execute(f"SELECT value FROM {s}.meta WHERE key=%s", (MARK_KEY,)).fetchone()[0])
    _copy_to_pg(src, conn, s, batch, report)
    _finish_pg(conn, s, head, src_top, mark.get("hnsw"), report)
    cur = conn.cursor(binary=True)
    try:
        _verify(report, lambda t, after, n: _sqlite_rows(src, t, after, n),
                lambda t, after, n: _pg_rows(cur, s, t, after, n), src_top, _pg_state(conn, s)[2], batch)
    except MigrateError:
        conn.execute(f"UPDATE {s}.meta SET value=%s WHERE key=%s",
                     (json.dumps({**mark, "fingerprint": "failed verification"}), MARK_KEY))
        raise
    with conn.transaction():
        conn.execute(f"DELETE FROM {s}.meta WHERE key=%s", (MARK_KEY,))
        conn.execute(f"DROP TABLE {s}.{PROGRESS}")
    return report


def _default_dim() -> int:
    from edge.analysis.embedder import DIM
    return DIM


def _where_conn(conn) -> str:
    info = conn.info
    host = info.host if "/" not in info.host else "socket " + info.host
    return f"{info.user}@{host}:{info.port}/{info.dbname}"


def _pg_target(conn, app_id: str, dim: int, uuid: str, fingerprint: str, replace: bool, report: Report,
               say) -> str:
    """The app's schema, ready for the copy: resumed when it holds this source's
    unfinished copy, else started over (empty, another source state, or --replace)."""
    found = app_schema(conn, app_id)
    if found is not None:
        s = quoted(found[0])
        row = conn.execute(f"SELECT value FROM {s}.meta WHERE key=%s", (MARK_KEY,)).fetchone() \
            if found[1] >= 1 else None
        if row is not None:
            mark = json.loads(row[0])
            if mark.get("fingerprint") == fingerprint and not replace:
                report.resumed = True
                return s
            report.restarted = (
                "--replace" if replace else "the last run's verification failed"
                if mark.get("fingerprint") == "failed verification" else
                f"the source changed since the unfinished copy began (head {mark.get('head')} -> {report.head}, "
                f"uuid {mark.get('library_uuid')} -> {uuid})")
            say(f"edge library migrate: app {app_id}: starting the copy over: {report.restarted}")
        elif found[1] >= 1 and _pg_holds_data(conn, s):
            there = (conn.execute(f"SELECT value FROM {s}.meta WHERE key='library_uuid'").fetchone() or [""])[0]
            if not replace:
                what = "a complete copy of this library" if there == uuid else f"another library ({there})"
                raise MigrateError(f"app {app_id} in the database already holds {what}: --replace sets it aside")
            aside = f"{found[0]}_replaced_{time.strftime('%Y%m%dt%H%M%Sz', time.gmtime())}"
            with conn.transaction():
                conn.execute(f'ALTER SCHEMA {s} RENAME TO "{aside}"')
                conn.execute("DELETE FROM edge.apps WHERE app_id=%s", (app_id,))
            report.set_aside = aside
            say(f"edge library migrate: app {app_id}: the database's library {there} set aside as schema {aside}")
    with conn.transaction():
        name = ensure_app(conn, app_id, dim)
        s = quoted(name)
        hnsw = conn.execute("SELECT indexdef FROM pg_indexes WHERE schemaname=%s AND indexname='faces_hnsw'",
                            (name,)).fetchone()
        previous = conn.execute(f"SELECT value FROM {s}.meta WHERE key=%s", (MARK_KEY,)).fetchone()
        hnsw_def = hnsw[0] if hnsw else (json.loads(previous[0]).get("hnsw") if previous else None)
        hnsw_def = hnsw_def or _schema_hnsw(s)
        conn.execute(f"TRUNCATE {s}.faces, {s}.members, {s}.groups, {s}.changes, {s}.pushed, {s}.sync_skipped, "
                     f"{s}.meta, {s}.tokens")
        conn.execute(f"UPDATE {s}.head SET seq=0")
        conn.execute(f"DROP INDEX IF EXISTS {s}.faces_hnsw")
        conn.execute(f"DROP TABLE IF EXISTS {s}.{PROGRESS}")
        conn.execute(f"CREATE TABLE {s}.{PROGRESS} (tbl text PRIMARY KEY, last_key text, rows bigint NOT NULL, "
                     f"done boolean NOT NULL)")
        conn.execute(f"INSERT INTO {s}.{PROGRESS} SELECT unnest(%s::text[]), NULL, 0, false",
                     ([t.name for t in TABLES],))
        conn.execute(f"INSERT INTO {s}.meta VALUES (%s, %s)",
                     (MARK_KEY, _mark(str(report.source), uuid, report.head, fingerprint, hnsw=hnsw_def)))
    return s


def _schema_hnsw(s: str) -> str:
    """schema.py's definition of the HNSW index (a target that lost it and its mark)."""
    from edge.postgres.schema import STEPS
    line = next(x for step in STEPS for x in step.sql.splitlines() if "INDEX faces_hnsw" in x)
    return line.rstrip(";").format(s=s)


def _copy_to_pg(src, conn, s: str, batch: int, report: Report) -> None:
    t0, total = time.perf_counter(), 0
    for t in TABLES:
        last, done = conn.execute(f"SELECT last_key, done FROM {s}.{PROGRESS} WHERE tbl=%s", (t.name,)).fetchone()
        after, n = (None if last is None else json.loads(last)), 0
        emb = t.columns.index(_EMBEDDING) if _EMBEDDING in t.columns else None
        while not done:
            rows = _sqlite_rows(src, t, after, batch)
            done = len(rows) < batch
            with conn.transaction():
                if rows:
                    with conn.cursor().copy(f"COPY {s}.{t.name} ({', '.join(t.columns)}) FROM STDIN "
                                            f"(FORMAT BINARY)") as cp:
                        cp.set_types(list(t.types))
                        for row in rows:
                            if emb is not None:
                                row = (*row[:emb], _to_pgvector(row[emb]), *row[emb + 1:])
                            cp.write_row(row)
                    after = _key_of(t, rows[-1])
                conn.execute(f"UPDATE {s}.{PROGRESS} SET last_key=%s, rows=rows+%s, done=%s WHERE tbl=%s",
                             (None if after is None else json.dumps(after), len(rows), done, t.name))
            n += len(rows)
        report.copied[t.name] = n
        total += n
    report.copy_s = round(time.perf_counter() - t0, 3)
    report.rows_per_s = round(total / report.copy_s) if report.copy_s > 0 else 0


def _finish_pg(conn, s: str, head: int, top: int, hnsw: str | None, report: Report) -> None:
    """Head, the faces' high-water mark (PgLibraryStore's meta FACES_SEQ_KEY: past
    every id ever used), identity sequences past the copied ids, and the HNSW index
    built once."""
    with conn.transaction():
        conn.execute(f"UPDATE {s}.head SET seq=%s", (head,))
        conn.execute(f"INSERT INTO {s}.meta VALUES (%s, %s) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                     (FACES_SEQ_KEY, str(top)))
        for table, floor in (("groups", 0), ("members", 0), ("faces", top)):
            seq = conn.execute("SELECT pg_get_serial_sequence(%s, 'id')", (f"{s}.{table}",)).fetchone()[0]
            n = max(floor, conn.execute(f"SELECT COALESCE(MAX(id), 0) FROM {s}.{table}").fetchone()[0])
            conn.execute("SELECT setval(%s, %s, %s)", (seq, max(n, 1), n > 0))
    if hnsw:
        t0 = time.perf_counter()
        with conn.transaction():
            for key, value in BUILD_SETTINGS.items():   # pgvector builds in memory while the graph fits
                conn.execute(f"SET LOCAL {key} = '{value}'")
            conn.execute(hnsw.replace("CREATE INDEX faces_hnsw", "CREATE INDEX IF NOT EXISTS faces_hnsw", 1))
        report.index_s = round(time.perf_counter() - t0, 3)


# -- PostgreSQL -> SQLite ------------------------------------------------------------
def to_sqlite(db_path: Path, dsn: str, app_id: str, *, replace: bool = False, batch: int = BATCH_ROWS,
              say=log.warning) -> Report:
    conn = connect(dsn)
    try:
        with _errors(), _locked(conn, db_path.parent, app_id):
            return _to_sqlite(conn, db_path, app_id, replace, batch, say)
    finally:
        conn.close()


def _to_sqlite(conn, db_path: Path, app_id: str, replace: bool, batch: int, say) -> Report:
    from edge.library.store import SCHEMA
    report = Report(app_id, "sqlite", _where_conn(conn), str(db_path))
    found = app_schema(conn, app_id)
    if found is None:
        raise MigrateError(f"app {app_id} is not in the database at {_where_conn(conn)}")
    s = quoted(found[0])
    _register_raw_vector(conn)
    from psycopg import IsolationLevel
    conn.autocommit, conn.isolation_level, conn.read_only = False, IsolationLevel.REPEATABLE_READ, True
    # from here on one read-only transaction: one snapshot of the source for the whole run
    head, meta, src_top = _pg_state(conn, s)
    refuse_incomplete(meta.get(MARK_KEY), f"app {app_id} in the database")
    uuid = meta.get("library_uuid", "")
    fingerprint = _fingerprint(head, list(meta.items()))
    report.library_uuid, report.head = uuid, head
    if db_path.exists() and db_path.stat().st_size and not replace:
        old = _open_sqlite(db_path)
        try:
            if _sqlite_holds_data(old):
                there = (old.execute("SELECT value FROM meta WHERE key='library_uuid'").fetchone() or [""])[0]
                what = "a copy of this library" if there == uuid else f"another library ({there})"
                raise MigrateError(f"{db_path} already holds {what}: --replace sets it aside")
        finally:
            old.close()

    tmp = db_path.with_name(db_path.name + TMP_SUFFIX)
    dst = None
    if tmp.exists():
        dst = _open_sqlite(tmp)
        row = dst.execute("SELECT value FROM meta WHERE key=?", (MARK_KEY,)).fetchone() \
            if dst.execute("SELECT 1 FROM sqlite_master WHERE name=?", (PROGRESS,)).fetchone() else None
        if row is not None and json.loads(row[0]).get("fingerprint") == fingerprint:
            report.resumed = True
        else:
            report.restarted = "the source changed since the unfinished copy began" if row else \
                "the unfinished copy is unreadable or already finished"
            say(f"edge library migrate: app {app_id}: starting the copy over: {report.restarted}")
            dst.close()
            dst = None
    if dst is None:
        for suffix in ("", "-wal", "-shm"):
            tmp.with_name(tmp.name + suffix).unlink(missing_ok=True)   # our own unfinished copy
        dst = _open_sqlite(tmp)
        dst.execute("PRAGMA journal_mode=WAL")
        dst.execute("PRAGMA synchronous=FULL")
        dst.executescript(SCHEMA)
        dst.execute(f"CREATE TABLE {PROGRESS} (tbl TEXT PRIMARY KEY, last_key TEXT, rows INTEGER NOT NULL, "
                    f"done INTEGER NOT NULL)")
        dst.executemany(f"INSERT INTO {PROGRESS} VALUES (?, NULL, 0, 0)", [(t.name,) for t in TABLES])
        dst.execute("INSERT INTO meta VALUES (?, ?)", (MARK_KEY, _mark(report.source, uuid, head, fingerprint)))
    dst.execute("PRAGMA synchronous=FULL")
    try:
        cur = conn.cursor(binary=True)
        _copy_to_sqlite(cur, s, dst, batch, report)
        dst.execute("BEGIN IMMEDIATE")
        for table, seq in (("faces", src_top), ("changes", head)):   # sqlite_sequence has no unique name
            if not dst.execute("UPDATE sqlite_sequence SET seq=? WHERE name=?", (seq, table)).rowcount:
                dst.execute("INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)", (table, seq))
        dst.execute("COMMIT")
        dst.execute("BEGIN")
        dst_top = _sqlite_state(dst)[2]
        _verify(report, lambda t, after, n: _pg_rows(cur, s, t, after, n),
                lambda t, after, n: _sqlite_rows(dst, t, after, n), src_top, dst_top, batch)
        dst.execute("COMMIT")
        dst.execute("BEGIN IMMEDIATE")
        dst.execute("DELETE FROM meta WHERE key=?", (MARK_KEY,))
        dst.execute(f"DROP TABLE {PROGRESS}")
        dst.execute("COMMIT")
        dst.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    except MigrateError:
        if dst.in_transaction:
            dst.execute("ROLLBACK")
        dst.execute("UPDATE meta SET value=? WHERE key=?", (json.dumps({"fingerprint": "failed verification"}),
                                                            MARK_KEY))
        raise
    finally:
        dst.close()
    if db_path.exists():
        report.set_aside = set_aside(db_path, "replaced").name
    for suffix in ("-wal", "-shm"):
        tmp.with_name(tmp.name + suffix).unlink(missing_ok=True)   # checkpointed into the file: empty
    os.replace(tmp, db_path)
    return report


def _copy_to_sqlite(cur, s: str, dst: sqlite3.Connection, batch: int, report: Report) -> None:
    t0, total = time.perf_counter(), 0
    marks = {t.name: ", ".join("?" * len(t.columns)) for t in TABLES}
    for t in TABLES:
        last, done = dst.execute(f"SELECT last_key, done FROM {PROGRESS} WHERE tbl=?", (t.name,)).fetchone()
        after, n = (None if last is None else json.loads(last)), 0
        while not done:
            rows = _pg_rows(cur, s, t, after, batch)
            done = len(rows) < batch
            dst.execute("BEGIN IMMEDIATE")
            try:
                dst.executemany(f"INSERT INTO {t.name} ({', '.join(t.columns)}) VALUES ({marks[t.name]})", rows)
                if rows:
                    after = _key_of(t, rows[-1])
                dst.execute(f"UPDATE {PROGRESS} SET last_key=?, rows=rows+?, done=? WHERE tbl=?",
                            (None if after is None else json.dumps(after), len(rows), int(done), t.name))
                dst.execute("COMMIT")
            except BaseException:
                if dst.in_transaction:
                    dst.execute("ROLLBACK")
                raise
            n += len(rows)
        report.copied[t.name] = n
        total += n
    report.copy_s = round(time.perf_counter() - t0, 3)
    report.rows_per_s = round(total / report.copy_s) if report.copy_s > 0 else 0


def migrate(data_dir: Path, app_id: str, to: str, dsn: str, *, replace: bool = False, batch: int = BATCH_ROWS,
            say=log.warning) -> Report:
    """Move app_id's library to `to` ("postgres" or "sqlite"): see the module's docstring."""
    from edge.library.library import STORE_FILE, library_dir
    db_path = library_dir(data_dir, app_id) / STORE_FILE
    if batch < 1:
        raise MigrateError("--batch must be at least 1")
    if to == "postgres":
        return to_postgres(db_path, dsn, app_id, replace=replace, batch=batch, say=say)
    if to == "sqlite":
        return to_sqlite(db_path, dsn, app_id, replace=replace, batch=batch, say=say)
    raise MigrateError(f"--to is postgres or sqlite, not {to!r}")
