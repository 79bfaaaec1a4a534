"""Measuring qualities.type (human / cartoon) on photos and cartoon renderings of them.

Shared by scripts/face_type_report.py and tests/test_face_type.py. LFW people are split
into a tuning and a report half (edge.analysis.splits); each person's first photo gives
human samples (as taken, and smoothed, blurred or heavily JPEG-compressed, the way
phone and webcam pipelines process faces) and cartoon samples (edge.analysis.cartoonize
renderings of it). Every sample runs through the real
detector; the face type is measured on the face it finds, as in the service.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge.analysis.cartoonize import RENDERERS, render
from edge.analysis.crops import face_crop
from edge.analysis.face_type import flat_share, human_probability
from edge.analysis.liveness import liveness_features, score_from_features
from edge.analysis.splits import tuning_half

LFW_IMAGES = Path(__file__).resolve().parents[3] / "shared" / "data" / "lfw-view1" / "images"
# Cartoons made of flat fills: the kind the measure is built to see, and whose least
# flat sample sets FACE_TYPE.cartoon. `stylized` (smooth painted shading) is reported,
# never tuned on.
FLAT_RENDERERS = ("toon", "poster", "mesh_drawing")
PHOTO_VARIANTS = ("photo", "smoothed", "blurred", "jpeg15")


@dataclass(frozen=True)
class Sample:
    person: str
    group: str           # a PHOTO_VARIANTS or RENDERERS name
    human: bool
    flat: float          # flat_share; nan when no face was detected
    raw_liveness: float  # the liveness cues' score before the P(human) cap


def people(n: int, tuning: bool) -> list[Path]:
    """First photos of n LFW people of one half, in a fixed order (by name hash)."""
    dirs = [p for p in LFW_IMAGES.iterdir() if p.is_dir() and tuning_half(p.name) == tuning]
    dirs.sort(key=lambda p: zlib.crc32(p.name.encode()[::-1]))
    return [sorted(d.glob("*.jpg"))[0] for d in dirs[:n]]


def photo_variant(name: str, img: np.ndarray) -> np.ndarray:
    if name == "smoothed":
        return cv2.bilateralFilter(img, 9, 40, 7)
    if name == "blurred":
        return cv2.GaussianBlur(img, (0, 0), 1.5)
    if name == "jpeg15":
        return cv2.imdecode(cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 15])[1], cv2.IMREAD_COLOR)
    return img


def measure(analyser, img: np.ndarray, person: str, group: str, human: bool) -> Sample:
    faces = analyser.analyse(img, 1, 1, set())
    if not faces:
        return Sample(person, group, human, float("nan"), float("nan"))
    f = faces[0]
    crop = face_crop(img, f.kps5)
    raw = float(score_from_features(liveness_features(img, f.box, f.kps5, crop)))
    return Sample(person, group, human, flat_share(crop), raw)


def collect(analyser, paths: list[Path]) -> list[Sample]:
    out = []
    for path in paths:
        img = cv2.imread(str(path))
        person = path.parent.name
        for v in PHOTO_VARIANTS:
            out.append(measure(analyser, photo_variant(v, img), person, v, True))
        faces = analyser.analyse(img, 1, 1, {"landmarks"})
        if not faces:
            continue
        for r in RENDERERS:
            out.append(measure(analyser, render(r, img, faces[0].mesh), person, r, False))
    return out


def edges(samples: list[Sample]) -> tuple[float, float]:
    """(human, cartoon) edges: the most flat-filled photo, the least flat-filled flat
    cartoon (FLAT_RENDERERS) among the detected samples."""
    h = max(s.flat for s in samples if s.human and np.isfinite(s.flat))
    c = min(s.flat for s in samples if s.group in FLAT_RENDERERS and np.isfinite(s.flat))
    return float(h), float(c)


def p_human(sample: Sample) -> float:
    """P(human) of a sample with the shipped edges."""
    return human_probability(sample.flat)
