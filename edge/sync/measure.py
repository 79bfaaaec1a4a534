"""Measuring a terminal's initial sync from a real hub (scripts/bench_sync.py initial,
scripts/bench_hub.py feed): the hub's library of synthetic faces, the hub process on
SQLite or on PostgreSQL, and a real Follower pulling it into an empty library, with
where the time went."""
from __future__ import annotations

import dataclasses
import hashlib
import resource
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import yaml

from edge.library.index import FaceIndex
from edge.library.library import FaceLibrary
from edge.library.store import FaceRecord, LibraryStore
from edge.server.process import spawn
from edge.sync import feed
from edge.sync import follower as follower_module
from edge.sync.config import SyncConfig
from edge.sync.follower import Follower

APP, KEY, SECRET = "5005", "AKbench", "SKbench-secret"


def hub_library(app_dir: Path, faces: int, model: str, index: bool = True) -> None:
    """The hub's library of `faces` synthetic faces, its index built and saved (the hub
    must start within spawn's timeout; index=False: a library to move to PostgreSQL,
    which needs none). Kept when app_dir already holds it (--hub-cache)."""
    done = app_dir / "bench-faces"
    if done.exists() and done.read_text() == f"{faces} {model}":
        return
    shutil.rmtree(app_dir, ignore_errors=True)
    app_dir.mkdir(parents=True)
    store, rng = LibraryStore(app_dir / "library.db"), np.random.default_rng(0)
    for start in range(0, faces, 50_000):
        vecs = rng.standard_normal((min(faces, start + 50_000) - start, 128)).astype(np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        store.register_many([(["staff"], f"u{start + i}", f"user {start + i}",
                              FaceRecord(hashlib.md5(b"%d" % (start + i)).hexdigest(), v, model), "append")
                             for i, v in enumerate(vecs)])
    store.close()
    if index:
        lib = FaceLibrary(app_dir)  # builds the hub's index (its graph in the background) ...
        lib.wait_index()
        lib.close()  # ... and saves it
        done.write_text(f"{faces} {model}")


def start_hub(root: Path, base, max_connections: int, library: dict | None = None):
    """`edge serve` of the bench app in root/hub; `library`: its config section (postgres)."""
    hub_dir = root / "hub"
    hub_dir.mkdir(parents=True, exist_ok=True)
    (hub_dir / "edge.yaml").write_text(yaml.safe_dump({
        "data_dir": str(hub_dir / "data"), "models": {"dir": str(base.models_dir)},
        "server": {"port": 0, "max_connections": max_connections, "qps": 1000},
        "apps": {APP: {"api_key": KEY, "secret_key": SECRET}}, **({"library": library} if library else {})}))
    return spawn(hub_dir / "edge.yaml", cwd=hub_dir)


def follower(base, root: Path, name: str, url: str, model: str, **sync) -> Follower:
    cfg = dataclasses.replace(base, data_dir=str(root / name), sync=SyncConfig(
        hub_url=url, app_id=APP, api_key=KEY, secret_key=SECRET, **sync))
    lib = FaceLibrary(root / name / "apps" / APP)
    return Follower(cfg, lambda: lib, model)


class _Timed:
    """Wraps a function of a module or class, summing its wall time (and a size)."""

    def __init__(self, owner, name: str, size=None):
        self.owner, self.name, self.fn, self.s, self.bytes = owner, name, getattr(owner, name), 0.0, 0
        size_of = size

        def timed(*a, **kw):
            t = time.perf_counter()
            try:
                got = self.fn(*a, **kw)
            finally:
                self.s += time.perf_counter() - t
            if size_of is not None:
                self.bytes += size_of(got)
            return got
        setattr(owner, name, timed)


def initial(base, model, root: Path, hub, limit: int) -> None:
    """Prints the initial sync of a new terminal (in root/terminal) from the running hub."""
    f = follower(base, root, "terminal", hub.url, model, limit=limit, wait_s=0)
    lib = f._library()
    size = lambda got: len(got.body)  # noqa: E731
    fetch, snap = _Timed(feed.FeedClient, "fetch", size), _Timed(feed.FeedClient, "fetch_snapshot", size)
    judge = [_Timed(follower_module, "validate_page"), _Timed(follower_module, "validate_snapshot")]
    store = _Timed(LibraryStore, "apply_replica")
    replay, build = _Timed(FaceLibrary, "sync"), _Timed(FaceIndex, "insert_pending")
    searches, phase, done = {"catching up": [], "building the graph": []}, ["catching up"], threading.Event()

    def search() -> None:  # a door's searches meanwhile, 4 a second
        rng = np.random.default_rng(1)
        while not done.wait(0.25):
            q = rng.standard_normal(128).astype(np.float32)
            t = time.perf_counter()
            lib.search(q / np.linalg.norm(q), None, 5)
            searches[phase[0]].append(time.perf_counter() - t)
    searcher = threading.Thread(target=search, daemon=True)
    t0 = time.perf_counter()
    searcher.start()
    while not (f.step(wait_s=0) == "idle" and f.status()["lag_changes"] == 0):
        if f.status()["state"] == "refused":
            raise SystemExit(f"refused: {f.status()['last_error']}")
    caught, n, changes = time.perf_counter() - t0, lib.store.face_count(), f.status()["cursor"]
    phase[0] = "building the graph"
    lib.wait_index()
    took = time.perf_counter() - t0
    done.set()
    searcher.join()
    wire = fetch.bytes + snap.bytes
    print(f"initial sync: {n} faces in {took:.1f} s = {n / took:.0f} faces/s (all received and searchable "
          f"after {caught:.1f} s, exact for faces not yet in the graph); {wire / n:.0f} B/face on the wire; "
          f"terminal peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    print(f"  the hub's log: {changes} changes pulled in {caught:.1f} s = {changes / caught:.0f} changes/s")
    print(f"  wall time in: hub answers {fetch.s + snap.s:.1f} s, judging pages {sum(j.s for j in judge):.1f} s, "
          f"store transactions {store.s:.1f} s, index replay {replay.s:.1f} s; graph inserts (builder "
          f"thread, overlapping the rest) {build.s:.1f} s")
    for name, lat in searches.items():
        if lat:
            ms = np.array(lat) * 1000
            print(f"  searches while {name}: {len(ms)}, p50 {np.percentile(ms, 50):.0f} ms, "
                  f"p95 {np.percentile(ms, 95):.0f} ms, max {ms.max():.0f} ms")
    lib.close()


