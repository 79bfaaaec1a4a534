"""What one v2 detect costs as max_face_num grows: the figures behind the 50-face cap.

    python scripts/bench_max_faces.py [--grid 8] [--repeat 3]

A grid x grid mosaic of one LFW photo (64 faces at the default grid) is sent to v2
detect (edge.service.Engine, what `edge serve` runs) with max_face_num 1, 10, 20, 50 and
100000 (answered as 50: rules.V2_DETECT_FACES_CAP), with the default fields and with
every field; the median latency of --repeat runs is printed per row.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from edge.models.manifest import REPO_ROOT  # noqa: E402
from edge.service import Engine  # noqa: E402

PHOTO = REPO_ROOT.parent / "shared" / "data" / "lfw-view1" / "images" / "Paul_Wolfowitz" / "Paul_Wolfowitz_0002.jpg"
EVERY_FIELD = "age,expression,faceshape,gender,landmark,qualities,faceliveness"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--grid", type=int, default=8)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    tile = cv2.imread(str(PHOTO))
    mosaic = np.vstack([np.hstack([tile] * args.grid)] * args.grid)
    image = cv2.imencode(".jpg", mosaic, [cv2.IMWRITE_JPEG_QUALITY, 92])[1].tobytes()
    engine = Engine()
    engine.detect(image, {"max_face_num": 1})   # models loaded, caches warm
    print(f"{mosaic.shape[1]}x{mosaic.shape[0]} mosaic of {args.grid * args.grid} faces; median of {args.repeat}")
    print(f"{'max_face_num':>12} {'fields':>8} {'faces':>5} {'ms':>7}")
    for fields in ("", EVERY_FIELD):
        for n in (1, 10, 20, 50, 100000):
            times, faces = [], 0
            for _ in range(args.repeat):
                t = time.perf_counter()
                out = engine.detect(image, {"max_face_num": n, "face_fields": fields})
                times.append(time.perf_counter() - t)
                faces = out.get("result_num", out.get("error_code"))
            print(f"{n:>12} {'every' if fields else 'default':>8} {faces:>5} {1000 * statistics.median(times):>7.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
