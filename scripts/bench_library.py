#!/usr/bin/env python3
"""Benchmark edge.library.index.FaceIndex on synthetic face embeddings.

    python scripts/bench_library.py [--sizes 10000,100000,1000000] [--quick]
    python scripts/bench_library.py --compare [--faces 1000000] [--cache DIR] [--ef 64,128,256]

Identities get a random unit centre and PER_ID noisy embeddings (centre + noise,
renormalised; same-identity cosine ~0.7 as with SFace); queries are fresh noisy samples
of enrolled identities. Per size: build rate, 1:N latency (single queries), recall@1
against brute force, a 50-face-group search inside the library, memory per face (RSS
delta and the index's own count), save and load (start-up) time. Group rows: a 50-face
group, and 10 % / 30 % of the library (exact vs hnswlib's filter).

--compare: hnswlib, faiss-cpu and usearch (the `bench` extra; edge/library/engines.py)
on the same faces with the same graph parameters: build and load time, memory per
face (RSS delta of the load), and single-query latency p50/p99 and recall@1 against
exact search per ef, the engines and efs interleaved query by query (the box is
shared: the load average is printed). Each index is built once and kept in --cache.
--check-wheels asks pip whether each has an aarch64 manylinux wheel (downloads to /tmp).
"""
from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from edge.bench import resident_mb  # noqa: E402
from edge.library.engines import ENGINES  # noqa: E402
from edge.library.index import MIN_CANDIDATES, FaceIndex  # noqa: E402
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


def compare(n: int, n_queries: int, engines: list[str], efs: list[int], cache: Path, threads: int) -> None:
    rng = np.random.default_rng(n)
    faces = identities(n, rng)
    queries = noisy(faces.centres[rng.integers(0, n // PER_ID, n_queries)], rng)
    truth = exact_top(faces.vectors, queries, 1)[:, 0]
    cache.mkdir(parents=True, exist_ok=True)
    loaded, facts = {}, {}
    for name in engines:
        engine = ENGINES[name](DIM)
        path, notes = cache / f"{n}{engine.suffix}", cache / f"{n}{engine.suffix}.json"
        if not path.exists():
            t = time.perf_counter()
            engine.build(faces.vectors, threads)
            built = {"build_s": time.perf_counter() - t, "load_avg": os.getloadavg()[0]}
            engine.save(path)
            notes.write_text(json.dumps(built))
            engine.index = None
        rss0 = rss()
        t = time.perf_counter()
        engine.load(path)
        facts[name] = {**json.loads(notes.read_text()), "load_s": time.perf_counter() - t,
                       "B/face": (rss() - rss0) / n, "file MB": path.stat().st_size / 1e6}
        loaded[name] = engine
        print(f"  {name} ready", file=sys.stderr, flush=True)
    times = {(name, ef): [] for name in engines for ef in efs}
    top1 = {key: [] for key in times}
    load = [os.getloadavg()[0]]
    pairs = [(name, engine, ef) for name, engine in loaded.items() for ef in efs]
    for i in range(n_queries):  # round-robin: every engine and ef sees the same moment of the box's load ...
        for j, (name, engine, ef) in enumerate(pairs):
            at = (i + j * 101) % n_queries  # ... each with another query than the search before (no warm walk)
            engine.set_ef(ef)
            t = time.perf_counter()
            labels = engine.search(queries[at], MIN_CANDIDATES)
            times[name, ef].append(time.perf_counter() - t)
            top1[name, ef].append(labels[0] == truth[at])
    load.append(os.getloadavg()[0])
    print(f"{n:,} faces, {n_queries} single queries of {MIN_CANDIDATES} candidates, 1 thread; "
          f"M 24, ef_construction 200; load average {load[0]:.1f} -> {load[1]:.1f}")
    print(f"{'engine':8} {'ef':>5} {'p50 ms':>7} {'p99 ms':>7} {'recall@1':>8} {'B/face':>7} {'file MB':>8} "
          f"{'build s':>8} {'(load)':>6} {'load s':>7}")
    for (name, ef), ts in times.items():
        ms, f = np.array(ts) * 1e3, facts[name]
        print(f"{name:8} {ef:>5} {np.percentile(ms, 50):>7.3f} {np.percentile(ms, 99):>7.3f} "
              f"{100 * np.mean(top1[name, ef]):>7.1f}% {f['B/face']:>7.0f} {f['file MB']:>8.0f} "
              f"{f['build_s']:>8.0f} {f['load_avg']:>6.1f} {f['load_s']:>7.2f}")


def check_wheels() -> None:
    """Whether pip finds an aarch64 manylinux wheel of each engine (Raspberry Pi OS 64-bit)."""
    packages = {"hnswlib": "hnswlib", "faiss": "faiss-cpu", "usearch": "usearch"}
    for name, package in packages.items():
        with tempfile.TemporaryDirectory() as tmp:
            run = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                                  "--platform", "manylinux_2_28_aarch64", "--platform", "manylinux2014_aarch64",
                                  "--python-version", f"{sys.version_info.major}.{sys.version_info.minor}",
                                  "-d", tmp, package], capture_output=True, text=True)
            wheels = [p.name for p in Path(tmp).glob("*.whl")]
        why = (run.stderr.strip().splitlines() or ["?"])[-1]
        print(f"{name:8} aarch64 wheel: {wheels[0] if wheels else f'none ({why})'}")


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
    ap.add_argument("--compare", action="store_true", help="hnswlib, faiss-cpu and usearch side by side")
    ap.add_argument("--faces", type=int, default=1_000_000, help="--compare: library size")
    ap.add_argument("--engines", default="hnswlib,faiss,usearch", help="--compare: which")
    ap.add_argument("--ef", default="64,128,192,256,384", help="--compare: ef_search values")
    ap.add_argument("--cache", default="var/bench/compare", help="--compare: where the built indexes are kept")
    ap.add_argument("--check-wheels", action="store_true", help="--compare: ask pip for aarch64 wheels")
    args = ap.parse_args()
    if args.compare:
        if args.check_wheels:
            check_wheels()
        compare(args.faces, min(args.queries, 1000), args.engines.split(","), [int(e) for e in args.ef.split(",")],
                Path(args.cache), args.threads)
        return
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
