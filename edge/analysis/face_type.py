"""Human or cartoon (v2 qualities.type, v3 face_type): is this face photographed or drawn?

No cartoon model ships (MODELS.md). A photograph of a face, however smooth the skin,
carries the camera's noise, so hardly any 3x3 neighbourhood of it is exactly even; a
drawing - hand-made, a toon filter, a poster print - is made of flat fills, where most
are. The measure is the share of such flat neighbourhoods in the inner face of the
fixed-scale 112 px crop the liveness cues use (edge.analysis.crops.face_crop, from the
5 points), clipped (over- or under-exposed) pixels excepted.

It is mapped to P(human) by a logistic through two measured edges (edge.thresholds.
FACE_TYPE): the most flat-filled photo and the least flat-filled cartoon rendering of
the tuning half of LFW people (scripts/face_type_report.py; rates on the other half and
on spoof-dev in docs/fields.md). What it does not see: cartoons with smooth painted
shading (OpenCV's `stylization` reads human), cartoons only a few dozen pixels tall.
Very heavy JPEG (quality 5-10) flattens a photo into blocks and reads cartoon.

Also tried on the same data and dropped: noise energy (median-filter residual) and the
gradient tail (p99 / p50) separated LFW from its renderings but put NUAA's live webcam
frames on the cartoon side; the share of the 6 commonest colours put the smooth phone
photos of spoof-dev on it.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from edge.analysis.crops import INNER, face_crop
from edge.thresholds import FACE_TYPE

FLAT_RANGE = 1                # grey levels: a 3x3 neighbourhood this even is a flat fill
CLIP_LOW, CLIP_HIGH = 5, 250  # channel values at which a photo's pixels are clipped
EDGE_P = 0.95                 # P(human) at FACE_TYPE.human, 1 - it at FACE_TYPE.cartoon


@dataclass(frozen=True)
class FaceType:
    human: float         # P(photographed human face), 0..1

    @property
    def cartoon(self) -> float:
        return 1.0 - self.human

    @property
    def kind(self) -> str:
        return "human" if self.human >= 0.5 else "cartoon"

    @property
    def probability(self) -> float:
        """Of `kind` (v3 face_type.probability)."""
        return max(self.human, self.cartoon)


def _clipped(face: np.ndarray) -> np.ndarray:
    """Pixels at the sensor's limits: over- or under-exposed skin is flat in a photo
    too (NUAA subject 0004's frames are 30 % clipped)."""
    k = np.ones((3, 3), np.uint8)
    return ((cv2.dilate(face, k) >= CLIP_HIGH) | (cv2.erode(face, k) <= CLIP_LOW)).any(axis=2)


def flat_share(face: np.ndarray) -> float:
    """Share of the crop's inner face whose 3x3 neighbourhood varies by at most
    FLAT_RANGE in every colour channel, clipped pixels excepted."""
    k = np.ones((3, 3), np.uint8)
    span = (cv2.dilate(face, k).astype(np.int16) - cv2.erode(face, k).astype(np.int16)).max(axis=2)
    flat = (span <= FLAT_RANGE) & ~_clipped(face)
    return float(flat[INNER, INNER].mean())


def human_probability(flat: float, human_edge: float = FACE_TYPE.human,
                      cartoon_edge: float = FACE_TYPE.cartoon) -> float:
    mid = (human_edge + cartoon_edge) / 2
    slope = np.log(EDGE_P / (1 - EDGE_P)) / max((cartoon_edge - human_edge) / 2, 1e-6)
    return float(1.0 / (1.0 + np.exp(-np.clip(slope * (mid - flat), -50.0, 50.0))))


def face_type(img_bgr: np.ndarray, kps5: np.ndarray, face: np.ndarray | None = None) -> FaceType:
    """`face`: the face's crops.face_crop when already cut (liveness uses the same one)."""
    return FaceType(human=human_probability(flat_share(face_crop(img_bgr, kps5) if face is None else face)))
