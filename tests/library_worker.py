"""A second process on a face library, driven by tests/test_library_durability.py.

    python tests/library_worker.py DIR enroll PREFIX COUNT [SAVE_EVERY]
        registers COUNT users PREFIX0.. with seeded random embeddings, printing
        "ACK <user_id>" only after each register() returned (= committed);
        with SAVE_EVERY it also saves the index that often, so a kill can land mid-save.
"""
from __future__ import annotations

import hashlib
import sys

import numpy as np

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


if __name__ == "__main__":
    directory, action, *rest = sys.argv[1:]
    if action == "enroll":
        enroll(directory, rest[0], int(rest[1]), int(rest[2]) if len(rest) > 2 else 0)
