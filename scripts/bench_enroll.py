"""Library-level figures: enrollment throughput, start-up time, search through the store.

    python scripts/bench_enroll.py [--sizes 10000,100000,1000000] [--dir var/bench] [--keep | --reuse]
                                   [--ef 0,64,128]

For each size a fresh library (SQLite + index) in --dir is filled with synthetic
identities (3 noisy embeddings each, as the index benchmark does), then measured:
- enrollment: register() one face per call (one fsync'd transaction each, what the API
  does) and register_many() in batches of 5,000 (bulk enrollment, replication);
- start-up: FaceLibrary() on the saved library, i.e. what the service pays at boot;
- search through the library (FaceLibrary.search: the change check, index, owners),
  p50/p99 of single queries, and recall@1 against exact search (the user owning the
  exact best face), for each --ef (ef_search; 0: the default), interleaved;
- memory: resident size after start-up, and the in-memory owners' share.
--keep leaves the library in --dir; --reuse measures a kept one again (same queries).
Speed targets are checked here, never in tests.
"""
from __future__ import annotations

import argparse
import ctypes
import gc
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from edge.bench import resident_mb  # noqa: E402
from edge.library.index import read_manifest  # noqa: E402
from edge.library.library import FaceLibrary  # noqa: E402
from edge.library.matching import faces_wanted  # noqa: E402
from edge.library.store import FaceRecord  # noqa: E402

FACES_PER_ID = 3
NOISE = 0.055  # per-dimension noise: same-identity cosine ~0.7, like SFace on real faces


def unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v, axis=-1, keepdims=True)).astype(np.float32)


def sample(centres: np.ndarray, rng) -> np.ndarray:
    return unit(centres + rng.standard_normal(centres.shape).astype(np.float32) * NOISE)


def items(centres: np.ndarray, start: int, rng):
    """register() argument tuples for identities start.. (3 faces each, 3 groups)."""
    for i, c in enumerate(centres, start):
        for j, vec in enumerate(sample(np.repeat(c[None], FACES_PER_ID, 0), rng)):
            yield ([f"g{i % 3}"], f"u{i}", f"user {i}", FaceRecord(f"{i:024x}{j:08x}", vec, "bench"), "append")


def rss_mb() -> float:
    """Resident MB once freed heap went back to the OS (start-up temporaries are not the library's)."""
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    return resident_mb()


def fill(lib: FaceLibrary, centres: np.ndarray, faces: int, rng) -> dict:
    """Enrol the synthetic identities: a few through register(), the rest in bulk."""
    ids = len(centres)

    single = min(300, ids)
    t0 = time.perf_counter()
    for args in items(centres[:single], 0, rng):
        lib.register(*args[:4], mode=args[4])
    per_call = (time.perf_counter() - t0) / (single * FACES_PER_ID)

    t0 = time.perf_counter()
    batch, done = [], single * FACES_PER_ID
    for args in items(centres[single:], single, rng):
        batch.append(args)
        if len(batch) == 5000:
            lib.store.register_many(batch)
            batch.clear()
    if batch:
        lib.store.register_many(batch)
    bulk_s = time.perf_counter() - t0
    bulk_rate = (faces - done) / bulk_s if faces > done else float("nan")
    t0 = time.perf_counter()
    lib.sync()
    lib.wait_index()  # the graph is built by a thread: searches before it is done are exact
    index_s = time.perf_counter() - t0
    return {"register_ms": per_call * 1000, "bulk_faces_s": bulk_rate, "index_replay_s": index_s}


def bench_size(faces: int, root: Path, rng, reuse: bool, efs: list[int], n_queries: int) -> list[dict]:
    directory = root / f"lib{faces}"
    ids = faces // FACES_PER_ID
    centres = unit(rng.standard_normal((ids, 128)).astype(np.float32))
    filled = {"register_ms": float("nan"), "bulk_faces_s": float("nan"), "index_replay_s": float("nan")}
    if not (reuse and (directory / "library.db").exists()):
        shutil.rmtree(directory, ignore_errors=True)
        lib = FaceLibrary(directory)
        filled = fill(lib, centres, faces, rng)
        lib.close()
        del lib
    if "owners" not in (read_manifest(directory / "index") or {}).get("files", {}):
        lib = FaceLibrary(directory)  # saved by an older edge: once through the compatible path, then saved
        lib.wait_index()
        lib.save_index()
        lib.close()
        del lib
    gc.collect()

    base = rss_mb()
    t0 = time.perf_counter()
    lib = FaceLibrary(directory)
    startup = time.perf_counter() - t0
    assert lib.index_source == "loaded"
    lib.wait_index()
    mem = rss_mb() - base
    qrng = np.random.default_rng(1)  # the same queries whether the library was filled now or reused

    queries = qrng.choice(ids, size=n_queries)
    probes = sample(centres[queries], qrng)
    exact = [lib.index.exact(q, 1)[0][0] for q in probes]  # the ground truth: exact search's best face
    owner = {f: o[1] for f, o in lib.store.face_owners(exact).items()}
    lat = {b: [] for b in efs}
    agree = {b: 0 for b in efs}
    used = {}
    default = lib.index.ef_search
    load = [os.getloadavg()[0]]
    for i in range(n_queries):  # the ef values interleaved, each on another query than the search before
        for j, b in enumerate(efs):
            at = (i + j * 101) % n_queries
            lib.index.ef_search = b or default
            used[b] = lib.index.effective_ef(faces_wanted(1))
            t0 = time.perf_counter()
            hit = lib.search(probes[at], None, 1)
            lat[b].append(time.perf_counter() - t0)
            agree[b] += bool(hit) and hit[0].user_id == owner[exact[at]]
    load.append(os.getloadavg()[0])
    stats = lib.owners.stats()
    lib.close()
    rows = []
    for b in efs:
        ms = np.array(lat[b]) * 1000
        rows.append({"faces": faces, **filled, "startup_s": startup, "ef": used[b],
                     "search_p50_ms": float(np.percentile(ms, 50)), "search_p99_ms": float(np.percentile(ms, 99)),
                     "recall": agree[b] / n_queries, "rss_mb": mem, "owners_mb": stats["bytes"] / 1e6,
                     "load": f"{load[0]:.1f}-{load[1]:.1f}"})
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--dir", default="var/bench")
    ap.add_argument("--keep", action="store_true", help="keep the libraries afterwards")
    ap.add_argument("--reuse", action="store_true", help="measure a kept library again instead of refilling it")
    ap.add_argument("--ef", default="0", help="ef_search values to compare, interleaved (0: the index's default)")
    ap.add_argument("--queries", type=int, default=1000)
    args = ap.parse_args(argv)
    root = Path(args.dir)
    rng = np.random.default_rng(0)
    print(f"{'faces':>9} {'register ms':>11} {'bulk faces/s':>12} {'index s':>8} {'start-up s':>10} {'ef':>5} "
          f"{'p50 ms':>7} {'p99 ms':>7} {'recall@1':>8} {'RSS MB':>7} {'owners MB':>9} {'load':>9}")
    for size in (int(s) for s in args.sizes.split(",")):
        for r in bench_size(size, root, rng, args.reuse, [int(e) for e in args.ef.split(",")], args.queries):
            print(f"{r['faces']:>9} {r['register_ms']:>11.2f} {r['bulk_faces_s']:>12.0f} {r['index_replay_s']:>8.1f} "
                  f"{r['startup_s']:>10.2f} {r['ef']:>5} {r['search_p50_ms']:>7.3f} {r['search_p99_ms']:>7.3f} "
                  f"{100 * r['recall']:>7.1f}% {r['rss_mb']:>7.0f} {r['owners_mb']:>9.1f} {r['load']:>9}", flush=True)
        if not (args.keep or args.reuse):
            shutil.rmtree(root / f"lib{size}", ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
