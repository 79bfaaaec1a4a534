"""Shared fixtures: the real models (fetched by `make test`) and ../shared/data photos."""
from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.analysis.app import AnalyserConfig, FaceAnalyser
from edge.config import load_config
from edge.imaging import decode_image

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
LFW = DATA / "lfw-view1"
PEERS = DATA / "peers" / "face_recognition"
MULTIFACE = DATA / "multiface"


def load(path: Path) -> np.ndarray:
    return decode_image(Path(path).read_bytes())


def lfw_image(name: str, idx: int) -> np.ndarray:
    return load(LFW / "images" / name / f"{name}_{idx:04d}.jpg")


def lfw_people(n: int, seed: int = 0) -> list[Path]:
    """n LFW photos, one per person, drawn reproducibly."""
    people = sorted(p for p in (LFW / "images").iterdir() if p.is_dir())
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(people), size=min(n, len(people)), replace=False)
    return [sorted(people[i].glob("*.jpg"))[0] for i in sorted(picks)]


@pytest.fixture(scope="session")
def edge_config(tmp_path_factory):
    """The default configuration with its data directory in a temporary folder."""
    return dataclasses.replace(load_config(), data_dir=str(tmp_path_factory.mktemp("data")))


@pytest.fixture(scope="session")
def analyser() -> FaceAnalyser:
    return FaceAnalyser(AnalyserConfig(threads=2))


def centre_face(analyser: FaceAnalyser, img: np.ndarray, stages=("landmarks", "quality")):
    faces = analyser.analyse(img, max_face_num=1, face_sort_type=1, stages=set(stages))
    assert faces, "no face found"
    return faces[0]


def gamma(img: np.ndarray, g: float) -> np.ndarray:
    lut = (255.0 * (np.arange(256) / 255.0) ** g).clip(0, 255).astype(np.uint8)
    return cv2.LUT(img, lut)


# The HTTP service: one real `edge serve` process for the session (tests/serving.py).
SERVER_APPS = {"1001": ("AK1001test", "SK1001-secret-value", 1000),   # high QPS: the fuzz run
               "2002": ("AK2002test", "SK2002-secret-value")}


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    from serving import start_server
    srv = start_server(tmp_path_factory.mktemp("serve"), SERVER_APPS, server={"max_body_mb": 6})
    yield srv
    srv.stop()


# A real PostgreSQL 16 with pgvector for the session (tests/pg_support.py); each test
# that wants one takes a fresh database of it (pg_server.new_database()).
@pytest.fixture(scope="session")
def pg_server(tmp_path_factory):
    from pg_support import PgServer
    srv = PgServer(tmp_path_factory.mktemp("pg"))
    yield srv
    srv.stop()


def walking_frames(folder: Path, face_jpeg: bytes, count: int = 20, down: bool = True) -> None:
    """`count` 640x480 frames of one face photo moving right (and down) across a grey
    background, as a `folder` camera source: a person walking in."""
    face = cv2.imdecode(np.frombuffer(face_jpeg, np.uint8), cv2.IMREAD_COLOR)
    folder.mkdir()
    for i in range(count):
        frame = np.full((480, 640, 3), 70, np.uint8)
        top = 100 + (i if down else 0)
        frame[top:top + face.shape[0], 150 + 3 * i:150 + 3 * i + face.shape[1]] = face
        cv2.imwrite(str(folder / f"{i:03d}.jpg"), frame)


def loop_on_blank_frames(tmp_path: Path, extra_yaml: str = "") -> subprocess.Popen:
    """A real `edge run` child on one camera of face-less frames (liveness NONE, status
    every 0.5 s); `extra_yaml` adds top-level keys. The caller stops it."""
    from edge.models.manifest import REPO_ROOT
    (tmp_path / "frames").mkdir()
    cv2.imwrite(str(tmp_path / "frames" / "empty.jpg"), np.full((480, 640, 3), 70, np.uint8))
    (tmp_path / "edge.yaml").write_text(
        f"data_dir: {tmp_path / 'data'}\n{extra_yaml}models: {{dir: {REPO_ROOT / 'models'}}}\n"
        f"run: {{liveness_control: NONE, status_interval_s: 0.5}}\n"
        f"cameras:\n  - {{name: gate, kind: folder, uri: {tmp_path / 'frames'}, fps: 10, loop: true}}\n")
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.Popen([sys.executable, "-m", "edge.cli", "--config", str(tmp_path / "edge.yaml"), "run"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
