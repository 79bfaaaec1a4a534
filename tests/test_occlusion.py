"""Occlusion on LFW faces under occluders drawn with the mesh (edge/occluders.py): masks
of light and skin-like colours, a hand; clean faces; and what quality_control (v3) and
the capture loop do with a masked face. DevTest people: never used to set constants."""
from __future__ import annotations

import base64
import dataclasses

import cv2
import numpy as np
import pytest

from conftest import DATA, centre_face, load
from edge import occluders as oc
from edge.aip.v3 import AipFace
from edge.analysis.gating import OCCLUSION_CODES
from edge.loop.decision import DecisionRules
from edge.loop.pipeline import LoopRules, Pipeline
from edge.thresholds import QUALITY

NORMAL = QUALITY["NORMAL"].occlusion
PEOPLE = oc.lfw_split(DATA, "DevTest", 16, seed=7)
LOWER = ("nose", "mouth", "left_cheek", "right_cheek", "chin")


def occ(face) -> dict[str, float]:
    return dataclasses.asdict(face.quality.occlusion)


def trials(analyser, occluder: oc.Occluder):
    """(coverage, measured occlusion) per detected occluded face."""
    rng = np.random.default_rng(3)
    out = []
    for path in PEOPLE:
        img = load(path)
        mesh = centre_face(analyser, img).mesh
        drawn, cover = oc.draw(img, mesh, occluder, rng)
        faces = analyser.analyse(drawn, 1, 1, {"landmarks", "quality"})
        if faces:
            out.append((oc.coverage(cover, mesh), occ(faces[0])))
    return out


def detection(results, region: str) -> float:
    hits = [o[region] > NORMAL[region] for cover, o in results if cover[region] >= oc.COVERED]
    return float(np.mean(hits)) if hits else float("nan")


# Detection rates at NORMAL where the drawing covers >= 60 % of the region; the old
# measure's (before the skin-like voters and the hidden-feature readings) in comments.
@pytest.mark.parametrize("shape, colour, regions, least", [
    ("surgical", "white", LOWER, 0.85),       # old measure: worst region 50 %
    ("kn95", "white", LOWER, 0.8),            # 56 %
    ("cloth", "white", LOWER, 0.85),          # 69 %
    ("surgical", "black", ("mouth", "chin"), 0.8),  # 67 %
    ("cloth", "beige", LOWER, 0.85),          # 13 %
    ("kn95", "beige", LOWER, 0.85),           # 0 %
    ("cloth", "skin", LOWER, 0.85),           # 0 %
    ("kn95", "skin", LOWER, 0.8),             # 0 %
    ("surgical", "skin", LOWER, 0.55),        # 0 %
])
def test_masks_are_seen_per_region(analyser, shape, colour, regions, least):
    results = trials(analyser, oc.Occluder(shape, colour))
    assert len(results) >= 14
    rates = {r: detection(results, r) for r in regions}
    assert all(v >= least for v in rates.values()), rates
    # a mask is not read as covering the eyes
    eyes = [o[e] > NORMAL[e] for cover, o in results for e in ("left_eye", "right_eye") if cover[e] < oc.CLEAR]
    assert np.mean(eyes) <= 0.25, np.mean(eyes)  # beige: 23 %, the others <= 10 %


def test_a_masked_face_fails_normal(analyser):
    """KN95 masks in white, beige and skin tone: the face is refused at NORMAL (all of
    them here; the old measure refused 50 %)."""
    refused = []
    for colour in ("white", "beige", "skin"):
        for cover, o in trials(analyser, oc.Occluder("kn95", colour)):
            refused.append(any(o[r] > NORMAL[r] for r in o))
    assert np.mean(refused) >= 0.9, np.mean(refused)


def test_a_hand_over_the_mouth_is_seen(analyser):
    results = trials(analyser, oc.Occluder("hand_mouth"))
    assert detection(results, "mouth") >= 0.45  # 60 % here; the old measure: 0 %


def test_a_real_hand_over_the_mouth_is_seen(analyser):
    """LFW's Pedro_Mahecha_0001 holds his hand over mouth and nose (the old measure read
    0.0 everywhere: the hand is of his skin's colour)."""
    img = load(DATA / "lfw-view1" / "images" / "Pedro_Mahecha" / "Pedro_Mahecha_0001.jpg")
    o = occ(centre_face(analyser, img))
    assert o["mouth"] > NORMAL["mouth"] and o["nose"] > NORMAL["nose"], o
    assert o["left_eye"] < NORMAL["left_eye"] and o["right_eye"] < NORMAL["right_eye"], o


def test_clean_faces_rarely_read_as_occluded(analyser):
    """Clean DevTest faces (other people than the masked ones): few false alarms."""
    photos = oc.lfw_split(DATA, "DevTest", 136, seed=7)[16:]
    flagged = {r: 0 for r in NORMAL}
    for path in photos:
        o = occ(centre_face(analyser, load(path)))
        for r in o:
            flagged[r] += o[r] > NORMAL[r]
    assert max(flagged.values()) <= 0.04 * len(photos), flagged


DARK_SKIN = ["Serena_Williams", "Venus_Williams", "Colin_Powell", "Condoleezza_Rice", "Thabo_Mbeki",
             "Denzel_Washington", "Halle_Berry", "Michael_Jordan", "Morgan_Freeman", "Tiger_Woods", "Chris_Rock"]


def test_dark_skin_is_not_read_as_occluded(analyser):
    photos = [p for name in DARK_SKIN for p in sorted((DATA / "lfw-view1" / "images" / name).glob("*.jpg"))]
    flagged = [p.stem for p in photos if max(occ(centre_face(analyser, load(p))).values()) > 0.6]
    assert len(flagged) <= 0.08 * len(photos), flagged


BEARDS = ["Yasser_Arafat", "Fidel_Castro", "Hamid_Karzai", "Mohammad_Khatami", "Osama_bin_Laden", "Ali_Khamenei",
          "Luiz_Inacio_Lula_da_Silva", "Mahmoud_Abbas", "Steven_Spielberg"]


def test_beards_are_not_read_as_occluded(analyser):
    """20 photos of bearded or moustached people: hair of the brows' colour with the
    mouth seen is not an occluder (the old measure flagged 2, chin and cheek)."""
    photos = [p for name in BEARDS for p in sorted((DATA / "lfw-view1" / "images" / name).glob("*.jpg"))]
    flagged = [p.stem for p in photos if max(occ(centre_face(analyser, load(p))).values()) > 0.6]
    assert len(photos) == 20 and len(flagged) <= 1, flagged


def masked(analyser, path, colour="skin"):
    """A cloth mask over the photo: in beige or skin tone the old measure let it pass."""
    img = load(path)
    drawn, _ = oc.draw(img, centre_face(analyser, img).mesh, oc.Occluder("cloth", colour),
                       np.random.default_rng(0))
    return drawn


def jpeg(img) -> str:
    return base64.b64encode(cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes()).decode()


@pytest.mark.parametrize("colour", ["beige", "skin"])
def test_v3_quality_control_refuses_a_masked_face_with_an_occlusion_code(analyser, edge_config, colour):
    client = AipFace(f"occl-{colour}", "", "", config=edge_config)
    paul = sorted((DATA / "lfw-view1" / "images" / "Paul_Wolfowitz").glob("*.jpg"))
    assert client.addUser(jpeg(load(paul[0])), "BASE64", "staff", "paul")["error_code"] == 0
    img = jpeg(masked(analyser, paul[1], colour))
    answer = client.search(img, "BASE64", "staff", {"quality_control": "NORMAL"})
    assert answer["error_code"] in OCCLUSION_CODES.values(), answer
    assert client.search(img, "BASE64", "staff", {"quality_control": "NONE"})["error_code"] == 0


def test_the_loop_rejects_a_masked_face_with_an_occlusion_code(analyser, edge_config):
    from test_pipeline import run, walk
    client = AipFace("occl-loop", "", "", config=edge_config)
    paul = sorted((DATA / "lfw-view1" / "images" / "Paul_Wolfowitz").glob("*.jpg"))
    assert client.addUser(jpeg(load(paul[0])), "BASE64", "staff", "paul")["error_code"] == 0
    rules = LoopRules(liveness_control="NONE", decision=DecisionRules(max_frames=4))
    events = run(Pipeline(analyser, client._lib, rules, "gate"), walk(masked(analyser, paul[1])))
    assert len(events) == 1 and events[0].kind == "rejected", events
    assert events[0].error_code in OCCLUSION_CODES.values() and events[0].user_id == "", events
