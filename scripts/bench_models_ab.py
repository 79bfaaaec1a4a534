#!/usr/bin/env python3
"""Two models folders side by side in one process: an analyser on each, taking turns call
by call on `edge bench`'s one-face frame, so the box's load hits both alike.

Prints p50/p95 of detect + align + embed and of a v2 detect with every face_field, the
embedding and landmarks stages, and the load average, per block of rounds; and how far
the two embeddings of the frame's face differ (e.g. a graph edit before and after:
docs/speed.md, "The split in the blocked layout").

    python scripts/bench_models_ab.py OTHER_MODELS_DIR [--rounds 60] [--blocks 3]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from edge.analysis.app import AnalyserConfig, FaceAnalyser  # noqa: E402
from edge.bench import ONE_FACE_PHOTO, one_face_frame, v2_detect  # noqa: E402
from edge.imaging import decode_image  # noqa: E402
from edge.models.manifest import default_models_dir  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("other", type=Path, help="the models folder to compare with this checkout's")
    ap.add_argument("--rounds", type=int, default=60)
    ap.add_argument("--blocks", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    frame = one_face_frame(decode_image(ONE_FACE_PHOTO.read_bytes()))
    encoded = ONE_FACE_PHOTO.read_bytes()
    dirs = {"this": default_models_dir(), "other": args.other}
    analysers = {k: FaceAnalyser(AnalyserConfig(models_dir=d, threads=args.threads)) for k, d in dirs.items()}
    embeddings = {k: a.analyse(frame, 1, 0, {"embedding"})[0].embedding for k, a in analysers.items()}
    print(f"this: {dirs['this']}  other: {dirs['other']}  embeddings' max abs difference "
          f"{float(np.abs(embeddings['this'] - embeddings['other']).max()):.2g}")
    tasks = {"detect + align + embed": lambda a: a.analyse(frame, 1, 0, {"embedding"}),
             "v2 detect, every face_field": lambda a: v2_detect(a, encoded)}
    for block in range(args.blocks):
        times = {(t, k): [] for t in tasks for k in analysers}
        stages = {(s, k): [] for s in ("embedding", "landmarks") for k in analysers}
        for i in range(args.rounds):
            order = list(analysers.items())[:: 1 if i % 2 else -1]
            for task, fn in tasks.items():
                for name, analyser in order:
                    t0 = time.perf_counter()
                    fn(analyser)
                    times[task, name].append((time.perf_counter() - t0) * 1000)
                    if task == "detect + align + embed":
                        for s in ("embedding", "landmarks"):
                            stages[s, name].append(analyser.timings[s])
        print(f"block {block + 1}, load average {' '.join(f'{v:.1f}' for v in os.getloadavg())}")
        for (what, name), ts in {**times, **stages}.items():
            print(f"  {what:30s} {name:5s} p50 {np.median(ts):6.2f}  p95 {np.percentile(ts, 95):6.2f} ms")


if __name__ == "__main__":
    main()
