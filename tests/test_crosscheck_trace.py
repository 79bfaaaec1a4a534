"""`python -m edge.crosscheck trace` / `trace-diff` on a real photo (the arm64 check's
diagnosis of a face that disagrees): a trace agrees with itself, a moved face is seen."""
from __future__ import annotations

import copy
import json

from conftest import DATA
from edge.crosscheck import main, trace, trace_diff

PHOTO = DATA / "multiface" / "deepface_couple.jpg"


def test_trace_of_a_real_photo_and_its_diff(tmp_path, capsys):
    faces = trace(PHOTO)
    assert len(faces) == 2 and all(len(f["embedding"]) == 128 and len(f["chip"]) == 112 for f in faces)
    levelled = [f for f in faces if f["relevelled"]]
    assert levelled and all(len(f["roll_nudged_cosine"]) == 8 for f in levelled)   # this photo's left face
    same = trace_diff(faces, copy.deepcopy(faces))
    assert all("aligned 0.0000" in line and "cosine 1.00000" in line for line in same), same
    moved = copy.deepcopy(faces)
    moved[0]["kps5_aligned"][0][0] += 1.5
    assert "aligned 1.5000" in trace_diff(faces, moved)[0]
    out = tmp_path / "t.json"
    assert main(["trace", str(out), str(PHOTO)]) == 0 and len(json.loads(out.read_text())) == 2
