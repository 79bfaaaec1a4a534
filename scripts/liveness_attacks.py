#!/usr/bin/env python3
"""APCER/BPCER of motion liveness per attack type and level, on the generated test set (edge/spoofset).

Builds the set (live: the walking video and NUAA ClientRaw; attacks rendered from real
photos and the walking video: see docs/motion_liveness.md "The test set"), runs every
sequence through the loop's Pipeline with one MotionLiveness per level per track, and
prints one table per level. Figures only; exits 0.

    python scripts/liveness_attacks.py [--per-attack 12] [--seed 0] [--levels LOW NORMAL HIGH]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from edge.loop.pipeline import LoopRules  # noqa: E402
from edge.spoofset import evaluate as ev  # noqa: E402
from edge.spoofset import sequences as sq  # noqa: E402
from edge.spoofset.render import DATA  # noqa: E402


def table(results, level: str) -> list[str]:
    out = [f"{level}: {'group':18s} {'n':>4s} {'APCER/BPCER':>12s} {'live':>6s} {'spoof':>6s} {'undec':>6s} "
           f"{'ever-spoof':>10s} {'live<=2s':>8s} {'med-live-s':>10s}"]
    for r in ev.rate_rows(results, level):
        kind = "BPCER" if r.group.startswith("live") else "APCER"
        fast = f"{r.fast:8.3f}" if r.fast == r.fast else f"{'-':>8s}"
        med = f"{r.median_live_s:10.2f}" if r.median_live_s == r.median_live_s else f"{'-':>10s}"
        out.append(f"{'':{len(level)}s}  {r.group:18s} {r.presentations:4d} {kind} {r.error:6.3f} {r.live:6.3f} "
                   f"{r.spoof:6.3f} {r.undecided:6.3f} {r.ever_spoof:10.3f} {fast} {med}")
    if level == "HIGH":
        out.append("  HIGH: a random challenge per track; attacks cannot answer it and the live recordings do not "
                   "either (nobody was asked): the live rows' BPCER measures nothing.")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--per-attack", type=int, default=12, help="sequences per photo attack type")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--levels", nargs="+", default=list(ev.LEVELS))
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    analyser = sq.default_analyser()
    seqs = sq.live_sequences(args.data) + sq.attack_sequences(args.data, args.seed, args.per_attack, analyser)
    print(f"{len(seqs)} sequences ({time.perf_counter() - t0:.0f} s to build the set)", flush=True)
    rules = LoopRules()
    results = ev.evaluate(seqs, analyser, rules, tuple(args.levels), args.seed)
    print(f"rules: min_face_px {rules.min_face_px}, min_track_frames {rules.min_track_frames}, "
          f"liveness_timeout_s {rules.liveness_timeout_s:g}; APCER: attack tracks live within the timeout; "
          f"BPCER: live tracks reaching min_face_px never live")
    for level in args.levels:
        print("\n".join(table(results, level)))
        print(f"  {level} cues (reason when first live / spoof):")
        print("\n".join(ev.cue_notes(results, level)))
    print(f"{time.perf_counter() - t0:.0f} s, load average {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
