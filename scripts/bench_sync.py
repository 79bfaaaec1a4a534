"""Sync figures (docs/sync.md, Figures), against a real hub `edge serve` on loopback.

    python scripts/bench_sync.py initial [--faces 20000] [--limit 500]
    python scripts/bench_sync.py propagation [--followers 1 10 100] [--changes 20]
    python scripts/bench_sync.py idle [--followers 1000] [--seconds 20]

initial: a hub library of --faces synthetic faces (unit-norm 128-d vectors of the
  embedder's model id, one user each, bulk-registered); this process is the terminal:
  the real Follower pulls it into an empty library until caught up. Prints faces/s,
  bytes on the wire per face, peak RSS, and the share of the time the local index's
  inserts took.
propagation: N real Followers (threads of this process, a library each, long-polling)
  follow the hub; --changes times a group is added through the hub's HTTP API and the
  time until each follower has applied it (= searchable there) is taken. Prints p50
  and p95 per N. Threads of one process on a shared box: pessimistic for large N.
idle: N long-polls held on the hub (aiohttp client tasks, re-issued as they return);
  prints the hub process's CPU (share of one core) and RSS while they wait (each re-polls
  every sync.wait_s, 20 s by default, as a real follower does).
"""
from __future__ import annotations

import argparse
import asyncio
import dataclasses
import hashlib
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import requests
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
from edge.sync.protocol import FEED_PATH  # noqa: E402

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


def start_hub(root: Path, base, max_connections: int):
    hub_dir = root / "hub"
    hub_dir.mkdir(parents=True, exist_ok=True)
    (hub_dir / "edge.yaml").write_text(yaml.safe_dump({
        "data_dir": str(hub_dir / "data"), "models": {"dir": str(base.models_dir)},
        "server": {"port": 0, "max_connections": max_connections, "qps": 1000},
        "apps": {APP: {"api_key": KEY, "secret_key": SECRET}}}))
    return spawn(hub_dir / "edge.yaml", cwd=hub_dir)


def follower(base, root: Path, name: str, url: str, model: str, **sync) -> Follower:
    cfg = dataclasses.replace(base, data_dir=str(root / name), sync=SyncConfig(
        hub_url=url, app_id=APP, api_key=KEY, secret_key=SECRET, **sync))
    lib = FaceLibrary(root / name / "apps" / APP)
    return Follower(cfg, lambda: lib, model)


def initial(args, base, model, root) -> None:
    hub_library(root / "hub" / "data" / "apps" / APP / "library.db", args.faces, model)
    hub = start_hub(root, base, 256)
    try:
        f = follower(base, root, "terminal", hub.url, model, limit=args.limit, wait_s=0)
        lib, wire, index_s = f._library(), [0], [0.0]
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
        while not (f.step(wait_s=0) == "idle" and f.status()["lag_changes"] == 0):
            if f.status()["state"] == "refused":
                raise SystemExit(f"refused: {f.status()['last_error']}")
        took, n = time.perf_counter() - t0, lib.store.face_count()
        print(f"initial sync: {n} faces in {took:.1f} s = {n / took:.0f} faces/s; {wire[0] / n:.0f} B/face on "
              f"the wire; terminal peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB; "
              f"index inserts {index_s[0]:.1f} s ({100 * index_s[0] / took:.0f} %)")
        lib.close()
    finally:
        hub.stop()


def token(url: str) -> str:
    return requests.get(f"{url}/oauth/2.0/token", params={"grant_type": "client_credentials", "client_id": KEY,
                                                          "client_secret": SECRET}, timeout=10).json()["access_token"]


def propagation(args, base, model, root) -> None:
    hub = start_hub(root, base, max(256, max(args.followers) + 64))
    try:
        tok = token(hub.url)
        for n in args.followers:
            followers = [follower(base, root / f"p{n}", f"t{i}", hub.url, model, wait_s=20, status_interval_s=60)
                         for i in range(n)]
            for f in followers:
                f.start()
            head = lambda: requests.get(hub.url + FEED_PATH, params={"since": 0, "limit": 1,  # noqa: E731
                                                                      "access_token": tok}).json()["head"]
            while min(f.status()["cursor"] for f in followers) < head():
                time.sleep(0.05)
            time.sleep(0.5)  # every follower back in its long-poll
            delays = []
            for c in range(args.changes):
                t0 = time.perf_counter()
                out = requests.post(f"{hub.url}/rest/2.0/face/v3/faceset/group/add", params={"access_token": tok},
                                    json={"group_id": f"n{n}c{c}"}).json()
                target, pending = head(), set(range(n))
                assert out["error_code"] == 0, out
                while pending:
                    for i in list(pending):
                        if followers[i].status()["cursor"] >= target:
                            delays.append(time.perf_counter() - t0)
                            pending.discard(i)
                    time.sleep(0.002)
                time.sleep(0.2)
            for f in followers:
                f.stop()
            d = np.array(delays) * 1000
            print(f"propagation, {n} followers: p50 {np.percentile(d, 50):.0f} ms, p95 {np.percentile(d, 95):.0f} ms, "
                  f"max {d.max():.0f} ms ({len(d)} deliveries)")
    finally:
        hub.stop()


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100.0  # utime + stime, clock ticks (USER_HZ 100)


def _rss_mb(pid: int) -> float:
    line = next(l for l in Path(f"/proc/{pid}/status").read_text().splitlines() if l.startswith("VmRSS"))
    return int(line.split()[1]) / 1024


def idle(args, base, model, root) -> None:
    import aiohttp
    hub = start_hub(root, base, args.followers + 64)
    pid = hub.proc.pid
    try:
        tok = token(hub.url)

        async def main() -> None:
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0),
                                             timeout=aiohttp.ClientTimeout(total=60)) as session:
                stop = time.monotonic() + 3 + args.seconds

                async def poll():
                    while time.monotonic() < stop:
                        params = {"since": 0, "wait": SyncConfig().wait_s, "access_token": tok}
                        async with session.get(hub.url + FEED_PATH, params=params) as r:
                            await r.read()
                            if r.status != 200:
                                raise RuntimeError(r.status)
                tasks = [asyncio.create_task(poll()) for _ in range(args.followers)]
                await asyncio.sleep(3)  # all connected and waiting
                cpu0, t0, rss0 = _cpu_s(pid), time.monotonic(), _rss_mb(pid)
                await asyncio.sleep(args.seconds)
                cpu1, t1, rss1 = _cpu_s(pid), time.monotonic(), _rss_mb(pid)
                print(f"idle: {args.followers} long-polling followers for {t1 - t0:.0f} s: hub CPU "
                      f"{100 * (cpu1 - cpu0) / (t1 - t0):.1f} % of one core, RSS {rss0:.0f} -> {rss1:.0f} MB")
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
        asyncio.run(main())
    finally:
        hub.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["initial", "propagation", "idle"])
    ap.add_argument("--faces", type=int, default=20000)
    ap.add_argument("--limit", type=int, default=500)
    ap.add_argument("--followers", type=int, nargs="+")
    ap.add_argument("--changes", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--dir", type=Path)
    args = ap.parse_args()
    if args.followers is None:
        args.followers = [1000] if args.what == "idle" else [1, 10, 100]
    if args.what == "idle":
        args.followers = args.followers[0]
    root = args.dir or Path(tempfile.mkdtemp(prefix="bench-sync-"))
    base = load_config()
    try:
        {"initial": initial, "propagation": propagation, "idle": idle}[args.what](args, base, Runtime(base).model_id,
                                                                                   root)
    finally:
        if not args.dir:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
