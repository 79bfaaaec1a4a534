"""Start-up of a large library on a slow card: time to ready, to the first correct answer,
until the graph serves; search p50 in each phase; bytes read; resident size.

    sudo python scripts/bench_startup.py --dir var/bench [--sizes 100000,1000000] [--rate-mb 40] [--eager | --serve | --run]

Libraries come from scripts/bench_enroll.py (--dir D --reuse builds D/lib<N>). Each run
drops the page cache and starts a child process in a blkio cgroup reading at most
--rate-mb MB/s (a Pi 4's SD reader: docs/storage.md, "Start-up on a slow card"); times
are from the child's start, so Python's and numpy's own cold imports are in them. The
child searches without pause from ready on (half enrolled faces seen again, half
strangers); afterwards every answer is checked against exact search over the same
library: "wrong" counts enrolled faces whose top face differs, "str." strangers' (the
graph's recall on a face nobody enrolled: below any match score either way). --eager: the old start-up (the graph read
before the library opens) for comparison; --serve: the whole `edge serve` (models too) to
its first /health answer and until /health's index_loading is empty; --run: `edge run` on
the demo camera to its READY=1 (sd_notify). --code: run another checkout (a baseline). Needs root.
"""
from __future__ import annotations

import time

T0 = time.monotonic()  # the child's start, before its imports

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from edge.bench_disk import drop_caches, service, throttled  # noqa: E402
from edge.procstat import memory_mb, proc_io  # noqa: E402

AFTER_SERVE = 300  # searches once the graph serves


def child(directory: str, eager: bool) -> dict:
    import numpy as np

    from edge.library.library import FaceLibrary
    from edge.library.index import FaceIndex
    from edge.library.store import LibraryStore
    rng = np.random.default_rng(7)  # numpy.random's import: not behind the graph's reads
    parts = {}  # where the time to ready goes

    def timed(owner, name, key):
        fn = getattr(owner, name)

        def wrapper(*a, **kw):
            t = time.monotonic()
            try:
                return fn(*a, **kw)
            finally:
                parts[key] = parts.get(key, 0.0) + time.monotonic() - t
        setattr(owner, name, classmethod(lambda cls, *a, **kw: wrapper(*a, **kw)) if name == "load" else wrapper)

    timed(LibraryStore, "__init__", "store_open_s")
    timed(FaceIndex, "load", "index_load_s")
    timed(FaceLibrary, "_load_owners", "owners_s")
    t_imports = time.monotonic() - T0
    lib = FaceLibrary(directory, graph_in_background=not eager)
    out = {"imports_s": t_imports, "ready_s": time.monotonic() - T0, "read_mb_ready": proc_io()["read_bytes"] / 1e6,
           "rss_ready_mb": memory_mb()["rss"], **parts}
    ids = lib.index.face_ids()
    seen = np.stack([lib.index.vector(f) for f in rng.choice(ids, 500)])
    qs = np.concatenate([seen + rng.standard_normal(seen.shape) * 0.03, rng.standard_normal((500, 128))])
    qs = (qs / np.linalg.norm(qs, axis=1, keepdims=True)).astype(np.float32)
    out["prep_s"] = time.monotonic() - T0 - out["ready_s"]
    log, served, after = [], None, 0
    while after < AFTER_SERVE:
        q = len(log) % len(qs)
        serves = lib.index.graph_serves and not lib.index.pending
        t = time.monotonic()
        hit = lib.index.search(qs[q], 1)  # what FaceLibrary.search asks of the index
        log.append((q, t - T0, time.monotonic() - t, serves, hit[0][0]))
        if serves:
            served = served or t - T0
            after += 1
    out.update(first_answer_s=log[0][1] + log[0][2], graph_serves_s=served,
               read_mb_served=proc_io()["read_bytes"] / 1e6, rss_served_mb=memory_mb()["rss"])
    truth = {q: lib.index.exact(qs[q], 1)[0][0] for q in {e[0] for e in log}}
    for phase, serves in (("exact", False), ("graph", True)):
        rows = [e for e in log if e[3] == serves]
        out[phase] = {"searches": len(rows), "wrong": sum(truth[e[0]] != e[4] for e in rows if e[0] < len(seen)),
                      "strangers_differ": sum(truth[e[0]] != e[4] for e in rows if e[0] >= len(seen)),
                      "p50_ms": float(np.median([e[2] for e in rows]) * 1000) if rows else None,
                      "max_ms": float(max(e[2] for e in rows) * 1000) if rows else None}
    lib.stop_builder()  # the faces table's background check is not part of this
    return out


def run(directory: Path, rate: float, eager: bool) -> dict:
    drop_caches()
    with throttled(directory, int(rate * 1e6)) as procs:
        cmd = [sys.executable, __file__, "--child", str(directory)] + (["--eager"] if eager else [])
        done = subprocess.run(cmd, capture_output=True, text=True, check=True,
                              preexec_fn=lambda: procs.write_text(str(os.getpid())))
    print(done.stderr[-2000:], file=sys.stderr)
    return json.loads(done.stdout.splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", default="var/bench")
    ap.add_argument("--sizes", default="100000,1000000")
    ap.add_argument("--rate-mb", type=float, default=40.0, help="read rate of the card, MB/s")
    ap.add_argument("--eager", action="store_true", help="the old start-up: the whole index read before ready")
    ap.add_argument("--serve", action="store_true", help="time `edge serve` to /health and to index_loading []")
    ap.add_argument("--run", action="store_true", help="time `edge run` (demo camera) to READY=1")
    ap.add_argument("--code", default=str(Path(__file__).resolve().parents[1]),
                    help="--serve/--run: the checkout whose edge runs (another one: a baseline)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.eager)))
        return 0
    if args.serve or args.run:
        command = "serve" if args.serve else "run"
        for size in (int(s) for s in args.sizes.split(",")):
            r = service(Path(args.dir) / f"lib{size}", args.rate_mb, Path(args.code).resolve(), command)
            what = (f"/health after {r['ready_s']:.1f} s, index_loading [] after {r['graph_serves_s']:.1f} s"
                    if args.serve else f"READY=1 after {r['ready_s']:.1f} s")
            print(f"edge {command} ({args.code}), {size} faces, {args.rate_mb:.0f} MB/s, cold: {what}, "
                  f"{r['read_mb']:.0f} MB read by then "
                  f"(load {os.getloadavg()[0]:.1f})", *r["log"], sep="\n    ", flush=True)
        return 0
    print(f"{'faces':>8} {'mode':>6} {'MB/s':>5} {'imports':>7} {'open':>5} {'ready s':>7} {'1st ok':>6} {'graph s':>7} "
          f"{'MB read':>15} {'exact p50/max':>15} {'n':>4} {'wrong':>5} {'graph p50/max':>14} {'wrong':>5} {'str.':>4} "
          f"{'RSS MB':>9} {'load':>5}")
    for size in (int(s) for s in args.sizes.split(",")):
        r = run(Path(args.dir) / f"lib{size}", args.rate_mb, args.eager)
        ex, gr = r["exact"], r["graph"]
        exact = f"{ex['p50_ms']:.1f}/{ex['max_ms']:.0f}" if ex["searches"] else "-"
        print(f"{size:>8} {'eager' if args.eager else 'now':>6} {args.rate_mb:>5.0f} {r['imports_s']:>7.1f} "
              f"{r['ready_s'] - r['imports_s']:>5.1f} {r['ready_s']:>7.1f} {r['first_answer_s']:>6.1f} {r['graph_serves_s']:>7.1f} "
              f"{r['read_mb_ready']:>7.0f}/{r['read_mb_served']:<7.0f} {exact:>15} {ex['searches']:>4} "
              f"{ex['wrong']:>5} {gr['p50_ms']:>7.2f}/{gr['max_ms']:<6.0f} {gr['wrong']:>5} {gr['strangers_differ']:>4} "
              f"{r['rss_ready_mb']:>4.0f}/{r['rss_served_mb']:<4.0f} {os.getloadavg()[0]:>5.1f}", flush=True)
        print("    where the open went: " + ", ".join(f"{k[:-2]} {r[k]:.1f} s" for k in
                                                      ("store_open_s", "index_load_s", "owners_s") if k in r))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
