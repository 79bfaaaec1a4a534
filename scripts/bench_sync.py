"""Sync figures (docs/sync.md, Figures), against a real hub `edge serve` on loopback.

    python scripts/bench_sync.py initial [--faces 20000] [--limit 500] [--hub-cache DIR]
    python scripts/bench_sync.py propagation [--followers 1 10 100] [--changes 20]
    python scripts/bench_sync.py idle [--followers 1000] [--seconds 20]

initial: a hub library of --faces synthetic faces (unit-norm 128-d vectors of the
  embedder's model id, one user each, bulk-registered); this process is the terminal:
  the real Follower pulls it into an empty library until caught up and its index's
  graph is built. Prints faces/s, when every face was searchable (exact for those not
  yet in the graph), bytes on the wire per face, peak RSS, and where the time went.
  --hub-cache DIR keeps the hub's library (and its saved index) between runs: a 1M hub
  takes ~10 min to build once (e.g. --faces 1000000 --hub-cache /tmp/hub1m).
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
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from edge.aip.runtime import Runtime  # noqa: E402
from edge.config import load_config  # noqa: E402
from edge.sync import measure  # noqa: E402
from edge.sync.config import SyncConfig  # noqa: E402
from edge.sync.measure import APP, KEY, SECRET, follower, hub_library, start_hub  # noqa: E402
from edge.sync.protocol import FEED_PATH  # noqa: E402


def initial(args, base, model, root) -> None:
    hub_root = args.hub_cache or root
    hub_library(hub_root / "hub" / "data" / "apps" / APP, args.faces, model)
    hub = start_hub(hub_root, base, 256)
    try:
        measure.initial(base, model, root, hub, args.limit)
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
    ap.add_argument("--hub-cache", type=Path, help="initial: keep the hub's library here between runs")
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
