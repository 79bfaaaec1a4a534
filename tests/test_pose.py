"""Head pose, landmarks and the 72-point layout on real photos."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from conftest import centre_face, lfw_image, lfw_people, load
from edge.analysis import meshmap

POSE_PHOTOS = lfw_people(40, seed=3)


def pose(analyser, img):
    f = centre_face(analyser, img, stages=("landmarks",))
    return np.array([f.yaw, f.pitch, f.roll])


def test_yaw_changes_sign_on_a_mirrored_photo(analyser):
    errors, yaws = [], []
    for path in POSE_PHOTOS:
        img = load(path)
        a, b = pose(analyser, img), pose(analyser, np.ascontiguousarray(img[:, ::-1]))
        errors.append(abs(a[0] + b[0]))
        yaws.append(a[0])
        assert abs(a[1] - b[1]) < 8, path  # pitch does not care about left and right
    assert np.mean(errors) < 3.0, np.round(errors, 1)
    assert np.percentile(errors, 90) < 6.0
    # The photos do turn both ways, so the sign test is not vacuous.
    assert min(yaws) < -5 and max(yaws) > 5


@pytest.mark.parametrize("name", ["Aaron_Sorkin", "Laurel_Clark", "Bill_Kollar", "Tamara_Mowry", "Soenarno"])
def test_in_plane_rotation_moves_roll(analyser, name):
    img = lfw_image(name, 1)
    h, w = img.shape[:2]
    base = pose(analyser, img)
    for angle in (15, -15):
        # OpenCV's positive angle turns the image counter-clockwise; Baidu's roll is
        # positive clockwise, so a +15 deg turn here must read as -15 deg of roll.
        m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
        turned = cv2.warpAffine(img, m, (w, h), borderMode=cv2.BORDER_REPLICATE)
        delta = pose(analyser, turned)[2] - base[2]
        assert delta == pytest.approx(-angle, abs=3.0)


# LFW photos judged frontal by eye from a contact sheet of lfw_people(40, seed=3).
FRONTAL = ["Alicia_Keys_0001", "Beecher_Ray_Kirby_0001", "Clifford_Robinson_0001", "Don_Lake_0001",
           "Gilles_Panizzi_0001", "Jason_Biggs_0001", "Jeanne_Anne_Schroeder_0001", "John_Lithgow_0001",
           "Lisa_Girman_0001", "Mark_Hamister_0001", "Michael_Kors_0001", "Mike_Helton_0002",
           "Natalia_Dmitrieva_0001", "Rien_Long_0001", "Shane_Mosley_0001", "Ulrich_Kueperkoch_0001"]


@pytest.mark.parametrize("stem", FRONTAL)
def test_frontal_lfw_faces_read_near_zero(analyser, stem):
    name, idx = stem.rsplit("_", 1)
    yaw, pitch, _ = pose(analyser, lfw_image(name, int(idx)))
    assert abs(yaw) < 15 and abs(pitch) < 15


def test_landmark_layouts(analyser):
    img = lfw_image("Aaron_Sorkin", 1)
    f = centre_face(analyser, img, stages=("landmarks",))
    four = meshmap.landmark4(f.mesh)
    pts72 = meshmap.landmark72(f.mesh)
    assert four.shape == (4, 2) and pts72.shape == (72, 2)
    # Image-left eye first, nose below the eyes, mouth below the nose.
    assert four[0, 0] < four[1, 0]
    assert four[2, 1] > four[:2, 1].max() and four[3, 1] > four[2, 1]
    # Eye centres agree with the detector's own eye points.
    assert np.linalg.norm(four[:2] - f.kps5[:2], axis=1).max() < 0.1 * f.width
    # The 72 points: contour spans the face, chin (point 6) lowest, groups in place.
    contour = pts72[:13]
    assert contour[6, 1] == contour[:, 1].max()
    left_eye, right_eye = pts72[13:22], pts72[30:39]
    assert left_eye[:, 0].mean() < right_eye[:, 0].mean()
    brows = np.vstack([pts72[22:30], pts72[39:47]])
    assert brows[:, 1].mean() < np.vstack([left_eye, right_eye])[:, 1].mean()
    mouth = pts72[58:72]
    assert mouth[:, 1].mean() > pts72[47:58, 1].mean()
    x1, y1, x2, y2 = f.box
    inside = (pts72[:, 0] > x1 - 0.2 * f.width) & (pts72[:, 0] < x2 + 0.2 * f.width)
    assert inside.all()
