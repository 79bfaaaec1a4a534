#!/usr/bin/env python3
"""The int8 accuracy gate: int8 SFace against fp32 on LFW view 1, end to end.

Every photo is detected and aligned once (the pipeline before the embedder is the same
for both precisions) and embedded by the fp32 and the int8 model. Prints, for fp32,
int8 and "cross" (enrolled fp32, probe int8: an fp32 library searched after the switch):
pairsDevTest accuracy (threshold from pairsDevTrain; cross also at fp32's threshold),
TAR at FAR 1e-3 and the impostor shares above score 70 / 80 / 90 over every pair of the
pairsDevTest photos, the score drift of cross against fp32, and the gate's verdict.

    python scripts/eval_int8.py [--data ../shared/data/lfw-view1] [--threads 2]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from eval_lfw import DEFAULT_DATA, image_path, read_pairs  # noqa: E402

from edge.analysis.align import align_face  # noqa: E402
from edge.analysis.app import AnalyserConfig, FaceAnalyser  # noqa: E402
from edge.analysis.embedder import SFaceEmbedder  # noqa: E402
from edge.imaging import decode_image  # noqa: E402
from edge.library.scores import similarity_to_score  # noqa: E402
from edge.models import gate  # noqa: E402
from edge.models.manifest import default_models_dir, runtime_files  # noqa: E402


def embed_all(root: Path, keys, threads: int) -> tuple[dict, dict]:
    """{(name, idx): embedding or None} for fp32 and for int8, from one alignment."""
    models_dir = default_models_dir()
    analyser = FaceAnalyser(AnalyserConfig(models_dir=models_dir, threads=threads))
    int8 = SFaceEmbedder(runtime_files(models_dir, "int8")["embedder"], threads)
    out32, out8 = {}, {}
    for key in keys:
        img = decode_image(image_path(root, *key).read_bytes())
        faces = analyser.analyse(img, max_face_num=1, face_sort_type=1, stages={"landmarks"})
        if not faces:
            out32[key] = out8[key] = None
            continue
        chip = align_face(img, faces[0].kps5)
        out32[key], out8[key] = analyser.sface.embed_chips([chip])[0], int8.embed_chips([chip])[0]
    return out32, out8


def pair_sims(pairs, enrolled: dict, probe: dict) -> tuple[np.ndarray, np.ndarray]:
    """LFW's protocol: a photo without a face is a failed comparison (similarity -1)."""
    sims = [-1.0 if enrolled[(a, ia)] is None or probe[(b, ib)] is None
            else float(enrolled[(a, ia)] @ probe[(b, ib)]) for a, ia, b, ib, _ in pairs]
    return np.array(sims), np.array([p[4] for p in pairs])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    root = args.data
    have = lambda p: image_path(root, p[0], p[1]).exists() and image_path(root, p[2], p[3]).exists()  # noqa: E731
    train = [p for p in read_pairs(root / "pairsDevTrain.txt") if have(p)]
    test = [p for p in read_pairs(root / "pairsDevTest.txt") if have(p)]
    keys = sorted({(p[k], p[k + 1]) for p in train + test for k in (0, 2)})
    t0 = time.perf_counter()
    e32, e8 = embed_all(root, keys, args.threads)
    print(f"{len(keys)} photos embedded both ways in {time.perf_counter() - t0:.0f} s "
          f"({sum(v is None for v in e32.values())} without a face), load {os.getloadavg()[0]:.1f}")
    variants = {"fp32": (e32, e32), "int8": (e8, e8), "cross": (e32, e8)}
    test_keys = sorted({(p[k], p[k + 1]) for p in test for k in (0, 2)} - {k for k, v in e32.items() if v is None})
    ids = np.array([k[0] for k in test_keys])
    res: dict[str, dict] = {}
    thr32 = gate.best_threshold(*pair_sims(train, e32, e32))
    for name, (enr, prb) in variants.items():
        lo, hi = gate.best_thresholds(*pair_sims(train, enr, prb))
        thr = lo
        s, lab = pair_sims(test, enr, prb)
        allp = gate.all_pairs(np.stack([enr[k] for k in test_keys]), np.stack([prb[k] for k in test_keys]), ids)
        tar, _ = gate.tar_at_far(allp)
        res[name] = {"threshold": thr, "accuracy": float(((s > thr) == lab).mean()), "plateau": (lo, hi),
                     "accuracy_mid": float(((s > (lo + hi) / 2) == lab).mean()),
                     "accuracy_at_fp32_thr": float(((s > thr32) == lab).mean()), "tar": tar,
                     "shares": gate.impostor_shares(similarity_to_score(allp.impostor)),
                     "pairs": allp, "n_imp": len(allp.impostor), "n_gen": len(allp.genuine)}
    print(f"pairsDevTest ({len(test)} pairs; all pairs of its {len(test_keys)} photos: "
          f"{res['fp32']['n_gen']} genuine, {res['fp32']['n_imp']} impostor, ordered)")
    print("| | threshold | accuracy | at fp32's threshold | TAR @ FAR 1e-3 | impostors > 70 | > 80 | > 90 |")
    print("|---|---|---|---|---|---|---|---|")
    for name, r in res.items():
        sh = r["shares"]
        print(f"| {name} | {r['threshold']:.4f} | {100 * r['accuracy']:.2f} % | {100 * r['accuracy_at_fp32_thr']:.2f} % "
              f"| {100 * r['tar']:.2f} % | {sh[70.0]:.2e} | {sh[80.0]:.2e} | {sh[90.0]:.2e} |")
    for name, r in res.items():
        print(f"{name}: pairsDevTrain's best accuracy holds from cosine {r['plateau'][0]:.4f} to "
              f"{r['plateau'][1]:.4f}; pairsDevTest at its middle {100 * r['accuracy_mid']:.2f} %")
    grid = sorted({round(res["fp32"]["threshold"], 3), round(res["int8"]["threshold"], 3), 0.34, 0.35, 0.36, 0.38})
    print("accuracy by threshold, pairsDevTrain / pairsDevTest: " + "  ".join(f"{t:.3f}" for t in grid))
    for name in ("fp32", "int8"):
        (st, lt), (s, lab) = pair_sims(train, *variants[name]), pair_sims(test, *variants[name])
        print(f"  {name}: " + "  ".join(f"{100 * ((st > t) == lt).mean():.2f} / {100 * ((s > t) == lab).mean():.2f}"
                                       for t in grid))
    same = np.array([float(e32[k] @ e8[k]) for k in test_keys])
    print(f"cosine fp32 vs int8, same photo: mean {same.mean():.4f}, 1st percentile "
          f"{np.percentile(same, 1):.4f}, min {same.min():.4f}")
    for label, part in (("genuine", "genuine"), ("impostor", "impostor")):
        a = similarity_to_score(getattr(res["fp32"]["pairs"], part))
        for name in ("int8", "cross"):
            b = similarity_to_score(getattr(res[name]["pairs"], part))
            keep = np.maximum(a, b) >= 60.0   # where a decision is made
            d = np.abs(b - a)[keep]
            print(f"score drift {name} vs fp32, {label} pairs scoring >= 60 ({keep.sum()}): "
                  f"p50 {np.median(d):.2f}, p99 {np.percentile(d, 99):.2f}, max {d.max():.2f} points")
    for name in ("int8", "cross"):
        checks = gate.passes(res["fp32"], res[name])
        verdict = "PASS" if all(checks.values()) else "FAIL"
        print(f"gate {name}: {verdict} (accuracy {100 * (res[name]['accuracy'] - res['fp32']['accuracy']):+.2f} points, "
              f"limit -{100 * gate.MAX_ACCURACY_DROP:.1f}; TAR {100 * (res[name]['tar'] - res['fp32']['tar']):+.2f} points, "
              f"limit -{100 * gate.MAX_TAR_DROP:.1f})")


if __name__ == "__main__":
    main()
