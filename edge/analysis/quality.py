"""Face quality measured from pixels and the mesh: occlusion per region
(edge/analysis/occlusion.py), blur, illumination, completeness.

No quality model ships (MODELS.md), so these are measurements with documented meaning,
not learned probabilities:
- blur: Crete-Roffet "blur effect" of the aligned 112 px chip, mapped so sharp photos
  read near 0 and a Gaussian blur of ~2 px at chip scale reads above 0.7.
- illumination: mean luma (Y of YUV, BT.601) inside the face oval, 0..255 (Baidu's
  definition).
- completeness: share of the face oval inside the image (1 = whole face visible).

qualities.type (human/cartoon) is measured apart, in edge/analysis/face_type.py.
"""
from __future__ import annotations

import cv2
import numpy as np

from edge.analysis import meshmap as mm
from edge.analysis.face import Quality
from edge.analysis.occlusion import occlusion
from edge.analysis.regions import face_crop, poly_mask

BLUR_SHARP, BLUR_BLURRED = 0.40, 0.65  # raw effect: LFW photos (p95 ~0.40) / a 3 px blur of them (median ~0.65)
# Edge strength (edge_strength): the weakest of 1227 sharp LFW faces 0.249 (p1 0.29); a
# 5 px blur of a 150 px photo reads ~0.20 (median), 7 px ~0.17.
EDGE_SHARP, EDGE_FLAT = 0.24, 0.20


def blur_effect(gray: np.ndarray, h_size: int = 11) -> float:
    """Crete-Roffet et al. (2007) no-reference blur: 0 sharp .. 1 blurred."""
    g = gray.astype(np.float64)
    out = []
    for axis in (0, 1):
        blurred = cv2.blur(g, (1, h_size) if axis == 0 else (h_size, 1), borderType=cv2.BORDER_REFLECT)
        d_img = np.abs(np.diff(g, axis=axis))
        d_blur = np.abs(np.diff(blurred, axis=axis))
        v = np.maximum(0, d_img - d_blur)
        s_img = d_img.sum()
        out.append((s_img - v.sum()) / s_img if s_img > 0 else 1.0)
    return float(max(out))


def edge_strength(gray: np.ndarray) -> float:
    """Mean Sobel gradient over the chip's contrast (p95 - p5 of its grey levels)."""
    g = gray.astype(np.float32)
    gx, gy = cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=3), cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=3)
    lo, hi = np.percentile(g, (5, 95))
    return float(np.mean(np.hypot(gx, gy)) / max(float(hi - lo), 8.0))


def blur_score(chip_bgr: np.ndarray) -> float:
    """Blur of the aligned 112 px chip, 0 sharp .. 1 blurred.

    The effect is averaged over two re-blur widths: the 11 px one resolves light blur,
    the 21 px one keeps rising where the 11 px one saturates (sigma > 3 px). Past
    ~5 px of blur on a 150 px photo the effect falls again (a face that is only smooth
    ramps reads like one with edges), so the edge strength takes over there: below the
    weakest sharp face's (EDGE_SHARP) it rises to 1 at EDGE_FLAT."""
    gray = cv2.cvtColor(chip_bgr, cv2.COLOR_BGR2GRAY)[16:104, 16:96]
    raw = (blur_effect(gray, 11) + blur_effect(gray, 21)) / 2
    effect = (raw - BLUR_SHARP) / (BLUR_BLURRED - BLUR_SHARP)
    flat = (EDGE_SHARP - edge_strength(gray)) / (EDGE_SHARP - EDGE_FLAT)
    return float(np.clip(max(effect, flat), 0.0, 1.0))


def illumination(crop_bgr: np.ndarray, pts: np.ndarray) -> float:
    y = cv2.cvtColor(crop_bgr, cv2.COLOR_BGR2YUV)[..., 0]
    mask = poly_mask(y.shape, pts[mm.FACE_OVAL], 0.9)
    return float(y[mask].mean()) if mask.any() else float(y.mean())


def completeness(mesh: np.ndarray, image_shape: tuple[int, int]) -> float:
    """Share of the face oval's area that lies inside the image."""
    h, w = image_shape[:2]
    hull = cv2.convexHull(mesh[mm.FACE_OVAL, :2].astype(np.float32))
    total = cv2.contourArea(hull)
    if total <= 0:
        return 0.0
    frame = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32).reshape(-1, 1, 2)
    inter, _ = cv2.intersectConvexConvex(hull, frame)
    return float(np.clip(inter / total, 0.0, 1.0))


def assess(img_bgr: np.ndarray, mesh: np.ndarray, chip_bgr: np.ndarray) -> Quality:
    crop, pts = face_crop(img_bgr, mesh)
    blur = blur_score(chip_bgr)
    occ, _ = occlusion(crop, pts, blur)
    return Quality(occlusion=occ, blur=blur, illumination=illumination(crop, pts),
                   completeness=completeness(mesh, img_bgr.shape))
