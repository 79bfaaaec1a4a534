"""The walking video's people as face tracks, for replaying close-ups of them on a screen."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.analysis.liveness_eval import video_frames

MIN_SOURCE_FACE_PX = 40.0   # a person whose face never reaches this in the clip is too small to zoom on
                            # (the clip's faces are ~32-70 px: below 40 a close-up is a blur of 10x upsampling)
MIN_FRAMES = 25             # 1 s at 25 fps: shorter tracks make too short a replay
LINK_IOD = 0.6              # a detection continues a track if its centre is within 0.6 face heights
SMOOTH = 5                  # frames either side averaged: the operator's zoom follows the face smoothly


@dataclass(frozen=True)
class FaceTrack:
    person: int
    start: int                  # first frame index
    boxes: np.ndarray           # (n, 4) smoothed x0 y0 x1 y1 per frame from start, source px

    @property
    def height(self) -> float:
        return float(np.max(self.boxes[:, 3] - self.boxes[:, 1]))


def clip_frames(path: Path) -> list[np.ndarray]:
    return [f for f, _ in video_frames(path)]


def face_tracks(analyser, frames: list[np.ndarray]) -> list[FaceTrack]:
    """Detect faces in every frame (the project's detector) and link them by nearest
    centre; gaps are filled by linear interpolation, boxes smoothed. Tracks whose face
    reaches MIN_SOURCE_FACE_PX and that last MIN_FRAMES, in order of first appearance."""
    tracks: list[dict[int, np.ndarray]] = []
    for i, img in enumerate(frames):
        boxes = [np.asarray(f.box, np.float64) for f in analyser.analyse(img, 10, 0, frozenset())]
        taken = set()
        for b in sorted(boxes, key=lambda b: -(b[3] - b[1])):
            c, hgt = (b[:2] + b[2:]) / 2, b[3] - b[1]
            best, dist = None, LINK_IOD
            for k, t in enumerate(tracks):
                last = max(t)
                if k in taken or i - last > 5:
                    continue
                lb = t[last]
                d = np.linalg.norm((lb[:2] + lb[2:]) / 2 - c) / hgt
                if d < dist:
                    best, dist = k, d
            if best is None:
                tracks.append({})
                best = len(tracks) - 1
            tracks[best][i] = b
            taken.add(best)
    out = []
    for t in tracks:
        idx = sorted(t)
        span = np.arange(idx[0], idx[-1] + 1)
        arr = np.array([t[j] for j in idx])
        full = np.column_stack([np.interp(span, idx, arr[:, c]) for c in range(4)])
        kern = np.ones(2 * SMOOTH + 1) / (2 * SMOOTH + 1)
        pad = np.pad(full, ((SMOOTH, SMOOTH), (0, 0)), mode="edge")
        smooth = np.column_stack([np.convolve(pad[:, c], kern, mode="valid") for c in range(4)])
        if len(span) >= MIN_FRAMES and np.max(arr[:, 3] - arr[:, 1]) >= MIN_SOURCE_FACE_PX:
            out.append(FaceTrack(len(out), int(idx[0]), smooth))
    return out
