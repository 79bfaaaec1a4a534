"""`edge bench`: per-stage latency and memory of the analyser (figures, not tests).

Images: a 640x480 frame with one face (../shared/data's obama-480p.jpg cropped when
present, else the demo photo) and a group photo (../shared/data/multiface/
insightface_t1.jpg when present, else the one-face frame tiled).
Prints medians over --repeat runs for each thread count, and resident memory: after
loading, after the runs, and after photos of many sizes (every ../shared/data/multiface
photo, every field, twice: what an API terminal sees), with the process's peak.
"""
from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import resource
import statistics
import time

import cv2
import numpy as np

from edge.analysis.app import ALL_STAGES, AnalyserConfig, FaceAnalyser
from edge.analysis.baidu import FACE_FIELDS, face_to_baidu, stages_for
from edge.config import load_config
from edge.imaging import decode_image
from edge.models.manifest import REPO_ROOT, sample_path
from edge.pi4 import Pi4Ratios, measure_ratios, pi5_text
from edge.procstat import memory_mb

SHARED = REPO_ROOT.parent / "shared" / "data"
ONE_FACE_PHOTO = SHARED / "peers" / "face_recognition" / "examples" / "obama-480p.jpg"
GROUP_PHOTO = SHARED / "multiface" / "insightface_t1.jpg"
PHOTO_MIX = SHARED / "multiface"
# What a v2 detect asking for every face_field runs: no embedding (v2 detect returns none).
V2_FIELDS = frozenset(FACE_FIELDS)
V2_STAGES = frozenset(stages_for(set(V2_FIELDS)))


def one_face_frame(photo: np.ndarray) -> np.ndarray:
    """640x480 frame from the photo's centre, the size of a terminal camera frame."""
    h, w = photo.shape[:2]
    scale = 480 / h
    img = cv2.resize(photo, (max(640, round(w * scale)), 480), interpolation=cv2.INTER_AREA)
    x0 = (img.shape[1] - 640) // 2
    return np.ascontiguousarray(img[:, x0:x0 + 640])


def group_photo(demo_frame: np.ndarray) -> np.ndarray:
    if GROUP_PHOTO.exists():
        return decode_image(GROUP_PHOTO.read_bytes())
    return np.hstack([demo_frame] * 3)


def median_ms(fn, repeat: int) -> float:
    """Median wall ms of repeat calls of fn (every benchmark times through this)."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def _stages_ms(analyser: FaceAnalyser, fn, repeat: int) -> tuple[float, dict[str, float]]:
    """Median ms of fn() and the analyser's median ms per stage over the same runs."""
    times, stages = [], {}
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
        for k, v in analyser.timings.items():
            stages.setdefault(k, []).append(v)
    return statistics.median(times), {k: statistics.median(v) for k, v in stages.items()}


def bench_image(analyser: FaceAnalyser, name: str, img: np.ndarray, encoded: bytes, repeat: int,
                pi4: Pi4Ratios | None = None) -> None:
    for _ in range(3):
        analyser.analyse(img, 10, 0, ALL_STAGES)  # warm-up
    decode_ms = median_ms(lambda: decode_image(encoded), repeat)
    stage_runs: dict[str, list[float]] = {}
    for _ in range(repeat):
        faces = analyser.analyse(img, 10, 0, ALL_STAGES)
        for k, v in analyser.timings.items():
            stage_runs.setdefault(k, []).append(v)
    core, core_stages = _stages_ms(analyser, lambda: analyser.analyse(img, 1, 0, {"embedding"}), repeat)
    v2, v2_stages = _stages_ms(analyser, lambda: v2_detect(analyser, encoded), repeat)
    full = median_ms(lambda: analyser.analyse(img, 10, 0, ALL_STAGES), repeat)
    stages = "  ".join(f"{k} {statistics.median(v):.2f}" for k, v in stage_runs.items())
    print(f"  {name} ({img.shape[1]}x{img.shape[0]}, {len(faces)} face(s))")
    print(f"    stages ms (all faces): decode {decode_ms:.2f}  {stages}")
    print(f"    detect + align + embed (1 face): {core:.2f} ms   v2 detect, every face_field (decode, analyse,"
          f" answer; all faces): {v2:.2f} ms   every stage with the embedding: {full:.2f} ms"
          f"   (load average {os.getloadavg()[0]:.1f})")
    if pi4 is not None:  # the stages' medians, each times its model's ratio; the rest (glue, decode) x other
        def projected(total, stages):
            return pi4.project(stages) + max(0.0, total - sum(stages.values())) * pi4.other
        core_pi4, v2_pi4 = projected(core, core_stages), projected(v2, v2_stages)
        print(f"    Pi 4 projection: detect + align + embed ~{core_pi4:.0f} ms, v2 detect ~{v2_pi4:.0f} ms;"
              f" Pi 5 (the Pi 4's / 2-3, edge/pi4.py): {pi5_text(core_pi4)}, {pi5_text(v2_pi4)}")


def v2_detect(analyser: FaceAnalyser, encoded: bytes) -> list[dict]:
    """v2 detect with every face_field, as edge.service.Engine.detect runs it (max_face_num 10)."""
    faces = analyser.analyse(decode_image(encoded), 10, 0, V2_STAGES)
    return [face_to_baidu(f, V2_FIELDS) for f in faces]


def photo_mix() -> list[np.ndarray]:
    """The multiface photos (11 sizes, 112x112 to 2280x1588, one without a face), decoded."""
    if not PHOTO_MIX.is_dir():
        return []
    return [decode_image(p.read_bytes()) for p in sorted(PHOTO_MIX.iterdir()) if p.suffix in (".jpg", ".png")]


def run_photo_mix(analyser: FaceAnalyser, photos: list[np.ndarray], rounds: int = 2) -> None:
    for _ in range(rounds):
        for img in photos:
            analyser.analyse(img, 10, 0, ALL_STAGES)


def _pi4_ratios(models_dir, threads: int) -> Pi4Ratios | None:
    from edge.bench_compare import lfw_photos
    photos = lfw_photos(1)
    return measure_ratios(models_dir, decode_image(photos[0].read_bytes()), threads) if photos else None


def pi4_ratios(models_dir, threads: int) -> Pi4Ratios | None:
    """The Pi 4 projection's ratios, measured on an LFW photo (None without one), in a child
    process: OpenCV's own nets must not count in this process's memory figures."""
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(_pi4_ratios, models_dir, threads).result()


def resident_mb() -> float:
    """Current resident set size of this process, in MB."""
    return memory_mb()["rss"]


def main(args) -> int:
    cfg = load_config(getattr(args, "config", None))
    if getattr(args, "compare", None):
        from edge.bench_compare import main as compare_main
        return compare_main(args, cfg.models_dir)
    source = ONE_FACE_PHOTO if ONE_FACE_PHOTO.exists() else sample_path("demo", cfg.models_dir)
    frame = one_face_frame(decode_image(source.read_bytes()))
    group = group_photo(frame)
    images = [("one face", frame), ("group", group)]
    for threads in args.threads or [1, 2]:
        t0 = time.perf_counter()
        analyser = FaceAnalyser(AnalyserConfig(models_dir=cfg.models_dir, threads=threads,
                                               precision=cfg.models.precision, embedder=cfg.models.embedder))
        load_ms = (time.perf_counter() - t0) * 1000
        print(f"threads={threads}  precision={cfg.models.precision}  embedder={cfg.models.embedder}  (models loaded in {load_ms:.0f} ms, "
              f"resident {resident_mb():.0f} MB, load average {os.getloadavg()[0]:.1f})")
        pi4 = pi4_ratios(cfg.models_dir, threads)
        if pi4 is not None:
            print(f"  {pi4.describe()}")
        for name, img in images:
            encoded = cv2.imencode(".jpg", img)[1].tobytes()
            bench_image(analyser, name, img, encoded, args.repeat, pi4)
        print(f"  resident after the runs: {resident_mb():.0f} MB")
        photos = photo_mix()
        if photos:
            run_photo_mix(analyser, photos)
            mem = memory_mb()
            print(f"  after {len(photos)} photos of many sizes, every field, twice: resident {mem['rss']:.0f} MB,"
                  f" peak {mem['peak']:.0f} MB")
        del analyser
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak resident memory of the process: {peak_mb:.0f} MB")
    return 0
