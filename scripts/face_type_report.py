#!/usr/bin/env python3
"""qualities.type (human / cartoon) and the liveness cap, measured.

Humans: the first photo of LFW people, as taken and smoothed / blurred / JPEG 15;
cartoons: renderings of the same photos (edge.analysis.cartoonize); every sample through
the real detector. The edges (edge.thresholds.FACE_TYPE) are measured on the tuning
half of the people; the report half gives the rates, per group: faces found, median
flat share, share called cartoon (P(human) < 0.5), and the liveness score before and
after the HUMAN_CAP x P(human) cap (share passing NORMAL). spoof-dev figures: scripts/liveness_report.py.

    python scripts/face_type_report.py [--people N]

Figures only; exits 0.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from edge.analysis.app import AnalyserConfig, FaceAnalyser  # noqa: E402
from edge.analysis.cartoonize import RENDERERS  # noqa: E402
from edge.analysis.face_type_fit import PHOTO_VARIANTS, collect, edges, p_human, people  # noqa: E402
from edge.analysis.liveness import HUMAN_CAP  # noqa: E402
from edge.thresholds import FACE_TYPE, LIVENESS  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--people", type=int, default=100, help="people per half")
    args = ap.parse_args()
    analyser = FaceAnalyser(AnalyserConfig(threads=2))
    tune = collect(analyser, people(args.people, True))
    h, c = edges(tune)
    print(f"tuning half ({args.people} people): most flat photo {h:.4f}, least flat flat-fill cartoon {c:.4f}"
          f"   shipped edges: human {FACE_TYPE.human}, cartoon {FACE_TYPE.cartoon}")
    report = collect(analyser, people(args.people, False))
    print(f"\nreport half ({args.people} other people), shipped edges; liveness NORMAL = {LIVENESS['NORMAL']}")
    print(f"  {'group':13s} {'truth':8s} {'found':>5s} {'flat p50':>8s} {'flat max':>8s} {'called cartoon':>14s}"
          f" {'live NORMAL before':>18s} {'after':>6s}")
    for g in PHOTO_VARIANTS + RENDERERS:
        ss = [s for s in report if s.group == g and np.isfinite(s.flat)]
        n = sum(s.group == g for s in report)
        flat = np.array([s.flat for s in ss])
        ph = np.array([p_human(s) for s in ss])
        raw = np.array([s.raw_liveness for s in ss])
        after = np.minimum(raw, HUMAN_CAP * ph)
        truth = "human" if ss and ss[0].human else "cartoon"
        print(f"  {g:13s} {truth:8s} {len(ss):2d}/{n:2d} {np.median(flat):8.4f} {flat.max():8.4f}"
              f" {np.mean(ph < 0.5):14.3f} {np.mean(raw >= LIVENESS['NORMAL']):18.3f}"
              f" {np.mean(after >= LIVENESS['NORMAL']):6.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
