"""The smoke subset scripts/arm64_check.sh runs under arm64 emulation (also run here in CI):
every fp32 model reproduces its reference outputs, SFace's int8 build too unless `edge models
fetch` refused it here (failed-check, reported as a skip with the reason), a library
adds and finds a person, `edge serve` answers over HTTP. Needs only pytest beyond the
package: the emulated root installs nothing else.
"""
from __future__ import annotations

import base64
import json
import urllib.parse
import urllib.request

import pytest

from conftest import LFW
from edge.aip import AipFace
from edge.analysis.detector import iou
from edge.crosscheck import Agreement, compare
from edge.models import reference
from edge.models.fetch import int8_failure, verify_int8, verify_model
from edge.models.manifest import default_models_dir, int8_failed_path, load_manifest
from serving import start_server

MODELS = load_manifest()


def photo(name: str, i: int) -> bytes:
    return sorted((LFW / "images" / name).glob("*.jpg"))[i - 1].read_bytes()


@pytest.mark.parametrize("role", sorted(MODELS))
def test_model_reproduces_its_reference_outputs(role):
    spec = MODELS[role]
    verify_model(default_models_dir() / spec.file, spec)          # raises ModelError on a mismatch


@pytest.mark.parametrize("role", sorted(r for r, s in MODELS.items() if s.int8 is not None))
def test_int8_build_reproduces_its_reference_outputs_or_was_refused_here(role):
    # A machine whose int8 kernels differ (arm64: README, "On a Raspberry Pi") gets no int8
    # file from `edge models fetch`, which records why: reported as a skip with the reason.
    spec = MODELS[role]
    if not (default_models_dir() / spec.int8.file).exists():
        recorded = int8_failed_path(default_models_dir(), spec)
        assert recorded.exists(), f"{spec.int8.file} is missing and no failed check is recorded: run `edge models fetch`"
        reason = int8_failure(default_models_dir(), spec)   # None: recorded with another CPU id (QEMU_CPU)
        pytest.skip(f"int8 failed-check on this machine: {reason}" if reason else
                    f"int8 failed-check recorded for another CPU: {json.loads(recorded.read_text())['error']}")
    verify_int8(default_models_dir() / spec.int8.file, spec)


def test_the_reference_check_can_fail():
    # Outputs off by 0.05 (far less than a wrong model) fail the same comparison.
    got = reference.run_onnx(default_models_dir() / MODELS["gender"].file, "gender")
    assert reference.compare({k: v + 0.05 for k, v in got.items()}, reference.load_reference("gender"))


def test_library_adds_and_finds_a_person(edge_config):
    client = AipFace("arm64smoke", "", "", config=edge_config)
    assert "error_code" not in client.addUser("paul", "Paul", "staff", photo("Paul_Wolfowitz", 1))
    assert "error_code" not in client.addUser("jlo", "Jen", "staff", photo("Jennifer_Lopez", 1))
    found = client.identifyUser("staff", photo("Paul_Wolfowitz", 2))
    assert found["result"][0]["uid"] == "paul" and found["result"][0]["scores"][0] > 80, found


def test_http_service_answers(tmp_path):
    srv = start_server(tmp_path, {"10001": ("k1", "s1")})
    try:
        health = json.loads(urllib.request.urlopen(f"{srv.url}/health", timeout=60).read())
        assert health["status"] == "ok", health
        query = urllib.parse.urlencode({"grant_type": "client_credentials", "client_id": "k1", "client_secret": "s1"})
        token = json.loads(urllib.request.urlopen(f"{srv.url}/oauth/2.0/token?{query}", timeout=60).read())
        body = urllib.parse.urlencode({"image": base64.b64encode(photo("Paul_Wolfowitz", 1)).decode()}).encode()
        url = f"{srv.url}/rest/2.0/face/v2/detect?access_token={token['access_token']}"
        detect = json.loads(urllib.request.urlopen(url, data=body, timeout=300).read())
        assert detect["result_num"] == 1 and detect["result"][0]["face_probability"] > 0.9, detect
    finally:
        srv.stop()


def test_crosscheck_agrees_with_itself_and_catches_a_moved_or_missing_face():
    ref = {"a.jpg": {"boxes": [[10, 10, 110, 110], [200, 10, 300, 110]],
                     "embeddings": [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]}}
    same = compare(ref, json.loads(json.dumps(ref)), "fp32")
    assert isinstance(same, Agreement) and same.ok and same.faces == 2 and same.min_cosine == pytest.approx(1.0)
    moved = {"a.jpg": {"boxes": [[10, 10, 110, 110], [220, 10, 320, 110]], "embeddings": ref["a.jpg"]["embeddings"]}}
    assert iou([200, 10, 300, 110], [220, 10, 320, 110]) < 0.9 and not compare(ref, moved, "fp32").ok
    turned = {"a.jpg": {"boxes": ref["a.jpg"]["boxes"], "embeddings": [[1.0, 0.0, 0.0], [0.2, 1.0, 0.0]]}}
    assert "cosine" in compare(ref, turned, "int8").problems[0] and compare(ref, turned, "int8").below == 1
    assert same.below == 0 and "0 below 0.99" in same.line()
    fewer = {"a.jpg": {"boxes": ref["a.jpg"]["boxes"][:1], "embeddings": ref["a.jpg"]["embeddings"][:1]}}
    assert compare(ref, fewer, "fp32").problems[0] == "a.jpg: 1 faces, reference 2"
    assert compare(ref, {}, "fp32").problems[0] == "a.jpg: missing"
