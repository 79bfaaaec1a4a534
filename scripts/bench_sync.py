"""Initial sync of an app into an empty terminal (docs/sync.md, Figures).

    python scripts/bench_sync.py [--faces 20000] [--limit 500] [--dir D]

A hub library of --faces synthetic faces (unit-norm 128-d vectors of the embedder's
model id, one user each, bulk-registered with register_many) is served by a real
`edge serve` on loopback; this process is the terminal: the real Follower pulls it
into an empty library until caught up. Printed: faces/s, bytes on the wire per face,
this process's peak RSS, and how much of the time the local index's inserts took.

Still to come (issue 13): propagation p50/p95 with 1/10/100 terminals and the hub's
cost of 1,000 idle long-polling followers.
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from edge.aip.runtime import Runtime  # noqa: E402
from edge.config import load_config  # noqa: E402
from edge.library.library import FaceLibrary  # noqa: E402
from edge.library.store import FaceRecord, LibraryStore  # noqa: E402
from edge.server.process import spawn  # noqa: E402
from edge.sync import feed  # noqa: E402
from edge.sync.config import SyncConfig  # noqa: E402
from edge.sync.follower import Follower  # noqa: E402

APP, KEY, SECRET = "5005", "AKbench", "SKbench-secret"


def hub_library(path: Path, faces: int, model: str) -> None:
    store, rng = LibraryStore(path), np.random.default_rng(0)
    for start in range(0, faces, 5000):
        vecs = rng.standard_normal((min(faces, start + 5000) - start, 128)).astype(np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        store.register_many([(["staff"], f"u{start + i}", f"user {start + i}",
                              FaceRecord(hashlib.md5(b"%d" % (start + i)).hexdigest(), v, model), "append")
                             for i, v in enumerate(vecs)])
    store.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--faces", type=int, default=20000)
    ap.add_argument("--limit", type=int, default=500)
    ap.add_argument("--dir", type=Path)
    args = ap.parse_args()
    root = args.dir or Path(tempfile.mkdtemp(prefix="bench-sync-"))
    base = load_config()
    model = Runtime(base).model_id
    hub_dir = root / "hub"
    hub_dir.mkdir(parents=True, exist_ok=True)
    hub_library(hub_dir / "data" / "apps" / APP / "library.db", args.faces, model)
    (hub_dir / "edge.yaml").write_text(yaml.safe_dump({
        "data_dir": str(hub_dir / "data"), "models": {"dir": str(base.models_dir)}, "server": {"port": 0},
        "apps": {APP: {"api_key": KEY, "secret_key": SECRET}}}))
    hub = spawn(hub_dir / "edge.yaml", cwd=hub_dir)
    try:
        cfg = dataclasses.replace(base, data_dir=str(root / "terminal"), sync=SyncConfig(
            hub_url=hub.url, app_id=APP, api_key=KEY, secret_key=SECRET, limit=args.limit, wait_s=0))
        lib = FaceLibrary(root / "terminal" / "apps" / APP)
        follower, wire, index_s = Follower(cfg, lambda: lib, model), [0], [0.0]
        fetch, add = feed.FeedClient.fetch, type(lib.index).add

        def counted_fetch(self, since, wait_s):
            got = fetch(self, since, wait_s)
            wire[0] += len(got.body)
            return got

        def timed_add(self, *a, **kw):
            t = time.perf_counter()
            try:
                return add(self, *a, **kw)
            finally:
                index_s[0] += time.perf_counter() - t
        feed.FeedClient.fetch, type(lib.index).add = counted_fetch, timed_add
        t0 = time.perf_counter()
        while not (follower.step(wait_s=0) == "idle" and follower.status()["lag_changes"] == 0):
            if follower.status()["state"] == "refused":
                print("refused:", follower.status()["last_error"])
                return 1
        took = time.perf_counter() - t0
        n = lib.store.face_count()
        print(f"initial sync: {n} faces in {took:.1f} s = {n / took:.0f} faces/s; {wire[0] / n:.0f} B/face on "
              f"the wire; terminal peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB; "
              f"index inserts {index_s[0]:.1f} s ({100 * index_s[0] / took:.0f} %)")
        lib.close()
    finally:
        hub.stop()
        if not args.dir:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
