"""A photo placed in a camera-sized frame (benchmarks, the loop's warm-up)."""
from __future__ import annotations

import cv2
import numpy as np

CAMERA_FRAME = (480, 640)   # (height, width): a terminal camera's usual frame


def in_frame(photo: np.ndarray, shape: tuple[int, int] = CAMERA_FRAME) -> np.ndarray:
    """The photo at the centre of a black frame of `shape`, scaled down first if it does
    not fit (a small face in a camera-sized image when it does)."""
    h, w = photo.shape[:2]
    scale = min(1.0, shape[0] / h, shape[1] / w)
    if scale < 1.0:
        photo = cv2.resize(photo, (max(1, int(w * scale)), max(1, int(h * scale))), interpolation=cv2.INTER_AREA)
        h, w = photo.shape[:2]
    frame = np.zeros((*shape, 3), np.uint8)
    y0, x0 = (shape[0] - h) // 2, (shape[1] - w) // 2
    frame[y0:y0 + h, x0:x0 + w] = photo
    return frame
