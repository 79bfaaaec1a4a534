"""The int8 accuracy gate's measures (pure maths on embeddings; scripts/eval_int8.py).

Verification accuracy follows LFW's protocol (threshold from pairsDevTrain, applied to
pairsDevTest). TAR at FAR 1e-3 and the score table's impostor shares need far more
impostor pairs than pairsDevTest's 500, so they are taken over every pair of the
pairsDevTest photos (~1.4 million cross-person pairs); enrolled and probe embeddings
may come from different precisions (enrolled fp32, probe int8).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edge.accuracy.rates import threshold_at_far

# The gate (issue 15): int8 against fp32 on pairsDevTest.
MAX_ACCURACY_DROP = 0.002      # verification accuracy, 0.2 points
MAX_TAR_DROP = 0.005           # TAR at FAR 1e-3, 0.5 points
GATE_FAR = 1e-3
SCORES = (70.0, 80.0, 90.0)    # impostor shares above these should stay ~1e-3 / 1e-4 / 1e-5


@dataclass(frozen=True)
class AllPairs:
    """Scores of every (enrolled, probe) photo pair of two people or of one."""
    genuine: np.ndarray    # cosines of same-person pairs
    impostor: np.ndarray   # cosines of cross-person pairs


def all_pairs(enrolled: np.ndarray, probe: np.ndarray, ids: np.ndarray) -> AllPairs:
    """Every ordered pair i != j (enrolled[i] against probe[j]): with one precision on
    both sides each unordered pair counts twice, which changes no rate."""
    sims = enrolled @ probe.T
    same = ids[:, None] == ids[None, :]
    off = ~np.eye(len(ids), dtype=bool)
    return AllPairs(sims[same & off].astype(np.float64), sims[~same].astype(np.float64))


def tar_at_far(pairs: AllPairs, far: float = GATE_FAR) -> tuple[float, float]:
    """(true-accept rate, cosine threshold) where at most `far` of impostors pass."""
    thr = threshold_at_far(pairs.impostor, far)[0]
    return float((pairs.genuine > thr).mean()), thr


def impostor_shares(impostor_scores: np.ndarray, levels=SCORES) -> dict[float, float]:
    """Share of impostor pairs whose score exceeds each level."""
    return {lv: float((impostor_scores > lv).mean()) for lv in levels}


def best_thresholds(sims: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """(lowest, highest) cosine classifying the most pairs right (midpoints between
    scores). The lowest is scripts/eval_lfw.py's choice; on pairsDevTrain the maximum is
    often a wide plateau, and where on it the threshold lies moves pairsDevTest's count."""
    c = np.unique(sims)
    mids = np.concatenate([[c[0] - 1e-6], (c[:-1] + c[1:]) / 2, [c[-1] + 1e-6]])
    accs = np.array([((sims > t) == labels).mean() for t in mids])
    best = np.flatnonzero(accs == accs.max())
    return float(mids[best[0]]), float(mids[best[-1]])


def best_threshold(sims: np.ndarray, labels: np.ndarray) -> float:
    """eval_lfw's threshold: the lowest of the best (see best_thresholds)."""
    return best_thresholds(sims, labels)[0]


def passes(fp32: dict, int8: dict) -> dict[str, bool]:
    """The gate's checks on two results {accuracy, tar}."""
    return {"accuracy": fp32["accuracy"] - int8["accuracy"] <= MAX_ACCURACY_DROP + 1e-12,
            "tar": fp32["tar"] - int8["tar"] <= MAX_TAR_DROP + 1e-12}
