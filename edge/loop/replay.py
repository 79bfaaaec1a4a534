"""Tracks recorded once, decision rules replayed on them: what each loop signal buys.

The open-set evaluation (scripts/eval_open_set.py) runs the real Pipeline on recorded
sequences and keeps every searched frame's embedding, goodness and pose
(`record_tracks`). Those frames are then searched again against any gallery by exact
cosine, with the probe's own photo (a genuine probe) or own person (a stranger) left
out, and every rule is decided by the loop's own `decide()`: rules differ only in what
they are meant to differ in, and every recorded track serves as a stranger too.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from functools import cached_property
from typing import Iterable

import cv2
import numpy as np

from edge.imaging import decode_image
from edge.library.scores import similarity_to_score
from edge.loop.decision import Decision, DecisionRules, Hit, decide, fuse
from edge.loop.embed_worker import EmbedJob
from edge.loop.pipeline import LoopRules, Pipeline


@dataclass
class TrackRecord:
    """One recorded track: whose photo it is (its dataset row) and its searched frames."""
    who: str
    row: int
    embeddings: list[np.ndarray] = field(default_factory=list)
    goodness: list[float] = field(default_factory=list)
    pose: list[float] = field(default_factory=list)   # max |yaw|, |pitch|, |roll|, degrees


@dataclass(frozen=True, eq=False)
class Gallery:
    """Enrolled faces as one matrix, rows grouped by person (for per-person maxima)."""
    emb: np.ndarray        # faces x dim, unit rows
    people: list[str]      # one per person, in row-group order
    starts: np.ndarray     # first face of each person
    rows: np.ndarray       # the dataset row of each face

    @classmethod
    def of(cls, faces: dict[str, list[int]], emb: np.ndarray) -> "Gallery":
        """`faces`: person -> dataset rows of their enrolled photos."""
        people = [p for p in faces if faces[p]]
        rows = np.array([i for p in people for i in faces[p]], int)
        starts = np.concatenate([[0], np.cumsum([len(faces[p]) for p in people])[:-1]]).astype(int)
        return cls(emb[rows].astype(np.float32), people, starts, rows)

    @property
    def faces(self) -> int:
        return len(self.emb)

    @cached_property
    def position(self) -> dict[int, int]:
        """Dataset row -> its face's position in the gallery."""
        return {int(r): k for k, r in enumerate(self.rows)}

    def leave_out(self, per_probe: list[Iterable[int]]) -> np.ndarray:
        """probes x faces, True at the faces (dataset rows) a probe must not meet: its own
        photo (a genuine probe) or its own person's photos (a stranger)."""
        mask = np.zeros((len(per_probe), self.faces), bool)
        for i, rows in enumerate(per_probe):
            mask[i, [self.position[r] for r in rows if r in self.position]] = True
        return mask

    def person_scores(self, probes: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        """probes x people: each person's best face on the 0-100 scale, faces masked out
        (`leave_out`) not searched."""
        sims = np.atleast_2d(probes) @ self.emb.T
        if mask is not None:
            sims[mask] = -1.0
        return similarity_to_score(np.maximum.reduceat(sims, self.starts, axis=1))


def top_hits(person_scores: np.ndarray, people: list[str]) -> list[list[Hit]]:
    """Per probe the best person and the best other person, as the library returns them."""
    order = np.argsort(-person_scores, axis=1)[:, :2]
    return [[Hit(people[j], "g", "", float(row[j])) for j in idx] for row, idx in zip(person_scores, order)]


def usable(track: TrackRecord, max_pose: float, min_goodness: float) -> list[int]:
    """The frames a loop with this pose limit and goodness floor would have searched."""
    return [i for i, (g, p) in enumerate(zip(track.goodness, track.pose)) if g >= min_goodness and p <= max_pose]


def fused_embeddings(embeddings: np.ndarray) -> np.ndarray:
    """Row k: the track's first k+1 frames fused, as the loop searches them."""
    return np.stack([fuse(embeddings[:k]) for k in range(1, len(embeddings) + 1)])


def replay(frames: list[list[Hit]], rules: DecisionRules) -> Decision | None:
    """The loop's decision: at the first searched frame where decide() takes one (with
    rules.fused, `frames` are the hits of the running fused embeddings)."""
    for k in range(1, len(frames) + 1):
        d = decide(frames[:k], rules)
        if d is not None:
            return d
    return None


# -- recording ---------------------------------------------------------------------------
def drift(img: np.ndarray, seed: int, frames: int = 24, fps: float = 15.0):
    """A 640x480 sequence of a photo walking into the frame: growing from 0.85x to 1.15x,
    the head swaying +-4 deg, the light changing, every 5th frame motion-blurred, sensor
    noise. (A photo cannot turn its head: its pose stays the photo's.)"""
    rng = np.random.default_rng(seed)
    h, w = img.shape[:2]
    gain, phase = rng.uniform(0.85, 1.1), rng.uniform(0, 2 * np.pi)
    blur = np.full((1, 5), 1 / 5, np.float32)
    for i in range(frames):
        t = i / (frames - 1)
        m = cv2.getRotationMatrix2D((w / 2, h / 2), 4 * np.sin(2 * np.pi * t + phase), 0.85 + 0.3 * t)
        m[:, 2] += (120 + 4 * i, 100 + i)
        frame = cv2.warpAffine(img, m, (640, 480), borderValue=(70, 70, 70)).astype(np.float32)
        if i % 5 == 4:
            frame = cv2.filter2D(frame, -1, blur)
        frame = frame * (gain + rng.normal(0, 0.02)) + rng.normal(0, 3, frame.shape)
        yield np.clip(frame, 0, 255).astype(np.uint8), i / fps


class Recorder(Pipeline):
    """The loop as it runs (embedding inline: deterministic), every searched frame's
    embedding, goodness and pose kept. It
    never decides before max_frames and gates no pose, so a replay can apply any rule,
    pose limit or goodness floor to the frames the loop would have searched."""
    RULES = LoopRules(liveness_control="NONE", max_pose_deg=90.0, min_goodness=0.0,
                      decision=DecisionRules(match_score=100.0, margin=0.0, min_votes=6, max_frames=6, fused=False))

    def __init__(self, analyser, library, min_face_px: int = RULES.min_face_px):
        super().__init__(analyser, library, dataclasses.replace(self.RULES, min_face_px=min_face_px), "replay")
        self.tracks: dict[int, TrackRecord] = {}
        self._pose: dict[EmbedJob, float] = {}

    def _job(self, track, face, image, ts, goodness):
        job = super()._job(track, face, image, ts, goodness)
        self._pose[job] = max(abs(face.yaw), abs(face.pitch), abs(face.roll))
        return job

    def _search_job(self, job, embedding, query):
        rec = self.tracks.setdefault(job.track_id, TrackRecord("", -1))
        rec.embeddings.append(embedding)
        rec.goodness.append(job.goodness)
        rec.pose.append(self._pose.pop(job))
        return super()._search_job(job, embedding, query)


def record(analyser, library, frames, min_face_px: int = Recorder.RULES.min_face_px) -> list[TrackRecord]:
    """Every searched track of a sequence of (frame, ts)."""
    pipe = Recorder(analyser, library, min_face_px)
    for frame, ts in frames:
        pipe.process(frame, ts)
    pipe.flush()
    pipe.close()
    return list(pipe.tracks.values())


def record_tracks(analyser, library, photos: list[tuple[str, int, bytes]]) -> list[TrackRecord]:
    """Per (person, dataset row, photo file) its drifting sequence's main track: the most
    searched one (a background face in an LFW photo is a track of its own)."""
    out = []
    for n, (who, row, data) in enumerate(photos):
        tracks = record(analyser, library, drift(decode_image(data), seed=n))
        main = max(tracks, key=lambda r: len(r.embeddings), default=TrackRecord("", -1))
        main.who, main.row = who, row
        out.append(main)
    return out
