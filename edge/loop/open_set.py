"""The loop's match score from the false-identification rate the operator asks for.

A stranger at the door is compared with every face searched; one impostor pair scores
above S with the calibrated probability FAR(S) (edge/library/scores.py: score =
40 + 10 log10(1/FAR) up to 90, the fitted tail beyond). So the chance that a stranger's
best match clears S grows with the library: 1 - (1 - FAR)^faces, ~FAR * faces. A fixed
score 80 (FAR 1e-4) names one stranger in two at 5,000 faces (issue 12). Here the score
is derived instead: the per-comparison FAR that keeps the stranger-track rate at the
operator's target for the faces actually searched.

The frames of one track are not independent draws: the same stranger keeps hitting the
same look-alike (issue 12, measured), so a track counts as about one draw
(`DRAWS_PER_TRACK`, per decision mode) and the margin is extra safety, not part of the
budget.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from edge.library.scores import ScoreScale, scale_for
from edge.thresholds import SAME_PERSON_SCORE

# Draws a stranger's track counts as, per decision mode (scripts/eval_open_set.py --loop,
# 974 stranger tracks x ~3,000 people; docs/loop.md "Strangers"): a voted track was named
# at 0.8-0.9x the rate of the same people's single photos; a fused track at 1.4x at
# scores 80-90 and 1.9x at 90.6. Averaging near-identical frames gives a cleaner face
# whose cosines run higher against everyone: the genuine gain, and this impostor cost.
DRAWS_PER_TRACK = {"votes": 1.0, "fused": 2.0}
# The score the derived threshold stops at by default: the calibration measured
# 12.4 million impostor pairs (FAR ~1e-7, score ~91.6); 92 (FAR ~3e-8) is already the
# fitted tail's extrapolation, and genuine LFW pairs have a median of ~94.
DEFAULT_MAX_SCORE = 92.0


@dataclass(frozen=True)
class OpenSetTarget:
    """What the operator asks for (config run.*)."""
    false_id_per_track: float = 1e-3   # stranger tracks named as someone, per stranger track
    false_id_per_hour: float = 0.0     # and per hour at a busy door (0: no hourly target) ...
    strangers_per_hour: float = 0.0    # ... given this many stranger tracks an hour
    max_score: float = DEFAULT_MAX_SCORE
    # Never looser than Baidu's recommended same-person score, however small the library:
    # a 10-face office keeps score 80 rather than dropping to 70.
    min_score: float = SAME_PERSON_SCORE
    override: float = 0.0              # run.match_score: > 0 is used as it is


@dataclass(frozen=True)
class Threshold:
    """The loop's effective match score at one library size, and what it means."""
    score: float
    faces: int                  # faces searched (the searched groups)
    groups: tuple[str, ...]     # () = every group
    derived: bool               # False: run.match_score overrides
    target_per_track: float     # what the operator asked for
    expected_per_track: float   # the stranger-track false-ID rate at this score and size
    outgrown: bool              # the target needs a score above max_score

    @property
    def one_in(self) -> float:
        """About 1 stranger track in this many is named as someone."""
        return math.inf if self.expected_per_track <= 0 else 1.0 / self.expected_per_track

    def describe(self) -> str:
        groups = ",".join(self.groups) if self.groups else "all"
        how = "derived" if self.derived else "run.match_score"
        if not self.faces:
            meaning = "no stranger can be named as someone (the library is empty)"
        elif math.isinf(self.one_in):
            meaning = "no stranger expected to be named as someone (beyond the calibrated tail)"
        else:
            meaning = f"about 1 stranger track in {self.one_in:,.0f} named as someone"
        text = f"library {self.faces} faces in groups {groups}; threshold {self.score:.2f} ({how}); {meaning}"
        if self.outgrown:
            want = f"the target 1 in {1 / self.target_per_track:,.0f}"
            text += (f"; OUTGROWN: {want} needs a score above run.max_match_score {self.score:g}" if self.derived
                     else f"; OUTGROWN: run.match_score {self.score:g} falls short of {want}")
        return text

    def as_dict(self) -> dict:
        d = asdict(self)
        d["groups"] = list(self.groups)
        d["stranger_tracks_per_false_id"] = None if math.isinf(self.one_in) else round(self.one_in)
        d["summary"] = self.describe()
        return d


def per_track_target(target: OpenSetTarget) -> float:
    """The stricter of the per-track and the per-hour target (as a per-track rate)."""
    rate = target.false_id_per_track
    if target.false_id_per_hour > 0 and target.strangers_per_hour > 0:
        rate = min(rate, target.false_id_per_hour / target.strangers_per_hour)
    return rate


def track_draws(fused: bool) -> float:
    """The draws a track decided this way counts as."""
    return DRAWS_PER_TRACK["fused" if fused else "votes"]


def required_far(per_track: float, faces: int, draws: float = 1.0) -> float:
    """Per-comparison FAR at which 1 - (1 - FAR)^(faces * draws) equals `per_track`."""
    n = max(1.0, faces * draws)
    return -math.expm1(math.log1p(-per_track) / n)


def expected_false_id(far: float, faces: int, draws: float = 1.0) -> float:
    """The chance a stranger track clears a score of per-pair FAR `far` against `faces`."""
    if far <= 0 or faces <= 0:
        return 0.0
    return -math.expm1(max(1.0, faces * draws) * math.log1p(-min(far, 1.0 - 1e-16)))


def threshold(target: OpenSetTarget, faces: int, groups: tuple[str, ...] = (), draws: float = 1.0,
              scale: ScoreScale | None = None) -> Threshold:
    """The effective match score for `faces` searched faces, a track counting as `draws`
    draws (`track_draws`; 1: a single photo), on the embedder's `scale` (SFace's)."""
    scale = scale or scale_for("sface")
    want = per_track_target(target)
    if target.override > 0:
        score, derived, outgrown = target.override, False, False
    else:
        needed = scale.far_to_score(required_far(want, faces, draws))
        # rounded up to the reported precision, so the rounding never loosens the target
        score = min(max(math.ceil(needed * 100 - 1e-9) / 100, target.min_score), target.max_score)
        derived = True
        outgrown = needed > target.max_score
    expected = expected_false_id(scale.score_to_far(score), faces, draws)
    if not derived:
        outgrown = expected > want * 1.001
    return Threshold(score, faces, tuple(groups), derived, want, expected, outgrown)
