"""MediaPipe face mesh (468 points with relative depth) on a roll-normalised crop.

The crop is a square of 1.5x the detector box around its centre, rotated so the eyes
are level, at 192x192 RGB in [0, 1] - the layout the net was trained on.
"""
from __future__ import annotations

import cv2
import numpy as np

from edge.analysis.orientation import wrap_deg
from edge.models.runtime import create_session

INPUT = 192
CROP_SCALE = 1.5


# YuNet's eye points follow an in-plane rotation only partly (a 15 deg turn moves them
# ~2 deg), so the crop angle is re-estimated from the mesh's own eye corners and the
# mesh run again while the two disagree by more than this. The mesh itself reads only
# part of a crop's remaining roll, so a face rolled 40 deg needs up to MESH_RUNS runs
# (docs/fields.md: roll error by angle).
REFINE_DEG = 4.0
MESH_RUNS = 4
EYE_CORNERS = (33, 263)


def eye_angle(left: np.ndarray, right: np.ndarray) -> float:
    return float(np.degrees(np.arctan2(right[1] - left[1], right[0] - left[0])))


def crop_transform(box: np.ndarray, angle: float) -> tuple[np.ndarray, float]:
    """2x3 affine image -> crop (rotated by `angle` deg about the box centre), and its
    scale (crop px per image px)."""
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    side = CROP_SCALE * max(box[2] - box[0], box[3] - box[1])
    scale = INPUT / max(side, 1.0)
    m = cv2.getRotationMatrix2D((float(cx), float(cy)), float(angle), float(scale))
    m[0, 2] += INPUT / 2 - cx
    m[1, 2] += INPUT / 2 - cy
    return m, scale


def preprocess(img_bgr: np.ndarray, m: np.ndarray) -> np.ndarray:
    """The 1 x 3 x 192 x 192 RGB 0..1 input (blobFromImage: one float buffer, no temporaries)."""
    crop = cv2.warpAffine(img_bgr, m, (INPUT, INPUT), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    return cv2.dnn.blobFromImage(crop, 1.0 / 255.0, swapRB=True)


def postprocess(raw: np.ndarray, m: np.ndarray, scale: float) -> np.ndarray:
    """Mesh output (crop px) -> 468 x 3 in image pixels; z keeps its sign, image scale."""
    pts = raw.reshape(468, 3).astype(np.float64)
    inv = cv2.invertAffineTransform(m)
    xy = pts[:, :2] @ inv[:, :2].T + inv[:, 2]
    return np.hstack([xy, pts[:, 2:3] / scale])


class FaceMesh:
    def __init__(self, model_path, threads: int = 2):
        self.session = create_session(model_path, threads)
        self.input_name = self.session.get_inputs()[0].name

    def _run(self, img_bgr: np.ndarray, box: np.ndarray, angle: float) -> tuple[np.ndarray, float]:
        m, scale = crop_transform(box, angle)
        raw, presence = self.session.run(None, {self.input_name: preprocess(img_bgr, m)})
        prob = float(1.0 / (1.0 + np.exp(-float(presence.ravel()[0]))))
        return postprocess(raw, m, scale), prob

    def get(self, img_bgr: np.ndarray, box: np.ndarray, kps5: np.ndarray) -> tuple[np.ndarray, float]:
        """468x3 mesh in image pixels and the face-presence probability."""
        angle = eye_angle(kps5[0], kps5[1])
        mesh, prob = self._run(img_bgr, box, angle)
        for _ in range(MESH_RUNS - 1):
            better = eye_angle(mesh[EYE_CORNERS[0], :2], mesh[EYE_CORNERS[1], :2])
            if abs(wrap_deg(better - angle)) <= REFINE_DEG:
                break
            angle = better
            mesh, prob = self._run(img_bgr, box, angle)
        return mesh, prob
