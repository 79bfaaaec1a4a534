#!/usr/bin/env python3
"""Does the face crop's spectrum show a screen? A moire probe on the liveness test set.

A display's pixel grid re-filmed by a camera aliases into periodic patterns (moire):
narrow peaks in the face crop's 2-D spectrum that a face, a print or the camera's own
noise do not make. The measure: the highest peak of the log-magnitude spectrum (Hann
window, the face box's square at native pixels, at most 128 px) over the median of its
own ring, for rings past 12 % of the crop. Printed per group (median and 90th percentile
over every 5th frame), so a cue is fused only if screens stand apart from live faces.
Figures only; exits 0 (docs/motion_liveness.md, "Screen texture").

    python scripts/screen_cue_probe.py [--seed 1] [--per-attack 6]
"""
from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from edge.spoofset import sequences as sq  # noqa: E402

EVERY, CROP_MAX, RING_MIN = 5, 128, 0.12
OVER = (2.25, 2.5, 2.75, 3.0)


def spectral_peak(gray: np.ndarray) -> float:
    """Highest (log |F| - its ring's median) past RING_MIN of the crop's size."""
    n = gray.shape[0]
    window = np.outer(np.hanning(n), np.hanning(n))
    spec = np.log(np.abs(np.fft.fftshift(np.fft.fft2((gray - gray.mean()) * window))) + 1e-6)
    yy, xx = np.mgrid[:n, :n] - n // 2
    ring = np.hypot(yy, xx).astype(int)
    med = np.array([np.median(spec[ring == k]) for k in range(ring.max() + 1)])
    keep = (ring > n * RING_MIN) & (ring < n // 2)
    return float((spec - med[ring])[keep].max())


def face_square(frame: np.ndarray, box) -> np.ndarray | None:
    x0, y0, x1, y1 = (int(v) for v in box)
    s = min(x1 - x0, y1 - y0, CROP_MAX)
    cx, cy = (x0 + x1) // 2 - s // 2, (y0 + y1) // 2 - s // 2
    crop = frame[max(cy, 0):cy + s, max(cx, 0):cx + s]
    return crop if s >= 32 and crop.shape[:2] == (s, s) else None


def measures(seq, analyser, limit: int = 75) -> list[float]:
    out = []
    for i, (frame, _) in enumerate(seq.frames()):
        if i >= limit:
            break
        if i % EVERY:
            continue
        for face in analyser.analyse(frame, 10, 0, frozenset()):   # every face of a crowd is a sample
            crop = face_square(frame, face.box)
            if crop is not None:
                out.append(spectral_peak(cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY).astype(np.float32)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=1, help="the fit seed (seed 0 is held out)")
    ap.add_argument("--per-attack", type=int, default=6)
    args = ap.parse_args()
    analyser = sq.default_analyser()
    groups: dict[str, list[float]] = defaultdict(list)
    for seq in sq.live_sequences() + sq.attack_sequences(seed=args.seed, per_attack=args.per_attack,
                                                          analyser=analyser):
        limit = 10 ** 6 if seq.name == "live/walking_people" else 75
        groups[seq.attack if seq.attack != "live" else seq.name.split(":")[0]].extend(measures(seq, analyser, limit))
    print(f"{'group':22s} {'frames':>6s} {'median':>7s} {'p90':>7s} " + " ".join(f"{'>' + str(t):>6s}" for t in OVER)
          + "   spectral peak over ring median (log); share of frames above")
    for name, vals in groups.items():
        v = np.asarray(vals)
        if not len(v):
            print(f"{name:22s} {0:6d}       -       -   (no face of >= 32 px)")
            continue
        print(f"{name:22s} {len(v):6d} {np.median(v):7.2f} {np.percentile(v, 90):7.2f} "
              + " ".join(f"{(v > t).mean():6.3f}" for t in OVER))


if __name__ == "__main__":
    main()
