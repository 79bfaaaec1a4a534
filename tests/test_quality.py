"""Quality numbers measured against controlled changes of real photos."""
from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

from conftest import centre_face, gamma, lfw_people, load
from edge.analysis import meshmap as mm
from edge.thresholds import QUALITY

NORMAL = QUALITY["NORMAL"].occlusion["mouth"]  # 0.6
PHOTOS = lfw_people(8, seed=11)


def occ(face) -> dict[str, float]:
    return dataclasses.asdict(face.quality.occlusion)


@pytest.mark.parametrize("path", PHOTOS, ids=[p.stem for p in PHOTOS])
def test_blur_rises_monotonically_with_gaussian_blur(analyser, path):
    img = load(path)
    face = centre_face(analyser, img)
    values = [face.quality.blur]
    for sigma in (0.7, 1.4, 2.1, 2.8):
        blurred = cv2.GaussianBlur(img, (0, 0), sigma)
        values.append(centre_face(analyser, blurred).quality.blur)
    assert all(b >= a - 1e-6 for a, b in zip(values, values[1:])), values
    assert values[-1] > values[0] + 0.3, values
    assert values[-1] > QUALITY["NORMAL"].blur, values


def test_extreme_blur_does_not_read_sharp_again(analyser):
    """Blur of 7-10 px on a 150 px photo: the re-blur effect alone falls back and let
    ~12 % of the faces still detected pass NORMAL's 0.6; the edge strength keeps them out."""
    values = []
    for path in lfw_people(60, seed=11):
        for sigma in (7, 10):
            faces = analyser.analyse(cv2.GaussianBlur(load(path), (0, 0), sigma), 1, 1, {"landmarks", "quality"})
            values += [f.quality.blur for f in faces]
    passing = sum(v <= QUALITY["NORMAL"].blur for v in values)
    assert len(values) >= 40 and passing <= 0.05 * len(values), (passing, len(values))


@pytest.mark.parametrize("path", PHOTOS, ids=[p.stem for p in PHOTOS])
def test_illumination_follows_gamma_darkening(analyser, path):
    img = load(path)
    values = [centre_face(analyser, gamma(img, g)).quality.illumination for g in (1.0, 1.5, 2.2, 3.0)]
    assert all(b < a for a, b in zip(values, values[1:])), values
    assert 0 <= values[-1] < values[0] <= 255


def sunglasses(img, mesh):
    out = img.copy()
    for idx in (mm.LEFT_EYE, mm.RIGHT_EYE):
        p = mesh[idx, :2]
        c, w = p.mean(0), p[:, 0].max() - p[:, 0].min()
        cv2.ellipse(out, (int(c[0]), int(c[1])), (int(w * 0.8), int(w * 0.6)), 0, 0, 360, (20, 20, 20), -1)
    return out


def mouth_mask(img, mesh):
    """A light-blue surgical-mask patch over the mouth."""
    out = img.copy()
    p = mesh[mm.LIPS_OUTER, :2]
    c, w = p.mean(0), p[:, 0].max() - p[:, 0].min()
    cv2.ellipse(out, (int(c[0]), int(c[1])), (int(w * 0.9), int(w * 0.6)), 0, 0, 360, (235, 215, 190), -1)
    return out


OCCLUSION_PHOTOS = [("Aaron_Sorkin", 1), ("Laurel_Clark", 1), ("Bill_Kollar", 1), ("Tamara_Mowry", 1),
                    ("Soenarno", 1), ("Takaloo", 1)]


@pytest.mark.parametrize("person", OCCLUSION_PHOTOS, ids=[p[0] for p in OCCLUSION_PHOTOS])
def test_occluder_over_mouth_or_eyes_is_seen_there_only(analyser, person):
    from conftest import lfw_image
    img = lfw_image(*person)
    face = centre_face(analyser, img)
    assert max(occ(face).values()) < NORMAL, occ(face)

    masked = occ(centre_face(analyser, mouth_mask(img, face.mesh)))
    assert masked["mouth"] > NORMAL, masked
    for region in ("left_eye", "right_eye", "nose", "left_cheek", "right_cheek"):
        assert masked[region] < NORMAL, (region, masked)

    shaded = occ(centre_face(analyser, sunglasses(img, face.mesh)))
    assert shaded["left_eye"] > NORMAL and shaded["right_eye"] > NORMAL, shaded
    for region in ("nose", "mouth", "left_cheek", "right_cheek", "chin"):
        assert shaded[region] < NORMAL, (region, shaded)


def test_natural_faces_rarely_read_as_occluded(analyser):
    flagged = 0
    photos = lfw_people(60, seed=5)
    for path in photos:
        o = occ(centre_face(analyser, load(path)))
        flagged += any(o[k] > NORMAL for k in ("left_eye", "right_eye", "nose", "mouth"))
    assert flagged / len(photos) < 0.15


def test_completeness_drops_when_the_border_cuts_the_face(analyser):
    from conftest import lfw_image
    img = lfw_image("Aaron_Sorkin", 1)
    face = centre_face(analyser, img)
    assert face.quality.completeness == pytest.approx(1.0, abs=0.01)
    cx = int(face.center[0])
    values = []
    for keep in (0.9, 0.75, 0.6):  # share of the face width left in the frame
        cut = int(face.box[0] + keep * face.width)
        cropped = np.ascontiguousarray(img[:, : max(cut, cx + 5)])
        values.append(centre_face(analyser, cropped).quality.completeness)
    assert values[0] < 1.0
    assert all(b < a for a, b in zip(values, values[1:])), values
