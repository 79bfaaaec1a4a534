"""Face tracks across frames: which face in this frame is which face of the last one.

A greedy IoU matcher with a constant-velocity prediction (SORT without the Kalman
filter): at a gate or kiosk faces are few (1-5), move slowly relative to the frame rate
and rarely cross, so the optimal assignment and a full filter buy nothing measurable.
A track survives `max_age_s` without a detection (a blink of the detector, a hand in
front), so one person walking up is one track and one decision, not one per frame.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

from edge.analysis.detector import iou
from edge.analysis.face import Face


@dataclass
class Track:
    track_id: int
    box: np.ndarray
    first_ts: float
    last_ts: float
    hits: int = 1
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(4))  # box change per second
    state: dict = field(default_factory=dict)   # what later stages keep per track

    def predicted(self, ts: float) -> np.ndarray:
        return self.box + self.velocity * max(0.0, ts - self.last_ts)

    def age_s(self, ts: float) -> float:
        return ts - self.first_ts


class Tracker:
    def __init__(self, iou_threshold: float = 0.3, max_age_s: float = 1.0):
        self.iou_threshold = iou_threshold
        self.max_age_s = max_age_s
        self.tracks: dict[int, Track] = {}
        self._ids = itertools.count(1)

    def update(self, faces: list[Face], ts: float) -> tuple[list[tuple[Track, Face]], list[Track]]:
        """Match this frame's faces to tracks; returns ([(track, face)], ended tracks).

        A face matching no track starts one; a track unmatched for max_age_s ends."""
        pairs = []
        for tid, track in self.tracks.items():
            pred = track.predicted(ts)
            for i, face in enumerate(faces):
                # The last box too: a velocity from jittery detections can carry the
                # prediction off a face that stopped or that the detector missed a while.
                overlap = max(iou(pred, face.box), iou(track.box, face.box))
                if overlap >= self.iou_threshold:
                    pairs.append((overlap, tid, i))
        pairs.sort(reverse=True)
        used_tracks, used_faces, matched = set(), set(), []
        for _, tid, i in pairs:
            if tid in used_tracks or i in used_faces:
                continue
            used_tracks.add(tid)
            used_faces.add(i)
            track, face = self.tracks[tid], faces[i]
            dt = ts - track.last_ts
            if dt > 0:  # smoothed velocity: detections jitter by a few pixels
                track.velocity = 0.5 * track.velocity + 0.5 * (face.box - track.box) / dt
            track.box, track.last_ts, track.hits = np.asarray(face.box, float), ts, track.hits + 1
            matched.append((track, face))
        for i, face in enumerate(faces):
            if i not in used_faces:
                track = Track(next(self._ids), np.asarray(face.box, float), ts, ts)
                self.tracks[track.track_id] = track
                matched.append((track, face))
        ended = [t for t in self.tracks.values() if ts - t.last_ts > self.max_age_s]
        for t in ended:
            del self.tracks[t.track_id]
        return matched, ended

    def flush(self) -> list[Track]:
        """End every track (the source stopped)."""
        ended = list(self.tracks.values())
        self.tracks.clear()
        return ended
