"""A second process on a face library, driven by tests/test_library_durability.py.

    python tests/library_worker.py DIR enroll PREFIX COUNT [SAVE_EVERY]
        registers COUNT users PREFIX0.. with seeded random embeddings, printing
        "ACK <user_id>" only after each register() returned (= committed);
        with SAVE_EVERY it also saves the index that often, so a kill can land mid-save.
    python tests/library_worker.py DIR bulk PREFIX COUNT
        registers COUNT users in register_many batches of 300 (the index's deferred graph
        path, exact_limit 500), printing "ACK <pending> <user_id>..." after each batch
        committed, and saves the index after each (mid-build, pending faces saved too).
    python tests/library_worker.py DIR loading PREFIX COUNT
        opens the library with its saved graph's read held back 120 s (a slow card's
        stand-in), prints "OPEN <graph still loading 0|1>", registers COUNT users printing
        "ACK <user_id>" after each, deletes the first one ("DEL <user_id>"), then waits
        to be killed: a kill -9 mid-load (tests/test_startup.py).
"""
from __future__ import annotations

import hashlib
import sys
import time

import numpy as np

from edge.library.index import FaceIndex
from edge.library.library import FaceLibrary
from edge.library.store import FaceRecord


def embedding(user_id: str) -> np.ndarray:
    """The same unit vector for a user id in every process."""
    seed = int(hashlib.md5(user_id.encode()).hexdigest()[:12], 16)
    v = np.random.default_rng(seed).standard_normal(128).astype(np.float32)
    return v / np.linalg.norm(v)


def record(user_id: str) -> FaceRecord:
    return FaceRecord(hashlib.md5(user_id.encode()).hexdigest(), embedding(user_id), "test-model")


def enroll(directory: str, prefix: str, count: int, save_every: int = 0) -> None:
    lib = FaceLibrary(directory)
    for i in range(count):
        uid = f"{prefix}{i}"
        lib.register(["staff"], uid, f"info {uid}", record(uid))
        print(f"ACK {uid}", flush=True)
        if save_every and (i + 1) % save_every == 0:
            lib.save_index()
    lib.close()


def bulk(directory: str, prefix: str, count: int) -> None:
    lib = FaceLibrary(directory, index_options={"exact_limit": 500})
    for a in range(0, count, 300):
        uids = [f"{prefix}{i}" for i in range(a, min(count, a + 300))]
        lib.register_many([(["staff"], uid, f"info {uid}", record(uid), "append") for uid in uids])
        print(f"ACK {lib.index.pending} {' '.join(uids)}", flush=True)
        lib.save_index()
    lib.close()


def loading(directory: str, prefix: str, count: int) -> None:
    read_graph = FaceIndex._read_graph

    def slow(due, capacity):
        time.sleep(120)
        return read_graph(due, capacity)

    FaceIndex._read_graph = staticmethod(slow)
    lib = FaceLibrary(directory, index_options={"exact_limit": 500})
    print(f"OPEN {int(lib.index.graph_loading)}", flush=True)
    for i in range(count):
        uid = f"{prefix}{i}"
        lib.register(["staff"], uid, f"info {uid}", record(uid))
        print(f"ACK {uid}", flush=True)
    lib.delete_user(f"{prefix}0")
    print(f"DEL {prefix}0 {int(lib.index.graph_loading)}", flush=True)
    time.sleep(600)


if __name__ == "__main__":
    directory, action, *rest = sys.argv[1:]
    if action == "enroll":
        enroll(directory, rest[0], int(rest[1]), int(rest[2]) if len(rest) > 2 else 0)
    elif action == "bulk":
        bulk(directory, rest[0], int(rest[1]))
    elif action == "loading":
        loading(directory, rest[0], int(rest[1]))
