#!/usr/bin/env python3
"""In-plane rotated faces: detection rate, rotation error, box/landmark error and
embedding cosine per angle, and what the rotated retry costs.

Real photos (LFW, face_recognition's examples, the multiface set) are turned by
0/45/.../315 deg and one random angle each (edge.analysis.orientation.turn, the
canvas grown to hold the whole photo) and analysed as an API photo is. Each face
found is matched to the upright photo's faces through the turn's inverse map; the
reported rotation must read the upright rotation plus the turn (clockwise), the
landmarks and the location's centre are mapped back and compared with the upright
ones (in inter-ocular distances, IOD), and the embedding with the upright one.
"upright only" is the same analysis with detector.rotated_retry off (the old code).

    python scripts/rotation_report.py [--lfw 40] [--seed 0] [--repeat 5]

Figures only; exits 0. tests/test_rotation.py checks the same on a few photos.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from edge.analysis import meshmap  # noqa: E402
from edge.analysis.app import AnalyserConfig, FaceAnalyser  # noqa: E402
from edge.analysis.orientation import map_points, rotated_rect, turn  # noqa: E402
from edge.imaging import decode_image  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
ANGLES = (0, 45, 90, 135, 180, 225, 270, 315)
STAGES = {"landmarks", "embedding"}
PEERS = ("examples/obama.jpg", "examples/biden.jpg", "examples/obama2.jpg", "examples/alex-lacamoire.png",
         "examples/lin-manuel-miranda.png", "tests/test_images/obama3.jpg")
MULTI = ("fr_two_people.jpg", "deepface_couple.jpg", "insightface_t1.jpg", "skimage_astronaut.png")
NO_FACE = DATA / "multiface" / "inspireface_view_noface.jpg"


def wrap(deg: float) -> float:
    return (deg + 180.0) % 360.0 - 180.0


def photos(n_lfw: int, seed: int) -> list[Path]:
    people = sorted(p for p in (DATA / "lfw-view1" / "images").iterdir() if p.is_dir())
    picks = np.random.default_rng(seed).choice(len(people), size=n_lfw, replace=False)
    lfw = [sorted(people[i].glob("*.jpg"))[0] for i in sorted(picks)]
    return lfw + [DATA / "peers" / "face_recognition" / p for p in PEERS] + [DATA / "multiface" / p for p in MULTI]


def location_centre(face) -> np.ndarray:
    """Centre of the rotated Baidu location (what an application would draw)."""
    left, top, w, h = rotated_rect(face.box, face.upright_size, round(face.roll))
    r = math.radians(round(face.roll))
    return np.array([left + math.cos(r) * w / 2 - math.sin(r) * h / 2,
                     top + math.sin(r) * w / 2 + math.cos(r) * h / 2])


def compare(ref, found, back, deg) -> dict:
    """Errors of a face found on the turned photo against the upright photo's face."""
    ref72 = meshmap.landmark72(ref.mesh)
    iod = float(np.linalg.norm(meshmap.landmark4(ref.mesh)[0] - meshmap.landmark4(ref.mesh)[1]))
    got72 = map_points(meshmap.landmark72(found.mesh), back)
    return {"rot": abs(wrap(round(found.roll) - round(ref.roll) - deg)),
            "lmk": float(np.linalg.norm(got72 - ref72, axis=1).mean()) / iod,
            "loc": float(np.linalg.norm(map_points(location_centre(found), back) - location_centre(ref))) / iod,
            "size": found.upright_size[0] / ref.upright_size[0],
            "cos": float(found.embedding @ ref.embedding)}


def match(refs, faces, back):
    """Pairs (reference face, found face) whose centres agree within half an IOD-ish box width."""
    pairs = []
    for ref in refs:
        rc = np.array(ref.center)
        best = min(faces, key=lambda f: np.linalg.norm(map_points(np.array(f.center), back) - rc), default=None)
        if best is not None and np.linalg.norm(map_points(np.array(best.center), back) - rc) < 0.3 * ref.width:
            pairs.append((ref, best))
    return pairs


def evaluate(analyser: FaceAnalyser, paths: list[Path], seed: int) -> dict:
    rng = np.random.default_rng(seed)
    rows = {a: {"n": 0, "found": 0, "old": 0, "photos": 0, "main": 0, "errs": []} for a in (*ANGLES, "random")}
    for path in paths:
        img = decode_image(path.read_bytes())
        refs = analyser.analyse(img, 10, 0, STAGES)
        for key in (*ANGLES, "random"):
            deg = float(rng.uniform(-180, 180)) if key == "random" else key
            turned, back = turn(img, deg)
            found = analyser.analyse(turned, 10, 0, STAGES)
            old = analyser.analyse(turned, 10, 0, set(), rotated=False)
            pairs = match(refs, found, back)
            row = rows[key]
            row["n"] += len(refs)
            row["found"] += len(pairs)
            row["photos"] += bool(refs)
            row["main"] += bool(refs) and any(r is refs[0] for r, _ in pairs)   # the largest face
            row["old"] += len(match(refs, old, back))
            row["errs"] += [compare(r, f, back, deg) for r, f in pairs]
    return rows


def best_ms(fn, repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return float(min(times))


def costs(analyser: FaceAnalyser, repeat: int) -> list[tuple]:
    """(case, ms with the retry off, ms with it on, ms of mesh runs with it on, detector
    calls with it on, their pixels over the upright pass's) for analyse(..., {"embedding"}),
    as search and identify call it."""
    noface = decode_image(NO_FACE.read_bytes())
    face = decode_image((DATA / "peers" / "face_recognition" / "examples" / "obama.jpg").read_bytes())
    cases = [(f"no face {noface.shape[1]}x{noface.shape[0]}", noface),
             (f"upright face {face.shape[1]}x{face.shape[0]}", face)]
    cases += [(f"face turned {d} deg", turn(face, d)[0]) for d in (90, 180, 45)]
    out, passes, detect = [], [], analyser.detector.detect
    analyser.detector.detect = lambda img, side=None: (passes.append(img.size), detect(img, side))[1]
    for name, img in cases:
        off = best_ms(lambda: analyser.analyse(img, 1, 0, {"embedding"}, rotated=False), repeat)
        on = best_ms(lambda: analyser.analyse(img, 1, 0, {"embedding"}, rotated=True), repeat)
        mesh = analyser.timings.get("landmarks", 0.0) + analyser.timings.get("verify", 0.0)
        passes.clear()
        analyser.analyse(img, 1, 0, {"embedding"}, rotated=True)
        out.append((name, off, on, mesh, len(passes), sum(passes) / passes[0]))
    analyser.detector.detect = detect
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lfw", type=int, default=40, help="LFW photos (one per person)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=5, help="timing repeats")
    args = ap.parse_args()
    analyser = FaceAnalyser(AnalyserConfig(threads=2))
    paths = photos(args.lfw, args.seed)
    rows = evaluate(analyser, paths, args.seed)
    print(f"{len(paths)} photos ({args.lfw} LFW, {len(PEERS)} face_recognition, {len(MULTI)} multiface); "
          "errors p50 / p90 over the faces found")
    print(f"{'angle':>7} {'faces':>5} {'found':>6} {'largest':>7} {'upright only':>12} {'rotation deg':>13} "
          f"{'landmarks IOD':>14} {'location IOD':>13} {'width ratio':>12} {'cosine p10/p50':>15}")
    for key, r in rows.items():
        e = {k: np.array([x[k] for x in r["errs"]]) for k in ("rot", "lmk", "loc", "size", "cos")}
        q = {k: np.percentile(v, [50, 90]) if v.size else (math.nan, math.nan) for k, v in e.items()}
        cos = np.percentile(e["cos"], [10, 50]) if e["cos"].size else (math.nan, math.nan)
        print(f"{key!s:>7} {r['n']:>5} {r['found'] / r['n']:>6.0%} {r['main'] / r['photos']:>7.0%} "
              f"{r['old'] / r['n']:>12.0%} "
              f"{q['rot'][0]:>6.1f}/{q['rot'][1]:<6.1f} {q['lmk'][0]:>7.3f}/{q['lmk'][1]:<6.3f} "
              f"{q['loc'][0]:>6.3f}/{q['loc'][1]:<6.3f} {q['size'][0]:>12.2f} {cos[0]:>7.3f}/{cos[1]:<7.3f}")
    print("\ncost of analyse(photo, stages={embedding}), best of", args.repeat, "runs (ms), 2 threads")
    print(f"{'case':>28} {'retry off':>10} {'retry on':>9} {'extra':>7} {'mesh (on)':>10} {'detector calls':>15}"
          f" {'pixels vs upright':>18}")
    for name, off, on, mesh, calls, pixels in costs(analyser, args.repeat):
        print(f"{name:>28} {off:>10.1f} {on:>9.1f} {on - off:>+7.1f} {mesh:>10.1f} {calls:>15} {pixels:>17.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
