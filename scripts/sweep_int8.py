#!/usr/bin/env python3
"""Development: int8 SFace recipes compared on pairsDevTrain only (docs/speed.md, "int8").

Every pairsDevTrain photo is aligned once (chips cached under --cache, outside the repo).
`recipes`: for each recipe (calibration method, number of calibration faces, nodes left
fp32), the cosine of its embedding to fp32's on every pairsDevTrain photo and
pairsDevTrain's best threshold and accuracy beside fp32's. `nodes`: layer sensitivity,
the mean cosine to fp32 on --sample photos with each Conv/Gemm left fp32 in turn.
`speed`: session p50 of fp32 and the given recipes, interleaved. pairsDevTest is never read.

    python scripts/sweep_int8.py recipes|nodes|speed [--fp32-nodes a,b] [--sample 300]
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_int8 import interleaved  # noqa: E402
from calibrate_int8 import DEFAULT_DATA, train_photos  # noqa: E402
from eval_lfw import image_path, read_pairs  # noqa: E402

from edge.analysis.align import align_face  # noqa: E402
from edge.analysis.app import AnalyserConfig, FaceAnalyser  # noqa: E402
from edge.analysis.embedder import l2_normalise, preprocess  # noqa: E402
from edge.imaging import decode_image  # noqa: E402
from edge.models import gate, quantize  # noqa: E402
from edge.models.fetch import int8_source  # noqa: E402
from edge.models.manifest import default_models_dir, load_manifest  # noqa: E402
from edge.models.runtime import create_session  # noqa: E402


def aligned(cache: Path, root: Path):
    """(photo keys, their chips (uint8), face found, pairs, calibration keys) of pairsDevTrain."""
    pairs = [p for p in read_pairs(root / "pairsDevTrain.txt")
             if image_path(root, *p[:2]).exists() and image_path(root, *p[2:4]).exists()]
    calib = [(p.parent.name, int(p.stem[-4:])) for p in train_photos(root, 1000)]
    keys = sorted({(p[k], p[k + 1]) for p in pairs for k in (0, 2)} | set(calib))
    path = cache / "devtrain-chips.npz"
    if not path.exists():
        analyser = FaceAnalyser(AnalyserConfig(models_dir=default_models_dir(), rotated_retry=False))
        chips = np.zeros((len(keys), 112, 112, 3), np.uint8)
        found = np.zeros(len(keys), bool)
        for i, key in enumerate(keys):
            img = decode_image(image_path(root, *key).read_bytes())
            faces = analyser.analyse(img, max_face_num=1, face_sort_type=1, stages={"landmarks"})
            if faces:
                chips[i], found[i] = align_face(img, faces[0].kps5), True
        cache.mkdir(parents=True, exist_ok=True)
        np.savez(path, chips=chips, found=found)
    data = np.load(path)
    return keys, data["chips"], data["found"], pairs, calib


def embed(session, chips: np.ndarray) -> np.ndarray:
    name = session.get_inputs()[0].name
    return np.stack([l2_normalise(session.run(None, {name: preprocess([c])})[0])[0] for c in chips])


def session_of(model: bytes, tmp: Path, threads: int = 2):
    path = tmp / f"m{time.monotonic_ns()}.onnx"
    path.write_bytes(model)
    return create_session(path, threads)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", choices=("recipes", "nodes", "speed"))
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "edge-int8-sweep")
    ap.add_argument("--sample", type=int, default=300)
    ap.add_argument("--fp32-nodes", default="", help="comma-separated nodes left fp32 (recipes, speed)")
    ap.add_argument("--repeat", type=int, default=150)
    ap.add_argument("--skip", type=int, default=0, help="recipes: skip the first N calibrations")
    args = ap.parse_args()
    keys, chips, found, pairs, calib = aligned(args.cache, args.data)
    index = {k: i for i, k in enumerate(keys)}
    calib_idx = [index[k] for k in calib if found[index[k]]]
    fp32 = int8_source(load_manifest()["embedder"], default_models_dir())   # the graph the int8 build quantizes
    extra = tuple(n for n in args.fp32_nodes.split(",") if n)
    tmp = Path(tempfile.mkdtemp(prefix="edge-int8-sweep-"))
    ref = embed(session_of(fp32, tmp), chips[found])
    base = dataclasses.replace(quantize.RECIPE, fp32_nodes=())

    def ranges(recipe, n):
        return {k: tuple(v) for k, v in quantize.calibrate(fp32, (preprocess([chips[i]]) for i in calib_idx[:n]),
                                                           recipe).items()}

    if args.mode == "nodes":
        r = ranges(base, 400)
        sample = chips[found][: args.sample]
        import onnx
        names = [n.name for n in onnx.load_from_string(quantize.prepare(fp32)).graph.node if n.op_type in base.op_types]
        for excl in [()] + [(n,) for n in names]:
            recipe = dataclasses.replace(base, fp32_nodes=excl)
            cos = (embed(session_of(quantize.quantize(fp32, r, recipe), tmp), sample) * ref[: args.sample]).sum(1)
            print(f"fp32 {','.join(excl) or '(none)':20s} cosine mean {cos.mean():.5f} min {cos.min():.4f}  "
                  f"(load {os.getloadavg()[0]:.1f})", flush=True)
        return

    fidx = {k: j for j, k in enumerate(k for k, f in zip(keys, found) if f)}
    labels = np.array([p[4] for p in pairs])

    def accuracy(emb):
        sims = np.array([-1.0 if (a, ia) not in fidx or (b, ib) not in fidx
                         else float(emb[fidx[(a, ia)]] @ emb[fidx[(b, ib)]]) for a, ia, b, ib, _ in pairs])
        lo, hi = gate.best_thresholds(sims, labels)
        return sims, lo, hi, float(((sims > lo) == labels).mean())

    s32, lo32, hi32, acc32 = accuracy(ref)
    print(f"pairsDevTrain: {len(pairs)} pairs, {found.sum()} photos with a face; "
          f"fp32 threshold {lo32:.4f}-{hi32:.4f}, accuracy {100 * acc32:.2f} %")
    variants = {
        "current (P99.999, 400)": (base, 400),
        "minmax, 400": (dataclasses.replace(base, method="minmax"), 400),
        "entropy, 400": (dataclasses.replace(base, method="entropy"), 400),
        "P99.99, 400": (dataclasses.replace(base, percentile=99.99), 400),
        "P99.99, 1000": (dataclasses.replace(base, percentile=99.99), 1000),
        "P99.999, 1000": (base, 1000),
    }
    if args.mode == "speed":
        recipe = dataclasses.replace(base, fp32_nodes=extra)
        old = dataclasses.replace(base, fp32_nodes=())
        models = {"fp32": fp32, "no node fp32": quantize.quantize(fp32, ranges(old, 400), old),
                  f"fp32 {','.join(extra)}": quantize.quantize(fp32, ranges(recipe, 400), recipe)}
        inputs = [preprocess([c]) for c in chips[found][:20]]
        for threads in (1, 2):
            times = interleaved({k: session_of(m, tmp, threads) for k, m in models.items()}, inputs, args.repeat)
            for k, v in times.items():
                print(f"{threads}t {k:30s} p50 {statistics.median(v):6.2f} ms  fp32/this "
                      f"{statistics.median(times['fp32']) / statistics.median(v):.2f}x  (load {os.getloadavg()[0]:.1f})")
        return
    for name, (recipe, n) in list(variants.items())[args.skip:]:
        r = ranges(recipe, n)   # the ranges do not depend on the nodes left fp32
        for excl in dict.fromkeys([(), extra]):
            t0 = time.perf_counter()
            rec = dataclasses.replace(recipe, fp32_nodes=excl)
            emb = embed(session_of(quantize.quantize(fp32, r, rec), tmp), chips[found])
            cos = (emb * ref).sum(1)
            s, lo, hi, acc = accuracy(emb)
            at32 = float(((s > lo32) == labels).mean())
            label = name + (f" + fp32 {','.join(excl)}" if excl else "")
            print(f"{label:40s} cosine mean {cos.mean():.5f} p1 {np.percentile(cos, 1):.4f} min {cos.min():.4f} | "
                  f"threshold {lo:.4f}-{hi:.4f} acc {100 * acc:.2f} % at fp32's {100 * at32:.2f} % "
                  f"({time.perf_counter() - t0:.0f} s, load {os.getloadavg()[0]:.1f})", flush=True)

if __name__ == "__main__":
    main()
