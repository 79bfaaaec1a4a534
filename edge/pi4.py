"""A Raspberry Pi 4 projection of figures measured here (there is no Pi on this box).

The OpenCV zoo publishes its models' times on a Raspberry Pi 4B (BCM2711, 4x Cortex-A72
at 1.5 GHz, OpenCV 4.10 DNN on the CPU; opencv_zoo benchmark/README.md): YuNet 2023mar
at 160x120 6.23 ms, SFace 2021dec on a 150x150 photo aligned to 112x112 68.82 ms. The
same OpenCV DNN runs the same model files here, so zoo-Pi-4 / OpenCV-here is the
hardware's ratio per model; a stage of edge measured here, times its model's ratio, is
the projection (stages no zoo model covers, the mesh and the numpy measures, take the
geometric mean of the two ratios).

What it assumes, unmeasured: that onnxruntime's ARM (NEON) kernels stand to OpenCV's ARM
kernels as their x86 kernels do here, and that the Pi's 4 cores (the zoo's OpenCV uses
them all) do what this box's 2 threads do. int8 is not projected this way: this box has
VNNI and a Cortex-A72 no dot-product instructions, so int8 gains less there (docs/speed.md).
The projection used to divide the zoo's time by edge's own time for the model, which
cancels every speed-up of edge's own (the PRelu split): the zoo's 68.82 ms came back.

A Raspberry Pi 5 (BCM2712, 4x Cortex-A76 at 2.4 GHz, LPDDR4X) is projected from the Pi 4
one: no zoo figure or other published run of these models on a Pi 5 with the same
runtime exists to take a ratio from, so the range is Raspberry Pi Ltd's launch figure of
"2-3x" the Pi 4's CPU performance (sysbench single-thread runs report ~2.3x). It is a
claim, not a measurement: the wider range is printed, not a midpoint. The A76 also has
the dot-product instructions the A72 lacks, so int8 should gain more there than on a Pi 4.
"""
from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

ZOO_PI4_MS = {"yunet_160x120": 6.23, "sface_112x112": 68.82}
PI5_OVER_PI4 = (2.0, 3.0)      # Pi 5 speed-up over a Pi 4, CPU: the vendor's launch range
ZOO_DETECT_STAGES = ("detect", "detect_rotated", "verify")
ZOO_EMBED_STAGES = ("embedding",)


def pi5_ms(pi4_ms: float) -> tuple[float, float]:
    """A Pi 5's (fastest, slowest) ms for what a Pi 4 does in pi4_ms."""
    return pi4_ms / PI5_OVER_PI4[1], pi4_ms / PI5_OVER_PI4[0]


def pi5_text(pi4_ms: float) -> str:
    """'~a-b ms' for a Pi 5, from a Pi 4 projection."""
    lo, hi = pi5_ms(pi4_ms)
    return f"~{lo:.0f}-{hi:.0f} ms"


@dataclass(frozen=True)
class Pi4Ratios:
    """Pi 4 ms per ms here, per kind of stage."""
    detect: float
    embed: float
    opencv_here_ms: dict[str, float]

    @property
    def other(self) -> float:
        return math.sqrt(self.detect * self.embed)

    def of(self, stage: str) -> float:
        if stage.startswith(ZOO_DETECT_STAGES):
            return self.detect
        if stage.startswith(ZOO_EMBED_STAGES):
            return self.embed
        return self.other

    def project(self, stage_ms: dict[str, float]) -> float:
        """The Pi 4 ms of a run whose stages took stage_ms here."""
        return sum(ms * self.of(stage) for stage, ms in stage_ms.items())

    def describe(self) -> str:
        here = self.opencv_here_ms
        return (f"Pi 4 ratios (edge/pi4.py): OpenCV DNN here YuNet 160x120 {here['yunet_160x120']:.2f} ms vs the "
                f"zoo's Pi 4 {ZOO_PI4_MS['yunet_160x120']} -> x{self.detect:.1f}; SFace {here['sface_112x112']:.2f} ms "
                f"vs {ZOO_PI4_MS['sface_112x112']} -> x{self.embed:.1f}; other stages x{self.other:.1f}")


def measure_ratios(models_dir: Path, photo: np.ndarray, threads: int = 2, n: int = 60) -> Pi4Ratios:
    """OpenCV's own YuNet and SFace on `photo` (a face photo) at the zoo's sizes here."""
    from edge.bench import median_ms
    from edge.bench_compare import CV_NMS, CV_SCORE, CV_TOP_K, graphs_before_split
    from edge.models.manifest import load_manifest
    specs = load_manifest(models_dir)
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    cv2.setNumThreads(threads)
    with tempfile.TemporaryDirectory() as tmp:
        unsplit = graphs_before_split(specs, models_dir, Path(tmp))
        detector = cv2.FaceDetectorYN.create(str(models_dir / specs["detector"].file), "", (160, 120),
                                             CV_SCORE, CV_NMS, CV_TOP_K)
        recognizer = cv2.FaceRecognizerSF.create(str(unsplit.get("embedder", models_dir / specs["embedder"].file)), "")
    small = cv2.resize(photo, (160, 120), interpolation=cv2.INTER_AREA)
    detector.setInputSize((photo.shape[1], photo.shape[0]))
    _, faces = detector.detect(photo)
    detector.setInputSize((160, 120))
    if faces is None or len(faces) == 0:
        raise ValueError("measure_ratios needs a photo with a face")
    face = faces[0]

    def sface():  # the zoo times the alignment too
        return recognizer.feature(recognizer.alignCrop(photo, face))
    for _ in range(5):
        detector.detect(small), sface()
    # The lowest of 3 block medians: YuNet at 160x120 is a sub-millisecond run whose median
    # moved 0.5 -> 0.8 ms between processes on a quiet box.
    here = {"yunet_160x120": min(median_ms(lambda: detector.detect(small), n) for _ in range(3)),
            "sface_112x112": min(median_ms(sface, max(1, n // 3)) for _ in range(3))}
    return Pi4Ratios(ZOO_PI4_MS["yunet_160x120"] / here["yunet_160x120"],
                     ZOO_PI4_MS["sface_112x112"] / here["sface_112x112"], here)
