"""Glasses from the pixels around the eyes: none, ordinary glasses, sunglasses.

No permissively licensed glasses model ships (MODELS.md), so this measures what glasses
do to the eye band of a face, cut from the image levelled and scaled on the mesh's two
eye centres (EYE_PX apart):

- frames draw edges where a bare face has smooth skin: across the nose bridge, under
  the eyes, beside the outer eye corners. The band's gradient (|d/dx| and |d/dy| over
  the band's contrast) is averaged over CELL-px cells of the band folded onto itself at
  the nose (glasses are symmetric, so is the measure): an "edge map" of 7 x 10 cells.
- dark lenses make the eyes darker than the cheeks (`lens_dark`) and colour them away
  from this face's own skin (`lens_off_skin`; mirrored lenses are bright but not skin).

Two logistic maps over these features (sunglasses vs not; any glasses vs none) give the
three class probabilities; their weights are a table beside this module
(glasses_calibration.json), fitted on the tuning half of our labelled LFW photos
(tests/labels/glasses.csv) by scripts/glasses_report.py, which prints the rates on the
other half (docs/fields.md). Pure functions of the pixels and the mesh.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from edge.analysis import meshmap as mm

EYE_PX = 40              # eye-centre distance in the band crop (px)
BAND = (-1.5, 1.5, -1.0, 1.0)  # band extent in eye distances around the eye midpoint: x0, x1, y0, y1
CELL = 8                 # px: edge-map cell side (a fifth of the eye distance; chosen, with the
                         # fit's L2, by 5-fold by-person cross-validation inside the tuning half)
# Windows (x0, x1, y0, y1) in eye distances from the eye midpoint, image-left side; the
# measure also uses their mirror image. LENS: the eye and the lids around it; CHEEK:
# the skin below the lower rim of any usual frame, the face's colour reference.
LENS = (-0.75, -0.25, -0.2, 0.2)
CHEEK = (-0.7, -0.3, 0.65, 0.95)
SKIN_Z = 4.0             # a lens pixel this many skin spreads from the cheek colour is "not skin"
MIN_SPREAD = (6.0, 3.0, 3.0)  # floors of the cheek's L, a, b spreads (grey-scale photos)

COLOUR_FEATURES = ("lens_dark", "lens_off_skin")
CLASSES = ("none", "common", "sun")  # v3 glasses.type; the index is v2's `glasses` (0, 1, 2)
TABLE_PATH = Path(__file__).with_name("glasses_calibration.json")


@dataclass(frozen=True)
class Glasses:
    kind: int            # v2 `glasses`: 0 none, 1 ordinary, 2 sunglasses
    probability: float   # of that kind, 0..1 (v2 `glasses_probability`)

    @property
    def v3_type(self) -> str:
        return CLASSES[self.kind]


@dataclass(frozen=True)
class Logistic:
    weights: np.ndarray
    bias: float

    def __call__(self, x: np.ndarray) -> float:
        z = float(np.dot(self.weights, x)) + self.bias
        return float(1.0 / (1.0 + np.exp(-np.clip(z, -50.0, 50.0))))


@dataclass(frozen=True)
class GlassesModel:
    sun: Logistic        # P(sunglasses)
    frame: Logistic      # P(glasses of any kind | not sunglasses)


def eye_band(img_bgr: np.ndarray, mesh: np.ndarray) -> np.ndarray:
    """The band around the eyes, eyes level and EYE_PX apart, BGR."""
    left, right = mm.eye_centre(mesh, mm.LEFT_EYE), mm.eye_centre(mesh, mm.RIGHT_EYE)
    d = max(float(np.linalg.norm(right - left)), 1.0)
    angle = float(np.degrees(np.arctan2(right[1] - left[1], right[0] - left[0])))
    s = EYE_PX / d
    mid = (left + right) / 2
    w, h = int(round((BAND[1] - BAND[0]) * EYE_PX)), int(round((BAND[3] - BAND[2]) * EYE_PX))
    m = cv2.getRotationMatrix2D((float(mid[0]), float(mid[1])), angle, s)
    m[0, 2] += -BAND[0] * EYE_PX - mid[0]
    m[1, 2] += -BAND[2] * EYE_PX - mid[1]
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
    return cv2.warpAffine(img_bgr, m, (w, h), flags=interp, borderMode=cv2.BORDER_REPLICATE)


def _window(a: np.ndarray, win, mirror: bool = False) -> np.ndarray:
    x0, x1, y0, y1 = win
    if mirror:
        x0, x1 = -x1, -x0
    c0, r0 = int(round((x0 - BAND[0]) * EYE_PX)), int(round((y0 - BAND[2]) * EYE_PX))
    c1, r1 = int(round((x1 - BAND[0]) * EYE_PX)), int(round((y1 - BAND[2]) * EYE_PX))
    return a[max(r0, 0):r1, max(c0, 0):c1]


def _both(a: np.ndarray, win) -> np.ndarray:
    """The pixels (rows of channels) of a window and of its mirror image."""
    return np.concatenate([_window(a, win, mirror).reshape(-1, a.shape[-1]) for mirror in (False, True)])


def edge_map(band_bgr: np.ndarray) -> np.ndarray:
    """Mean |d/dx| then |d/dy| over CELL-px cells of the band folded at the nose, over
    the band's contrast (p95 - p5 of its grey levels): lighting and skin tone cancel."""
    g = cv2.cvtColor(band_bgr, cv2.COLOR_BGR2GRAY).astype(np.float32)
    lo, hi = np.percentile(g, (5, 95))
    contrast = max(float(hi - lo), 8.0)
    out = []
    for dx, dy in ((1, 0), (0, 1)):
        a = np.abs(cv2.Sobel(g, cv2.CV_32F, dx, dy, ksize=3)) / contrast
        a = (a + a[:, ::-1]) / 2
        h, w = a.shape[0] // CELL * CELL, a.shape[1] // 2 // CELL * CELL
        out.append(a[:h, :w].reshape(h // CELL, CELL, w // CELL, CELL).mean(axis=(1, 3)).ravel())
    return np.concatenate(out)


def lens_colour(band_bgr: np.ndarray) -> np.ndarray:
    """(lens_dark, lens_off_skin): log luma of the eyes over the cheeks', and the share
    of eye pixels far (robust z > SKIN_Z) from the cheeks' colour."""
    lab = cv2.cvtColor(band_bgr, cv2.COLOR_BGR2Lab).astype(np.float32)
    cheek, lens = _both(lab, CHEEK), _both(lab, LENS)
    ref = np.median(cheek, axis=0)
    spread = np.maximum(1.4826 * np.median(np.abs(cheek - ref), axis=0), MIN_SPREAD)
    dark = float(np.log((np.median(lens[:, 0]) + 8.0) / (ref[0] + 8.0)))
    off = float((np.sqrt((((lens - ref) / spread) ** 2).sum(-1)) > SKIN_Z).mean())
    return np.array([dark, off])


def glasses_features(img_bgr: np.ndarray, mesh: np.ndarray) -> np.ndarray:
    """COLOUR_FEATURES then the edge map, one row."""
    band = eye_band(img_bgr, mesh)
    return np.concatenate([lens_colour(band), edge_map(band)])


def _logistic(entry: dict) -> Logistic:
    return Logistic(np.asarray(entry["weights"], dtype=np.float64), float(entry["bias"]))


@lru_cache(maxsize=1)
def load_model(path: Path = TABLE_PATH) -> GlassesModel:
    table = json.loads(Path(path).read_text())
    return GlassesModel(sun=_logistic(table["sun"]), frame=_logistic(table["frame"]))


def probabilities(x: np.ndarray, model: GlassesModel | None = None) -> np.ndarray:
    """P(none), P(ordinary), P(sunglasses) of one feature row."""
    model = model or load_model()
    p_sun, p_any = model.sun(x), model.frame(x)
    return np.array([(1 - p_sun) * (1 - p_any), (1 - p_sun) * p_any, p_sun])


def classify(x: np.ndarray, model: GlassesModel | None = None) -> Glasses:
    p = probabilities(x, model)
    k = int(np.argmax(p))
    return Glasses(kind=k, probability=float(p[k]))


def glasses(img_bgr: np.ndarray, mesh: np.ndarray) -> Glasses:
    """v2 `glasses` / `glasses_probability` (v3 `glasses.type` / `probability`) of one face."""
    return classify(glasses_features(img_bgr, mesh))
