#!/usr/bin/env python3
"""Glasses (v2 `glasses`, v3 `glasses.type`) on our labelled LFW photos.

Each labelled photo (tests/labels/glasses.csv, `unsure` left out) runs through the real
pipeline (detection, mesh), then edge.analysis.glasses. The glasses table is fitted on
the tuning half of the people and scored on the report half; prints per-class
precision / recall and the confusion matrix of the shipped table on the report half,
and the refit's, which should agree.

    python scripts/glasses_report.py [--write]   # --write: refit and store glasses_calibration.json

Figures only; exits 0.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from edge.analysis.app import AnalyserConfig, FaceAnalyser  # noqa: E402
from edge.analysis.glasses import CLASSES, classify, glasses_features, load_model  # noqa: E402
from edge.analysis.glasses_fit import confusion, fit, load_labels, precision_recall, write_table  # noqa: E402
from edge.imaging import decode_image  # noqa: E402


def features(analyser, labels):
    rows, keep = [], []
    for lab in labels:
        img = decode_image(lab.path.read_bytes())
        faces = analyser.analyse(img, 1, 1, {"landmarks"})
        if faces:
            rows.append(glasses_features(img, faces[0].mesh))
            keep.append(lab)
    return np.array(rows), keep


def show(title, truth, pred):
    m = confusion(truth, pred)
    print(f"\n{title}: {len(truth)} faces, accuracy {np.trace(m) / m.sum():.3f}")
    print("  truth \\ predicted   " + "  ".join(f"{c:>6s}" for c in CLASSES) + "   precision  recall")
    for k, (p, r) in enumerate(precision_recall(m)):
        print(f"  {CLASSES[k]:>18s}   " + "  ".join(f"{v:6d}" for v in m[k]) + f"   {p:9.3f}  {r:6.3f}")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--write", action="store_true", help="store the refitted table")
    args = ap.parse_args()
    x, labels = features(FaceAnalyser(AnalyserConfig(threads=2)), load_labels())
    kinds = np.array([lab.kind for lab in labels])
    tune = np.array([lab.tuning for lab in labels])
    random = np.array([lab.source == "random" for lab in labels])
    for name, part in (("tuning", tune), ("report", ~tune)):
        counts = {c: int((kinds[part] == k).sum()) for k, c in enumerate(CLASSES)}
        print(f"{name} half: {len(set(lab.person for lab, t in zip(labels, part) if t))} people, {counts}")
    refit = fit(x[tune], kinds[tune])
    if args.write:
        write_table(refit, "fitted by scripts/glasses_report.py on the tuning half of tests/labels/glasses.csv")
        load_model.cache_clear()
    for name, model in (("shipped table", load_model()), ("refit on the tuning half", refit)):
        pred = np.array([classify(row, model).kind for row in x])
        show(f"{name}, report half", kinds[~tune], pred[~tune])
    pred = np.array([classify(row).kind for row in x])
    show("shipped table, report half, randomly drawn photos only (LFW's own class shares)",
         kinds[~tune & random], pred[~tune & random])
    show("shipped table, tuning half (in-sample, optimistic)", kinds[tune], pred[tune])
    return 0


if __name__ == "__main__":
    sys.exit(main())
