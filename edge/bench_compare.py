"""`edge bench --compare opencv`: OpenCV's own sample pipeline beside edge's, in one run.

Both run the same models from the same wheel (OpenCV loads edge's edited YuNet as it is,
and SFace as it was before edge's PRelu split: OpenCV's DNN fuses PRelu into the
convolution, the split would only slow it down) on the same decoded images, 2 threads each, interleaved
image by image with the order alternating, so a busy box slows both alike and the ratio
stays fair. Inputs: LFW photos (150x150) and the same photos in a black 640x480 frame.
Agreement, three cosines between OpenCV's embedding of a face and: edge's, end to end
(edge re-finds the 5 points of a face rolled more than 4 deg on a levelled crop, so
those faces are aligned differently, docs/speed.md); edge's on its detector's own
points (the same detector and embedder on two runtimes: ~1.000); edge's embedder on
OpenCV's aligned chip (the embedder alone).
"""
from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from edge.analysis.app import AnalyserConfig, FaceAnalyser
from edge.imaging import decode_image
from edge.imaging.frame import in_frame
from edge.models.edits import PRELU_SPLITS
from edge.models.fetch import graph_before
from edge.models.manifest import REPO_ROOT, ModelSpec, load_manifest

LFW = REPO_ROOT.parent / "shared" / "data" / "lfw-view1"
KINDS = ("150x150 LFW photo", "the photo in a 640x480 frame")
# OpenCV's sample (samples/dnn/face_detect.py) defaults.
CV_SCORE, CV_NMS, CV_TOP_K = 0.9, 0.3, 5000


def lfw_photos(n: int) -> list[Path]:
    """The first photo of the first n people of peopleDevTest (a fixed, documented set)."""
    people = [line.split("\t")[0] for line in (LFW / "peopleDevTest.txt").read_text().splitlines()[1:]]
    photos = [LFW / "images" / p / f"{p}_0001.jpg" for p in people]
    return [p for p in photos if p.exists()][:n]


def graphs_before_split(specs: dict[str, ModelSpec], models_dir: Path, tmp: Path) -> dict[str, Path]:
    """Each model edited by edge's PRelu split, as it was before the split: what OpenCV's
    DNN runs (it fuses PRelu into the convolution; split, SFace runs ~30 % slower on it)
    and what the profile measures the split against."""
    out = {}
    for role, spec in specs.items():
        split = next((e for e in spec.edits if e in PRELU_SPLITS), None)
        if split is not None:
            out[role] = tmp / spec.file
            out[role].write_bytes(graph_before(spec, split, models_dir / "cache"))
    return out


class OpenCVPipeline:
    """cv2.FaceDetectorYN + cv2.FaceRecognizerSF as OpenCV's sample runs them."""

    def __init__(self, detector: Path, recognizer: Path, threads: int):
        cv2.setNumThreads(threads)
        self.detector = cv2.FaceDetectorYN.create(str(detector), "", (320, 320), CV_SCORE, CV_NMS, CV_TOP_K)
        self.recognizer = cv2.FaceRecognizerSF.create(str(recognizer), "")
        self.last_chip: np.ndarray | None = None

    def embed(self, img: np.ndarray) -> np.ndarray | None:
        self.detector.setInputSize((img.shape[1], img.shape[0]))
        _, faces = self.detector.detect(img)
        if faces is None or len(faces) == 0:
            return None
        best = faces[np.argmax(faces[:, 2] * faces[:, 3])]
        self.last_chip = self.recognizer.alignCrop(img, best)
        return unit(self.recognizer.feature(self.last_chip).ravel())


def unit(v: np.ndarray) -> np.ndarray:
    return v / max(float(np.linalg.norm(v)), 1e-12)


def edge_embed(analyser: FaceAnalyser, img: np.ndarray) -> np.ndarray | None:
    """edge's detect + align + embed of the largest face (the mesh it needs for the roll included)."""
    faces = analyser.analyse(img, 1, 0, {"embedding"})
    return faces[0].embedding if faces else None


@dataclass
class Row:
    times: dict[str, list[float]] = field(default_factory=lambda: {"opencv": [], "edge": []})
    cosines: list[float] = field(default_factory=list)         # end to end
    point_cosines: list[float] = field(default_factory=list)   # edge on its detector's own points
    chip_cosines: list[float] = field(default_factory=list)    # edge's embedder on OpenCV's chip
    found: dict[str, int] = field(default_factory=lambda: {"opencv": 0, "edge": 0})


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def run(images: list[np.ndarray], pipelines: dict, checks, warmup: int = 3) -> Row:
    """Time every pipeline on every image, interleaved, the order alternating per image;
    `checks(img, opencv_embedding)` (untimed) gives the points and chip cosines."""
    row = Row()
    names = list(pipelines)
    for img in images[:warmup]:
        for name in names:
            pipelines[name](img)
    for i, img in enumerate(images):
        out = {}
        for name in (names if i % 2 == 0 else names[::-1]):
            t0 = time.perf_counter()
            out[name] = pipelines[name](img)
            row.times[name].append((time.perf_counter() - t0) * 1000)
        for name, emb in out.items():
            row.found[name] += emb is not None
        if all(e is not None for e in out.values()):
            row.cosines.append(float(np.dot(out["opencv"], out["edge"])))
        if out["opencv"] is not None:
            points, chip = checks(img, out["opencv"])
            row.chip_cosines.append(chip)
            if points is not None:
                row.point_cosines.append(points)
    return row


def report(kind: str, row: Row, n: int) -> str:
    cv50, ed50 = _pct(row.times["opencv"], 50), _pct(row.times["edge"], 50)
    agree = (f"cosine mean {np.mean(row.cosines):.4f} min {np.min(row.cosines):.4f} over {len(row.cosines)} faces"
             if row.cosines else "no face found by both")
    if row.point_cosines:
        agree += f"; edge on its detector's points: min {np.min(row.point_cosines):.4f}"
    if row.chip_cosines:
        agree += f"; same chip: min {np.min(row.chip_cosines):.4f}"
    return (f"  {kind}: OpenCV p50 {cv50:.1f} p95 {_pct(row.times['opencv'], 95):.1f} ms (face in "
            f"{row.found['opencv']}/{n})  |  edge p50 {ed50:.1f} p95 {_pct(row.times['edge'], 95):.1f} ms "
            f"(face in {row.found['edge']}/{n})  |  edge/OpenCV speed {cv50 / ed50:.2f}x  |  agreement {agree}")


def main(args, models_dir: Path) -> int:
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    specs = load_manifest(models_dir)
    files = {name: models_dir / spec.file for name, spec in specs.items()}
    with tempfile.TemporaryDirectory() as tmp:
        return _compare(args, models_dir, files, graphs_before_split(specs, models_dir, Path(tmp)))


def _compare(args, models_dir: Path, files: dict[str, Path], unsplit: dict[str, Path]) -> int:
    photos = [decode_image(p.read_bytes()) for p in lfw_photos(3 if args.quick else 100)]
    if not photos:
        print(f"edge bench --compare: no LFW photos under {LFW}")
        return 1
    inputs = {KINDS[0]: photos, KINDS[1]: [in_frame(p) for p in photos]}
    load = os.getloadavg()
    before = " (OpenCV's before edge's PRelu split)" if "embedder" in unsplit else ""
    print(f"OpenCV {cv2.__version__} vs edge on {len(photos)} LFW photos, same models: {files['detector'].name}, "
          f"{files['embedder'].name}{before}; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    for threads in args.threads or [2]:
        analyser = FaceAnalyser(AnalyserConfig(models_dir=models_dir, threads=threads))
        cv = OpenCVPipeline(files["detector"], unsplit.get("embedder", files["embedder"]), threads)
        pipelines = {"opencv": cv.embed, "edge": lambda img: edge_embed(analyser, img)}

        def checks(img: np.ndarray, opencv_embedding: np.ndarray) -> tuple[float | None, float]:
            chip = float(np.dot(analyser.sface.embed_chips([cv.last_chip])[0], opencv_embedding))
            faces = analyser.analyse(img, 1, 0, set())
            if not faces:
                return None, chip
            own = analyser.sface.embed(img, faces[0].kps5)
            return float(np.dot(own, opencv_embedding)), chip

        print(f"threads={threads}")
        for kind, images in inputs.items():
            print(report(kind, run(images, pipelines, checks), len(images)))
        if args.profile:
            from edge.bench_profile import profile
            profile(analyser, files, unsplit, photos[0], in_frame(photos[0]), threads)
    return 0
