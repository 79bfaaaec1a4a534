#!/usr/bin/env python3
"""Fit motion liveness's pair weights (edge/analysis/motion_liveness.py PAIR_WEIGHTS, PAIR_BIAS).

Every parallax pair the loop's tracks make (edge.analysis.liveness_eval, the real
Pipeline) on the live sequences of the test set (edge.spoofset: the walking video,
NUAA's live people) and on its attacks except screen replays (whose content is a real
head: its parallax is real, the pair cue cannot and should not call it flat), plus
NUAA's real printed-photo recordings, per recording and per subject (their twisted
prints are the hardest real bent prints here). Fitted on the set of `--seed` (default 1;
scripts/liveness_attacks.py reports on seed 0: other photos, other renders). The live
side is not held out: the walking video and NUAA are the only real live footage.
Prints the fitted weights beside the shipped ones and per-kind pair and track figures,
and the single-image score's per-track medians by kind (is it worth fusing?).

    python scripts/fit_motion_liveness.py [--seed 1] [--per-attack 12]   # ~7 min on 2 cores
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from edge.analysis import liveness_eval as le  # noqa: E402
from edge.analysis import motion_fit as mf  # noqa: E402
from edge.analysis import motion_liveness as ml  # noqa: E402
from edge.loop.pipeline import LoopRules  # noqa: E402
from edge.spoofset import evaluate as ev  # noqa: E402
from edge.spoofset import sequences as sq  # noqa: E402
from edge.spoofset.render import DATA  # noqa: E402

NUAA_RULES = le.nuaa_rules(LoopRules())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--per-attack", type=int, default=12)
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    analyser = sq.default_analyser()
    rules = LoopRules()
    attacks = [a for a in sq.ATTACKS if a != "screen_replay"]
    samples: list[mf.PairSample] = []
    singles: dict[str, list[float]] = {}
    for seq in sq.live_sequences(args.data) + sq.attack_sequences(args.data, args.seed, args.per_attack,
                                                                   analyser, attacks):
        kind = "live/" + seq.name.split("/")[1].split(":")[0] if seq.attack == "live" else seq.attack
        traces = le.trace(analyser, seq.frames(), ev.default_rules_for(seq, rules), seq.name, seq.attack == "live")
        samples += mf.samples_of(traces, kind, seq.attack == "live")
        singles.setdefault(kind, []).extend(mf.track_single_scores(traces))
    for by in ("recording", "subject"):
        for name, live, items in le.nuaa_sequences(args.data / "spoof-dev" / "nuaa", by=by):
            if not live:
                samples += mf.samples_of(le.trace(analyser, le.file_frames(items), NUAA_RULES, f"nuaa-{by}:{name}", False),
                                         f"nuaa_print_{by}", False)
    w, b = mf.fit_pairs(samples)
    print(f"{len(samples)} pairs; features {', '.join(ml.PAIR_FEATURES)}")
    print(f"fitted:  PAIR_WEIGHTS = ({', '.join(f'{x:.3f}' for x in w)}), PAIR_BIAS = {b:.3f}")
    print(f"shipped: PAIR_WEIGHTS = {ml.PAIR_WEIGHTS}, PAIR_BIAS = {ml.PAIR_BIAS}")
    for title, (ww, bb) in (("fitted", (w, b)), ("shipped", (ml.PAIR_WEIGHTS, ml.PAIR_BIAS))):
        print(f"per kind, {title} weights:")
        print("\n".join(mf.kind_lines(samples, ww, bb)))
    print("the single-image score (edge.analysis.liveness), per track median, by kind:")
    print("\n".join(mf.single_lines(singles)))
    print(f"{time.perf_counter() - t0:.0f} s, load average {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
