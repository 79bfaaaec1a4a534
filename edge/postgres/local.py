"""A PostgreSQL for a benchmark: the operator's (a DSN) or a throwaway one.

The throwaway one is the `pgserver` wheel's PostgreSQL 16 + pgvector (the `test` extra)
in a temporary folder, removed afterwards; its settings are raised for a library of
millions of faces (SERVER_SETTINGS) and need a restart, which it gets before use.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

import psycopg

# ALTER SYSTEM settings of a throwaway server (never of a --dsn one: that is the operator's).
SERVER_SETTINGS = {
    "shared_buffers": "2GB",             # 1M faces: heap ~0.7 GB + HNSW index ~0.8 GB stay cached
    "max_wal_size": "8GB",               # a bulk load is not slowed by checkpoints every 1 GB
    "synchronous_commit": "off",         # a benchmark's database: losing its last commits is fine
    "max_parallel_maintenance_workers": "1",  # 2 cores: the HNSW build's leader + one worker
}


@contextlib.contextmanager
def database(dsn: str | None = None, folder: str | None = None):
    """Yields a DSN: `dsn` itself when given, else the database `bench` of a server in
    `folder`, kept there (and reused when run again), or in a temporary folder deleted on
    exit; the server is stopped on exit."""
    if dsn:
        yield dsn
        return
    root = Path(folder or tempfile.mkdtemp(prefix="edge-pg-"))
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    if "XDG_RUNTIME_DIR" not in os.environ:  # pgserver's lock files; platformdirs warns without it
        runtime = Path(tempfile.gettempdir()) / f"edge-pg-runtime-{os.getuid()}"
        runtime.mkdir(mode=0o700, exist_ok=True)
        os.environ["XDG_RUNTIME_DIR"] = str(runtime)
    try:
        import pgserver
    except ImportError as exc:  # the `test` extra is not installed
        raise RuntimeError("no pgserver package (pip install pgserver): pass --dsn of a PostgreSQL "
                           "with pgvector instead") from exc
    srv = pgserver.get_server(root / "pgdata", cleanup_mode="stop")
    try:
        with psycopg.connect(srv.get_uri(), autocommit=True) as conn:
            for key, value in SERVER_SETTINGS.items():
                conn.execute(f"ALTER SYSTEM SET {key} = '{value}'")
        srv.cleanup()
        srv = pgserver.get_server(root / "pgdata", cleanup_mode="stop")
        with psycopg.connect(srv.get_uri(), autocommit=True) as conn:
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = 'bench'").fetchone() is None:
                conn.execute("CREATE DATABASE bench")
        yield srv.get_uri("bench")
    finally:
        srv.cleanup()
        if folder is None:
            shutil.rmtree(root, ignore_errors=True)
