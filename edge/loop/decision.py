"""Who is this track: one decision from several frames, with unknown as a normal outcome.

A single frame can match the wrong person (motion blur, a turned head, an impostor one
in 10^4 at score 80), so a track is decided from several of its best frames, one of two
ways:
- fused (the default): the track's searched embeddings are averaged (`fuse`) and the
  mean is searched; the person is recognised once `min_votes` frames are fused and the
  fused face scores at least `match_score` AND leads the second-best person by `margin`
  points (two look-alikes enrolled side by side must not be a coin toss). Averaging
  cancels what differs between frames (blur, noise, a twitch) and keeps the face:
  measured on open-set sequences it misses 3-4 points fewer enrolled people than votes at
  the same threshold, and names strangers at the rate the threshold was derived for
  (docs/loop.md, "Strangers");
- votes: a frame votes for its top person only when that person clears the score and
  the margin; a person is recognised with `min_votes` votes and a strict majority of the
  votes cast.
After `max_frames` searched frames without a person, the track is unknown. Which frames
are searched is `frame_goodness`: sharp, frontal, large, confident.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from edge.analysis.face import Face


@dataclass(frozen=True)
class DecisionRules:
    match_score: float = 80.0   # Baidu 0-100 score; 80 is an impostor rate of ~1e-4 (docs/api.md)
    margin: float = 2.0         # best person minus second-best person, in score points
    min_votes: int = 2          # frames that must agree on the person (fused: be fused first)
    max_frames: int = 6         # searched frames before the track is declared unknown
    fused: bool = True          # decide on the mean of the searched frames' embeddings


@dataclass(frozen=True)
class Hit:
    user_id: str
    group_id: str
    user_info: str
    score: float


@dataclass(frozen=True)
class Decision:
    kind: str                   # "recognised" | "unknown"
    hit: Hit | None
    score: float                # the recognised person's median vote score, or the best seen
    frames: int                 # searched frames the decision rests on
    margin: float | None        # over the second-best person, in the frames that voted
    reason: str


def frame_goodness(face: Face) -> float:
    """How much a frame of this face is worth searching, 0..1: sharp, frontal, large,
    confident. Used to pick a track's best frames; gating has already refused bad ones."""
    q = face.quality
    sharp = 1.0 - (q.blur if q else 0.5)
    frontal = max(0.0, 1.0 - max(abs(face.yaw), abs(face.pitch)) / 45.0)
    size = min(1.0, min(face.width, face.height) / 160.0)
    return float(sharp * frontal * (0.5 + 0.5 * size) * face.score)


def fuse(embeddings: list[np.ndarray]) -> np.ndarray:
    """One face from a track's frames: the mean of their unit embeddings, renormalised."""
    mean = np.mean(np.asarray(embeddings, np.float32), axis=0)
    return mean / max(float(np.linalg.norm(mean)), 1e-12)


def frame_vote(hits: list[Hit], rules: DecisionRules) -> tuple[Hit | None, float | None]:
    """(the person this frame votes for or None, its lead over the next person)."""
    if not hits:
        return None, None
    ranked = sorted(hits, key=lambda h: -h.score)
    top = ranked[0]
    second = next((h.score for h in ranked[1:] if h.user_id != top.user_id), None)
    lead = None if second is None else top.score - second
    if top.score < rules.match_score or (lead is not None and lead < rules.margin):
        return None, lead
    return top, lead


def decide(per_frame: list[list[Hit]], rules: DecisionRules) -> Decision | None:
    """The track's decision from the hits of its searched frames, or None: need more.
    With rules.fused, frame k's hits are those of the first k frames fused (`fuse`)."""
    if rules.fused:
        return _decide_fused(per_frame, rules)
    votes: list[tuple[Hit, float | None]] = []
    best_seen = 0.0
    for hits in per_frame:
        best_seen = max([best_seen] + [h.score for h in hits])
        hit, lead = frame_vote(hits, rules)
        if hit is not None:
            votes.append((hit, lead))
    counts = Counter((h.user_id, h.group_id) for h, _ in votes)
    if counts:
        (user, group), n = counts.most_common(1)[0]
        if n >= rules.min_votes and n * 2 > len(per_frame):
            mine = [(h, lead) for h, lead in votes if (h.user_id, h.group_id) == (user, group)]
            scores = sorted(h.score for h, _ in mine)
            leads = [lead for _, lead in mine if lead is not None]
            return Decision("recognised", mine[0][0], scores[len(scores) // 2], len(per_frame),
                            min(leads) if leads else None, f"{n} of {len(per_frame)} frames agree")
    if len(per_frame) >= rules.max_frames:
        return Decision("unknown", None, best_seen, len(per_frame), None,
                        f"no person reached score {rules.match_score:g} with a {rules.margin:g}-point "
                        f"lead in {rules.min_votes} of {len(per_frame)} frames")
    return None


def _decide_fused(per_frame: list[list[Hit]], rules: DecisionRules) -> Decision | None:
    k = len(per_frame)
    hits = per_frame[-1] if per_frame else []
    if k >= rules.min_votes:
        top, lead = frame_vote(hits, rules)
        if top is not None:
            return Decision("recognised", top, top.score, k, lead, f"{k} frames fused")
    if k >= rules.max_frames:
        best = max((h.score for h in hits), default=0.0)
        return Decision("unknown", None, best, k, None,
                        f"no person reached score {rules.match_score:g} with a {rules.margin:g}-point "
                        f"lead with {k} frames fused")
    return None
