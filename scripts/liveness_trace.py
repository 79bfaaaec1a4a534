"""Where live people lose the liveness verdict: the loop's tracking + motion liveness traced per track.

Runs edge.analysis.liveness_eval over ../shared/data/video/walking_people.mp4 (every
person live, none enrolled) and over NUAA's live and print recordings, prints one line
per track (frames, face height, pose, blinks, parallax, single-image score, verdict and
time to it, and where it was lost) and a summary. `--events` also runs the unmodified
loop on the clip and counts its events' liveness (what a user of `edge run` sees).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from edge.analysis import liveness_eval as le  # noqa: E402
from edge.analysis.app import AnalyserConfig, FaceAnalyser  # noqa: E402
from edge.loop.pipeline import LoopRules  # noqa: E402

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--loops", type=int, default=1, help="play the clip this many times back to back")
    ap.add_argument("--min-face-px", type=int, default=28, help="the clip's faces are ~32-70 px (loop default 40)")
    ap.add_argument("--level", default="NORMAL")
    ap.add_argument("--no-nuaa", action="store_true")
    ap.add_argument("--events", action="store_true", help="also the unmodified loop's events on the clip")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    analyser = FaceAnalyser(AnalyserConfig(threads=2))
    rules = LoopRules(liveness_control=args.level, min_face_px=args.min_face_px)
    clip = args.data / "video" / "walking_people.mp4"
    traces = le.trace(analyser, le.video_frames(clip, args.loops), rules, "walk", True)
    print(f"{clip.name} x{args.loops}, {args.level}, min_face_px {args.min_face_px}")
    for t in traces:
        print(le.track_line(t))
    lines = le.summary(traces, "walking video (all live)")
    if args.events:
        ev = le.loop_events(analyser, le.video_frames(clip, args.loops), rules)
        c = Counter((e.kind, e.liveness) for e in ev)
        lines.append(f"  the unmodified loop's events: {len(ev)}: "
                     + ", ".join(f"{k}/{lv or '-'} {n}" for (k, lv), n in c.most_common()))
    if not args.no_nuaa:
        nuaa_rules = le.nuaa_rules(LoopRules(liveness_control=args.level))
        out = []
        for name, live, items in le.nuaa_sequences(args.data / "spoof-dev" / "nuaa"):
            frames = le.file_frames(items)
            for t in le.trace(analyser, frames, nuaa_rules, f"nuaa:{name}", live):
                out.append(t)
                print(le.track_line(t))
        lines += le.summary([t for t in out if t.live], "NUAA ClientRaw (live)")
        lines += le.summary([t for t in out if not t.live], "NUAA ImposterRaw (print)")
    print("\n".join(lines))
    print(f"{time.perf_counter() - t0:.0f} s, load average {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
