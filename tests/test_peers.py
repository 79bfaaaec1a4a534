"""The assertions of face_recognition's own test suite (../shared/data/peers/
face_recognition/EXPECTED.md), held by this engine with its own models."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import PEERS, load
from edge.thresholds import SFACE_SAME_PERSON_COSINE as SAME

TEST_IMAGES = PEERS / "tests" / "test_images"
KNN = PEERS / "tests" / "test_images_knn"


def embeddings(analyser, path, n=10):
    faces = analyser.analyse(load(path), max_face_num=n, stages={"embedding"})
    return [f.embedding for f in faces]


def one(analyser, path):
    embs = embeddings(analyser, path)
    assert len(embs) == 1, path
    return embs[0]


def test_obama_shape_and_face_count(analyser):
    img = load(TEST_IMAGES / "obama.jpg")
    assert img.shape == (1137, 910, 3)
    assert len(analyser.analyse(img, 10, stages=())) == 1


def test_rgba_png_converts_to_rgb(analyser):
    img = load(TEST_IMAGES / "32bit.png")
    assert img.shape == (1200, 626, 3)
    faces = analyser.analyse(img, 10, stages=())
    assert len(faces) == 1
    # HOG top=290 bottom=558, CNN top ~259 bottom ~552 (+-25). YuNet's box is looser
    # (forehead and chin): it must contain the peer's face and not be much larger.
    top, bottom = faces[0].box[1], faces[0].box[3]
    assert top <= 259 + 25 and bottom >= 552 - 25
    assert bottom - top <= 1.5 * (552 - 259)


@pytest.mark.parametrize("other,same", [("obama2.jpg", True), ("obama3.jpg", True), ("biden.jpg", False)])
def test_verification(analyser, other, same):
    sim = float(one(analyser, TEST_IMAGES / "obama.jpg") @ one(analyser, TEST_IMAGES / other))
    assert (sim >= SAME) == same, sim


@pytest.fixture(scope="module")
def knn_gallery(analyser):
    names, embs = [], []
    # As the peer's own train(): photos without exactly one face are left out
    # (biden2.jpg is a group photo).
    for person in sorted(p for p in (KNN / "train").iterdir() if p.is_dir()):
        for photo in sorted(person.iterdir()):
            found = embeddings(analyser, photo)
            if len(found) == 1:
                names.append(person.name)
                embs.append(found[0])
    assert sorted(set(names)) == ["alex_lacamoire", "biden", "kit_harington", "obama", "rose_leslie"]
    return names, np.stack(embs)


def identify(analyser, gallery, path):
    names, embs = gallery
    out = []
    for e in embeddings(analyser, path):
        sims = embs @ e
        best = int(np.argmax(sims))
        out.append(names[best] if sims[best] >= SAME else "N/A")
    return sorted(out)


@pytest.mark.parametrize("photo,expected", [
    ("obama1.jpg", ["obama"]),
    ("alex_lacamoire1.jpg", ["alex_lacamoire"]),
    ("johnsnow_test1.jpg", ["kit_harington"]),
    ("kit_with_rose.jpg", ["kit_harington", "rose_leslie"]),
    ("obama_and_biden.jpg", ["N/A", "biden", "obama"]),
])
def test_knn_identification_with_an_unknown(analyser, knn_gallery, photo, expected):
    assert identify(analyser, knn_gallery, KNN / "test" / photo) == expected
