"""`edge bench --compare opencv`: both pipelines run on the same real photos and agree.

Behaviour only: the figures are printed, never asserted (docs/speed.md).
"""
from __future__ import annotations

import re
import subprocess
import sys

import onnx

from edge.bench_compare import KINDS, graphs_before_split
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


def test_opencv_runs_the_models_as_they_were_before_the_prelu_split(tmp_path):
    # OpenCV's DNN fuses PRelu into the convolution: it gets SFace (and the profile's
    # mesh) before edge's split, not edge's split graph, which only slows it down.
    got = graphs_before_split(load_manifest(), default_models_dir(), tmp_path)
    assert set(got) == {"embedder", "landmarks"}
    for role, path in got.items():
        assert "PRelu" in {n.op_type for n in onnx.load(str(path)).graph.node}, role
