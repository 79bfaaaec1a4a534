#!/usr/bin/env python3
"""Print the LFW statistics the measurement constants were set from.

    python scripts/calibrate_measures.py [--n 150]

- occlusion.NATURAL_SHARE / SKIN_DISTANCE: per-region share of far-from-skin pixels on
  natural faces, and how many natural faces read as occluded at NORMAL (0.6);
- quality.BLUR_SHARP / BLUR_BLURRED: the raw blur effect of the photos and of Gaussian
  blurs of them;
- pose.PITCH_OFFSET: the median pitch of the photos (before the offset);
- expression.SMILE_LIFT and SHAPES: mouth-corner lift and face-shape ratios.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from edge.analysis import expression, occlusion, pose, quality  # noqa: E402
from edge.analysis.regions import face_crop  # noqa: E402
from edge.analysis.align import align_face  # noqa: E402
from edge.analysis.app import FaceAnalyser  # noqa: E402
from edge.imaging import decode_image  # noqa: E402

LFW = Path(__file__).resolve().parents[2] / "shared" / "data" / "lfw-view1" / "images"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=150)
    args = ap.parse_args()
    people = sorted(p for p in LFW.iterdir() if p.is_dir())
    rng = np.random.default_rng(0)
    photos = [sorted(people[i].glob("*.jpg"))[0] for i in rng.choice(len(people), args.n, replace=False)]
    fa = FaceAnalyser()
    raw, occ, blur, pitch, lift, shapes = [], [], [], [], [], []
    for path in photos:
        img = decode_image(path.read_bytes())
        faces = fa.analyse(img, 1, 1, {"landmarks"})
        if not faces:
            continue
        f = faces[0]
        crop, pts = face_crop(img, f.mesh)
        o, r = occlusion.occlusion(crop, pts)
        raw.append(list(r.values()))
        occ.append(list(dataclasses.asdict(o).values()))
        row = []
        for sigma in (0, 1, 2, 3):
            im = img if sigma == 0 else cv2.GaussianBlur(img, (0, 0), sigma)
            gray = cv2.cvtColor(align_face(im, f.kps5), cv2.COLOR_BGR2GRAY)[16:104, 16:96]
            row.append((quality.blur_effect(gray, 11) + quality.blur_effect(gray, 21)) / 2)
        blur.append(row)
        pitch.append(f.pitch + pose.PITCH_OFFSET)
        lift.append(expression.mouth_measures(f.mesh)[0])
        shapes.append(expression.shape_ratios(f.mesh))
    np.set_printoptions(precision=3, suppress=True)
    print(f"{len(raw)} LFW faces")
    print("occlusion regions:", ", ".join(occlusion.REGIONS))
    print("  raw far-from-skin share p50/p75/p90/p95:\n", np.percentile(raw, [50, 75, 90, 95], axis=0))
    print("  share of natural faces above 0.6 per region:", (np.array(occ) > 0.6).mean(0))
    print("blur effect for sigma 0/1/2/3 px, p5/p50/p95:\n", np.percentile(blur, [5, 50, 95], axis=0))
    print(f"median pitch before the offset: {np.median(pitch):.2f} deg")
    print("mouth-corner lift p10/p50/p90:", np.percentile(lift, [10, 50, 90]))
    print("shape ratios (length/cheek, jaw/cheek, forehead/cheek) p10/p50/p90:\n",
          np.percentile(shapes, [10, 50, 90], axis=0))


if __name__ == "__main__":
    main()
