"""`edge bench --compare opencv`: both pipelines run on the same real photos and agree.

Behaviour only: the figures are printed, never asserted (docs/speed.md).
"""
from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import onnxruntime as ort

from edge.bench_compare import KINDS
from edge.bench_profile import prelu_split
from edge.models import reference
from edge.models.manifest import REPO_ROOT, default_models_dir, load_manifest

ROW = re.compile(r"^  (?P<kind>.+?): OpenCV p50 (?P<cv>[\d.]+) p95 [\d.]+ ms \(face in (?P<cv_found>\d+)/(?P<n>\d+)\)"
                 r"  \|  edge p50 (?P<edge>[\d.]+) p95 [\d.]+ ms \(face in (?P<edge_found>\d+)/\d+\)"
                 r"  \|  edge/OpenCV speed (?P<ratio>[\d.]+)x"
                 r"  \|  agreement cosine mean (?P<mean>[\d.]+) min [\d.]+ over \d+ faces;"
                 r" edge on its detector's points: min (?P<points>[\d.]+); same chip: min (?P<chip>[\d.]+)$")


def test_compare_opencv_quick_prints_both_pipelines_and_their_agreement():
    out = subprocess.run([sys.executable, "-m", "edge", "bench", "--compare", "opencv", "--quick"],
                         cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    rows = {m["kind"]: m for m in map(ROW.match, out.stdout.splitlines()) if m}
    assert set(rows) == set(KINDS), out.stdout
    for row in rows.values():
        assert row["n"] == "3" and row["cv_found"] == "3" and row["edge_found"] == "3"
        assert float(row["cv"]) > 0 and float(row["edge"]) > 0 and float(row["ratio"]) > 0
        # The same models on two runtimes: the same chip, and the same detector's points.
        assert float(row["chip"]) >= 0.999
        assert float(row["points"]) >= 0.999
        # The same face end to end (edge aligns a rolled face on its own re-found points).
        assert float(row["mean"]) >= 0.9


def test_the_profiles_prelu_split_is_exact():
    # The profile reports what a PRelu rewrite would buy; it must compute the same values.
    models = load_manifest()
    for role in ("embedder", "landmarks"):
        path = default_models_dir() / models[role].file
        x = reference.reference_input(role)
        base = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        split = ort.InferenceSession(prelu_split(path), providers=["CPUExecutionProvider"])
        feed = {base.get_inputs()[0].name: x}
        for a, b in zip(base.run(None, feed), split.run(None, feed)):
            assert np.abs(a - b).max() <= 1e-6 * max(1.0, float(np.abs(a).max()))
    assert prelu_split(default_models_dir() / models["detector"].file) is None   # YuNet has none
