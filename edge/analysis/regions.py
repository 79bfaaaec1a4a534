"""The face crop the pixel measures work in, and masks of mesh regions in it."""
from __future__ import annotations

import cv2
import numpy as np

from edge.analysis import meshmap as mm

WORK_SIZE = 128            # the face is analysed in a crop whose oval spans ~this many px


def face_crop(img_bgr: np.ndarray, mesh: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The face's neighbourhood scaled so the oval spans ~WORK_SIZE px; mesh in crop px."""
    oval = mesh[mm.FACE_OVAL, :2]
    lo, hi = oval.min(0), oval.max(0)
    scale = WORK_SIZE / max(float((hi - lo).max()), 1.0)
    pad = 0.1 * (hi - lo).max()
    m = np.array([[scale, 0, -(lo[0] - pad) * scale], [0, scale, -(lo[1] - pad) * scale]])
    size = int(np.ceil((hi - lo).max() * scale + 2 * pad * scale))
    crop = cv2.warpAffine(img_bgr, m, (size, size), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)
    pts = mesh[:, :2] @ m[:, :2].T + m[:, 2]
    return crop, pts


def poly_mask(shape: tuple[int, int], pts: np.ndarray, grow: float = 1.0) -> np.ndarray:
    hull = cv2.convexHull(pts.astype(np.float32))[:, 0]
    c = hull.mean(0)
    hull = c + (hull - c) * grow
    mask = np.zeros(shape, np.uint8)
    cv2.fillConvexPoly(mask, np.round(hull).astype(np.int32), 1)
    return mask.astype(bool)
