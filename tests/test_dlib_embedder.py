"""dlib's face descriptor ResNet, converted from its .dat (edge/models/dlib_net.py): it
reproduces dlib's own descriptors, tells LFW people apart, and refuses bad chips."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import LFW, centre_face, lfw_image
from edge.analysis.dlib_embedder import DlibEmbedder, dlib_chip
from edge.errors import EdgeError
from edge.models.dlib_net import DlibFormatError, dlib_to_onnx, read_network
from edge.models.fetch import extract_member, find_or_download
from edge.models.manifest import REPO_ROOT, default_models_dir, load_manifest

SPEC = load_manifest()["embedder_dlib"]
CHIPS = REPO_ROOT / "tests" / "reference" / "dlib_chips.npz"
SAME = 0.6                     # dlib's euclidean threshold for one person


@pytest.fixture(scope="module")
def embedder() -> DlibEmbedder:
    return DlibEmbedder(default_models_dir() / SPEC.file, threads=1)


def test_converted_net_reproduces_dlibs_own_descriptors(embedder):
    # dlib_chips.npz: dlib's get_face_chip chips of 10 LFW photos and the descriptors
    # dlib's compute_face_descriptor gave them (scripts/make_model_references.py).
    with np.load(CHIPS) as ref:
        chips, want = ref["chips"], ref["descriptors"]
    assert len(chips) == 10
    got = embedder.descriptors([np.ascontiguousarray(c[:, :, ::-1]) for c in chips])   # RGB -> BGR
    assert got.shape == (10, 128)
    assert float(np.abs(got - want).max()) < 1e-4        # 3e-7 measured
    cos = np.sum(got * want, axis=1) / np.linalg.norm(got, axis=1) / np.linalg.norm(want, axis=1)
    assert cos.min() > 0.99999
    assert np.allclose(np.linalg.norm(embedder.embed_chips(list(chips)), axis=1), 1.0, atol=1e-5)


def _pairs(same: bool, n: int) -> list[tuple[str, int, str, int]]:
    lines = (LFW / "pairsDevTest.txt").read_text().splitlines()[1:]
    rows = [ln.split("\t") for ln in lines]
    if same:
        return [(r[0], int(r[1]), r[0], int(r[2])) for r in rows if len(r) == 3][:n]
    return [(r[0], int(r[1]), r[2], int(r[3])) for r in rows if len(r) == 4][:n]


def test_same_person_pairs_are_closer_than_different_person_pairs(analyser, embedder):
    def descriptor(name, idx):
        img = lfw_image(name, idx)
        return embedder.descriptors([dlib_chip(img, centre_face(analyser, img, ("landmarks",)).mesh)])[0]

    def dist(pair):
        return float(np.linalg.norm(descriptor(*pair[:2]) - descriptor(*pair[2:])))

    same = [dist(p) for p in _pairs(True, 6)]
    other = [dist(p) for p in _pairs(False, 6)]
    assert max(same) < min(other), (same, other)
    assert sum(d < SAME for d in same) >= 5 and sum(d >= SAME for d in other) >= 5, (same, other)


@pytest.mark.parametrize("chip", [np.zeros((112, 112, 3), np.uint8), np.zeros((150, 150), np.uint8),
                                  np.zeros((150, 150, 3), np.float32), "not an image"])
def test_bad_chip_is_a_baidu_style_error(embedder, chip):
    with pytest.raises(EdgeError) as err:
        embedder.embed_chips([chip])
    assert err.value.to_dict() == {"error_code": 216100, "error_msg": "invalid param"}


def test_reader_refuses_other_bytes_and_truncated_files():
    data = extract_member(find_or_download(SPEC, default_models_dir() / "cache"), SPEC)
    net = read_network(data)
    assert (net.input_size, round(net.distance_threshold, 3)) == ((150, 150), 0.6)
    assert [layer.kind for layer in net.layers].count("con") == 29
    for bad in (data[:len(data) // 2], b"\x01\x01\x01\x03abc", data + b"\x00"):
        with pytest.raises(DlibFormatError):
            dlib_to_onnx(bad)
