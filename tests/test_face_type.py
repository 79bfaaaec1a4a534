"""qualities.type / face_type (human or cartoon) and the cartoon cap on liveness.

Humans are real photos (LFW, spoof-dev's live frames); cartoons are renderings of LFW
photos made here (edge.analysis.cartoonize), as nothing drawn is in the shared data.
"""
from __future__ import annotations

import base64

import cv2
import numpy as np
import pytest

from conftest import DATA, lfw_people, load
from edge.aip.v3 import AipFace
from edge.analysis.cartoonize import render
from edge.analysis.face_type_fit import FLAT_RENDERERS, PHOTO_VARIANTS, collect, p_human, people
from edge.service import Engine
from edge.thresholds import LIVENESS

PHOTOS = lfw_people(4, seed=5)


def png(img: np.ndarray) -> bytes:
    return cv2.imencode(".png", img)[1].tobytes()


@pytest.fixture(scope="module")
def engine():
    return Engine()


def cartoon(engine, path, renderer: str) -> np.ndarray:
    img = load(path)
    face = engine.analyser.analyse(img, 1, 1, {"landmarks"})[0]
    return render(renderer, img, face.mesh)


@pytest.mark.parametrize("path", PHOTOS, ids=[p.stem for p in PHOTOS])
def test_photo_is_human_and_its_toon_rendering_a_cartoon(engine, path):
    photo = engine.detect(path.read_bytes(), {"face_fields": "qualities"})["result"][0]["qualities"]["type"]
    assert set(photo) == {"human", "cartoon"} and type(photo["human"]) is float
    assert photo["human"] > 0.9 and photo["human"] + photo["cartoon"] == pytest.approx(1.0)
    drawn = engine.detect(png(cartoon(engine, path, "toon")), {"face_fields": "qualities"})
    assert drawn["result"][0]["qualities"]["type"]["cartoon"] > 0.9, drawn


@pytest.mark.parametrize("renderer", FLAT_RENDERERS)
def test_a_clear_cartoon_is_not_called_live(engine, renderer):
    """The liveness cues alone score these ~1.0 (docs/fields.md); capped by P(human)."""
    out = engine.detect(png(cartoon(engine, PHOTOS[0], renderer)), {"face_fields": "faceliveness"})
    assert out["result"][0]["faceliveness"] < LIVENESS["LOW"], out


def test_v3_face_type_and_liveness_control_refuses_a_cartoon(edge_config, engine):
    client = AipFace("facetype-v3", "key", "secret", config=edge_config)
    photo = base64.b64encode(PHOTOS[1].read_bytes()).decode()
    face = client.detect(photo, "BASE64", {"face_field": "face_type"})["result"]["face_list"][0]
    assert face["face_type"]["type"] == "human" and face["face_type"]["probability"] > 0.9, face
    drawn = base64.b64encode(png(cartoon(engine, PHOTOS[1], "poster"))).decode()
    face = client.detect(drawn, "BASE64", {"face_field": "face_type"})["result"]["face_list"][0]
    assert face["face_type"]["type"] == "cartoon" and face["face_type"]["probability"] > 0.9, face
    refused = client.detect(drawn, "BASE64", {"liveness_control": "NORMAL"})
    assert refused["error_code"] == 223120, refused


def test_live_spoof_dev_frames_stay_human(engine):
    """The cap must not refuse live users: webcam frames (NUAA, some 30 % over-exposed)
    and the two phone photos of spoof-dev read human."""
    root = DATA / "spoof-dev"
    paths = sorted((root / "nuaa" / "ClientRaw").rglob("*.jpg"))[::6] + sorted(root.glob("silentface_image_T*.jpg"))
    for path in paths:
        q = engine.detect(path.read_bytes(), {"face_fields": "qualities"})["result"][0]["qualities"]
        assert q["type"]["human"] > 0.9, (path.name, q["type"])


def test_report_half_separation(analyser):
    """A smaller run of scripts/face_type_report.py's measurement on report-half people."""
    samples = collect(analyser, people(12, tuning=False))
    found = [s for s in samples if np.isfinite(s.flat)]
    humans = [p_human(s) for s in found if s.group in PHOTO_VARIANTS]
    flat_cartoons = [p_human(s) for s in found if s.group in FLAT_RENDERERS]
    assert len(humans) == 48 and len(flat_cartoons) >= 33
    assert np.mean(np.array(humans) < 0.5) <= 0.03
    assert np.mean(np.array(flat_cartoons) < 0.5) >= 0.95
