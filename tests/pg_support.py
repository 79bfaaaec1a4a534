"""A real PostgreSQL 16 with pgvector for the tests (the `pgserver` wheel), one per
test session, in a temporary folder; each test that wants one gets a fresh database."""
from __future__ import annotations

import itertools
import os
from pathlib import Path

import psycopg

_counter = itertools.count()


class PgServer:
    """pgserver's PostgreSQL in `root`, reached through its Unix socket."""

    def __init__(self, root: Path):
        os.environ.setdefault("XDG_RUNTIME_DIR", str(root))  # platformdirs (pgserver's) warns without it
        import pgserver
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._srv = pgserver.get_server(self.root / "pgdata", cleanup_mode="stop")

    def dsn(self, database: str = "postgres") -> str:
        return self._srv.get_uri(database)

    def new_database(self, prefix: str = "t") -> str:
        """A fresh, empty database; returns its DSN."""
        name = f"{prefix}_{os.getpid()}_{next(_counter)}"
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.dsn(name)

    def stop(self) -> None:
        self._srv.cleanup()

    def log_text(self) -> str:
        return Path(self._srv.log).read_text(errors="replace")

    def crash(self) -> None:
        """Stop it as a power cut would (`pg_ctl stop -m immediate`: no checkpoint, no
        flush); the next start() recovers from its WAL."""
        from pgserver._commands import pg_ctl
        pg_ctl(["-w", "-m", "immediate", "stop"], pgdata=self._srv.pgdata, user=self._srv.system_user)
        self._srv.cleanup()   # forget the handle (nothing left to stop), so start() starts it again

    def start(self) -> None:
        """Start it again after stop() (a restart of the database under a running hub)."""
        import pgserver
        self._srv = pgserver.get_server(self.root / "pgdata", cleanup_mode="stop")
