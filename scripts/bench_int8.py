#!/usr/bin/env python3
"""fp32 against int8 sessions, interleaved round-robin on real inputs (docs/speed.md, "int8").

SFace: the shipped fp32 and int8 files on aligned faces of pairsDevTest people, at 1
and 2 threads, with edge's session options. `--pipeline`: detect + align + embed of
`edge bench`'s one-face 640x480 frame by an fp32 and an int8 analyser, taking turns. `--detector`: YuNet quantized here with the
same recipe (Conv only; ranges taken on the fly on pairsDevTrain photos, nothing
written: YuNet's int8 build is measured, not shipped) on 640x480 frames, with how far
its detections move; `--mesh`: the face mesh likewise, on face crops. Prints p50 / p95 and the load average with each figure.

    python scripts/bench_int8.py [--repeat 60] [--pipeline] [--detector] [--mesh]
"""
from __future__ import annotations

import argparse
import dataclasses
import itertools
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from calibrate_int8 import DEFAULT_DATA, chips, train_photos  # noqa: E402

from edge.analysis.app import AnalyserConfig, FaceAnalyser  # noqa: E402
from edge.analysis.detector import YuNetDetector, iou, pyramid_scales  # noqa: E402
from edge.analysis.landmarks import crop_transform, eye_angle, preprocess as mesh_preprocess  # noqa: E402
from edge.bench import ONE_FACE_PHOTO, one_face_frame  # noqa: E402
from edge.bench_compare import lfw_photos  # noqa: E402
from edge.imaging.frame import in_frame  # noqa: E402
from edge.bench_profile import timed_rounds  # noqa: E402
from edge.imaging import decode_image  # noqa: E402
from edge.models import quantize  # noqa: E402
from edge.models.manifest import default_models_dir, load_manifest, runtime_files  # noqa: E402
from edge.models.runtime import create_session  # noqa: E402


def interleaved(sessions: dict, inputs: list[np.ndarray], repeat: int) -> dict[str, list[float]]:
    """ms per run of each session, round-robin (edge.bench_profile.timed_rounds), each
    cycling through the same inputs in the same order."""
    def turn(session):
        feed, name = itertools.cycle(inputs), session.get_inputs()[0].name
        return lambda: session.run(None, {name: next(feed)})
    return timed_rounds({k: turn(s) for k, s in sessions.items()}, rounds=repeat)


def line(name: str, ms: list[float]) -> str:
    p95 = sorted(ms)[int(0.95 * (len(ms) - 1))]
    return f"  {name:14s} p50 {statistics.median(ms):6.2f} ms  p95 {p95:6.2f} ms  (load {os.getloadavg()[0]:.1f})"


def bench_sface(analyser: FaceAnalyser, repeat: int) -> None:
    files = runtime_files(default_models_dir(), "fp32"), runtime_files(default_models_dir(), "int8")
    inputs = list(chips(analyser, lfw_photos(20)))
    for threads in (1, 2):
        sessions = {f"fp32 {threads}t": create_session(files[0]["embedder"], threads),
                    f"int8 {threads}t": create_session(files[1]["embedder"], threads)}
        times = interleaved(sessions, inputs, repeat)
        print(f"SFace, one 112x112 face, {threads} thread(s):")
        for k, v in times.items():
            print(line(k, v))
        ratio = statistics.median(times[f"fp32 {threads}t"]) / statistics.median(times[f"int8 {threads}t"])
        print(f"  int8 {ratio:.2f}x faster")


def bench_detector(analyser: FaceAnalyser, repeat: int) -> None:
    det = analyser.detector
    spec = load_manifest()["detector"]
    fp32 = (default_models_dir() / spec.file).read_bytes()
    frames = [in_frame(decode_image(p.read_bytes())) for p in train_photos(DEFAULT_DATA, 40)]
    blobs = [det._blob(f, s).copy() for f in frames for s in pyramid_scales(*f.shape[:2], det.max_side)]
    recipe = dataclasses.replace(quantize.RECIPE, op_types=("Conv",))
    int8 = quantize.quantize(fp32, {k: tuple(v) for k, v in quantize.calibrate(fp32, blobs, recipe, chunk=1).items()}, recipe)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "yunet.int8.onnx"
        path.write_bytes(int8)
        q = YuNetDetector(path, 2, det.score_threshold, max_side=det.max_side)
        tests = [in_frame(decode_image(p.read_bytes())) for p in lfw_photos(60)]
        moved, dscore, lost = [], [], 0
        for f in tests:
            a, b = det.detect(f), q.detect(f)
            if len(a) == 0:
                continue
            if len(b) == 0:
                lost += 1
                continue
            moved.append(1 - iou(a.boxes[0], b.boxes[0]))
            dscore.append(abs(float(a.scores[0] - b.scores[0])))
        print(f"YuNet int8 on {len(tests)} frames: top face lost {lost}, 1 - IoU p50 {np.median(moved):.3f} "
              f"max {max(moved):.3f}, score change p50 {np.median(dscore):.3f} max {max(dscore):.3f}")
        x = [det._blob(tests[0], pyramid_scales(480, 640, det.max_side)[0]).copy()]
        times = interleaved({"fp32 2t": det.session, "int8 2t": q.session}, x, repeat)
    print("YuNet, one 640x480 frame, 2 threads:")
    for k, v in times.items():
        print(line(k, v))


def bench_pipeline(repeat: int) -> None:
    frame = one_face_frame(decode_image(ONE_FACE_PHOTO.read_bytes()))
    analysers = {p: FaceAnalyser(AnalyserConfig(models_dir=default_models_dir(), threads=2, precision=p,
                                                rotated_retry=False)) for p in ("fp32", "int8")}
    times = {p: [] for p in analysers}
    for _ in range(repeat):
        for p, a in analysers.items():
            t0 = time.perf_counter()
            a.analyse(frame, 1, 0, {"embedding"})
            times[p].append((time.perf_counter() - t0) * 1000)
    print("detect + align + embed, one 640x480 face, 2 threads:")
    for p, v in times.items():
        print(line(p, v[3:]))


def mesh_inputs(analyser: FaceAnalyser, photos: list[Path]) -> list[np.ndarray]:
    out = []
    for path in photos:
        img = decode_image(path.read_bytes())
        faces = analyser.analyse(img, 1, 1, set())
        if faces:
            out.append(mesh_preprocess(img, crop_transform(faces[0].box, eye_angle(*faces[0].kps5[:2]))[0]))
    return out


def bench_mesh(analyser: FaceAnalyser, repeat: int) -> None:
    """The face mesh quantized like SFace (Conv only: it has no Gemm), on face crops."""
    spec = load_manifest()["landmarks"]
    fp32 = (default_models_dir() / spec.file).read_bytes()
    recipe = dataclasses.replace(quantize.RECIPE, op_types=("Conv",))
    train = mesh_inputs(analyser, train_photos(DEFAULT_DATA, 100))
    int8 = quantize.quantize(fp32, {k: tuple(v) for k, v in quantize.calibrate(fp32, train, recipe).items()}, recipe)
    tests = mesh_inputs(analyser, lfw_photos(40))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "mesh.int8.onnx"
        path.write_bytes(int8)
        ref, q = analyser.mesh.session, create_session(path, 2)
        name = ref.get_inputs()[0].name
        moved = [float(np.abs(ref.run(None, {name: x})[0] - q.run(None, {name: x})[0]).max()) for x in tests]
        print(f"face mesh int8 on {len(tests)} face crops: landmark output max abs change p50 {np.median(moved):.2f} "
              f"max {max(moved):.2f} (pixels of the 192 px crop)")
        times = interleaved({"fp32 2t": ref, "int8 2t": q}, tests, repeat)
    print("face mesh, one 192x192 crop, 2 threads:")
    for k, v in times.items():
        print(line(k, v))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=60)
    ap.add_argument("--pipeline", action="store_true")
    ap.add_argument("--detector", action="store_true")
    ap.add_argument("--mesh", action="store_true")
    args = ap.parse_args()
    analyser = FaceAnalyser(AnalyserConfig(models_dir=default_models_dir(), rotated_retry=False))
    bench_sface(analyser, args.repeat)
    if args.pipeline:
        bench_pipeline(args.repeat)
    if args.detector:
        bench_detector(analyser, args.repeat)
    if args.mesh:
        bench_mesh(analyser, args.repeat)


if __name__ == "__main__":
    main()
