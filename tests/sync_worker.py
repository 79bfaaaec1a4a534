"""A terminal's follower alone in a process, for kill -9 tests (tests/test_sync_kill.py).

    python tests/sync_worker.py CONFIG follow        follow (and push, with sync.push) until killed (prints READY)
    python tests/sync_worker.py CONFIG catch-up      follow until caught up, then exit 0

The real Follower and library of `edge serve` / `edge run`, without the models (the
follower needs only the embedder's model id from the manifest).
"""
from __future__ import annotations

import sys
import time

from edge.aip.runtime import Runtime
from edge.config import load_config
from edge.library.library import close_all
from edge.sync.follower import Follower, start_follower


def main(config_path: str, mode: str) -> int:
    config = load_config(config_path)
    runtime = Runtime(config)
    print("READY", flush=True)
    if mode == "follow":
        start_follower(config, runtime)
        while True:
            time.sleep(1)
    follower = Follower(config, lambda: runtime.library(config.sync.app_id), runtime.model_id)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        outcome = follower.step(wait_s=0)
        st = follower.status()
        if outcome == "idle" and st["lag_changes"] == 0:
            close_all()
            print(f"CAUGHT-UP {st['cursor']}", flush=True)
            return 0
        if outcome == "failed":
            print(f"FAILED {st['last_error']}", flush=True)
            time.sleep(0.2)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
