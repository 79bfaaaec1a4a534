#!/usr/bin/env python3
"""What guarding a library against damage at rest costs (docs/storage.md).

    python scripts/bench_storage.py [--faces 20000]

Builds a library of N synthetic faces (one user each), then prints: library.db size,
its PRAGMA quick_check at open (whole file, as done up to QUICK_CHECK_MAX_BYTES), the
index save with and without the catalog and the catalog's size, `edge library check`,
and `edge library recover` rebuilding library.db from the saved index.
"""
from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from edge.library import recover  # noqa: E402
from edge.library.library import FaceLibrary  # noqa: E402
from edge.library.store import FaceRecord  # noqa: E402


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--faces", type=int, default=20_000)
    n = ap.parse_args().faces
    with tempfile.TemporaryDirectory() as tmp:
        app = Path(tmp) / "apps" / "bench"
        lib = FaceLibrary(app)
        rng = np.random.default_rng(0)
        vecs = rng.standard_normal((n, 128)).astype(np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        for a in range(0, n, 5000):
            lib.register_many([(["staff"], f"u{i}", f"user {i}", FaceRecord(f"t{i:032x}", vecs[i], "bench"), "append")
                               for i in range(a, min(a + 5000, n))])
        db = app / "library.db"
        lib.store._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        con = sqlite3.connect(db)
        _, quick = timed(lambda: con.execute("PRAGMA quick_check(1)").fetchone())
        con.close()
        _, with_catalog = timed(lib.save_index)
        catalog = next((app / "index").glob("*.catalog")).stat().st_size
        _, without = timed(lambda: lib.index.save(app / "plain", {"seq": 0}))
        lib.close()
        _, check = timed(lambda: recover.check_app(Path(tmp), "bench"))
        db.unlink()
        report, rebuild = timed(lambda: recover.recover_app(Path(tmp), "bench"))
        print(f"{n} faces: library.db {db.stat().st_size / 2**20:.1f} MB, quick_check {quick * 1000:.0f} ms")
        print(f"index save {without * 1000:.0f} ms, with catalog {with_catalog * 1000:.0f} ms "
              f"(catalog {catalog / 2**20:.1f} MB, {catalog / n:.0f} B/face)")
        print(f"edge library check {check * 1000:.0f} ms; recover from the saved index {rebuild:.2f} s "
              f"({report.faces} faces back)")


if __name__ == "__main__":
    main()
