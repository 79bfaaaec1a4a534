"""One pool of connections per PostgreSQL DSN per process, and what its failures mean.

Every call checks a connection out for itself (a bounded pool, checked alive before
use; the pool reconnects by itself when the server comes back, no restart needed) and
waits at most `timeout_s` for one, so a call against an unreachable server fails in
seconds instead of hanging. psycopg's errors never leave this module as themselves:
each becomes edge's StorageError (edge/sqlite.py), which the API answers with its db
error (v2 216300, v3 222915). A serialization failure or deadlock is retried a few
times inside the call first (its transaction was rolled back whole). An outage is
logged once (ERROR, the DSN without its password and the reason) and its end once
(INFO), not once per request.
"""
from __future__ import annotations

import logging
import threading
import time
from contextlib import ExitStack, contextmanager

import psycopg
from psycopg.types import TypeInfo
from psycopg_pool import ConnectionPool, PoolTimeout

from edge.sqlite import Location, StorageError

log = logging.getLogger("edge.postgres")
# The pool logs a WARNING for every failed reconnection attempt; an outage is ours to
# report, once (Database.outage).
logging.getLogger("psycopg.pool").setLevel(logging.ERROR)

# A transaction that lost a serialization conflict or a deadlock is run again this
# many times (with a short growing pause) before the call answers the db error.
TRANSIENT_RETRIES = 3
TRANSIENT_PAUSE_S = 0.05
# SQLSTATE -> StorageError kind (PostgreSQL's Appendix A, "Error codes").
_SQLSTATE_KINDS = {"40001": "busy", "40P01": "busy", "55P03": "busy",
                   "53100": "full", "53200": "overloaded", "53300": "overloaded", "53400": "overloaded",
                   "25006": "readonly", "42501": "denied",
                   "57P01": "unreachable", "57P02": "unreachable", "57P03": "unreachable", "57P04": "unreachable"}
_TRANSIENT = ("40001", "40P01")
_SQLSTATE_CLASSES = {"08": "unreachable", "28": "denied", "53": "overloaded", "58": "unreachable"}
# Kinds that are about the server rather than one call: they start an outage (logged once).
OUTAGE_KINDS = ("unreachable", "overloaded", "full", "readonly", "denied", "schema")


def redact(dsn: str) -> str:
    """The DSN without its password, for log lines and error messages."""
    try:
        params = psycopg.conninfo.conninfo_to_dict(dsn)
    except psycopg.Error:
        return "<a DSN that does not parse>"
    return " ".join(f"{k}={v}" for k, v in sorted(params.items()) if k != "password")


def kind_of(exc: BaseException) -> tuple[str, bool]:
    """(StorageError kind, transient) of a psycopg error."""
    sqlstate = getattr(exc, "sqlstate", None) or ""
    if sqlstate in _SQLSTATE_KINDS:
        return _SQLSTATE_KINDS[sqlstate], sqlstate in _TRANSIENT
    if sqlstate[:2] in _SQLSTATE_CLASSES:
        return _SQLSTATE_CLASSES[sqlstate[:2]], False
    if isinstance(exc, psycopg.OperationalError) and not sqlstate:  # refused, closed, lost mid-call
        return "unreachable", False
    if isinstance(exc, psycopg.InterfaceError):  # a connection psycopg already knows is closed
        return "unreachable", False
    return "failed", False


class TransientError(StorageError):
    """A conflict the server rolled back (serialization, deadlock): worth running again."""


def _configure(conn: psycopg.Connection) -> None:
    """Each new connection: pgvector's types (the extension made first on a fresh database)."""
    from pgvector.psycopg import register_vector
    if TypeInfo.fetch(conn, "vector") is None:
        try:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        except psycopg.errors.UniqueViolation:  # another connection made it at the same moment
            pass
    register_vector(conn)


class Database:
    """The pool of one DSN: connection() for a call, retry() around a whole write."""

    def __init__(self, dsn: str, pool_size: int = 10, timeout_s: float = 5.0):
        self.dsn = dsn
        self.location = Location(f"postgresql {redact(dsn)}")
        self.timeout_s = float(timeout_s)
        self._connect_kwargs = {"autocommit": True, "connect_timeout": max(2, int(round(timeout_s)))}
        self._outage: tuple[str, float] | None = None
        self._outage_lock = threading.Lock()
        self._busy = 0   # connections handed out now: all of them busy is an overload, not an outage
        self.pool = ConnectionPool(dsn, min_size=1, max_size=int(pool_size), timeout=self.timeout_s,
                                   kwargs=self._connect_kwargs, configure=_configure,
                                   check=ConnectionPool.check_connection, reconnect_timeout=max(60.0, timeout_s),
                                   name=f"edge-{id(self):x}", open=False)
        self.pool.open(wait=False)

    def close(self) -> None:
        self.pool.close()

    @contextmanager
    def connection(self):
        """A pooled connection (autocommit: each statement its own snapshot; open a
        transaction with conn.transaction()). psycopg's errors leave as StorageError."""
        try:
            with ExitStack() as stack:
                try:
                    conn = stack.enter_context(self.pool.connection())
                except PoolTimeout as exc:
                    conn = stack.enter_context(self._direct(exc))
                stack.enter_context(self._in_use())
                yield conn
        except psycopg.Error as exc:
            raise self._error(exc) from None
        self._back()

    @contextmanager
    def _in_use(self):
        with self._outage_lock:
            self._busy += 1
        try:
            yield
        finally:
            with self._outage_lock:
                self._busy -= 1

    def retry(self, fn):
        """fn() again after a transient conflict, TRANSIENT_RETRIES times at most."""
        for attempt in range(TRANSIENT_RETRIES + 1):
            try:
                return fn()
            except TransientError:
                if attempt == TRANSIENT_RETRIES:
                    raise
                time.sleep(TRANSIENT_PAUSE_S * (attempt + 1))

    # -- failures -----------------------------------------------------------------
    def _direct(self, timeout: PoolTimeout) -> psycopg.Connection:
        """When the pool had no connection in time: a direct one, whose failure names
        the reason (down, a full max_connections, a bad password). When it connects and
        the pool's connections are all busy, the pool is overloaded; otherwise the
        server is back while the pool is still waiting out its reconnection backoff,
        and this call need not wait for it."""
        conn = psycopg.connect(self.dsn, **self._connect_kwargs)
        try:
            _configure(conn)
        except BaseException:
            conn.close()
            raise
        if self._busy >= self.pool.max_size:
            conn.close()
            raise self._error(timeout)
        return conn

    def _error(self, exc: BaseException) -> StorageError:
        if isinstance(exc, PoolTimeout):
            kind, transient = "overloaded", False
            detail = f"all {self.pool.max_size} pooled connections busy for {self.timeout_s:g} s"
        else:
            kind, transient = kind_of(exc)
            detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        err = (TransientError if transient else StorageError)(kind, self.location, detail)
        if kind in OUTAGE_KINDS:
            self.outage(err)
        elif kind == "failed":
            log.error("%s: %s", self.location, detail)
        return err

    def outage(self, err: StorageError) -> None:
        """Log the start of an outage once; later failures of it quietly."""
        with self._outage_lock:
            first = self._outage is None
            if first:
                self._outage = (err.kind, time.monotonic())
        if first:
            log.error("database unavailable: %s", err)
        else:
            log.debug("database still unavailable: %s", err)

    def _back(self) -> None:
        if self._outage is None:
            return
        with self._outage_lock:
            outage, self._outage = self._outage, None
        if outage is not None:
            log.info("database %s is available again (%s for %.1f s)", self.location, outage[0],
                     time.monotonic() - outage[1])


_databases: dict[str, Database] = {}
_databases_lock = threading.Lock()


def database(dsn: str, pool_size: int = 10, timeout_s: float = 5.0) -> Database:
    """The process's Database of a DSN (one pool per DSN per process)."""
    with _databases_lock:
        db = _databases.get(dsn)
        if db is None:
            db = _databases[dsn] = Database(dsn, pool_size, timeout_s)
        return db


def close_databases() -> None:
    with _databases_lock:
        for db in _databases.values():
            db.close()
        _databases.clear()
