#!/usr/bin/env python3
"""How close the engine's dlib chip (face mesh points, edge/analysis/dlib_embedder.py)
gets to dlib's own chip pipeline (its HOG detector, 5-point predictor, get_face_chip):
cosine between the converted net's descriptors of the two chips of the same LFW photo,
and the net's ms per face at 1 and 2 threads. A developer's tool: needs `dlib-bin`.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from edge.analysis.detector import YuNetDetector  # noqa: E402
from edge.analysis.dlib_embedder import DlibEmbedder, dlib_chip  # noqa: E402
from edge.analysis.landmarks import FaceMesh  # noqa: E402
from edge.models.fetch import find_or_download  # noqa: E402
from edge.models.manifest import default_models_dir, load_manifest  # noqa: E402
from scripts.make_model_references import LFW, _dlib_models, extract_member  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=50, help="LFW photos (one per person)")
    args = ap.parse_args()
    import dlib

    models = default_models_dir()
    specs = load_manifest(models)
    spec = specs["embedder_dlib"]
    archive = find_or_download(spec, models / "cache")
    detector = YuNetDetector(models / specs["detector"].file, threads=1)
    mesh_net = FaceMesh(models / specs["landmarks"].file, threads=1)
    emb = DlibEmbedder(models / spec.file, threads=1)
    hog = dlib.get_frontal_face_detector()
    cos, shift = [], []
    with tempfile.TemporaryDirectory() as tmp:
        _, predictor = _dlib_models(extract_member(archive, spec), archive, spec, Path(tmp))
        for person in sorted(p for p in LFW.iterdir() if p.is_dir())[::7]:
            if len(cos) >= args.n:
                break
            path = sorted(person.glob("*.jpg"))[0]
            rgb = dlib.load_rgb_image(str(path))
            faces = sorted(hog(rgb, 1), key=lambda r: -r.area())
            det = detector.detect(rgb[:, :, ::-1].copy())
            if not faces or not len(det):
                continue
            theirs = dlib.get_face_chip(rgb, predictor(rgb, faces[0]), size=150, padding=0.25)
            i = int(np.argmax(det.scores))
            mesh, _ = mesh_net.get(rgb[:, :, ::-1].copy(), det.boxes[i], det.kps[i])
            ours = dlib_chip(rgb[:, :, ::-1].copy(), mesh)
            a, b = emb.embed_chips([ours, np.ascontiguousarray(theirs[:, :, ::-1])])
            cos.append(float(a @ b))
            shift.append(float(np.abs(cv2.cvtColor(ours, cv2.COLOR_BGR2GRAY).astype(float)
                                      - cv2.cvtColor(theirs, cv2.COLOR_RGB2GRAY)).mean()))
    cos = np.array(cos)
    print(f"{len(cos)} LFW photos: cosine(our chip, dlib's chip) mean {cos.mean():.4f} "
          f"median {np.median(cos):.4f} min {cos.min():.4f} p10 {np.percentile(cos, 10):.4f}; "
          f"mean abs pixel difference {np.mean(shift):.1f}")
    chip = np.ascontiguousarray(theirs[:, :, ::-1])
    for threads in (1, 2):
        e = DlibEmbedder(models / spec.file, threads=threads)
        for _ in range(3):
            e.embed_chips([chip])
        t = time.perf_counter()
        for _ in range(20):
            e.embed_chips([chip])
        print(f"{threads} thread(s): {(time.perf_counter() - t) / 20 * 1000:.1f} ms per face")


if __name__ == "__main__":
    main()
