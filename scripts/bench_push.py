"""Upstream push figures (docs/sync.md, Up): a real hub and two real pushing terminals
(`edge serve` processes on loopback); N faces enrolled through terminal 1's v3 API
(real LFW photos, one person each), each timed from its answer until terminal 1's and
terminal 2's own library hold it (= searchable there: it came back through the feed).

    python scripts/bench_push.py [--faces 20]

Prints the enrolment call's latency and the ack -> held-locally delay on both
terminals (p50, p95, max). The photos are read from /work/shared/data in place.
"""
from __future__ import annotations

import argparse
import base64
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import requests
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from edge.config import load_config  # noqa: E402
from edge.server.process import spawn  # noqa: E402

LFW = Path(__file__).resolve().parents[2] / "shared" / "data" / "lfw-view1" / "images"
HUB = {"api_key": "AKhub", "secret_key": "SKhub-secret", "qps": 1000,
       "feed_keys": [{"api_key": "PKkiosk", "secret_key": "PSkiosk-secret", "scope": "feed+push"}]}
LOCAL = {"api_key": "AKlocal", "secret_key": "SKlocal-secret", "qps": 1000}


def write(folder: Path, body: dict) -> Path:
    folder.mkdir(parents=True)
    path = folder / "edge.yaml"
    path.write_text(yaml.safe_dump({"data_dir": str(folder / "data"),
                                    "models": {"dir": str(load_config().models_dir)}, **body}))
    return path


def token(url: str) -> str:
    return requests.get(f"{url}/oauth/2.0/token", params={"grant_type": "client_credentials",
                                                          "client_id": LOCAL["api_key"],
                                                          "client_secret": LOCAL["secret_key"]}).json()["access_token"]


def holds(data: Path, user: str) -> bool:
    db = data / "apps" / "1001" / "library.db"
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        return con.execute("SELECT 1 FROM members WHERE user_id=?", (user,)).fetchone() is not None
    finally:
        con.close()


def figures(name: str, values: list[float]) -> str:
    ms = np.array(values) * 1000
    return f"{name}: p50 {np.percentile(ms, 50):.0f} ms, p95 {np.percentile(ms, 95):.0f} ms, max {ms.max():.0f} ms"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--faces", type=int, default=20)
    args = ap.parse_args()
    people = sorted(p for p in LFW.iterdir() if p.is_dir())[:args.faces]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        hub = spawn(write(root / "hub", {"server": {"port": 0}, "apps": {"1001": HUB}}), cwd=root)
        sync = {"hub_url": hub.url, "app_id": "1001", "api_key": "PKkiosk", "secret_key": "PSkiosk-secret",
                "push": True, "backoff_min_s": 0.2, "backoff_max_s": 1.0}
        terms = [spawn(write(root / t, {"server": {"port": 0}, "apps": {"1001": LOCAL}, "sync": sync}), cwd=root)
                 for t in ("t1", "t2")]
        try:
            tok = token(terms[0].url)
            calls, back = [], {"t1": [], "t2": []}
            for i, person in enumerate(people):
                image = base64.b64encode(sorted(person.glob("*.jpg"))[0].read_bytes()).decode()
                started = time.monotonic()
                out = requests.post(f"{terms[0].url}/rest/2.0/face/v3/faceset/user/add",
                                    params={"access_token": tok},
                                    json={"image": image, "image_type": "BASE64", "group_id": "staff",
                                          "user_id": f"p{i}", "quality_control": "NONE"}).json()
                acked = time.monotonic()
                if out["error_code"]:
                    print(f"{person.name}: {out['error_code']} {out['error_msg']}")
                    continue
                calls.append(acked - started)
                pending = {"t1", "t2"}
                while pending and time.monotonic() - acked < 30:
                    for t in sorted(pending):
                        if holds(root / t / "data", f"p{i}"):
                            back[t].append(time.monotonic() - acked)
                            pending.discard(t)
                    time.sleep(0.005)
            print(f"{len(calls)} enrolments through terminal 1's v3 addUser (real photos, one face each)")
            print(figures("enrolment call (embed + checks + outbox commit)", calls))
            print(figures("answered -> held by terminal 1 (pushed, applied at the hub, back through the feed)",
                          back["t1"]))
            print(figures("answered -> held by terminal 2", back["t2"]))
        finally:
            for proc in (*terms, hub):
                proc.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
