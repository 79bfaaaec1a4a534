"""An embedder's cosine similarity <-> Baidu-style 0..100 match score.

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
module (SFace's; each other embedder has its own table, TABLES: ScoreScale, scale_for);
scripts/calibrate_scores.py regenerates them and records their provenance.
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


def _like_input(x, value: np.ndarray):
    """A float for a scalar input, an array for an array input."""
    return float(value) if np.ndim(x) == 0 else value


# -- score <-> impostor FAR (the open-set threshold rule, edge/loop/open_set.py) --------
FAR_SCALE_TOP = 90.0   # up to this score, score = 40 + 10 log10(1/FAR) by construction

# One table per embedder (`models.embedder`), each made by scripts/calibrate_scores.py
# --embedder NAME on the same photos: score 80 is FAR ~1e-4 whichever embedder runs.
TABLES = {"sface": TABLE_PATH, "sface_dlib": TABLE_PATH.with_name("score_calibration_sface_dlib.json")}


class ScoreScale:
    """One embedder's cosine <-> score table and the tail it follows beyond FAR 1e-5."""

    def __init__(self, path: Path = TABLE_PATH):
        self.path = Path(path)
        self.cos, self.scores = load_knots(self.path)
        self._tail: dict | None = None

    def similarity_to_score(self, sim):
        """Cosine similarity (scalar or array) -> score in [0, 100]; not rounded (callers round)."""
        out = np.clip(np.interp(np.asarray(sim, dtype=np.float64), self.cos, self.scores), 0.0, 100.0)
        return _like_input(sim, out)

    def score(self, sim) -> float:
        """Baidu's 0..100 score of one cosine, as the responses carry it (5 decimals)."""
        return round(float(self.similarity_to_score(float(sim))), 5)

    def score_to_similarity(self, score):
        """Score (scalar or array) -> the lowest cosine reaching it: lets a match_threshold
        prune candidates by cosine before any score is computed. Scores outside the table
        map to its end points."""
        out = np.interp(np.asarray(score, dtype=np.float64), self.scores, self.cos)
        return _like_input(score, out)

    def tail(self) -> dict:
        """The fitted peaks-over-threshold tail the table follows beyond its splice."""
        if self._tail is None:
            try:
                tail = json.loads(self.path.read_text(encoding="utf-8"))["tail_model"]
                self._tail = {k: float(tail[k]) for k in ("splice_far", "splice_cosine", "xi_used", "sigma_at_splice")}
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise CalibrationError(f"cannot read the tail model of {self.path}: {exc}") from exc
        return self._tail

    def far_to_score(self, far: float) -> float:
        """The score a single impostor pair exceeds with probability `far`: the table's
        definition down to FAR 1e-5 (score 90), then the cosine where the fitted tail
        reaches `far`, mapped through the table (so 1e-6 is ~90.8, not 100)."""
        far = float(far)
        if not 0.0 < far <= 1.0:
            raise ValueError(f"far must be in (0, 1], got {far!r}")
        score = 40.0 + 10.0 * math.log10(1.0 / far)
        if score <= FAR_SCALE_TOP:
            return score
        t = self.tail()
        xi, sigma, q = t["xi_used"], t["sigma_at_splice"], far / t["splice_far"]
        cos = t["splice_cosine"] + (sigma * (q ** -xi - 1.0) / xi if xi else -sigma * math.log(q))
        return self.similarity_to_score(min(cos, 1.0))

    def score_to_far(self, score: float) -> float:
        """Inverse of far_to_score: the per-pair impostor FAR at `score` (0 beyond the
        fitted tail's end point, a bounded tail)."""
        score = float(score)
        if score <= FAR_SCALE_TOP:
            return min(1.0, 10.0 ** (-(score - 40.0) / 10.0))
        t = self.tail()
        xi, sigma = t["xi_used"], t["sigma_at_splice"]
        y = max(self.score_to_similarity(score) - t["splice_cosine"], 0.0)
        if not xi:
            return t["splice_far"] * math.exp(-y / sigma)
        base = 1.0 + xi * y / sigma
        return t["splice_far"] * base ** (-1.0 / xi) if base > 0 else 0.0


@lru_cache(maxsize=None)
def scale_for(embedder: str = "sface") -> ScoreScale:
    """The score scale of an embedder's cosines (a missing or bad table: CalibrationError)."""
    if embedder not in TABLES:
        raise CalibrationError(f"no score table for embedder {embedder!r}")
    return ScoreScale(TABLES[embedder])


# SFace's scale (the default embedder's), for code that only ever sees SFace's cosines
# (its evaluation tools); whatever serves the configured embedder takes scale_for(name).
def similarity_to_score(sim):
    return scale_for("sface").similarity_to_score(sim)


def score_to_similarity(score):
    return scale_for("sface").score_to_similarity(score)


def far_to_score(far: float) -> float:
    return scale_for("sface").far_to_score(far)


def score_to_far(score: float) -> float:
    return scale_for("sface").score_to_far(score)
