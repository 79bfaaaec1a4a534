"""Baidu detect JSON from the engine and the `edge` command line."""
from __future__ import annotations

import base64
import json
import os
import subprocess
import sys

import pytest

from conftest import MULTIFACE, REPO, lfw_image
from edge.config import Config, ConfigError, load_config
from edge.imaging import image_to_base64
from edge.service import Engine

ALL_FIELDS = "age,beauty,expression,faceshape,gender,glasses,landmark,qualities,faceliveness"


@pytest.fixture(scope="module")
def engine():
    return Engine(Config())


def test_detect_with_every_field(engine):
    img = (MULTIFACE / "skimage_astronaut.png").read_bytes()
    out = engine.detect(img, {"face_fields": ALL_FIELDS})
    assert out["result_num"] == 1 and isinstance(out["log_id"], int)
    face = out["result"][0]
    for key in ("location", "face_probability", "rotation_angle", "yaw", "pitch", "roll", "age",
                "expression", "expression_probability", "faceshape", "gender", "gender_probability",
                "landmark", "landmark72", "qualities", "faceliveness", "glasses", "glasses_probability", "beauty"):
        assert key in face, key
    # Not measurable honestly: present (no KeyError in the app), null, never made up.
    assert face["beauty"] is None
    assert face["glasses"] in (0, 1, 2) and type(face["glasses"]) is int
    assert 0.0 <= face["glasses_probability"] <= 1.0
    assert len(face["landmark"]) == 4 and len(face["landmark72"]) == 72
    assert set(face["location"]) == {"left", "top", "width", "height"}
    q = face["qualities"]
    assert set(q["occlusion"]) == {"left_eye", "right_eye", "nose", "mouth", "left_cheek", "right_cheek", "chin"}
    assert 0 <= q["blur"] <= 1 and 0 <= q["illumination"] <= 255 and q["completeness"] == pytest.approx(1, abs=0.01)
    assert set(q["type"]) == {"human", "cartoon"} and q["type"]["human"] > 0.9
    assert q["type"]["human"] + q["type"]["cartoon"] == pytest.approx(1.0)
    assert face["gender"] == "female"
    assert 0.0 <= face["faceliveness"] <= 1.0
    json.dumps(out)  # plain JSON types only


def test_default_fields_are_box_probability_and_angles(engine):
    out = engine.detect((MULTIFACE / "skimage_astronaut.png").read_bytes())
    assert set(out["result"][0]) == {"location", "face_probability", "rotation_angle", "yaw", "pitch", "roll"}


def test_base64_input_and_max_face_num(engine):
    b64 = base64.b64encode((MULTIFACE / "insightface_t1.jpg").read_bytes()).decode()
    assert engine.detect(b64)["result_num"] == 1
    assert engine.detect(b64, {"max_face_num": "10"})["result_num"] == 6


@pytest.mark.parametrize("data,code", [(b"", 216200), (b"GIF89a" + b"\0" * 64, 216201), ("!!notbase64!!", 216200)])
def test_bad_images_get_baidu_codes(engine, data, code):
    out = engine.detect(data)
    assert out["error_code"] == code and out["error_msg"] and "log_id" in out


def test_bad_options_get_216100(engine):
    img = image_to_base64(lfw_image("Aaron_Sorkin", 1))
    assert engine.detect(img, {"max_face_num": "lots"})["error_code"] == 216100
    assert engine.detect(img, {"face_sort_type": 3})["error_code"] == 216100


def test_no_face_is_an_empty_result(engine):
    out = engine.detect((MULTIFACE / "inspireface_view_noface.jpg").read_bytes())
    assert out["result_num"] == 0 and out["result"] == []


def run_cli(*args, stdin=None):
    return subprocess.run([sys.executable, "-m", "edge.cli", *args], input=stdin, capture_output=True,
                          cwd=REPO, timeout=120)


def test_cli_detect_and_error_exit_codes(tmp_path):
    ok = run_cli("detect", str(MULTIFACE / "fr_two_people.jpg"), "--max-face-num", "5")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["result_num"] == 2
    bad = tmp_path / "x.gif"
    bad.write_bytes(b"GIF89a" + b"\0" * 32)
    res = run_cli("detect", str(bad))
    assert res.returncode == 1 and json.loads(res.stdout)["error_code"] == 216201
    assert b"Traceback" not in res.stderr


def test_config_is_validated(tmp_path):
    cfg = tmp_path / "edge.yaml"
    cfg.write_text("runtime:\n  threads: 4\n")
    assert load_config(cfg).runtime.threads == 4
    for text in ("runtime:\n  thread: 4\n", "runtime:\n  threads: many\n", "detector:\n  score_threshold: 2\n",
                 "[unclosed\n"):
        cfg.write_text(text)
        with pytest.raises(ConfigError):
            load_config(cfg)
    res = run_cli("--config", str(cfg), "models", "status")
    assert res.returncode == 2 and b"Traceback" not in res.stderr and b"edge:" in res.stderr


def test_defaults_do_not_depend_on_where_the_config_lies(tmp_path, monkeypatch):
    """A config outside the checkout that sets only data_dir still finds the models; only
    paths written in the file resolve against it."""
    monkeypatch.delenv("EDGE_MODELS_DIR", raising=False)
    site = tmp_path / "srv" / "site"
    site.mkdir(parents=True)
    (site / "edge.yaml").write_text("data_dir: data\nserver: {tls_cert: tls/cert.pem, tls_key: /etc/key.pem}\n")
    cfg = load_config(site / "edge.yaml")
    assert cfg.models_dir == REPO / "models"                       # a default: the checkout's
    assert cfg.path(cfg.data_dir) == site / "data"                 # written: next to the file
    assert cfg.path(cfg.server.tls_cert) == site / "tls" / "cert.pem"
    assert cfg.server.tls_key == "/etc/key.pem"                  # absolute: as written
    (site / "edge.yaml").write_text("models: {dir: m}\n")
    cfg = load_config(site / "edge.yaml")
    assert cfg.models_dir == site / "m" and cfg.path(cfg.data_dir) == REPO / "var"
    (tmp_path / "srv" / "config").mkdir()
    (tmp_path / "srv" / "config" / "edge.yaml").write_text("data_dir: var\n")   # a checkout-like config/ folder
    cfg = load_config(tmp_path / "srv" / "config" / "edge.yaml")
    assert cfg.path(cfg.data_dir) == tmp_path / "srv" / "var" and cfg.models_dir == REPO / "models"

    (site / "edge.yaml").write_text(f"data_dir: {tmp_path / 'data'}\n")
    env = {k: v for k, v in os.environ.items() if k not in ("EDGE_MODELS_DIR", "EDGE_CONFIG")}
    status = subprocess.run([sys.executable, "-m", "edge", "--config", str(site / "edge.yaml"), "models", "status"],
                            capture_output=True, text=True, cwd=tmp_path, timeout=120,
                            env={**env, "PYTHONPATH": str(REPO)})
    assert status.returncode == 0 and "missing" not in status.stdout, status.stdout + status.stderr
