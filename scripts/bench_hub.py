#!/usr/bin/env python3
"""Figures of the hub's library on PostgreSQL + pgvector (docs/scale.md, Central 1:N search).

    python scripts/bench_hub.py search [--faces 1000000] [--dsn postgresql://...]
    python scripts/bench_hub.py enrol [--processes 1 2 4] [--photos 300] [--clients 8]
    python scripts/bench_hub.py feed [--faces 1000000] [--limit 500]

search: N synthetic faces (edge.synthetic: 3 per identity, cosine ~0.7 within one,
identities spread over 100 groups, so one group is ~1 % of the app) bulk-loaded into an
app schema (edge.postgres.bulk: COPY, no change log; the HNSW index built after), then
single-query latency p50/p99 and recall@1 against exact search in numpy, through
edge.postgres.search.nearest_faces, with no filter and with filters of 1 % and 30 %.
enrol: 1, 2 and 4 `edge serve` hub processes on one database (synchronous_commit on, as
in production), --clients HTTP clients enrolling real LFW photos (one new user each,
v3 faceset/user/add, spread over the hubs): faces/s and the p50 of a call; and what the
database itself takes from as many writer processes registering precomputed embeddings
through PgLibraryStore (one transaction each, the app's head lock serialising them).
feed: a new terminal's initial sync from a hub on PostgreSQL: N synthetic faces built
in SQLite with their whole log, moved by `edge library migrate` (the operator's bulk
path: COPY, one HNSW build, verification), served by `edge serve`, pulled by a real
Follower (edge.sync.measure): faces/s, changes/s, where the time went.
Without --dsn a throwaway PostgreSQL (pgserver) runs in a temporary folder.
"""
from __future__ import annotations

import argparse
import base64
import concurrent.futures as cf
import json
import multiprocessing as mp
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from edge.aip.runtime import Runtime  # noqa: E402
from edge.bench_compare import lfw_photos  # noqa: E402
from edge.config import load_config  # noqa: E402
from edge.library.store import FaceRecord  # noqa: E402
from edge.postgres import local, search  # noqa: E402
from edge.postgres.migrate import migrate  # noqa: E402
from edge.sync import measure  # noqa: E402
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


def start_hubs(root: Path, dsn: str, n: int) -> list:
    """n `edge serve` hubs of the bench app (edge.sync.measure) on one database."""
    base = load_config()
    return [measure.start_hub(root / f"h{i}", base, 256, library={"backend": "postgres", "dsn": dsn, "pool_size": 4})
            for i in range(n)]


def http_enrol(hubs: list, photos: list[bytes], clients: int, run: str) -> tuple[float, float, int]:
    """(faces/s, p50 ms, failures): every photo a v3 faceset/user/add of a new user,
    `clients` at once, spread over the hubs round-robin."""
    tokens = [requests.get(f"{h.url}/oauth/2.0/token", params={"grant_type": "client_credentials",
              "client_id": measure.KEY, "client_secret": measure.SECRET}, timeout=10).json()["access_token"]
              for h in hubs]
    bodies = [json.dumps({"image": base64.b64encode(p).decode(), "image_type": "BASE64", "group_id": run,
                          "user_id": f"u{i}", "quality_control": "NONE"}) for i, p in enumerate(photos)]

    def one(i: int) -> tuple[float, int]:
        h = i % len(hubs)
        t = time.perf_counter()
        out = requests.post(f"{hubs[h].url}/rest/2.0/face/v3/faceset/user/add",
                            params={"access_token": tokens[h]}, data=bodies[i], timeout=120).json()
        return time.perf_counter() - t, out.get("error_code", -1)
    t0 = time.perf_counter()
    with cf.ThreadPoolExecutor(clients) as pool:
        done = list(pool.map(one, range(len(bodies))))
    wall = time.perf_counter() - t0
    ok = [d for d, code in done if code == 0]
    return len(ok) / wall, 1000 * float(np.median(ok)) if ok else 0.0, len(done) - len(ok)


def store_writer(dsn: str, app_id: str, seconds: float, worker: int, out) -> None:
    """One process registering synthetic faces through PgLibraryStore, one transaction each."""
    from edge.postgres.connect import database
    from edge.postgres.store import PgLibraryStore
    store = PgLibraryStore(database(dsn), app_id)
    rng = np.random.default_rng(worker)
    n, end = 0, time.monotonic() + seconds
    while time.monotonic() < end:
        v = rng.standard_normal(128).astype(np.float32)
        store.register(["staff"], f"w{worker}_{n}", "", FaceRecord(f"{worker}-{n}", v / np.linalg.norm(v), "bench"))
        n += 1
    out.put(n)


def store_enrol(dsn: str, processes: int, seconds: float) -> float:
    """Faces/s the database takes from `processes` writers at once (no model in the way)."""
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    app = f"store{processes}"
    procs = [ctx.Process(target=store_writer, args=(dsn, app, seconds, w, out)) for w in range(processes)]
    for p in procs:
        p.start()
    total = sum(out.get(timeout=seconds + 120) for _ in procs)
    for p in procs:
        p.join()
    return total / seconds


def enrol_figures(args) -> None:
    photos = [p.read_bytes() for p in lfw_photos(args.photos)]
    with local.database(args.dsn, args.keep) as dsn:
        durable = dsn + ("&" if "?" in dsn else "?") + "options=-c%20synchronous_commit%3Don"
        print(f"enrolment into one PostgreSQL database (synchronous_commit on), {len(photos)} LFW photos a run, "
              f"{args.clients} clients; {os.cpu_count()} cores on this box")
        print(f"{'hub processes':>14}{'HTTP faces/s':>14}{'p50 ms':>9}{'failed':>8}{'store faces/s':>15}")
        for n in args.processes:
            with tempfile.TemporaryDirectory() as root:
                hubs = start_hubs(Path(root), durable, n)
                try:
                    http_enrol(hubs, photos[:8], args.clients, f"warm{n}")   # models loaded, pools open
                    rate, p50, failed = http_enrol(hubs, photos, args.clients, f"run{n}")
                finally:
                    for h in hubs:
                        h.stop()
            print(f"{n:>14}{rate:>14.1f}{p50:>9.0f}{failed:>8}{store_enrol(durable, n, args.seconds):>15.0f}",
                  flush=True)


def feed_figures(args) -> None:
    """A new terminal's initial sync from a hub on PostgreSQL: the hub's app built in
    SQLite (synthetic faces, the whole log), moved by `edge library migrate` (the
    operator's bulk path), served by `edge serve` on PostgreSQL, pulled by a real
    Follower (edge.sync.measure)."""
    base = load_config()
    model = Runtime(base).model_id
    with local.database(args.dsn, args.keep) as dsn, tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data = root / "hub" / "data"
        t0 = time.perf_counter()
        measure.hub_library(data / "apps" / measure.APP, args.faces, model, index=False)
        built = time.perf_counter() - t0
        t0 = time.perf_counter()
        report = migrate(data, measure.APP, "postgres", dsn, replace=True)
        print(f"{args.faces:,} faces ({report.head:,} changes): built in SQLite in {built:.0f} s, moved to PostgreSQL "
              f"in {time.perf_counter() - t0:.0f} s (copy {report.copy_s:.0f} s, HNSW {report.index_s:.0f} s, "
              f"verify {report.verify_s:.0f} s)")
        hub = measure.start_hub(root, base, 256, library={"backend": "postgres", "dsn": dsn})
        try:
            measure.initial(base, model, root, hub, args.limit)
        finally:
            hub.stop()


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
    ep = sub.add_parser("enrol", help="enrolments/s with 1, 2, 4 hub processes on one database")
    ep.add_argument("--processes", type=int, nargs="+", default=[1, 2, 4])
    ep.add_argument("--photos", type=int, default=300, help="LFW photos (new users) a run")
    ep.add_argument("--clients", type=int, default=8)
    ep.add_argument("--seconds", type=float, default=10.0, help="the store writers' run")
    fp = sub.add_parser("feed", help="a terminal's initial sync from a hub on PostgreSQL")
    fp.add_argument("--faces", type=int, default=1_000_000)
    fp.add_argument("--limit", type=int, default=500)
    for p in (sp, ep, fp):
        p.add_argument("--dsn", help="a PostgreSQL with pgvector (default: a throwaway pgserver)")
        p.add_argument("--keep", metavar="FOLDER", help="the throwaway server's folder, kept: a second "
                       "run reuses its data")
    args = ap.parse_args()
    {"search": search_figures, "enrol": enrol_figures, "feed": feed_figures}[args.what](args)


if __name__ == "__main__":
    main()
