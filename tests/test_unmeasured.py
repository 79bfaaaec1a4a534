"""Fields edge cannot measure: present and null (no KeyError, no made-up number), logged
once per process, and listed by AipFace.capabilities() and GET /rest/2.0/face/capabilities."""
from __future__ import annotations

import base64
import subprocess
import sys

import requests

from conftest import REPO, lfw_people
from edge.aip import AipFace as AipFaceV2
from edge.aip.v3 import AipFace as AipFaceV3
from edge.analysis.unmeasured import V2_NOT_MEASURED, V3_NOT_MEASURED
from edge.service import Engine

PHOTO = lfw_people(1, seed=9)[0]


def test_v2_beauty_is_present_and_null():
    face = Engine().detect(PHOTO.read_bytes(), {"face_fields": "age,beauty"})["result"][0]
    assert "beauty" in face and face["beauty"] is None
    assert isinstance(face["age"], float)


def test_v3_unmeasured_fields_are_present_in_their_documented_shape_and_null(edge_config):
    client = AipFaceV3("unmeasured-v3", "key", "secret", config=edge_config)
    fields = "beauty,eye_status,emotion,mask,spoofing,landmark150,glasses,face_type"
    out = client.detect(base64.b64encode(PHOTO.read_bytes()).decode(), "BASE64", {"face_field": fields})
    face = out["result"]["face_list"][0]
    assert face["beauty"] is None and face["spoofing"] is None and face["landmark150"] is None
    assert face["eye_status"] == {"left_eye": None, "right_eye": None}
    assert face["emotion"] == {"type": None, "probability": None}
    assert face["mask"] == {"type": None, "probability": None}
    assert face["glasses"]["type"] in ("none", "common", "sun") and face["face_type"]["type"] == "human"


def test_an_unmeasured_field_is_logged_once_per_process():
    code = ("import logging, sys; logging.basicConfig(stream=sys.stderr, level=logging.WARNING)\n"
            "from edge.service import Engine\n"
            f"e = Engine(); img = open({str(PHOTO)!r}, 'rb').read()\n"
            "for _ in range(3): e.detect(img, {'face_fields': 'beauty'})\n")
    run = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120,
                         env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert run.returncode == 0, run.stderr
    assert run.stderr.count("detect field beauty (v2) is not measured") == 1, run.stderr


def test_capabilities_list_what_is_measured_and_what_is_null(edge_config):
    for client in (AipFaceV2("caps", "k", "s", config=edge_config), AipFaceV3("caps", "k", "s", config=edge_config)):
        caps = client.capabilities()
        v2, v3 = caps["v2"]["detect"], caps["v3"]["detect"]
        assert set(v2["not_measured"]) == set(V2_NOT_MEASURED) == {"beauty"}
        assert {"glasses", "qualities", "age"} <= set(v2["measured"])
        assert set(v3["not_measured"]) == set(V3_NOT_MEASURED)
        assert {"glasses", "face_type", "quality"} <= set(v3["measured"])
        assert not set(v3["measured"]) & set(v3["not_measured"])
        assert all(entry["reason"] for entry in v3["not_measured"].values())


def test_capabilities_over_http(server, edge_config):
    r = requests.get(f"{server.url}/rest/2.0/face/capabilities", timeout=30)
    assert r.status_code == 200
    assert r.json() == AipFaceV2("caps", "k", "s", config=edge_config).capabilities()
    post = requests.post(f"{server.url}/rest/2.0/face/capabilities", timeout=30)
    assert post.json()["error_code"] == 3  # only GET: anything else is an unknown API method
