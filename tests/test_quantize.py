"""The int8 SFace build: made by `edge models fetch` from the fp32 file and the committed
ranges, the same bytes everywhere, reference-checked, selected by models.precision, and
searchable against a library enrolled in fp32 (docs/speed.md, "int8")."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import onnx
import pytest

from conftest import LFW, lfw_people, load
from edge.aip import AipFace
from edge.analysis.align import align_face
from edge.analysis.embedder import SFaceEmbedder
from edge.config import ConfigError, load_config
from edge.errors import ModelError
from edge.models import quantize
from edge.models.fetch import (
    check_all, fetch_int8, int8_source, is_int8_current, sha256, verify_int8,
)
from edge.models.manifest import (
    default_models_dir, embedder_model_id, load_manifest, model_space, runtime_files,
)

SPEC = load_manifest()["embedder"]
MODELS_DIR = default_models_dir()
FP32_ID = "face_recognition_sface_2021dec@0ba9fbfa01b5"


def test_int8_file_is_fetched_current_and_passes_its_reference_check():
    assert check_all()["embedder.int8"] == "ok"
    verify_int8(MODELS_DIR / SPEC.int8.file, SPEC)   # raises on a mismatch


BUILD_SHA = """
import hashlib
from edge.models.fetch import build_int8, int8_source
from edge.models.manifest import default_models_dir, load_manifest
spec = load_manifest()["embedder"]
print(hashlib.sha256(build_int8(spec, int8_source(spec, default_models_dir()))).hexdigest())
"""


def test_int8_build_gives_the_same_bytes_in_every_process():
    shas = set()
    for seed in ("1", "2"):
        out = subprocess.run([sys.executable, "-c", BUILD_SHA], capture_output=True, text=True,
                             env={**os.environ, "PYTHONHASHSEED": seed}, timeout=120, check=True)
        shas.add(out.stdout.split()[-1])
    assert shas == {hashlib.sha256((MODELS_DIR / SPEC.int8.file).read_bytes()).hexdigest()}


def test_the_int8_file_leaves_the_recipes_fp32_nodes_float():
    # The two most sensitive layers (docs/speed.md, "int8") take float inputs and weights.
    import onnx
    graph = onnx.load(str(MODELS_DIR / SPEC.int8.file)).graph
    made_by = {out: n.op_type for n in graph.node for out in n.output}
    nodes = {n.name: n for n in graph.node}
    assert quantize.RECIPE.fp32_nodes
    for name in quantize.RECIPE.fp32_nodes:
        assert "DequantizeLinear" not in {made_by.get(i) for i in nodes[name].input}, name
    assert "DequantizeLinear" in {made_by.get(i) for i in nodes["conv_2_conv2d"].input}


def test_int8_quantizes_the_min_split_not_the_runtime_graphs_conv_split():
    # Quantized Convs run outside onnxruntime's blocked layout, where the fp32 file's
    # depthwise-convolution split only adds reorders (int8 7.2-7.8 vs 5.3-5.8 ms, 2 threads):
    # the int8 build quantizes the Min split, the graph its committed ranges were taken on.
    src = int8_source(SPEC, MODELS_DIR)
    assert {"Min", "Mul"} <= {n.op_type for n in onnx.load_from_string(src).graph.node}
    runtime = (MODELS_DIR / SPEC.file).read_bytes()
    assert "Min" not in {n.op_type for n in onnx.load_from_string(runtime).graph.node}
    assert json.loads(SPEC.int8.ranges.read_text())["fp32_sha256"] == sha256(src) != sha256(runtime)
    int8 = onnx.load(str(MODELS_DIR / SPEC.int8.file))
    assert not [n.name for n in int8.graph.node if n.name.startswith("prelu_split_conv")]


def test_reference_check_catches_a_badly_quantized_build(tmp_path):
    # Ranges ten times too narrow clip most activations: the check must refuse that file.
    fp32 = int8_source(SPEC, MODELS_DIR)
    ranges = quantize.load_ranges(SPEC.int8.ranges, sha256(fp32))
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(quantize.quantize(fp32, {k: (lo / 10, hi / 10) for k, (lo, hi) in ranges.items()}))
    with pytest.raises(ModelError, match="reference check"):
        verify_int8(bad, SPEC)


@pytest.fixture
def models_copy(tmp_path):
    """A models folder holding copies of the fp32 file, the int8 file, its stamp and ranges
    (and the checkout's wheel cache)."""
    for name in (SPEC.file, SPEC.int8.file, SPEC.int8.file + ".stamp.json"):
        shutil.copyfile(MODELS_DIR / name, tmp_path / name)
    (tmp_path / "cache").symlink_to(MODELS_DIR / "cache")
    ranges = tmp_path / SPEC.int8.ranges.name
    shutil.copyfile(SPEC.int8.ranges, ranges)
    return tmp_path, dataclasses.replace(SPEC, int8=dataclasses.replace(SPEC.int8, ranges=ranges))


def test_int8_file_is_stale_when_its_ranges_or_the_fp32_file_change(models_copy):
    models_dir, spec = models_copy
    assert is_int8_current(models_dir, spec)
    original = spec.int8.ranges.read_text()
    doc = json.loads(original)
    first = sorted(doc["ranges"])[0]
    doc["ranges"][first][1] *= 1.5
    spec.int8.ranges.write_text(json.dumps(doc))
    assert not is_int8_current(models_dir, spec)
    spec.int8.ranges.write_text(original)
    assert is_int8_current(models_dir, spec)
    # Built again from scratch by the fetch step: the same bytes, stamped current.
    built = (models_dir / spec.int8.file).read_bytes()
    (models_dir / spec.int8.file).unlink()
    assert fetch_int8(spec, models_dir) == "built"
    assert (models_dir / spec.int8.file).read_bytes() == built and is_int8_current(models_dir, spec)
    assert fetch_int8(spec, models_dir) == "ok"
    with open(models_dir / spec.file, "ab") as fh:   # the fp32 file changed under it
        fh.write(b"\0")
    assert not is_int8_current(models_dir, spec)


def test_ranges_of_another_fp32_graph_are_refused_and_nothing_is_written(models_copy):
    models_dir, spec = models_copy
    (models_dir / spec.int8.file).unlink()
    # The int8 build's graph is another one (PRelu kept): the ranges are not its own.
    spec = dataclasses.replace(spec, int8=dataclasses.replace(spec.int8, edits=("drop_initializer_inputs",)))
    with pytest.raises(ModelError, match="another fp32 graph.*calibrate_int8"):
        fetch_int8(spec, models_dir)
    assert not (models_dir / spec.int8.file).exists()
    assert not list(models_dir.glob("*.new"))


@pytest.mark.parametrize("value, ok", [("int8", True), ("fp32", True), ("int16", False), (8, False), ("", False)])
def test_precision_config_is_validated(tmp_path, value, ok):
    path = tmp_path / "edge.yaml"
    path.write_text(json.dumps({"models": {"precision": value}}))
    if ok:
        assert load_config(path).models.precision == value
    else:
        with pytest.raises(ConfigError, match="models.precision"):
            load_config(path)


def test_precision_picks_the_runtime_file_and_the_model_id():
    assert runtime_files(MODELS_DIR, "fp32")["embedder"].name == SPEC.file
    assert runtime_files(MODELS_DIR, "int8")["embedder"].name == SPEC.int8.file
    assert runtime_files(MODELS_DIR, "int8")["detector"] == runtime_files(MODELS_DIR, "fp32")["detector"]
    int8_id = embedder_model_id(MODELS_DIR, "int8")
    assert embedder_model_id(MODELS_DIR, "fp32") == FP32_ID   # unchanged: fp32 libraries keep their id
    assert int8_id != FP32_ID and model_space(int8_id) == model_space(FP32_ID) == FP32_ID


def test_int8_embeddings_agree_with_fp32_on_real_faces(analyser):
    fp32 = analyser.sface
    int8 = SFaceEmbedder(runtime_files(MODELS_DIR, "int8")["embedder"], 2)
    cos = []
    for path in lfw_people(30, seed=8):
        img = load(path)
        face = analyser.analyse(img, 1, 1, {"landmarks"})[0]
        chip = align_face(img, face.kps5)
        cos.append(float(fp32.embed_chips([chip])[0] @ int8.embed_chips([chip])[0]))
    assert np.mean(cos) >= 0.99 and min(cos) >= 0.97, cos


def _photo(name: str, i: int) -> bytes:
    return sorted((LFW / "images" / name).glob("*.jpg"))[i - 1].read_bytes()


def test_a_library_enrolled_in_fp32_keeps_working_after_the_switch_to_int8(edge_config):
    app = "int8switch"
    fp32 = AipFace(app, "key", "secret", config=edge_config)
    assert "error_code" not in fp32.addUser("paul", "Paul W", "staff", _photo("Paul_Wolfowitz", 1))
    assert "error_code" not in fp32.addUser("jlo", "Jennifer", "staff", _photo("Jennifer_Lopez", 1))
    before = fp32.identifyUser("staff", _photo("Paul_Wolfowitz", 2))
    switched = dataclasses.replace(edge_config, models=dataclasses.replace(edge_config.models, precision="int8"))
    int8 = AipFace(app, "key", "secret", config=switched)
    after = int8.identifyUser("staff", _photo("Paul_Wolfowitz", 2))
    assert after["result"][0]["uid"] == "paul", after
    assert abs(after["result"][0]["scores"][0] - before["result"][0]["scores"][0]) < 3.0, (before, after)
    # A face added after the switch is stored with the int8 build's own id, the old ones keep theirs.
    assert "error_code" not in int8.addUser("ann", "Ann", "staff", _photo("Jennifer_Lopez", 3))
    faces = {(u, m) for _, u, _, m, _ in int8._rt.library(app).store.dump()["faces"]}
    assert faces == {("paul", FP32_ID), ("jlo", FP32_ID), ("ann", embedder_model_id(MODELS_DIR, "int8"))}
    # Either build finds the person enrolled by the other.
    hit = fp32.identifyUser("staff", _photo("Jennifer_Lopez", 2), {"user_top_num": 2})
    assert {r["uid"] for r in hit["result"]} == {"jlo", "ann"}, hit


def test_a_follower_running_int8_stores_the_hubs_fp32_faces(tmp_path):
    # A terminal switched to int8 follows a hub enrolling in fp32: its faces are in the
    # same embedding space, so they are stored, not skipped as another model's; a face
    # of really another model still is.
    from edge.library.store import FaceRecord, LibraryStore, ReplicaChange
    vec = np.zeros(128, np.float32)
    vec[0] = 1.0
    changes = [ReplicaChange(1, "face.add", "g1", "u1", "tok1", None, FaceRecord("tok1", vec, FP32_ID, None)),
               ReplicaChange(2, "face.add", "g1", "u2", "tok2", None, FaceRecord("tok2", vec, "other@123", None))]
    replica = LibraryStore(tmp_path / "replica.db")
    done = replica.apply_replica(changes, {"seq": 2}, embedder_model_id(MODELS_DIR, "int8"), None)
    assert (done.faces_added, done.faces_skipped) == (1, 1)
    assert replica.model_mismatch_count() == {"other@123": 1}
