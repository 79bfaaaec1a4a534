#!/usr/bin/env python3
"""Passive liveness on ../shared/data/spoof-dev: attack and live error rates per level.

For every photo: YuNet detection (largest face) -> liveness_score. Prints,
for Baidu's liveness_control levels LOW/NORMAL/HIGH and the v2 faceliveness threshold,
APCER (share of attacks passed: score >= threshold) and BPCER (share of live faces
rejected: score < threshold) on NUAA, the ROC AUC, the leave-one-subject-out (LOSO)
figures of the fitted logistic regression, and the four silentface photos one by one.

    python scripts/liveness_report.py [--data ../shared/data]

Figures only; exits 0. tests/test_liveness.py uses the same functions.
"""
from __future__ import annotations

import argparse
import csv
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from edge.analysis.detector import YuNetDetector  # noqa: E402
from edge.analysis.face_type import face_type  # noqa: E402
from edge.analysis.liveness import (  # noqa: E402
    BIAS, FEATURES, FIT, HUMAN_CAP, WEIGHTS, fit_logistic, liveness_features, liveness_score, score_from_features,
)
from edge.imaging import decode_image  # noqa: E402
from edge.models.manifest import default_models_dir, load_manifest  # noqa: E402
from edge.thresholds import LIVENESS, V2_FACELIVENESS  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
LEVELS = {"LOW": LIVENESS["LOW"], "NORMAL": LIVENESS["NORMAL"], "HIGH": LIVENESS["HIGH"],
          "v2": V2_FACELIVENESS}


@dataclass
class Sample:
    name: str             # path relative to its dataset
    live: bool
    subject: str          # NUAA: first field of the file name; silentface: the file
    attack: str           # "" for live
    score: float          # liveness_score; nan when no face was found
    features: np.ndarray  # liveness_features (nan when no face)
    ms: float             # liveness_score time for this face
    human: float = float("nan")  # face_type P(human), which caps the score


def load_detector() -> YuNetDetector:
    models = default_models_dir()
    return YuNetDetector(models / load_manifest(models)["detector"].file)


def largest_face(detector: YuNetDetector, img: np.ndarray):
    """(box, 5 points) of the largest detected face, or None."""
    det = detector.detect(img)
    if len(det) == 0:
        return None
    i = int(np.argmax((det.boxes[:, 2] - det.boxes[:, 0]) * (det.boxes[:, 3] - det.boxes[:, 1])))
    return det.boxes[i], det.kps[i]


def measure(detector: YuNetDetector, path: Path):
    """(score, features, ms, P(human)) of the largest face in the photo; nan when none is found."""
    img = decode_image(path.read_bytes())
    found = largest_face(detector, img)
    if found is None:
        return float("nan"), np.full(len(FEATURES), np.nan), 0.0, float("nan")
    box, kps = found
    t0 = time.perf_counter()
    score = liveness_score(img, box, kps)
    ms = (time.perf_counter() - t0) * 1000
    return score, liveness_features(img, box, kps), ms, face_type(img, kps).human


def collect_nuaa(detector, data: Path = DATA) -> list[Sample]:
    root = data / "spoof-dev" / "nuaa"
    out = []
    with open(root / "labels.csv", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            score, feats, ms, human = measure(detector, root / row["path"])
            live = row["label"] == "live"
            out.append(Sample(row["path"], live, Path(row["path"]).name.split("_")[0],
                              "" if live else "print", score, feats, ms, human))
    return out


def collect_silentface(detector, data: Path = DATA) -> list[Sample]:
    root = data / "spoof-dev"
    out = []
    with open(root / "labels.csv", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            score, feats, ms, human = measure(detector, root / row["path"])
            out.append(Sample(row["path"], row["label"] == "live", row["path"], row["attack"],
                              score, feats, ms, human))
    return out


def error_rates(scores, live, threshold: float) -> tuple[float, float]:
    """(APCER, BPCER) at `threshold`: share of attacks with score >= threshold (passed),
    share of live faces with score < threshold (rejected). A face that was not found
    (nan) counts as rejected: an attack is then stopped, a live user is refused."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(live, dtype=bool)
    passed = np.nan_to_num(s, nan=-np.inf) >= threshold
    apcer = float(passed[~y].mean()) if (~y).any() else float("nan")
    bpcer = float((~passed[y]).mean()) if y.any() else float("nan")
    return apcer, bpcer


def roc_auc(scores, live) -> float:
    """Probability that a live face scores above an attack (ties count half)."""
    s = np.nan_to_num(np.asarray(scores, dtype=np.float64), nan=-np.inf)
    y = np.asarray(live, dtype=bool)
    pos, neg = s[y][:, None], s[~y][None, :]
    return float((pos > neg).mean() + 0.5 * (pos == neg).mean())


def loso_scores(samples: list[Sample], l2: float = FIT["l2"]) -> np.ndarray:
    """Each subject's scores from weights fitted on the other subjects only (capped by
    HUMAN_CAP x P(human) as liveness_score is)."""
    x = np.array([s.features for s in samples])
    y = np.array([s.live for s in samples])
    subj = np.array([s.subject for s in samples])
    ok = np.isfinite(x).all(1)
    out = np.full(len(samples), np.nan)
    for sub in np.unique(subj):
        held = subj == sub
        w, b = fit_logistic(x[~held & ok], y[~held & ok], l2)
        out[held & ok] = score_from_features(x[held & ok], w, b)
    return np.minimum(out, HUMAN_CAP * np.array([s.human for s in samples]))


def table(title: str, scores, live) -> list[str]:
    lines = [title, f"  {'level':8s} {'threshold':>9s} {'APCER':>7s} {'BPCER':>7s}"]
    for name, t in LEVELS.items():
        a, b = error_rates(scores, live, t)
        lines.append(f"  {name:8s} {t:9.6g} {a:7.3f} {b:7.3f}")
    lines.append(f"  ROC AUC {roc_auc(scores, live):.3f}")
    return lines


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DATA)
    args = ap.parse_args(argv)
    detector = load_detector()
    nuaa = collect_nuaa(detector, args.data)
    silent = collect_silentface(detector, args.data)
    live = np.array([s.live for s in nuaa])
    scores = np.array([s.score for s in nuaa])
    missed = int(np.isnan(scores).sum())
    print(f"NUAA spoof-dev: {live.sum()} live, {(~live).sum()} print attacks, "
          f"{len({s.subject for s in nuaa})} subjects, {missed} without a detected face")
    capped = sum(score_from_features(s.features) > s.score + 1e-9 for s in nuaa)
    print(f"P(human) (face_type): min {min(s.human for s in nuaa):.3f} over the NUAA frames; "
          f"the cartoon cap lowered {capped} scores")
    print("\n".join(table("In-sample (shipped constants, fitted on these frames):", scores, live)))
    loso = loso_scores(nuaa)
    print("\n".join(table("Leave-one-subject-out (each subject scored by weights fitted "
                          "without it):", loso, live)))
    print("  LOSO calibration (share of live faces among the frames scoring in each band):")
    for lo, hi in ((0.0, 0.05), (0.05, 0.3), (0.3, 0.9), (0.9, 1.0)):
        band = (loso >= lo) & ((loso < hi) if hi < 1.0 else (loso <= hi))
        share = f"{live[band].mean():.2f}" if band.any() else "-"
        close = ")" if hi < 1.0 else "]"
        print(f"    [{lo:.2f}, {hi:.2f}{close}: {int(band.sum()):3d} frames, live share {share}")
    subjects = np.array([s.subject for s in nuaa])
    print("  LOSO at NORMAL per held-out subject (frames; APCER of its attacks, BPCER of its live):")
    parts = []
    for sub in np.unique(subjects):
        m = subjects == sub
        a, b = error_rates(loso[m], live[m], LEVELS["NORMAL"])
        parts.append(f"{sub}({int(m.sum())})" + (f" A {a:.2f}" if not np.isnan(a) else "")
                     + (f" B {b:.2f}" if not np.isnan(b) else ""))
    for i in range(0, len(parts), 6):
        print("    " + ";  ".join(parts[i:i + 6]))
    x = np.array([s.features for s in nuaa])
    ok = np.isfinite(x).all(1)
    w, b = fit_logistic(x[ok], live[ok])
    print("Features:", ", ".join(FEATURES))
    print("  shipped weights", np.array2string(WEIGHTS, precision=4), f"bias {BIAS:.4f}")
    print("  refit on NUAA  ", np.array2string(w, precision=4), f"bias {b:.4f}")
    for j, name in enumerate(FEATURES):
        auc = roc_auc(x[:, j], live)
        print(f"  {name:14s} live median {np.median(x[ok & live, j]):7.3f}   attack median "
              f"{np.median(x[ok & ~live, j]):7.3f}   AUC alone {max(auc, 1 - auc):.3f}"
              f" (higher means {'live' if auc >= 0.5 else 'attack'})")
    print("silentface photos (not used for fitting):")
    for s in silent:
        verdict = {n: ("pass" if s.score >= t else "reject") for n, t in LEVELS.items()}
        print(f"  {s.name:26s} {'live' if s.live else s.attack:24s} score {s.score:.3f}  "
              + " ".join(f"{n}:{v}" for n, v in verdict.items())
              + "  features " + np.array2string(s.features, precision=3))
    print("\n".join(table("silentface (2 live, 2 attacks; rates are shares of 2):",
                           [s.score for s in silent], [s.live for s in silent])))
    ms = np.array([s.ms for s in nuaa + silent if s.ms > 0])[1:]  # the first call warms up
    print(f"liveness_score time per face: median {np.median(ms):.2f} ms, 95th percentile "
          f"{np.percentile(ms, 95):.2f} ms, max {ms.max():.2f} ms (measured right after detection"
          f"; the 2160 px silentface T2 costs the most)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
