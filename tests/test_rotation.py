"""In-plane rotated faces: real photos turned sideways, upside down and tilted are found,
their rotation reported clockwise, their box, landmarks and embedding those of the
upright face (scripts/rotation_report.py prints the same figures over more photos)."""
from __future__ import annotations

import base64
import itertools
import math

import cv2
import numpy as np
import pytest

from conftest import MULTIFACE, load
from edge.aip.v3 import AipFace
from edge.analysis import meshmap
from edge.analysis.orientation import map_points, turn
from edge.config import Config, ConfigError, DetectorConfig, load_config
from edge.imaging import decode_image
from edge.service import Engine
from test_aip_v2 import A, B, C, photo

PEOPLE = ((A, 2), (B, 1), (C, 1))
ALL = {"landmarks", "quality", "attributes", "embedding"}
_apps = itertools.count()


def pic(name: str, i: int) -> np.ndarray:
    return decode_image(photo(name, i))


def wrap(deg: float) -> float:
    return (deg + 180.0) % 360.0 - 180.0


def box_centre(loc: dict, rotation: float) -> tuple[float, float]:
    """Centre of a Baidu location: width x height from (left, top), turned by rotation about it."""
    r = math.radians(rotation)
    return (loc["left"] + math.cos(r) * loc["width"] / 2 - math.sin(r) * loc["height"] / 2,
            loc["top"] + math.sin(r) * loc["width"] / 2 + math.cos(r) * loc["height"] / 2)


def iod(face) -> float:
    pts = meshmap.landmark4(face.mesh)
    return float(np.linalg.norm(pts[0] - pts[1]))


@pytest.fixture(scope="module")
def upright(analyser):
    return {p: (pic(*p), analyser.analyse(pic(*p), 1, 1, ALL)[0]) for p in PEOPLE}


@pytest.mark.parametrize("deg", [90, 180, 270])
def test_a_turned_photo_gives_the_upright_face(analyser, upright, deg):
    for person, (img, ref) in upright.items():
        turned, back = turn(img, deg)
        faces = analyser.analyse(turned, 1, 1, ALL)
        assert len(faces) == 1, (person, deg)
        face = faces[0]
        # clockwise, as Baidu's rotation_angle: the photo's turn adds to the face's own roll
        assert abs(wrap(face.roll - ref.roll - deg)) < 4, (person, deg, face.roll, ref.roll)
        # landmarks mapped back onto the upright photo land on the upright landmarks
        err = np.linalg.norm(map_points(meshmap.landmark72(face.mesh), back) - meshmap.landmark72(ref.mesh), axis=1)
        assert err.mean() < 0.08 * iod(ref), (person, deg, err.mean())
        assert float(face.embedding @ ref.embedding) > 0.85, (person, deg)
        # the later stages got the upright crop: pose, quality and attributes agree
        assert abs(face.yaw - ref.yaw) < 5 and abs(face.pitch - ref.pitch) < 5, (person, deg)
        assert face.quality.completeness > 0.99 and abs(face.quality.blur - ref.quality.blur) < 0.15
        assert abs(face.quality.illumination - ref.quality.illumination) < 10
        assert face.gender == ref.gender and abs(face.age - ref.age) < 6, (person, deg)


@pytest.mark.parametrize("degs", [(-30, -10, -3, 3, 10, 30), (45, -45), (135, 200)])
def test_tilted_faces_read_their_tilt_clockwise(analyser, upright, degs):
    for deg, (person, (img, ref)) in itertools.product(degs, upright.items()):
        faces = analyser.analyse(turn(img, deg)[0], 1, 1, ALL)
        assert len(faces) == 1, (person, deg)
        assert abs(wrap(faces[0].roll - ref.roll - deg)) < 4, (person, deg, faces[0].roll, ref.roll)
        assert float(faces[0].embedding @ ref.embedding) > 0.8, (person, deg)


def test_baidu_location_is_the_face_box_turned_by_its_rotation():
    engine = Engine(Config())
    img = pic(A, 2)
    ref = engine.detect(cv2.imencode(".png", img)[1].tobytes(), {"face_fields": "landmark"})["result"][0]
    turned, back = turn(img, 90)
    out = engine.detect(cv2.imencode(".png", turned)[1].tobytes(), {"face_fields": "landmark"})
    assert out["result_num"] == 1
    face = out["result"][0]
    assert abs(wrap(face["rotation_angle"] - ref["rotation_angle"] - 90)) <= 3
    loc = face["location"]
    # the face's own width and height, not the sideways box's
    assert abs(loc["width"] - ref["location"]["width"]) < 0.1 * ref["location"]["width"]
    assert abs(loc["height"] - ref["location"]["height"]) < 0.1 * ref["location"]["height"]
    # (left, top) is the face's top-left corner: on a face turned 90 deg clockwise it is the
    # image's top-right of the face, and width runs down the image from it
    xs = [p["x"] for p in face["landmark72"]]
    ys = [p["y"] for p in face["landmark72"]]
    assert loc["left"] > max(xs) - 0.1 * loc["width"] and loc["top"] < min(ys)
    # the centre of the drawn box, mapped back, is the upright face's (this one is rolled ~-15 deg)
    got = map_points(np.array(box_centre(loc, face["rotation_angle"])), back)
    assert math.dist(got, box_centre(ref["location"], ref["rotation_angle"])) < 0.1 * loc["width"]
    # mapped back, the turned photo's landmarks are the upright photo's
    got = map_points(np.array([[p["x"], p["y"]] for p in face["landmark"]]), back)
    want = np.array([[p["x"], p["y"]] for p in ref["landmark"]])
    assert np.linalg.norm(got - want, axis=1).max() < 0.1 * ref["location"]["width"]


def test_group_photos_turned_find_every_face_and_a_landscape_none(analyser):
    for name in ("fr_two_people.jpg", "deepface_couple.jpg"):
        img = load(MULTIFACE / name)
        want = len(analyser.analyse(img, 10, 0, ()))
        for deg in (90, 270):
            faces = analyser.analyse(turn(img, deg)[0], 10, 0, {"landmarks"})
            assert len(faces) == want, (name, deg)
            assert all(abs(wrap(f.roll - deg)) < 25 for f in faces), (name, deg, [f.roll for f in faces])
    noface = load(MULTIFACE / "inspireface_view_noface.jpg")
    for deg in (0, 90):
        assert analyser.analyse(turn(noface, deg)[0], 10, 0, ()) == []


def test_the_retry_is_a_detector_setting_and_the_loop_never_uses_it(analyser, tmp_path):
    sideways = cv2.imencode(".png", turn(pic(A, 2), 90)[0])[1].tobytes()
    assert Engine(Config()).detect(sideways)["result_num"] == 1
    cfg = tmp_path / "edge.yaml"
    cfg.write_text("detector:\n  rotated_retry: false\n")
    assert load_config(cfg).detector == DetectorConfig(rotated_retry=False)
    assert Engine(Config(detector=load_config(cfg).detector)).detect(sideways)["result_num"] == 0
    cfg.write_text("detector:\n  rotated_retry: 1\n")
    with pytest.raises(ConfigError):
        load_config(cfg)
    assert analyser.analyse(turn(pic(A, 2), 90)[0], 1, 0, (), rotated=False) == []


def test_a_sideways_probe_finds_the_enrolled_person(edge_config):
    client = AipFace(f"rot{next(_apps)}", "", "", config=edge_config)
    assert client.addUser(base64.b64encode(photo(A, 1)).decode(), "BASE64", "staff", "paul")["error_code"] == 0
    probe = cv2.imencode(".jpg", turn(pic(A, 2), 270)[0])[1]
    out = client.search(base64.b64encode(probe.tobytes()).decode(), "BASE64", "staff")
    assert out["error_code"] == 0, out
    assert out["result"]["user_list"][0]["user_id"] == "paul" and out["result"]["user_list"][0]["score"] >= 80
