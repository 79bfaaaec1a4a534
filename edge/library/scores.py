"""SFace cosine similarity <-> Baidu-style 0..100 match score.

Baidu's face API reports similarity on 0..100 with 80 as the recommended same-person
threshold. Ours gives each score a fixed impostor false-accept rate (FAR, the share of
different-person pairs scoring at least as high), measured on every cross-person pair
of LFW view 1 (~12 million pairs):

    score = 40 + 10 * log10(1 / FAR)
    60 <-> FAR 1e-2, 70 <-> 1e-3, 80 <-> 1e-4, 90 <-> 1e-5

Above 90 the score rises linearly in cosine to 100 at cosine 1 (the same face), so
genuine pairs - most beyond FAR 1e-6 - keep distinct scores (LFW same-person median
~94) instead of all reading 100. Below the median impostor cosine (score ~43) the score falls linearly to 0 at
cosine -1. Beyond FAR ~1.6e-5 the table follows a fitted peaks-over-threshold tail,
not the thin empirical counts. The knots live in score_calibration.json next to this
module; scripts/calibrate_scores.py regenerates them and records their provenance.
"""
from __future__ import annotations

import json
import math
from functools import lru_cache
from pathlib import Path

import numpy as np

TABLE_PATH = Path(__file__).with_name("score_calibration.json")


class CalibrationError(ValueError):
    """The calibration table is missing or malformed."""


def load_knots(path: Path = TABLE_PATH) -> tuple[np.ndarray, np.ndarray]:
    """(cosines, scores) from a calibration file, validated.

    np.interp silently returns nonsense on unsorted knots, and the inverse mapping
    needs both columns strictly increasing, so a bad table fails here, loudly.
    """
    try:
        knots = np.asarray(json.loads(Path(path).read_text(encoding="utf-8"))["knots"], dtype=np.float64)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CalibrationError(f"cannot read score calibration {path}: {exc}") from exc
    if knots.ndim != 2 or knots.shape[1] != 2 or len(knots) < 2 or not np.isfinite(knots).all():
        raise CalibrationError(f"{path}: knots must be a list of >= 2 finite [cosine, score] pairs")
    cos, score = knots[:, 0], knots[:, 1]
    if not (np.all(np.diff(cos) > 0) and np.all(np.diff(score) > 0)):
        raise CalibrationError(f"{path}: knots must be strictly increasing in cosine and in score")
    if cos[0] > -1.0 or cos[-1] > 1.0 or score[0] < 0.0 or score[-1] > 100.0:
        raise CalibrationError(f"{path}: knots must lie within cosine [-1, 1] and score [0, 100]")
    return cos, score


@lru_cache(maxsize=1)
def _knots() -> tuple[np.ndarray, np.ndarray]:
    return load_knots(TABLE_PATH)


def _like_input(x, value: np.ndarray):
    """A float for a scalar input, an array for an array input."""
    return float(value) if np.ndim(x) == 0 else value


def similarity_to_score(sim):
    """Cosine similarity (scalar or array) -> score in [0, 100]; not rounded (callers round)."""
    cos, score = _knots()
    out = np.clip(np.interp(np.asarray(sim, dtype=np.float64), cos, score), 0.0, 100.0)
    return _like_input(sim, out)


def score_to_similarity(score):
    """Score (scalar or array) -> the lowest cosine reaching it: lets a match_threshold
    prune candidates by cosine before any score is computed. Scores outside the table
    map to its end points."""
    cos, scores = _knots()
    out = np.interp(np.asarray(score, dtype=np.float64), scores, cos)
    return _like_input(score, out)


# -- score <-> impostor FAR (the open-set threshold rule, edge/loop/open_set.py) --------
FAR_SCALE_TOP = 90.0   # up to this score, score = 40 + 10 log10(1/FAR) by construction


@lru_cache(maxsize=1)
def _tail() -> dict:
    """The fitted peaks-over-threshold tail the table follows beyond its splice."""
    try:
        tail = json.loads(TABLE_PATH.read_text(encoding="utf-8"))["tail_model"]
        return {k: float(tail[k]) for k in ("splice_far", "splice_cosine", "xi_used", "sigma_at_splice")}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CalibrationError(f"cannot read the tail model of {TABLE_PATH}: {exc}") from exc


def far_to_score(far: float) -> float:
    """The score a single impostor pair exceeds with probability `far`: the table's
    definition down to FAR 1e-5 (score 90), then the cosine where the fitted tail
    reaches `far`, mapped through the table (so 1e-6 is ~90.8, not 100)."""
    far = float(far)
    if not 0.0 < far <= 1.0:
        raise ValueError(f"far must be in (0, 1], got {far!r}")
    score = 40.0 + 10.0 * math.log10(1.0 / far)
    if score <= FAR_SCALE_TOP:
        return score
    t = _tail()
    xi, sigma, q = t["xi_used"], t["sigma_at_splice"], far / t["splice_far"]
    cos = t["splice_cosine"] + (sigma * (q ** -xi - 1.0) / xi if xi else -sigma * math.log(q))
    return similarity_to_score(min(cos, 1.0))


def score_to_far(score: float) -> float:
    """Inverse of far_to_score: the per-pair impostor FAR at `score` (0 beyond the
    fitted tail's end point, a bounded tail)."""
    score = float(score)
    if score <= FAR_SCALE_TOP:
        return min(1.0, 10.0 ** (-(score - 40.0) / 10.0))
    t = _tail()
    xi, sigma = t["xi_used"], t["sigma_at_splice"]
    y = max(score_to_similarity(score) - t["splice_cosine"], 0.0)
    if not xi:
        return t["splice_far"] * math.exp(-y / sigma)
    base = 1.0 + xi * y / sigma
    return t["splice_far"] * base ** (-1.0 / xi) if base > 0 else 0.0
