"""Fitting motion liveness's pair weights (motion_liveness.PAIR_WEIGHTS) on measured pairs.

A pair (two views of one track, motion_liveness.parallax) is a sample; its class is the
sequence's (live or attack) and its kind the source it came from (the walking video,
NUAA live, tilted prints, bent prints, ...). Each kind counts alike within its class,
whatever its number of pairs: otherwise the abundant clean synthetic prints would set
the boundary and the rare hard ones (bent prints, NUAA's twisted prints) would not.
"""
from __future__ import annotations

import collections
from dataclasses import dataclass
from typing import Iterable

import numpy as np

from edge.analysis import motion_liveness as ml
from edge.analysis.liveness import fit_logistic
from edge.thresholds import LIVENESS

FIT_L2 = 1.0   # on standardised features, as the single-image fit (docs/liveness.md)


@dataclass(frozen=True)
class PairSample:
    kind: str          # the source kind: "live/walking_people", "print_bent", ...
    live: bool
    track: str         # sequence and track, for per-track scores
    pair: ml.Parallax


def samples_of(traces: Iterable, kind: str, live: bool) -> list[PairSample]:
    """Every pair the traced tracks made (liveness_eval.TrackTrace.all_pairs)."""
    return [PairSample(kind, live, f"{t.source}#{t.track_id}", p) for t in traces for p, _ in t.all_pairs]


def fit_pairs(samples: list[PairSample], l2: float = FIT_L2) -> tuple[np.ndarray, float]:
    """(weights, bias) for motion_liveness.pair_features, each kind weighing alike."""
    x = np.array([ml.pair_features(s.pair) for s in samples])
    y = np.array([s.live for s in samples], dtype=float)
    counts = collections.Counter(s.kind for s in samples)
    sw = np.array([1.0 / counts[s.kind] for s in samples])
    return fit_logistic(x, y, l2, sample_weight=sw)


def track_scores(samples: list[PairSample], weights, bias: float) -> dict[str, tuple[str, bool, int, float]]:
    """Per track: (kind, live, pairs, mean pair score) under the given weights."""
    acc: dict[str, list] = collections.defaultdict(list)
    meta = {}
    for s in samples:
        acc[s.track].append(float(np.dot(weights, ml.pair_features(s.pair))) + bias)
        meta[s.track] = (s.kind, s.live)
    return {k: (*meta[k], len(v), float(np.mean(v))) for k, v in acc.items()}


def kind_lines(samples: list[PairSample], weights, bias: float) -> list[str]:
    """Per kind: pairs, median features, and the spread of per-track mean scores."""
    out = []
    scores = track_scores(samples, weights, bias)
    for kind in sorted({s.kind for s in samples}):
        f = np.array([ml.pair_features(s.pair) for s in samples if s.kind == kind])
        tr = [v[3] for v in scores.values() if v[0] == kind and v[2] >= 2]
        out.append(f"  {kind:28s} pairs {len(f):4d}  median gain {np.median(f[:, 0]):5.2f} agreement "
                   f"{np.median(f[:, 1]):5.2f} bent {np.median(f[:, 2]):5.2f}  tracks(>=2 pairs) {len(tr):3d} "
                   f"mean score min/med/max " + ("-" if not tr else
                                                 f"{min(tr):5.2f} {np.median(tr):5.2f} {max(tr):5.2f}"))
    return out


def track_single_scores(traces: Iterable) -> list[float]:
    """Per track, the median single-image liveness score of its frames (TrackTrace.frames)."""
    return [float(np.median([f.single for f in t.frames])) for t in traces if t.frames]


def single_lines(by_kind: dict[str, list[float]]) -> list[str]:
    """Per kind: tracks, and the share of tracks whose median reaches each level's threshold."""
    out = []
    for kind, xs in sorted(by_kind.items()):
        x = np.asarray(xs)
        if not len(x):
            continue
        levels = ", ".join(f">= {lv} {thr:g}: {np.mean(x >= thr):4.0%}" for lv, thr in LIVENESS.items())
        out.append(f"  {kind:28s} tracks {len(x):3d}  median {np.median(x):.2f}  {levels}")
    return out
