"""Local enrollment from a folder tree: real photos, real models, the real library."""
from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest

from edge.enroll import Enroller, folder_items
from edge.models.manifest import REPO_ROOT
from test_aip_v2 import A, B, C, LFW

PHOTOS = LFW / "images"


def person(name: str, i: int):
    return sorted((PHOTOS / name).glob("*.jpg"))[i - 1]


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "people"
    for group, user, name, picks in (("staff", "paul", A, (1, 2, 3)), ("staff", "jlo", B, (1, 2)),
                                     ("visitors", "ricardo", C, (1,))):
        (root / group / user).mkdir(parents=True)
        for i in picks:
            shutil.copy(person(name, i), root / group / user / f"{i}.jpg")
    blurred = cv2.GaussianBlur(cv2.imread(str(person(C, 2))), (0, 0), 4)
    cv2.imwrite(str(root / "visitors" / "ricardo" / "blurred.jpg"), blurred)
    cv2.imwrite(str(root / "visitors" / "ricardo" / "wall.jpg"), np.full((200, 200, 3), 128, np.uint8))
    (root / "visitors" / "ricardo" / "notes.jpg").write_bytes(b"not a picture")
    (root / "staff" / "paul_again").mkdir()
    shutil.copy(person(A, 4), root / "staff" / "paul_again" / "1.jpg")   # one person, two ids
    return root


def test_folder_enrollment_reports_every_photo_and_is_idempotent(tree, edge_config, tmp_path):
    cfg = dataclasses.replace(edge_config, data_dir=str(tmp_path / "data"))
    enroller = Enroller(cfg, "enroll_test")
    assert [(g, u) for g, u, _ in folder_items(tree)][:3] == [("staff", "jlo"), ("staff", "jlo"), ("staff", "paul")]
    first = {(o.user_id, o.source.rsplit("/", 1)[1]): o for o in enroller.enroll_folder(tree)}
    assert len(first) == 10
    assert all(first[("paul", f"{i}.jpg")].status == "enrolled" for i in (1, 2, 3))
    assert first[("ricardo", "blurred.jpg")].error_code == 223114          # face is fuzzy
    assert first[("ricardo", "wall.jpg")].error_code == 222202             # pic not has face
    assert first[("ricardo", "notes.jpg")].error_code == 222203            # v3: image check fail
    twin = first[("paul_again", "1.jpg")]
    assert twin.status == "enrolled" and [d.user_id for d in twin.duplicates] == ["paul"]
    assert not first[("jlo", "1.jpg")].duplicates and not first[("ricardo", "1.jpg")].duplicates

    again = enroller.enroll_folder(tree)
    assert {o.status for o in again if o.error_code not in (223114, 222202, 222203)} == {"already"}
    lib = enroller.client._lib
    assert lib.store.face_count() == 3 + 2 + 1 + 1
    assert sorted(u for u, _ in lib.store.list_group_users("staff", 0, 100)) == ["jlo", "paul", "paul_again"]


def test_enroll_command_exit_codes_tell_new_problems(tree, tmp_path):
    """0: nothing new went wrong; 1: new rejections this run; 2: usage or configuration."""
    (tmp_path / "edge.yaml").write_text(f"data_dir: {tmp_path / 'data'}\nmodels: {{dir: {REPO_ROOT / 'models'}}}\n")

    def enroll(*args, module=False):
        head = [sys.executable, *(["-m", "edge", "enroll"] if module else [str(REPO_ROOT / "scripts" / "enroll.py")])]
        return subprocess.run([*head, *args, "--config", str(tmp_path / "edge.yaml"), "--app-id", "gate1"],
                              capture_output=True, text=True, timeout=300, cwd=tmp_path,
                              env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})

    first = enroll(str(tree))
    assert first.returncode == 1, first.stderr  # some photos were rejected: new this run
    assert "10 photos: 7 enrolled, 0 already enrolled, 3 rejected, 0 unreadable, 1 duplicate warning(s); " \
           "3 new problem(s)" in first.stdout
    assert "rejected staff" not in first.stdout and "blurred.jpg: 223114 face is fuzzy" in first.stdout
    assert "Traceback" not in first.stderr

    again = enroll(str(tree), module=True)       # a clean re-run: the same photos rejected as before
    assert again.returncode == 0, again.stdout + again.stderr
    assert "7 already enrolled, 3 rejected, 0 unreadable, 0 duplicate warning(s); 0 new problem(s)" in again.stdout
    assert "blurred.jpg: 223114 face is fuzzy (as in the previous run)" in again.stdout

    ricardo = tree / "visitors" / "ricardo"
    (ricardo / "notes2.jpg").write_bytes((ricardo / "notes.jpg").read_bytes() + b"!")   # a new bad photo
    third = enroll(str(tree))
    assert third.returncode == 1 and "1 new problem(s)" in third.stdout

    assert enroll(str(tmp_path / "no_such_folder")).returncode == 2
    assert enroll(str(tree), "--quality", "BEST").returncode == 2     # usage error (argparse)


def test_camera_enrollment_guides_and_takes_varied_frames(edge_config, tmp_path):
    from edge.camera import Camera, SourceConfig
    cfg = dataclasses.replace(edge_config, data_dir=str(tmp_path / "data"))
    enroller = Enroller(cfg, "camera_test")
    said = []
    with Camera(SourceConfig(name="demo", kind="demo"), models_dir=cfg.models_dir) as camera:
        outcomes = enroller.enroll_camera(camera, "visitors", "demo_person", frames=3, timeout_s=60,
                                          say=said.append, patience_s=0.5)
    assert [o.status for o in outcomes] == ["enrolled"] * 3
    assert len({o.face_token for o in outcomes}) == 3 and said[-1] == "Got it (3/3): done"
    assert enroller.client._lib.store.face_count() == 3


def test_guidance_tells_what_is_wrong(analyser):
    from edge.enroll import guidance
    img = cv2.resize(cv2.imread(str(person(A, 1))), (250, 250))
    frame = np.full((480, 640, 3), 90, np.uint8)
    frame[100:350, 200:450] = img
    ok = analyser.analyse(frame, 2, 1, {"landmarks", "quality"})
    assert guidance(ok, frame.shape, "NORMAL") is None
    assert guidance([], frame.shape, "NORMAL").startswith("Step in front")
    small = cv2.resize(frame, None, fx=0.35, fy=0.35)
    canvas = np.full((480, 640, 3), 90, np.uint8)
    canvas[:small.shape[0], :small.shape[1]] = small
    assert guidance(analyser.analyse(canvas, 2, 1, {"landmarks", "quality"}), canvas.shape, "NORMAL") == "Come closer"
    blurred = cv2.GaussianBlur(frame, (0, 0), 5)
    assert guidance(analyser.analyse(blurred, 2, 1, {"landmarks", "quality"}), blurred.shape, "NORMAL") == "Hold still"
    two = np.hstack([frame[:, 120:440], frame[:, 120:440]])
    assert guidance(analyser.analyse(two, 2, 1, {"landmarks", "quality"}), two.shape, "NORMAL").startswith("Only one")
