"""Expression (0 none, 1 smile, 2 laugh) and face shape from mesh geometry.

No expression or face-shape model ships (MODELS.md), so both are rules over measured
ratios of the 468-point mesh, in a face frame levelled by the eye line and scaled by
the outer eye-corner distance (IOD):
- smile: the mouth corners rise towards the lip centre line and the mouth widens;
- laugh: a smile with the lips apart (inner-lip gap relative to mouth width).
- face shape: nearest of five prototype (length/width, jaw/cheek, forehead/cheek)
  ratio triples, the conventional descriptions of square/triangle/oval/heart/round.
Probabilities are logistic/soft-max maps of those distances, not learned confidences.
"""
from __future__ import annotations

import numpy as np

# Corner lift (IOD) at which a smile becomes more likely than not, and its spread;
# median lift of LFW faces is ~0.03 (scripts/calibrate_measures.py prints it).
SMILE_LIFT, SMILE_SPREAD = 0.06, 0.025
OPEN_GAP, OPEN_SPREAD = 0.18, 0.05   # inner-lip gap / mouth width
# Prototype ratios placed around the spread measured on LFW faces (length/cheek
# 1.14..1.27, jaw/cheek 0.78..0.83, forehead/cheek 0.84..0.89 at the 10th..90th
# percentiles): short faces round/square, long oval, narrow jaw heart, wide jaw
# under a narrow forehead triangle.
SHAPES = {  # (face length / cheek width, jaw width / cheek width, forehead / cheek width)
    "square": (1.16, 0.84, 0.86),
    "triangle": (1.20, 0.84, 0.82),
    "oval": (1.26, 0.80, 0.86),
    "heart": (1.22, 0.77, 0.89),
    "round": (1.13, 0.81, 0.86),
}
SHAPE_TEMPERATURE = 0.002


def _sigmoid(x: float) -> float:
    return float(1.0 / (1.0 + np.exp(-x)))


def face_frame(mesh: np.ndarray) -> np.ndarray:
    """Mesh x, y rotated so the eye line is level and scaled to IOD = 1."""
    xy = mesh[:, :2]
    d = xy[263] - xy[33]
    iod = float(np.hypot(*d)) or 1.0
    c, s = d / iod
    rot = np.array([[c, s], [-s, c]])
    return (xy - xy[33]) @ rot.T / iod


def mouth_measures(mesh: np.ndarray) -> tuple[float, float]:
    """(corner lift in IOD, lip gap / mouth width)."""
    q = face_frame(mesh)
    corners_y = (q[61, 1] + q[291, 1]) / 2
    centre_y = (q[13, 1] + q[14, 1]) / 2
    width = float(np.hypot(*(q[291] - q[61]))) or 1e-6
    gap = float(np.hypot(*(q[14] - q[13])))
    return float(centre_y - corners_y), gap / width


def expression(mesh: np.ndarray) -> tuple[int, float]:
    lift, gap = mouth_measures(mesh)
    p_smile = _sigmoid((lift - SMILE_LIFT) / SMILE_SPREAD)
    p_open = _sigmoid((gap - OPEN_GAP) / OPEN_SPREAD)
    probs = [1.0 - p_smile, p_smile * (1.0 - p_open), p_smile * p_open]
    k = int(np.argmax(probs))
    return k, float(probs[k])


def shape_ratios(mesh: np.ndarray) -> np.ndarray:
    q = face_frame(mesh)
    cheek = float(np.hypot(*(q[454] - q[234]))) or 1e-6
    length = float(np.hypot(*(q[152] - q[10])))
    jaw = float(np.hypot(*(q[397] - q[172])))
    forehead = float(np.hypot(*(q[284] - q[54])))
    return np.array([length / cheek, jaw / cheek, forehead / cheek])


def faceshape(mesh: np.ndarray) -> list[dict]:
    r = shape_ratios(mesh)
    names = list(SHAPES)
    d2 = np.array([((r - np.array(SHAPES[n])) ** 2).sum() for n in names])
    logits = -d2 / SHAPE_TEMPERATURE
    p = np.exp(logits - logits.max())
    p /= p.sum()
    return [{"type": n, "probability": float(v)} for n, v in zip(names, p)]
