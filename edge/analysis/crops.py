"""The fixed-scale face crop the single-image cues share (liveness, face type).

The face is cut eyes level, centred between the eye centre and the mouth centre, at a
scale fixed by the 5 points, so texture measures compare between faces of any size.
"""
from __future__ import annotations

import cv2
import numpy as np

FACE_SIZE = 112          # side of the aligned face crop the texture/colour cues use (px)
# The face crop is centred between the eye centre and the mouth centre and spans
# this many eye-to-mouth distances (about the detector box side for a frontal face).
FACE_SPAN = 1.0 / 0.36
INNER = slice(20, 92)    # the inner face of the crop (eyes, nose, mouth, cheeks)


def warp(img: np.ndarray, centre, angle: float, scale: float, size: int) -> np.ndarray:
    """size x size crop: `img` rotated by `angle` deg about `centre`, scaled by `scale`,
    centre at the middle. Shrinking goes through an area resize first so that a large,
    sharp face does not alias (which would read as extra fine detail)."""
    cx, cy = float(centre[0]), float(centre[1])
    if scale < 1.0:
        # Cut a square that holds the rotated crop, area-resize it, then rotate.
        half = size / scale * 0.75 + 2
        x0, y0 = int(max(0, np.floor(cx - half))), int(max(0, np.floor(cy - half)))
        x1 = int(min(img.shape[1], np.ceil(cx + half)))
        y1 = int(min(img.shape[0], np.ceil(cy + half)))
        if x1 - x0 >= 2 and y1 - y0 >= 2:
            roi = img[y0:y1, x0:x1]
            w = max(1, round((x1 - x0) * scale))
            h = max(1, round((y1 - y0) * scale))
            small = cv2.resize(roi, (w, h), interpolation=cv2.INTER_AREA)
            sx, sy = w / (x1 - x0), h / (y1 - y0)
            img, cx, cy = small, (cx - x0) * sx, (cy - y0) * sy
            scale = scale / ((sx + sy) / 2)
    m = cv2.getRotationMatrix2D((cx, cy), angle, scale)
    m[0, 2] += size / 2 - cx
    m[1, 2] += size / 2 - cy
    return cv2.warpAffine(img, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def face_crop(img_bgr: np.ndarray, kps5: np.ndarray, size: int = FACE_SIZE) -> np.ndarray:
    """The face, eyes level, at a fixed scale (eye-to-mouth distance = 0.36 x size).

    Fixing the scale makes the texture measures comparable between faces of different
    sizes; fixing the roll keeps the inner-face window on the same features."""
    k = np.asarray(kps5, dtype=np.float64)
    eyes, mouth = (k[0] + k[1]) / 2, (k[3] + k[4]) / 2
    angle = float(np.degrees(np.arctan2(k[1, 1] - k[0, 1], k[1, 0] - k[0, 0])))
    span = max(float(np.linalg.norm(mouth - eyes)) * FACE_SPAN, 1.0)
    return warp(img_bgr, (eyes + mouth) / 2, angle, size / span, size)
