"""Verification rates at a false-accept rate, and two ways of fusing two embedders.

Pure maths over similarity arrays. The photos are split by person into a tuning half and
a reporting half: a fusion's weight and its per-model FAR maps are fitted on pairs of
the tuning half's people only, and every rate printed comes from the other half's pairs
(genuine pairs and impostor pairs both within the reporting half).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FARS = (1e-3, 1e-4, 1e-5)
TAIL_FAR = 1e-3          # the exponential tail of a FAR map starts here (as the score calibration)
CHUNK = 400_000          # pairs per gathered dot product (~200 MB of float32 rows at 128-d)


@dataclass(frozen=True)
class Pairs:
    """Every unordered pair of a set of photos: indices into the photo list, and whether
    the two faces are one person."""
    i: np.ndarray
    j: np.ndarray
    same: np.ndarray

    @property
    def genuine(self) -> int:
        return int(self.same.sum())

    @property
    def impostor(self) -> int:
        return int((~self.same).sum())


def person_split(person: np.ndarray, seed: int = 0) -> np.ndarray:
    """True for the photos of the reporting half of the people (a fixed shuffle of the
    people, half each way), False for the tuning half."""
    people = np.unique(person)
    report = np.random.default_rng(seed).permutation(len(people))[: len(people) // 2]
    return np.isin(person, people[report])


def all_pairs(rows: np.ndarray, person: np.ndarray) -> Pairs:
    """Every unordered pair among the photos `rows` (indices)."""
    a, b = np.triu_indices(len(rows), k=1)
    i, j = rows[a].astype(np.int32), rows[b].astype(np.int32)
    return Pairs(i, j, person[i] == person[j])


def cosines(emb: np.ndarray, pairs: Pairs) -> np.ndarray:
    """emb[i] . emb[j] for every pair (rows L2-normalised; a photo without a face has a zero
    row, so its pairs score 0: never above a threshold that matters)."""
    out = np.empty(len(pairs.i), np.float32)
    for k in range(0, len(out), CHUNK):
        s = slice(k, k + CHUNK)
        out[s] = np.einsum("ij,ij->i", emb[pairs.i[s]], emb[pairs.j[s]])
    return out


def threshold_at_far(impostor: np.ndarray, far: float) -> tuple[float, int]:
    """(the lowest score that no more than `far` of the impostors exceed, impostors above it)."""
    imp = np.sort(impostor)
    k = int(np.floor(far * len(imp)))
    return (float(imp[len(imp) - 1 - k]) if k < len(imp) else -np.inf), k


def tar_at_far(scores: np.ndarray, same: np.ndarray, far: float) -> tuple[float, float, int]:
    """(TAR, threshold, impostors above the threshold) at a false-accept rate."""
    t, k = threshold_at_far(scores[~same], far)
    return float((scores[same] > t).mean()), t, k


@dataclass(frozen=True)
class FarMap:
    """A model's score -> log10 FAR, fitted on impostor scores: empirical down to TAIL_FAR,
    then an exponential tail (mean excess), so two models' evidence can be added where
    neither has any impostor left to count."""
    knots: np.ndarray      # ascending scores
    log_far: np.ndarray    # log10 FAR at each knot
    u: float
    sigma: float

    @classmethod
    def fit(cls, impostor: np.ndarray, points: int = 512) -> "FarMap":
        imp = np.sort(impostor.astype(np.float64))
        u = float(np.quantile(imp, 1 - TAIL_FAR))
        sigma = float(max((imp[imp >= u] - u).mean(), 1e-6))
        q = np.linspace(0.0, 1 - TAIL_FAR, points)
        knots = np.quantile(imp, q)
        knots, first = np.unique(knots, return_index=True)
        return cls(knots, np.log10(1 - q[first]), u, sigma)

    def __call__(self, scores: np.ndarray) -> np.ndarray:
        s = np.asarray(scores, np.float64)
        body = np.interp(s, self.knots, self.log_far)
        tail = np.log10(TAIL_FAR) - (s - self.u) / (self.sigma * np.log(10))
        return np.where(s > self.u, tail, body)


def weighted(a: np.ndarray, b: np.ndarray, w: float) -> np.ndarray:
    """w a + (1 - w) b: for cosines, exactly the cosine of the concatenated embeddings
    [sqrt(w) e_a, sqrt(1 - w) e_b] (embedding-level fusion: one vector a face, one search)."""
    return (w * a + (1 - w) * b).astype(np.float32)


def concat_embeddings(ea: np.ndarray, eb: np.ndarray, w: float) -> np.ndarray:
    return np.hstack([np.sqrt(w) * ea, np.sqrt(1 - w) * eb]).astype(np.float32)


def best_weight(a: np.ndarray, b: np.ndarray, same: np.ndarray, far: float = 1e-4,
                grid: np.ndarray = np.linspace(0.0, 1.0, 21)) -> float:
    """The weight of a that gives the highest TAR at `far` (ties: the one nearer 0.5)."""
    tars = [tar_at_far(weighted(a, b, w), same, far)[0] for w in grid]
    best = max(tars)
    return float(min((w for w, t in zip(grid, tars) if t == best), key=lambda w: abs(w - 0.5)))


def far_fused(a: np.ndarray, b: np.ndarray, map_a: FarMap, map_b: FarMap) -> np.ndarray:
    """Score-level fusion: the two models' calibrated evidence added, -(log10 FAR_a +
    log10 FAR_b) (independent odds multiplied; higher is stronger)."""
    return (-(map_a(a) + map_b(b))).astype(np.float32)


@dataclass(frozen=True)
class Fusion:
    """Both fusions of two models, fitted on a tuning half's pairs: the concatenation's
    weight (best TAR at 1e-4) and each model's FAR map (its impostors)."""
    w: float
    map_a: FarMap
    map_b: FarMap

    @classmethod
    def fit(cls, a: np.ndarray, b: np.ndarray, same: np.ndarray) -> "Fusion":
        return cls(best_weight(a, b, same), FarMap.fit(a[~same]), FarMap.fit(b[~same]))

    def concat(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return weighted(a, b, self.w)

    def far_sum(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return far_fused(a, b, self.map_a, self.map_b)


def best_threshold_accuracy(scores: np.ndarray, same: np.ndarray) -> tuple[float, float]:
    """(threshold, accuracy) maximising accuracy, as LFW's protocol chooses it on the
    training pairs (the lowest of the best: edge/models/gate.py)."""
    from edge.models.gate import best_threshold
    t = best_threshold(scores, same)
    return t, float(((scores > t) == same).mean())


def gallery_split(person: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(gallery, probes) among `rows`: each person's first photo enrolled, their other
    photos probe it (a person with one photo is a distractor only)."""
    first = {}
    for r in rows:
        first.setdefault(int(person[r]), int(r))
    gallery = np.array(sorted(first.values()))
    return gallery, np.setdiff1d(rows, gallery)


def rank1(probe_scores: np.ndarray, gallery_person: np.ndarray, probe_person: np.ndarray) -> float:
    """Closed-set rank-1: share of probes whose best-scoring gallery face is their own
    person (probe_scores: probes x gallery, higher is closer)."""
    return float((gallery_person[np.argmax(probe_scores, axis=1)] == probe_person).mean())
