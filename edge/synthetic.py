"""Synthetic face embeddings for the library benchmarks (scripts/bench_library.py,
scripts/bench_hub.py): identities with a random unit centre and noisy samples of it,
same-identity cosine ~0.7 as with SFace, and the exact nearest neighbours in numpy,
the ground truth of a recall figure."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DIM = 128
PER_ID = 3
NOISE = 0.65  # |noise| relative to the unit centre: cosine between samples ~ 1/(1+0.65^2) = 0.70
CHUNK = 100_000  # rows per numpy block: bounded temporaries at 1M faces


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def noisy(centres: np.ndarray, rng, noise: float = NOISE) -> np.ndarray:
    """One fresh sample of each centre, unit length."""
    scaled = rng.standard_normal(centres.shape, dtype=np.float32) * (noise / np.sqrt(centres.shape[1]))
    return unit(centres + scaled).astype(np.float32)


@dataclass(frozen=True)
class Faces:
    centres: np.ndarray   # (identities, dim), unit length
    owner: np.ndarray     # (n,) the identity of each face: face i belongs to owner[i]
    vectors: np.ndarray   # (n, dim) float32, unit length


def identities(n: int, rng, dim: int = DIM, per_id: int = PER_ID) -> Faces:
    """n faces, per_id consecutive ones per identity."""
    centres = unit(rng.standard_normal((n // per_id + 1, dim), dtype=np.float32))
    owner = np.arange(n) // per_id
    vecs = np.empty((n, dim), np.float32)
    for a in range(0, n, CHUNK):
        vecs[a:a + CHUNK] = noisy(centres[owner[a:a + CHUNK]], rng)
    return Faces(centres, owner, vecs)


def exact_top(vectors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """(queries, k) row numbers of the k vectors of highest inner product, best first."""
    k = min(k, len(vectors))
    best_s = np.full((len(queries), 0), -np.inf, np.float32)
    best_i = np.zeros((len(queries), 0), np.int64)
    for a in range(0, len(vectors), CHUNK):
        sims = queries @ vectors[a:a + CHUNK].T
        kk = min(k, sims.shape[1])
        part = np.argpartition(-sims, kk - 1, axis=1)[:, :kk]
        best_s = np.hstack([best_s, np.take_along_axis(sims, part, 1)])
        best_i = np.hstack([best_i, part + a])
        keep = np.argsort(-best_s, axis=1, kind="stable")[:, :k]
        best_s, best_i = np.take_along_axis(best_s, keep, 1), np.take_along_axis(best_i, keep, 1)
    return best_i
