"""One writer of the feed race (tests/test_pg_race.py), as a real OS process: registrations
and deletions of one app as fast as it can for `seconds`; with --hold, every third
write keeps its transaction (head row locked) open a while before committing."""
from __future__ import annotations

import argparse
import random
import time

import numpy as np

from edge.library.store import FaceRecord, LibraryError
from edge.postgres.connect import database
from edge.postgres.store import PgLibraryStore


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("dsn")
    ap.add_argument("--app-id", default="race")
    ap.add_argument("--name", required=True)
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--hold", type=float, default=0.0)
    args = ap.parse_args()
    store = PgLibraryStore(database(args.dsn, pool_size=2), args.app_id, 8)
    rng = random.Random(args.name)
    end, writes, i = time.monotonic() + args.seconds, 0, 0
    while time.monotonic() < end:
        i += 1
        user = f"{args.name}-{rng.randint(0, 20)}"
        vec = np.random.default_rng(i).standard_normal(8).astype(np.float32)
        face = FaceRecord(f"{args.name}-t{i}", vec / np.linalg.norm(vec), "m")
        try:
            if rng.random() < 0.3:
                store.delete_user(user)
            elif args.hold and i % 3 == 0:   # the slow writer: commit a while after taking its seqs
                with store._write() as db:
                    store._register(db, ["g1", "g2"], user, None, face, "append")
                    time.sleep(args.hold)
            else:
                store.register(["g1"], user, None, face)
            writes += 1
        except LibraryError:
            pass
    print(writes, flush=True)


if __name__ == "__main__":
    main()
