#!/usr/bin/env python3
"""Occlusion per region on LFW faces under generated occluders, at Baidu's v3 levels.

Masks (surgical, KN95, cloth x white, light blue, beige, the face's own skin tone,
black, printed), a hand over the mouth or an eye, a scarf and sunglasses are drawn with
the mesh over the first photo of people of LFW view 1 (edge/occluders.py), nothing is
written to disk. Prints, per region, the detection rate (score above the level's
threshold) where the drawing covers >= 60 % of the region, the false-alarm rate on the
same faces clean and on regions an occluder leaves clear (< 10 % covered), and which
share of occluded faces quality_control refuses, per occluder, and how often NORMAL's
code names a region the occluder left clear.

    python scripts/occlusion_report.py [--part DevTest] [--n 60] [--clean 300]

DevTest people are never used to set the constants (DevTrain is). Figures only; exits 0.
"""
from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from edge import occluders as oc  # noqa: E402
from edge.analysis.app import AnalyserConfig, FaceAnalyser  # noqa: E402
from edge.analysis.gating import OCCLUSION_CODES  # noqa: E402
from edge.thresholds import OCCLUSION_REGIONS, QUALITY  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
LEVELS = ("LOW", "NORMAL", "HIGH")


def rate(hits: list[bool]) -> str:
    return f"{100 * np.mean(hits):5.1f}" if hits else "    -"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", default="DevTest", choices=("DevTest", "DevTrain"))
    ap.add_argument("--n", type=int, default=60, help="people drawn under every occluder")
    ap.add_argument("--clean", type=int, default=300, help="further clean people for false alarms")
    ap.add_argument("--data", type=Path, default=DATA)
    args = ap.parse_args()
    fa = FaceAnalyser(AnalyserConfig(threads=2))
    photos = oc.lfw_split(args.data, args.part, args.n + args.clean, seed=1)
    trials = oc.run_trials(fa, photos[:args.n]) + oc.run_trials(fa, photos[args.n:], occluders=())
    clean = [t for t in trials if t.occluder == "clean"]
    occluded = [t for t in trials if t.occluder != "clean" and t.score is not None]
    missed = sum(t.score is None for t in trials if t.occluder != "clean")
    print(f"LFW {args.part}: {len(clean)} clean faces, {len(occluded)} occluded faces "
          f"({missed} occluded faces not detected at all)\n")
    lim = {lv: QUALITY[lv].occlusion for lv in LEVELS}
    print("detection % (region >= 60 % covered) | false alarm % clean faces | false alarm % clear regions of occluded")
    print(f"{'region':12s} {'n':>5s}  LOW  NORM  HIGH | {'n':>5s}  LOW  NORM  HIGH | {'n':>5s}  LOW  NORM  HIGH")
    for r in OCCLUSION_REGIONS:
        cov = [t.score[r] for t in occluded if t.cover[r] >= oc.COVERED]
        cln = [t.score[r] for t in clean]
        clr = [t.score[r] for t in occluded if t.cover[r] < oc.CLEAR]
        cells = []
        for vals in (cov, cln, clr):
            cells.append(f"{len(vals):5d} " + " ".join(rate([v > lim[lv][r] for v in vals]) for lv in LEVELS))
        print(f"{r:12s} " + " | ".join(cells))
    print("\nfaces refused by quality_control (any region above its limit), %; and at NORMAL the share")
    print("of refused faces whose code (the most occluded region, gating.quality_failure) names a region left clear")
    print(f"{'occluder':18s} {'n':>4s}  LOW  NORM  HIGH  wrong code")
    groups = defaultdict(list)
    for t in trials:
        if t.score is not None:
            groups[t.occluder].append(t)
    for name in ["clean"] + [o.name for o in oc.ALL]:
        s = [t.score for t in groups.get(name, [])]
        cells = " ".join(rate([any(v[r] > lim[lv][r] for r in OCCLUSION_REGIONS) for v in s]) for lv in LEVELS)
        wrong = []
        for t in groups.get(name, []):
            over = {r: t.score[r] - lim["NORMAL"][r] for r in OCCLUSION_CODES}
            named = max(over, key=over.get)   # the region quality_failure names
            if over[named] > 0 and name != "clean":
                wrong.append(t.cover[named] < oc.CLEAR)
        print(f"{name:18s} {len(s):4d} {cells}  {rate(wrong)}")


if __name__ == "__main__":
    main()
