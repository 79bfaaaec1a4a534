"""End-to-end verification accuracy on LFW's development view, from the raw photos
(detection, alignment and embedding included), threshold chosen on pairsDevTrain."""
from __future__ import annotations

import importlib.util
import sys

from conftest import LFW, REPO


def _eval_module():
    spec = importlib.util.spec_from_file_location("eval_lfw", REPO / "scripts" / "eval_lfw.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def test_lfw_dev_view_accuracy(analyser):
    r = _eval_module().evaluate(analyser, LFW)
    print(r)
    assert r["no_face"] == 0
    assert r["test_pairs"] >= 999
    assert r["test_accuracy"] >= 0.988, r
    # The threshold agrees with the published same-person cosine (0.363) within noise.
    assert 0.25 < r["threshold"] < 0.45
