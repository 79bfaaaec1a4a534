#!/usr/bin/env python3
"""Figures of the hub's library on PostgreSQL + pgvector (docs/scale_search.md).

    python scripts/bench_hub.py search [--faces 1000000] [--dsn postgresql://...]

search: N synthetic faces (edge.synthetic: 3 per identity, cosine ~0.7 within one,
identities spread over 100 groups, so one group is ~1 % of the app) bulk-loaded into an
app schema (edge.postgres.bulk: COPY, no change log; the HNSW index built after), then
single-query latency p50/p99 and recall@1 against exact search in numpy, through
edge.postgres.search.nearest_faces, with no filter and with filters of 1 % and 30 %.
Without --dsn a throwaway PostgreSQL (pgserver) runs in a temporary folder.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from edge.postgres import local, search  # noqa: E402
from edge.postgres.bulk import BUILD_SETTINGS, build_index, index_options, load_faces  # noqa: E402
from edge.postgres.schema import ensure_app, quoted  # noqa: E402
from edge.synthetic import PER_ID, exact_top, identities, noisy  # noqa: E402

GROUPS = 100


def connect(dsn: str):
    import psycopg
    from pgvector.psycopg import register_vector
    conn = psycopg.connect(dsn)
    conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    conn.commit()
    register_vector(conn)
    return conn


def timed_search(conn, schema: str, queries: np.ndarray, k: int, groups):
    times, top1 = [], []
    for q in queries:
        t = time.perf_counter()
        hits = search.nearest_faces(conn, schema, q, k, groups)
        times.append(time.perf_counter() - t)
        top1.append(hits[0][0] if hits else 0)
    ms = np.array(times) * 1e3
    return np.percentile(ms, 50), np.percentile(ms, 99), np.array(top1)


def search_figures(args) -> None:
    rng = np.random.default_rng(args.faces)
    t = time.perf_counter()
    faces = identities(args.faces, rng)
    n_ids = len(faces.centres)
    member_group = np.arange(n_ids) % GROUPS + 1          # identity i is member i + 1
    face_group = member_group[faces.owner]
    print(f"{args.faces:,} faces, {n_ids:,} identities in {GROUPS} groups, generated in "
          f"{time.perf_counter() - t:.1f} s; nearest_faces: EF_SEARCH {search.EF_SEARCH}, "
          f"EXACT_GROUP_FACES {search.EXACT_GROUP_FACES}, EF_PER_K {search.EF_PER_K}")
    with local.database(args.dsn, args.keep) as dsn, connect(dsn) as conn:
        schema = ensure_app(conn, f"bench{args.faces}", faces.vectors.shape[1])
        conn.commit()
        options = {k: v for k, v in (("m", args.m), ("ef_construction", args.ef_construction)) if v}
        if conn.execute(f"SELECT EXISTS (SELECT 1 FROM {quoted(schema)}.faces)").fetchone()[0]:
            print("bulk load: the app was loaded by an earlier run (--keep or --dsn), reused")
            if options:
                print(f"HNSW rebuilt with {options}: {build_index(conn, schema, options):.1f} s")
        else:
            times = load_faces(conn, schema, [f"g{g}" for g in range(1, GROUPS + 1)], member_group,
                               faces.owner + 1, faces.vectors, options)
            print(f"bulk load: COPY {times.copy_s:.1f} s ({args.faces / times.copy_s:,.0f} faces/s), "
                  f"HNSW build {times.index_s:.1f} s ({', '.join(f'{k} {v}' for k, v in BUILD_SETTINGS.items())})")
        print(f"HNSW index: {index_options(conn, schema)}")
        sizes = conn.execute("SELECT pg_relation_size(%s), pg_total_relation_size(%s), pg_relation_size(%s)",
                             [f"{quoted(schema)}.faces", f"{quoted(schema)}.faces", f"{quoted(schema)}.faces_hnsw"]
                             ).fetchone()
        print(f"on disk: faces heap {sizes[0] / 2**20:.0f} MB, with indexes {sizes[1] / 2**20:.0f} MB, "
              f"of which HNSW {sizes[2] / 2**20:.0f} MB ({sizes[2] / args.faces:.0f} B/face)")
        conn.commit()
        conn.autocommit = True   # as a pooled hub connection: every search its own transaction
        any_id = noisy(faces.centres[rng.integers(0, args.faces // PER_ID, args.queries)], rng)
        g1_ids = np.flatnonzero(member_group[:args.faces // PER_ID] == 1)
        in_g1 = noisy(faces.centres[rng.choice(g1_ids, args.queries)], rng)
        g30 = list(range(1, GROUPS * 30 // 100 + 1))
        cases = [("no filter", any_id, None), ("1 % group, its members", in_g1, [1]),
                 ("30 % groups, any identity", any_id, g30),
                 ("30 % groups, their members", in_g1, g30)]
        for _ in range(3):
            timed_search(conn, schema, any_id[:200], args.k[0], None)  # warm-up: the index into the cache
        print(f"{'search (single queries)':34}{'EF_SEARCH':>10}{'k':>4}{'p50 ms':>9}{'p99 ms':>9}{'recall@1':>10}")
        for name, queries, groups in cases:
            rows = np.flatnonzero(np.isin(face_group, groups)) if groups else np.arange(args.faces)
            truth = rows[exact_top(faces.vectors[rows], queries, 1)[:, 0]] + 1   # face ids are rows + 1
            for ef in args.ef_search or [search.EF_SEARCH]:
                search.EF_SEARCH = ef
                for k in args.k:
                    p50, p99, top1 = timed_search(conn, schema, queries, k, groups)
                    print(f"{name:34}{ef:>10}{k:>4}{p50:>9.2f}{p99:>9.2f}{100 * np.mean(top1 == truth):>9.1f}%",
                          flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="what", required=True)
    sp = sub.add_parser("search", help="bulk load, HNSW build, search latency and recall")
    sp.add_argument("--faces", type=int, default=1_000_000)
    sp.add_argument("--queries", type=int, default=1000)
    sp.add_argument("--k", type=lambda s: [int(x) for x in s.split(",")], default=[12, 28],
                    help="faces asked for: max_users*4+8 (user_top_num 1 and 5)")
    sp.add_argument("--m", type=int, help="HNSW m (tuning; default: schema.py's)")
    sp.add_argument("--ef-construction", type=int, help="HNSW ef_construction (tuning; default: schema.py's)")
    sp.add_argument("--ef-search", type=lambda s: [int(x) for x in s.split(",")],
                    help="EF_SEARCH values to compare (tuning; default: search.EF_SEARCH)")
    for p in (sp,):
        p.add_argument("--dsn", help="a PostgreSQL with pgvector (default: a throwaway pgserver)")
        p.add_argument("--keep", metavar="FOLDER", help="the throwaway server's folder, kept: a second "
                       "run reuses its data")
    args = ap.parse_args()
    {"search": search_figures}[args.what](args)


if __name__ == "__main__":
    main()
