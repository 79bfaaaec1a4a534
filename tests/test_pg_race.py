"""The change feed under concurrent writers on PostgreSQL (issue 14): two real processes
write one app at once, one of them holding transactions open, while a reader pages the
feed to its head again and again. The reader must collect every seq 1..head exactly
once and in order: never skip a change that commits after a higher seq was visible."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from edge.postgres.connect import database
from edge.postgres.store import PgLibraryStore

REPO = Path(__file__).resolve().parents[1]


def _writer(dsn: str, name: str, seconds: float, hold: float = 0.0) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "tests")])}
    return subprocess.Popen([sys.executable, str(REPO / "tests" / "pg_race_worker.py"), dsn, "--name", name,
                             "--seconds", str(seconds), "--hold", str(hold)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_a_feed_reader_never_skips_a_change_of_concurrent_writers(pg_server):
    dsn = pg_server.new_database()
    store = PgLibraryStore(database(dsn), "race", 8)   # the reader; made first so the writers find the schema
    writers = [_writer(dsn, "fast", 5.0), _writer(dsn, "slow", 5.0, hold=0.03)]
    seen, since, pages = [], 0, 0
    while True:
        done = all(w.poll() is not None for w in writers)
        head, rows = store.feed_rows(since, 7)
        pages += 1
        seen += [r[0] for r in rows]
        if rows:
            since = rows[-1][0] if len(rows) == 7 else head
        else:
            since = head
        if done and since == store.last_seq():
            break
        time.sleep(0.001)
    outs = [w.communicate() for w in writers]
    assert [w.returncode for w in writers] == [0, 0], outs
    writes = [int(out.split()[0]) for out, _ in outs]
    final = store.last_seq()
    assert seen == list(range(1, final + 1)), "the reader skipped or repeated a change"
    assert seen == [r[0] for r in store.feed_rows(0, 10**7)[1]]
    assert min(writes) > 10 and final > 100 and pages > 50, (writes, final, pages)
