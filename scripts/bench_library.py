#!/usr/bin/env python3
"""Benchmark edge.library.index.FaceIndex on synthetic face embeddings.

    python scripts/bench_library.py [--sizes 10000,100000,1000000] [--quick]

Identities get a random unit centre and PER_ID noisy embeddings (centre + noise,
renormalised; same-identity cosine ~0.7 as with SFace); queries are fresh noisy samples
of enrolled identities. Per size: build rate, 1:N latency (single queries), recall@1
against brute force, a 50-face-group search inside the library, memory per face (RSS
delta and the index's own count), save and load (start-up) time. Group rows: a 50-face
group, and 10 % / 30 % of the library (exact vs hnswlib's filter).
"""
from __future__ import annotations

import argparse
import ctypes
import gc
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from edge.bench import resident_mb  # noqa: E402
from edge.library.index import FaceIndex  # noqa: E402
from edge.synthetic import DIM, PER_ID, exact_top, identities, noisy  # noqa: E402

GROUPS = 100
SMALL_GROUP = GROUPS + 1  # the 50-face group
BATCH = 10_000


def rss() -> int:
    """Resident bytes, after handing freed heap back to the OS so deltas are the index's."""
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    return int(resident_mb() * 1024 * 1024)


def make_library(n: int, rng):
    """(centres, vectors, face ids, group ids); faces 1..50 form the small group."""
    faces = identities(n, rng)
    gids = faces.owner % GROUPS + 1
    gids[:50] = SMALL_GROUP
    return faces.centres, faces.vectors, np.arange(1, n + 1, dtype=np.int64), gids.astype(np.int64)


def brute_top1(vecs: np.ndarray, queries: np.ndarray) -> np.ndarray:
    return exact_top(vecs, queries, 1)[:, 0] + 1  # face ids are rows + 1


def latencies(index: FaceIndex, queries, k: int, groups=None):
    times, top1 = [], []
    for q in queries:
        t = time.perf_counter()
        hits = index.search(q, k, groups)
        times.append(time.perf_counter() - t)
        top1.append(hits[0][0] if hits else 0)
    ms = np.array(times) * 1e3
    return np.percentile(ms, 50), np.percentile(ms, 99), np.array(top1)


def bench(n: int, n_queries: int, options: dict, keep: str | None = None) -> dict:
    rng = np.random.default_rng(n)
    centres, vecs, ids, gids = make_library(n, rng)
    queries = noisy(centres[rng.integers(0, n // PER_ID, n_queries)], rng)
    small = noisy(centres[rng.integers(0, 50 // PER_ID, 200)], rng)  # members of the small group
    r = {}
    rss0 = rss()
    index = FaceIndex(DIM, **options)
    t = time.perf_counter()
    for a in range(0, n, BATCH):
        index.add(ids[a:a + BATCH], gids[a:a + BATCH], vecs[a:a + BATCH])
    r["build faces/s"] = n / (time.perf_counter() - t)
    r["mode"] = "hnsw" if len(index) > index.exact_limit else "exact"
    r["B/face RSS"] = (rss() - rss0) / n
    r["B/face stats"] = index.stats()["bytes"] / n
    index.search(queries[0], 1)  # warm-up
    truth = brute_top1(vecs, queries)
    for k in (1, 5, 28):
        p50, p99, top1 = latencies(index, queries, k)
        r[f"k={k} p50 ms"], r[f"k={k} p99 ms"] = p50, p99
        r[f"k={k} recall@1 %"] = 100 * np.mean(top1 == truth)
    p50, p99, top1 = latencies(index, small, 5, [SMALL_GROUP])
    r["grp50 p50 ms"], r["grp50 p99 ms"] = p50, p99
    r["grp50 recall@1 %"] = 100 * np.mean(top1 == brute_top1(vecs[:50], small))
    for share in (10, 30):  # share % of the groups, hence of the library; any identity may ask
        groups = list(range(1, GROUPS * share // 100 + 1))
        rows = np.flatnonzero(np.isin(gids, groups))
        p50, p99, top1 = latencies(index, queries[:500], 5, groups)
        r[f"grp{share}% p50 ms"], r[f"grp{share}% p99 ms"] = p50, p99
        truth_g = ids[rows[brute_top1(vecs[rows], queries[:500]) - 1]]
        r[f"grp{share}% recall@1 %"] = 100 * np.mean(top1 == truth_g)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = keep or tmp
        t = time.perf_counter()
        index.save(Path(tmp), {"seq": n})
        r["save s"] = time.perf_counter() - t
        del index
        rss0 = rss()
        t = time.perf_counter()
        index, _ = FaceIndex.load(Path(tmp), DIM, **options)
        r["load s"] = time.perf_counter() - t
        r["B/face RSS load"] = (rss() - rss0) / n
    r["load recall@1 %"] = 100 * np.mean(latencies(index, queries[:200], 1)[2] == truth[:200])
    return r


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--quick", action="store_true", help="10k faces only")
    ap.add_argument("--queries", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=2, help="hnswlib threads for bulk adds")
    ap.add_argument("--M", type=int)
    ap.add_argument("--ef-construction", type=int)
    ap.add_argument("--ef-search", type=int)
    ap.add_argument("--keep", help="save the largest index here instead of a temporary directory")
    args = ap.parse_args()
    sizes = [10_000] if args.quick else [int(s) for s in args.sizes.split(",")]
    options = {"threads": args.threads}
    for key in ("M", "ef_construction", "ef_search"):
        if getattr(args, key) is not None:
            options[key] = getattr(args, key)
    print(f"FaceIndex {options}  dim {DIM}, {PER_ID} faces/identity, {args.queries} queries")
    results = {}
    for n in sizes:
        results[n] = bench(n, args.queries, options, args.keep if n == max(sizes) else None)
        print(f"  {n} done", file=sys.stderr, flush=True)
    print(f"{'':20}" + "".join(f"{n:>12,}" for n in sizes))
    for key in results[sizes[0]]:
        cells = (results[n][key] for n in sizes)
        print(f"{key:20}" + "".join(f"{c:>12}" if isinstance(c, str) else f"{c:>12.3f}" for c in cells))


if __name__ == "__main__":
    main()
