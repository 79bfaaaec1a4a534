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
