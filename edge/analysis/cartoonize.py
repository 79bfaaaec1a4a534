"""Cartoon renderings of real photos: the drawn faces qualities.type is measured against.

No set of drawn or cartoon faces is among the shared data, so the cartoon side of
edge.analysis.face_type is measured on renderings made from LFW photos at test/report
time (nothing derived is stored). Each renderer stands for one way drawings differ
from photos; scripts/face_type_report.py holds each one out in turn.

- stylized: OpenCV's non-photorealistic `stylization` (smooth shading, soft edges).
- toon: edge-preserving smoothing, colours quantised to a few levels, bold dark
  outlines (the classic "toon shader" look).
- poster: mean-shift flat regions with a handful of colours, no outlines.
- mesh_drawing: a face drawn from scratch from the 468-point mesh: flat-filled oval,
  brows, eyes and lips with their contours on a flat background.
"""
from __future__ import annotations

import cv2
import numpy as np

from edge.analysis import meshmap as mm

RENDERERS = ("stylized", "toon", "poster", "mesh_drawing")


def stylized(img: np.ndarray, mesh=None) -> np.ndarray:
    return cv2.stylization(img, sigma_s=60, sigma_r=0.45)


def _quantise(img: np.ndarray, levels: int) -> np.ndarray:
    step = 256 // levels
    return (img // step * step + step // 2).astype(np.uint8)


def toon(img: np.ndarray, mesh=None) -> np.ndarray:
    smooth = cv2.edgePreservingFilter(img, flags=cv2.RECURS_FILTER, sigma_s=40, sigma_r=0.4)
    flat = _quantise(cv2.medianBlur(smooth, 5), 5)
    gray = cv2.medianBlur(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), 5)
    edges = cv2.adaptiveThreshold(gray, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY, 9, 4)
    return cv2.bitwise_and(flat, flat, mask=edges)


def poster(img: np.ndarray, mesh=None) -> np.ndarray:
    shifted = cv2.pyrMeanShiftFiltering(img, 8, 30)
    return _quantise(shifted, 4)


def mesh_drawing(img: np.ndarray, mesh: np.ndarray) -> np.ndarray:
    """A flat drawing of the face from its mesh, in this face's own median colours."""
    h, w = img.shape[:2]
    out = np.empty_like(img)
    out[:] = np.median(img[: max(h // 8, 1)].reshape(-1, 3), axis=0)  # background: the top rows' colour
    pts = lambda idx: np.round(mesh[idx, :2]).astype(np.int32)  # noqa: E731
    oval = pts(mm.FACE_OVAL)
    mask = np.zeros((h, w), np.uint8)
    cv2.fillPoly(mask, [oval], 1)
    skin = tuple(int(v) for v in np.median(img[mask > 0], axis=0)) if mask.any() else (150, 170, 210)
    cv2.fillPoly(out, [oval], skin)
    dark = tuple(int(v * 0.35) for v in skin)
    for brow in (mm.LEFT_BROW, mm.RIGHT_BROW):
        cv2.fillPoly(out, [cv2.convexHull(pts(brow))], dark)
    for eye in (mm.LEFT_EYE, mm.RIGHT_EYE):
        cv2.fillPoly(out, [pts(eye)], (245, 245, 245))
        c = mesh[eye, :2].mean(0)
        r = max(int(round(np.ptp(mesh[eye, 1]) * 0.45)), 1)
        cv2.circle(out, (int(c[0]), int(c[1])), r, (60, 40, 30), -1)
        cv2.polylines(out, [pts(eye)], True, (20, 20, 20), 1)
    cv2.fillPoly(out, [pts(mm.LIPS_OUTER)], (90, 80, 190))
    cv2.polylines(out, [pts(mm.LIPS_INNER)], True, (40, 30, 100), 1)
    cv2.polylines(out, [pts([168, 6, 197, 195, 5, 4, 1, 2])], False, tuple(int(v * 0.7) for v in skin), 1)
    cv2.polylines(out, [oval], True, (20, 20, 20), 2)
    return out


def render(name: str, img: np.ndarray, mesh: np.ndarray) -> np.ndarray:
    return {"stylized": stylized, "toon": toon, "poster": poster, "mesh_drawing": mesh_drawing}[name](img, mesh)
