"""Detection: counts on real group photos, face sizes from ~20 px to a full frame,
max_face_num and face_sort_type."""
from __future__ import annotations

import csv

import cv2
import numpy as np
import pytest

from conftest import MULTIFACE, PEERS, lfw_image, load

COUNTS = list(csv.DictReader(open(MULTIFACE / "counts.csv", encoding="utf-8")))


@pytest.mark.parametrize("row", COUNTS, ids=[r["file"] for r in COUNTS])
def test_multiface_counts(analyser, row):
    faces = analyser.analyse(load(MULTIFACE / row["file"]), max_face_num=50, stages=())
    assert len(faces) == int(row["faces"]), row["notes"]


def face_box(analyser, img):
    faces = analyser.analyse(img, max_face_num=1, face_sort_type=1, stages=())
    assert faces
    return faces[0].box


def test_small_face_of_about_20px_is_found(analyser):
    img = lfw_image("Aaron_Sorkin", 1)
    w = face_box(analyser, img)[2] - face_box(analyser, img)[0]
    scale = 20.0 / w
    small = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    canvas = np.full((480, 640, 3), 128, np.uint8)
    canvas[200:200 + small.shape[0], 300:300 + small.shape[1]] = small
    faces = analyser.analyse(canvas, max_face_num=5, stages=())
    assert len(faces) == 1
    assert 14 <= faces[0].width <= 30


def test_face_filling_the_whole_frame_is_found(analyser):
    img = lfw_image("Aaron_Sorkin", 1)
    x1, y1, x2, y2 = face_box(analyser, img).astype(int)
    crop = img[max(0, y1):y2, max(0, x1):x2]  # the face box only, as at a kiosk
    frame = cv2.resize(crop, (640, 640), interpolation=cv2.INTER_CUBIC)
    faces = analyser.analyse(frame, max_face_num=5, stages=())
    assert len(faces) == 1
    assert faces[0].width > 400


def test_max_face_num_and_sort_by_area(analyser):
    img = load(MULTIFACE / "insightface_t1.jpg")
    all_faces = analyser.analyse(img, max_face_num=10, face_sort_type=0, stages=())
    assert len(all_faces) == 6
    areas = [f.area for f in all_faces]
    assert areas == sorted(areas, reverse=True)
    two = analyser.analyse(img, max_face_num=2, face_sort_type=0, stages=())
    assert [f.area for f in two] == areas[:2]


def test_sort_by_distance_to_centre(analyser):
    img = load(MULTIFACE / "insightface_t1.jpg")
    faces = analyser.analyse(img, max_face_num=10, face_sort_type=1, stages=())
    cy, cx = img.shape[0] / 2, img.shape[1] / 2
    dist = [np.hypot(f.center[0] - cx, f.center[1] - cy) for f in faces]
    assert dist == sorted(dist)


def test_no_face_in_a_landscape(analyser):
    assert analyser.analyse(load(MULTIFACE / "inspireface_view_noface.jpg"), 10, stages=()) == []


def test_rgba_and_partial_faces_from_the_peer_suite(analyser):
    # 32bit.png (RGBA) and faces cut by the left border: exactly one face each.
    for name in ("32bit.png", "obama_partial_face.jpg", "obama_partial_face2.jpg"):
        faces = analyser.analyse(load(PEERS / "tests" / "test_images" / name), 10, stages=())
        assert len(faces) == 1, name


def iou(a, b):
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0, x2 - x1) * max(0, y2 - y1)
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_obama_box_agrees_with_the_peer_cnn_box(analyser):
    # EXPECTED.md: CNN box (top, right, bottom, left) ~ (144, 608, 389, 363).
    faces = analyser.analyse(load(PEERS / "tests" / "test_images" / "obama.jpg"), 10, stages=())
    assert len(faces) == 1
    assert iou(faces[0].box, (363, 144, 608, 389)) > 0.5
