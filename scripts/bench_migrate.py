#!/usr/bin/env python3
"""How fast `edge library migrate` moves an app (docs/scale.md, Moving an app).

    python scripts/bench_migrate.py [--faces 100000] [--dsn DSN]

Builds a library of N synthetic 128-d faces (one user each, the whole change log kept:
2N changes), moves it to PostgreSQL and back through migrate() and prints, each way, the
rows copied, the copy's rows/s, the HNSW build, the verification and the total. Without
--dsn it starts its own PostgreSQL (pgserver, edge/postgres/local.py) in a temporary folder.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from edge.library.library import STORE_FILE, library_dir  # noqa: E402
from edge.library.store import FaceRecord, LibraryStore  # noqa: E402
from edge.postgres import local  # noqa: E402
from edge.postgres.migrate import migrate  # noqa: E402

APP = "bench"


def build(data: Path, n: int) -> None:
    store = LibraryStore(library_dir(data, APP) / STORE_FILE)
    rng = np.random.default_rng(0)
    for start in range(0, n, 10_000):
        vecs = rng.standard_normal((min(10_000, n - start), 128)).astype(np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        store.register_many([([f"g{(start + i) % 10}"], f"u{start + i}", "", FaceRecord(f"t{start + i}", v, "bench"),
                               "append") for i, v in enumerate(vecs)])
    store.close()


def show(way: str, report, total_s: float) -> None:
    rows = sum(report.copied.values())
    print(f"{way:>18}: {rows:>8} rows copied in {report.copy_s:6.2f} s ({report.rows_per_s:>7} rows/s), "
          f"HNSW build {report.index_s:6.2f} s, verify {sum(report.verified.values())} rows in "
          f"{report.verify_s:5.2f} s; total {total_s:6.2f} s")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--faces", type=int, default=100_000)
    ap.add_argument("--dsn", help="an empty database (default: a pgserver started here)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp, local.database(args.dsn) as dsn:
        data = Path(tmp) / "data"
        t0 = time.perf_counter()
        build(data, args.faces)
        print(f"library of {args.faces} faces built in {time.perf_counter() - t0:.1f} s")
        for way, replace in (("SQLite->PostgreSQL", False), ("PostgreSQL->SQLite", True)):
            t0 = time.perf_counter()
            report = migrate(data, APP, "postgres" if not replace else "sqlite", dsn, replace=replace)
            show(way, report, time.perf_counter() - t0)

if __name__ == "__main__":
    main()
