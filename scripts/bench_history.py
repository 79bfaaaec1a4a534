"""What one event costs the event history (edge/events/history.py), and how fast it searches.

    python scripts/bench_history.py [--events 3000] [--rows 100000] [--dir DIR] [--compare]

Adds --events events one by one to a new history in DIR (default: a temp folder under
the repo's var/, on this disk, not tmpfs) and prints write_bytes per event
(/proc/self/io: pages dirtied, the WAL and its checkpoints into the file). Fsyncs are
SQLite's rule, not measured: with WAL and synchronous=NORMAL a commit does none, a
checkpoint (every 1000 WAL pages) two; FULL adds one per commit. --compare repeats with
4 KiB pages and with synchronous=FULL (the other stores' setting). Then fills --rows events and times each
search of the Events page (newest first, one page of 50).
"""
from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge.events import history as hist               # noqa: E402
from edge.events.history import EventHistory, Query   # noqa: E402
from edge.procstat import proc_io                     # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_event_history import mixed                  # noqa: E402


def cost(folder: Path, n: int, page_size: int, synchronous: str) -> float:
    path = folder / f"events-{page_size}-{synchronous}.db"
    hist.PAGE_SIZE = page_size
    h = EventHistory(path)
    h._db.execute(f"PRAGMA synchronous={synchronous}")
    events = mixed(n, time.time() - n)
    os.sync()
    before = proc_io()["write_bytes"]
    for e in events:
        h.add(e)
    os.sync()
    per = (proc_io()["write_bytes"] - before) / n
    h.close()
    hist.PAGE_SIZE = 1024
    print(f"page {page_size} B, synchronous={synchronous}: {per / 1024:.1f} KiB write_bytes per event "
          f"({n} events; file {path.stat().st_size / n:.0f} B an event)")
    return per


def searches(folder: Path, rows: int) -> None:
    path = folder / "events-search.db"
    h = EventHistory(path, max_rows=rows)
    events = mixed(rows, time.time() - rows)
    with h._write() as db:   # the fill in one transaction: the searches, not the inserts, are timed here
        db.executemany(f"INSERT INTO events ({', '.join(hist.COLUMNS[1:])}) VALUES ({', '.join('?' * 15)})",
                       [(e.event_id, e.ts, e.kind, e.camera, e.track_id, e.user_id, e.group_id, e.user_info, e.score,
                         e.error_code, e.error_msg, e.reason, e.frames, e.liveness, e.liveness_score) for e in events])
    t_end = time.time()
    cases = {"newest 50": Query(), "camera": Query(camera="gate"), "kind unknown": Query(kind="unknown"),
             "code 223114": Query(error_code=223114), "person 'ann' (substring)": Query(person="ann"),
             "person absent (whole scan)": Query(person="nobody"),
             "last hour, recognised": Query(since=t_end - 3600, kind="recognised"),
             "page 20 by cursor": None, "cameras (the form's list)": "cameras"}
    for name, q in cases.items():
        start = time.perf_counter()
        if q == "cameras":
            h.cameras()
        elif q is None:
            cursor = ""
            for _ in range(20):
                cursor = h.search(Query(cursor=cursor)).next
        else:
            h.search(q)
        print(f"search {name}: {(time.perf_counter() - start) * 1000:.1f} ms ({rows} rows)")
    print(f"file: {path.stat().st_size / 1e6:.1f} MB for {rows} events")
    h.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=3000)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--dir", type=Path)
    ap.add_argument("--compare", action="store_true")
    args = ap.parse_args()
    var = Path(__file__).resolve().parents[1] / "var"
    var.mkdir(exist_ok=True)
    folder = args.dir or Path(tempfile.mkdtemp(prefix="bench-history-", dir=var))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"sqlite {sqlite3.sqlite_version}, load average {os.getloadavg()[0]:.2f}, in {folder}")
    try:
        cost(folder, args.events, 1024, "NORMAL")
        if args.compare:
            cost(folder, args.events, 4096, "NORMAL")
            cost(folder, args.events, 4096, "FULL")
        searches(folder, args.rows)
    finally:
        if args.dir is None:
            shutil.rmtree(folder)


if __name__ == "__main__":
    main()
