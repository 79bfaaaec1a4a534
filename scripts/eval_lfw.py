#!/usr/bin/env python3
"""End-to-end LFW verification accuracy from the raw photos (detection included).

The threshold is chosen on pairsDevTrain.txt and applied to pairsDevTest.txt, as LFW's
development view prescribes. Prints accuracy, the threshold, and timing.

    python scripts/eval_lfw.py [--data ../shared/data/lfw-view1] [--threads 2]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from edge.accuracy.lfw import DEFAULT_DATA, image_path, read_pairs  # noqa: E402,F401  (other scripts import them here)
from edge.accuracy.rates import best_threshold_accuracy  # noqa: E402
from edge.analysis.app import AnalyserConfig, FaceAnalyser  # noqa: E402
from edge.imaging import decode_image  # noqa: E402



def embed_centre_face(analyser: FaceAnalyser, path: Path) -> np.ndarray | None:
    """Embedding of the detected face nearest the image centre (LFW's subject)."""
    img = decode_image(path.read_bytes())
    faces = analyser.analyse(img, max_face_num=1, face_sort_type=1, stages={"embedding"})
    return faces[0].embedding if faces else None


def similarities(analyser, root: Path, pairs, cache: dict) -> tuple[np.ndarray, np.ndarray, int]:
    """(cosine similarities, same-person labels, pairs skipped for a missing photo)."""
    sims, labels, skipped = [], [], 0
    for a, ia, b, ib, same in pairs:
        if not (image_path(root, a, ia).exists() and image_path(root, b, ib).exists()):
            skipped += 1  # the shared copy lacks a few photos; such pairs are left out and counted
            continue
        embs = []
        for name, idx in ((a, ia), (b, ib)):
            key = (name, idx)
            if key not in cache:
                cache[key] = embed_centre_face(analyser, image_path(root, name, idx))
            embs.append(cache[key])
        # A photo with no detected face counts as a failed comparison (similarity -1).
        sims.append(-1.0 if embs[0] is None or embs[1] is None else float(embs[0] @ embs[1]))
        labels.append(same)
    return np.array(sims), np.array(labels), skipped


def evaluate(analyser: FaceAnalyser, root: Path) -> dict:
    cache: dict = {}
    t0 = time.perf_counter()
    s_train, l_train, skip_train = similarities(analyser, root, read_pairs(root / "pairsDevTrain.txt"), cache)
    thr, train_acc = best_threshold_accuracy(s_train, l_train)
    s_test, l_test, skip_test = similarities(analyser, root, read_pairs(root / "pairsDevTest.txt"), cache)
    test_acc = float(((s_test > thr) == l_test).mean())
    return {"threshold": thr, "train_accuracy": train_acc, "test_accuracy": test_acc,
            "test_errors": int(((s_test > thr) != l_test).sum()), "test_pairs": len(l_test),
            "skipped_pairs": skip_train + skip_test,
            "no_face": sum(v is None for v in cache.values()), "images": len(cache),
            "seconds": time.perf_counter() - t0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    r = evaluate(FaceAnalyser(AnalyserConfig(threads=args.threads)), args.data)
    print(f"LFW dev view, end to end from raw photos ({r['images']} images, {r['no_face']} without a face)")
    print(f"  threshold (cosine, chosen on pairsDevTrain): {r['threshold']:.4f}  train accuracy {r['train_accuracy']:.4f}")
    print(f"  pairsDevTest accuracy: {r['test_accuracy']:.4f}  ({r['test_errors']} errors / {r['test_pairs']} pairs; {r['skipped_pairs']} pairs skipped: photo missing)")
    print(f"  time: {r['seconds']:.1f} s")


if __name__ == "__main__":
    main()
